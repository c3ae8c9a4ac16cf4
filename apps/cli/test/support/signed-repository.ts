/**
 * A small signed TUF repository on disk in the consistent-snapshot layout the origin publishes
 * (DESIGN.md, "Storage layout"), built with @cairn/verify's builders and one Ed25519 key per
 * role, and a node:http server for it on 127.0.0.1 that logs every request.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { nodeHashPort } from '@cairn/client/node-hash';
import type { TargetFile } from '@cairn/verify/metadata';
import {
  buildRoot,
  buildSnapshot,
  buildTargets,
  buildTimestamp,
  describeMetadata,
  describeTarget,
  signNew,
} from '@cairn/verify/repository';
import { Ed25519Signer } from '@cairn/verify/signer';

export interface SignedRepository {
  /** The repository's root directory, holding metadata/ and targets/. */
  readonly dir: string;
  /** Every metadata file, by name (`1.root.json`, `timestamp.json`, ...), as served. */
  readonly metadata: ReadonlyMap<string, Uint8Array>;
  /** Every target's description, by target path. */
  readonly targets: ReadonlyMap<string, TargetFile>;
  /** The URL path a target is served at: `/targets/{dirname}/{sha256}.{basename}`. */
  targetUrlPath(name: string): string;
}

const DAY = 86_400_000;

export async function writeSignedRepository(
  dir: string,
  files: Readonly<Record<string, Uint8Array>>,
): Promise<SignedRepository> {
  const [rootKey, timestampKey, snapshotKey, targetsKey] = await Promise.all(
    [0, 1, 2, 3].map(() => Ed25519Signer.generate()),
  );
  if (!rootKey || !timestampKey || !snapshotKey || !targetsKey) throw new Error('no keys');
  const spec = (s: Ed25519Signer) => ({
    keys: [{ keyid: s.keyid, publicKey: s.publicKey }],
    threshold: 1,
  });
  // The CLI runs on the real clock: a week of validity either side of now.
  const expires = new Date(Math.floor((Date.now() + 7 * DAY) / 1000) * 1000);

  const root = buildRoot({
    expires,
    consistentSnapshot: true,
    roles: {
      root: spec(rootKey),
      timestamp: spec(timestampKey),
      snapshot: spec(snapshotKey),
      targets: spec(targetsKey),
    },
  });
  const targets = new Map<string, TargetFile>();
  for (const [name, bytes] of Object.entries(files)) {
    targets.set(name, await describeTarget(nodeHashPort, name, bytes));
  }
  const targetsBytes = (
    await signNew(buildTargets({ expires, targets: [...targets.values()] }), [targetsKey])
  ).toBytes();
  const snapshotBytes = (
    await signNew(
      buildSnapshot({
        expires,
        meta: {
          'targets.json': await describeMetadata(nodeHashPort, 1, targetsBytes, {
            length: true,
            hashes: true,
          }),
        },
      }),
      [snapshotKey],
    )
  ).toBytes();
  const timestampBytes = (
    await signNew(
      buildTimestamp({
        expires,
        snapshot: await describeMetadata(nodeHashPort, 1, snapshotBytes, {
          length: true,
          hashes: true,
        }),
      }),
      [timestampKey],
    )
  ).toBytes();
  const metadata = new Map<string, Uint8Array>([
    ['1.root.json', (await signNew(root, [rootKey])).toBytes()],
    ['timestamp.json', timestampBytes],
    ['1.snapshot.json', snapshotBytes],
    ['1.targets.json', targetsBytes],
  ]);

  await mkdir(join(dir, 'metadata'), { recursive: true });
  for (const [name, bytes] of metadata) await writeFile(join(dir, 'metadata', name), bytes);

  const targetUrlPath = (name: string): string => {
    const sha256 = targets.get(name)?.hashes.sha256;
    if (sha256 === undefined) throw new Error(`no target ${name}`);
    const slash = name.lastIndexOf('/');
    return `/targets/${name.slice(0, slash + 1)}${sha256}.${name.slice(slash + 1)}`;
  };
  for (const [name, bytes] of Object.entries(files)) {
    const path = join(dir, ...targetUrlPath(name).split('/'));
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, bytes);
  }
  return { dir, metadata, targets, targetUrlPath };
}

export interface LoggedRequest {
  readonly method: string;
  readonly path: string;
  readonly status: number;
}

export interface RepositoryServer {
  /** `http://127.0.0.1:{port}` */
  readonly origin: string;
  /** Every request, in order of arrival. */
  readonly requests: LoggedRequest[];
  /** Bytes served instead of the file at a URL path: a compromised mirror. */
  readonly overrides: Map<string, Uint8Array>;
  close(): Promise<void>;
}

/** Serves `dir` as static files: 200 with the exact bytes, or 404. */
export async function serveDirectory(dir: string): Promise<RepositoryServer> {
  const requests: LoggedRequest[] = [];
  const overrides = new Map<string, Uint8Array>();
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const respond = (status: number, body?: Uint8Array): void => {
      requests.push({ method: req.method ?? '', path, status });
      res.writeHead(status, body === undefined ? {} : { 'content-length': body.length });
      res.end(body);
    };
    const override = overrides.get(path);
    if (override !== undefined) return respond(200, override);
    const file = resolve(dir, `.${decodeURIComponent(path)}`);
    const inside = relative(dir, file);
    if (inside.startsWith('..') || inside.startsWith(sep)) return respond(404);
    readFile(file).then(
      (bytes) => respond(200, bytes),
      () => respond(404),
    );
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    overrides,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}
