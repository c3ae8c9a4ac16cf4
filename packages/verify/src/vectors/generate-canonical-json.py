"""Regenerate canonical-json.json: what securesystemslib's canonical JSON encoder outputs.

python-tuf signs and verifies the bytes
    securesystemslib.formats.encode_canonical(signed_dict).encode("utf-8")
(tuf/api/serialization/json.py, CanonicalJSONSerializer), so these vectors are the bytes a
TUF-compatible client must reproduce. Run with the interop venv from test/support/python.ts:

    .cache/pyvenv/bin/python packages/verify/src/vectors/generate-canonical-json.py \
        > packages/verify/src/vectors/canonical-json.json

The output depends only on the pinned securesystemslib and tuf versions (asserted below).
"""

import hashlib
import json
import sys
from datetime import datetime, timezone

import securesystemslib
import tuf
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from securesystemslib.formats import encode_canonical
from securesystemslib.signer import SSlibKey
from tuf.api.metadata import Metadata, Role, Root

SSLIB_VERSION = "1.6.0"
TUF_VERSION = "7.0.1"
if securesystemslib.__version__ != SSLIB_VERSION or tuf.__version__ != TUF_VERSION:
    sys.exit(
        f"need securesystemslib {SSLIB_VERSION} and tuf {TUF_VERSION}, found "
        f"{securesystemslib.__version__} and {tuf.__version__}"
    )


def canonical_bytes(value):
    """Exactly python-tuf's CanonicalJSONSerializer.serialize, minus the Signed wrapper."""
    return encode_canonical(value).encode("utf-8")


# (name, JSON text). Inputs are written as JSON text and parsed with json.loads, so each input
# is precisely what a JSON parser hands the encoder; "\u" escapes keep this file ASCII.
ACCEPTED = [
    ("empty object", "{}"),
    ("empty array", "[]"),
    ("empty string", '""'),
    ("true", "true"),
    ("false", "false"),
    ("null", "null"),
    ("zero", "0"),
    ("negative integer", "-1"),
    ("large negative integer", "-1234567890123"),
    ("2^53 - 1 (largest exact JS integer)", "9007199254740991"),
    ("-(2^53 - 1)", "-9007199254740991"),
    ("scalars in an array", '[true, false, null, 0, -7, ""]'),
    ("keys sorted, whitespace removed", '{ "b" : 1 , "a" : 2 , "c" : [ 3 , 4 ] }'),
    ("uppercase sorts before lowercase", '{"a": 1, "B": 2, "_": 3, "A": 4}'),
    ("numeric-looking keys sort as strings", '{"9": 0, "10": 1, "1": 2}'),
    ("prefix key sorts first", '{"ab": 1, "a": 2, "a\\u0000": 3, "": 4}'),
    (
        # Python sorts str by code point; JS's default sort and < compare UTF-16 code units.
        # U+1F600 is D83D DE00 in UTF-16, so code-unit order puts it before U+E000 and U+FFFF,
        # code-point order after them.
        "keys sorted by code point, not UTF-16 code unit",
        '{"\\ud83d\\ude00": "U+1F600", "\\uffff": "U+FFFF", "\\ue000": "U+E000",'
        ' "a": "U+0061", "Z": "U+005A", "\\u00e9": "U+00E9", "\\u4e2d": "U+4E2D"}',
    ),
    (
        "astral keys sorted among themselves",
        '{"\\ud83d\\ude01": 2, "\\ud83d\\ude00": 1, "\\ud800\\udc00": 0, "\\udbff\\udfff": 3}',
    ),
    (
        "nested objects and arrays",
        '{"z": {"y": [3, {"b": [], "a": {}}], "x": null}, "a": [[[]], [{}], {"k": [true]}]}',
    ),
    ("array order is kept", '[3, 1, 2, "b", "a"]'),
    ("quote and backslash are escaped", '"say \\"hi\\" to C:\\\\dir\\\\file"'),
    ("lone backslash and quote", '["\\\\", "\\""]'),
    ("solidus is not escaped", '"a/b</c"'),
    ("newline, tab and carriage return are emitted raw", '"line1\\nline2\\tcol\\r"'),
    (
        "all C0 controls and DEL are emitted raw",
        '"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r'
        '\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018'
        '\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\\u007f"',
    ),
    ("control characters in a key", '{"a\\nb": 1, "a\\tb": 2}'),
    ("non-ASCII is emitted raw (UTF-8 in bytes)", '"caf\\u00e9 \\u4e2d\\u6587 \\ud83d\\ude00"'),
    ("U+2028 and U+2029 are emitted raw", '"\\u2028\\u2029"'),
    ("BOM and U+FFFF are emitted raw", '"\\ufeff\\uffff"'),
    ("non-ASCII keys and values", '{"\\u00e9": "\\u4e2d", "e": "\\ud83d\\ude00"}'),
    (
        "TUF key object (its sha256 is the default keyid)",
        '{"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public":'
        ' "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"}}',
    ),
    (
        "TUF hashes and length",
        '{"length": 1048576, "hashes": {"sha512": "00", "sha256": "ff"}, "custom": {}}',
    ),
]

# Parsing matters for these: the JSON text differs from what json.dumps would write back.
FROM_TEXT = [
    ("negative zero parses as integer 0", "-0"),
    ("duplicate keys: the last one wins in json.loads", '{"a": 1, "b": 2, "a": 3}'),
    ("escaped and raw non-ASCII are the same string", '["\\u00e9", "\u00e9"]'),
    ("escaped solidus", '"\\/"'),
    ("whitespace everywhere", ' \n\t{ "a" :\r\n [ 1 ,\t2 ] } \n'),
]

# These raise in python-tuf: securesystemslib rejects every float, and python-tuf's UTF-8
# encoding step rejects unpaired surrogates.
REJECTED = [
    ("float", "1.5"),
    ("integral float written with a fraction", "1.0"),
    ("integral float written with an exponent", "1e2"),
    ("integral float written with a capital exponent", "1E2"),
    ("negative zero float", "-0.0"),
    ("float overflowing to infinity", "1e400"),
    ("float nested in an object", '{"version": 1, "x": 0.5}'),
    ("float nested in an array", "[1, 2.0]"),
    ("unpaired high surrogate in a string", '"\\ud800"'),
    ("unpaired low surrogate in a key", '{"\\udc00": 1}'),
]


def describe(error):
    return f"{type(error).__module__}.{type(error).__name__}: {error}"


def accepted(name, value, text=None):
    canonical = encode_canonical(value)
    vector = {"name": name}
    if text is not None:
        vector["input_json"] = text
    vector["input"] = value
    vector["canonical"] = canonical
    vector["canonical_sha256"] = hashlib.sha256(canonical_bytes(value)).hexdigest()
    # The committed file must reproduce the input exactly when parsed back.
    if json.loads(json.dumps(value)) != value:
        raise AssertionError(f"{name}: input does not survive a JSON round trip")
    return vector


def realistic_root():
    ed_key = SSlibKey.from_crypto(
        ed25519.Ed25519PublicKey.from_public_bytes(
            # RFC 8032 section 7.1 TEST 1 public key
            bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        )
    )
    ecdsa_key = SSlibKey.from_crypto(
        # RFC 6979 appendix A.2.5 P-256 private key x
        ec.derive_private_key(
            0xC9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721, ec.SECP256R1()
        ).public_key()
    )
    root = Root(
        version=1,
        spec_version="1.0.31",
        expires=datetime(2030, 1, 1, tzinfo=timezone.utc),
        consistent_snapshot=True,
        # Root's default roles dict iterates a set, whose order changes with PYTHONHASHSEED;
        # a fixed (unsorted) order keeps this file reproducible.
        roles={name: Role([], 1) for name in ("root", "targets", "snapshot", "timestamp")},
    )
    root.add_key(ed_key, "root")
    root.add_key(ed_key, "targets")
    root.add_key(ecdsa_key, "snapshot")
    root.add_key(ecdsa_key, "timestamp")
    signed = Metadata(root).to_dict()["signed"]
    # Check against python-tuf's own serializer, not just our reading of it.
    from tuf.api.serialization.json import CanonicalJSONSerializer

    assert CanonicalJSONSerializer().serialize(root) == canonical_bytes(signed)
    return signed


def main():
    vectors = [accepted(name, json.loads(text)) for name, text in ACCEPTED]
    vectors.append(accepted("TUF root signed object (python-tuf 7.0.1 Root.to_dict())", realistic_root()))
    from_text = [accepted(name, json.loads(text), text) for name, text in FROM_TEXT]

    rejects = []
    for name, text in REJECTED:
        value = json.loads(text)
        try:
            canonical_bytes(value)
        except Exception as error:  # noqa: BLE001 - the exception is the vector
            rejects.append({"name": name, "input_json": text, "reason": describe(error)})
        else:
            raise AssertionError(f"{name}: expected securesystemslib/python-tuf to reject {text}")

    document = {
        "source": (
            f"securesystemslib {SSLIB_VERSION} securesystemslib.formats.encode_canonical, "
            "followed by .encode('utf-8') exactly as python-tuf "
            f"{TUF_VERSION} tuf.api.serialization.json.CanonicalJSONSerializer does; inputs parsed "
            "with Python's json.loads. Generated by "
            "packages/verify/src/vectors/generate-canonical-json.py in the venv built by "
            "test/support/python.ts (test/support/python-requirements.txt)."
        ),
        "notes": (
            "canonical is the encoder's exact output string; canonical_sha256 is the SHA-256 of "
            "its UTF-8 bytes (the bytes TUF signs). Object keys are sorted by Unicode code point "
            "(Python str order), which differs from JavaScript's UTF-16 code-unit order for "
            "astral characters versus U+E000..U+FFFF. Only '\"' and '\\\\' are escaped: control "
            "characters (U+0000..U+001F, U+007F), U+2028/U+2029 and all non-ASCII are written "
            "raw, so canonical strings may contain raw newlines and NULs. Integers have no size "
            "limit in Python (json.loads('18446744073709551616') encodes as that number), but a "
            "JS parser loses precision above 2^53 - 1, so no vector goes beyond it. Every float "
            "is refused, including integral ones: json.loads('1.0'), '1e2' and '-0.0' give "
            "Python floats and encode_canonical raises FormatError, whereas JSON.parse turns "
            "them into the integers 1, 100 and -0, so only a parser that keeps the number's "
            "lexical form can reproduce these rejects. json.loads('-0') is the integer 0 and "
            "encodes as '0'. from_text vectors give the raw JSON text (input_json) because "
            "parsing changes it; input is what json.loads returned. rejects give the raw JSON "
            "text and the exception python-tuf would raise."
        ),
        "vectors": vectors,
        "from_text": from_text,
        "rejects": rejects,
    }
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=True) + "\n")


if __name__ == "__main__":
    main()
