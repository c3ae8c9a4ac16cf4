// The repository the refresh benchmark reads: built with the test RepositorySimulator (our own
// builders and ed25519 signers) and served on 127.0.0.1 from a worker thread. The server gets
// its own event loop, so the clients measured on the main thread do not share one with it, just
// as the python-tuf client in its own process does not.
import { parentPort, workerData } from 'node:worker_threads';
import { RepositorySimulator } from '../test/support/repository-simulator.ts';

export interface RepositoryRequest {
  readonly targetCount: number;
}

export interface RepositoryReady {
  readonly type: 'ready';
  /** `http://127.0.0.1:PORT/`; metadata under `metadata/`, targets under `targets/`. */
  readonly url: string;
  /** 1.root.json, the trust anchor every client starts from. */
  readonly root: Uint8Array;
  /** The published top-level targets metadata, as served. */
  readonly targetsBytes: number;
  readonly targetsFile: string;
  readonly targetCount: number;
  /** The target every client looks up, and what it must find. */
  readonly lookup: { readonly path: string; readonly length: number; readonly sha256: string };
  readonly buildMs: number;
}

export interface RepositoryRequests {
  readonly type: 'requests';
  /** Paths requested since the last `take-requests`, with the status each got. */
  readonly requests: readonly string[];
}

export interface RepositoryClosed {
  readonly type: 'closed';
}

export type RepositoryMessage = RepositoryReady | RepositoryRequests | RepositoryClosed;
export type RepositoryCommand = { readonly type: 'take-requests' } | { readonly type: 'close' };

/** An antivirus-style signature set: one small file per daily build. */
export function targetPath(i: number): string {
  return `sigs/daily-${String(i).padStart(5, '0')}.cvd`;
}

function targetContent(i: number): string {
  return `ClamAV-Daily:${i}:build ${String(i).padStart(5, '0')}\n`;
}

async function main(port: NonNullable<typeof parentPort>): Promise<void> {
  const { targetCount } = workerData as RepositoryRequest;
  const started = performance.now();
  const sim = await RepositorySimulator.create({ keyKind: 'ed25519' });
  for (let i = 0; i < targetCount; i++) sim.addTarget(targetPath(i), targetContent(i));
  await sim.publish();
  const version = sim.roleVersions.get('targets') ?? 0;
  const targetsFile = `metadata/${sim.metadataName('targets', version)}`;
  const targets = sim.files.get(targetsFile);
  const lookupPath = targetPath(targetCount - 1);
  const lookup = sim.latest.get('targets')?.signed;
  const info = lookup?.type === 'targets' ? lookup.targets.get(lookupPath) : undefined;
  if (targets === undefined || info?.hashes.sha256 === undefined) {
    throw new Error(`the simulator did not publish ${targetsFile} listing ${lookupPath}`);
  }
  // Every status is recorded, so a 404 for the next root shows up as such.
  sim.overrides.push((path) => {
    sim.requests[sim.requests.length - 1] = `${path} ${sim.files.has(path) ? 200 : 404}`;
    return undefined;
  });
  await sim.serve();
  const buildMs = performance.now() - started;

  port.on('message', (command: RepositoryCommand) => {
    switch (command.type) {
      case 'take-requests':
        port.postMessage({
          type: 'requests',
          requests: sim.requests.splice(0),
        } satisfies RepositoryRequests);
        break;
      case 'close':
        void sim.close().then(() => {
          port.postMessage({ type: 'closed' } satisfies RepositoryClosed);
          port.close();
        });
        break;
    }
  });
  port.postMessage({
    type: 'ready',
    url: sim.url,
    root: sim.rootBytes(1),
    targetsBytes: targets.length,
    targetsFile,
    targetCount,
    lookup: { path: lookupPath, length: info.length, sha256: info.hashes.sha256 },
    buildMs,
  } satisfies RepositoryReady);
}

if (parentPort !== null) await main(parentPort);
