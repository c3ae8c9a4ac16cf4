"""python-tuf 7.0.1 ngclient side of bench/tuf-refresh.ts.

Started once per benchmark run, so interpreter start-up and imports are paid once and reported
separately. Prints {"ready": true} once imported; then, for each metadata directory read from
stdin (holding only a trusted root.json), runs one cold refresh and prints one JSON line with
the time spent inside Python around Updater() + refresh() + get_targetinfo().

usage: python tuf_refresh_python.py METADATA_URL TARGET_PATH
"""

import json
import sys
import time

from tuf.ngclient import Updater, UpdaterConfig


def refresh_once(metadata_dir: str, metadata_url: str, target_path: str) -> dict:
    started = time.perf_counter()
    # bootstrap=None: trust the root.json already in metadata_dir, as the other clients do.
    updater = Updater(
        metadata_dir=metadata_dir,
        metadata_base_url=metadata_url,
        config=UpdaterConfig(),
        bootstrap=None,
    )
    updater.refresh()
    info = updater.get_targetinfo(target_path)
    elapsed_ms = (time.perf_counter() - started) * 1000
    if info is None:
        raise LookupError(f"{target_path} is not listed")
    return {"ms": elapsed_ms, "length": info.length, "sha256": info.hashes.get("sha256")}


def main() -> None:
    metadata_url, target_path = sys.argv[1], sys.argv[2]
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        metadata_dir = line.rstrip("\n")
        try:
            result = refresh_once(metadata_dir, metadata_url, target_path)
        except Exception as error:  # reported to the driver, which fails the benchmark
            result = {"error": f"{type(error).__name__}: {error}"}
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
