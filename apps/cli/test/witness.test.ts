/**
 * Witness cosignatures end to end on 127.0.0.1: `cairn witness` (its server function, with
 * its state directory) and an origin in this process whose root declares the witness and
 * whose configuration asks it to cosign every checkpoint. Also `cairn witness keygen` and
 * `cairn witness serve` as the command runs them.
 *
 * The first describe's tests run in order and build on each other: the log only grows.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUpdater } from '@cairn/client/update';
import { initRepository } from '@cairn/origin/admin';
import { isOriginError } from '@cairn/origin/errors';
import { createLogger } from '@cairn/origin/log';
import { OriginService } from '@cairn/origin/service';
import {
  generateRepositoryKeys,
  keyRef,
  publishFiles,
  TEST_LOG_NAME,
  TEST_POLICY,
  type RepositoryKeys,
} from '@cairn/origin/testing/logged-repository';
import { logConfigFor, logSignerFor } from '@cairn/origin/transparency-log';
import type { BlobStore } from '@cairn/storage/blob-store';
import { MemoryBlobStore } from '@cairn/storage/memory-store';
import { createCosigner, openCheckpoint, parseCheckpoint } from '@cairn/tlog/checkpoint';
import { encodeEntry } from '@cairn/tlog/entry';
import { checkpointPolicy, logConfigFromRoot } from '@cairn/tlog/log-config';
import { LogWriter } from '@cairn/tlog/log-writer';
import { parseNote } from '@cairn/tlog/note';
import { consistencyProofFromTiles, tilePath } from '@cairn/tlog/tiles';
import {
  formatAddCheckpointRequest,
  TREE_SIZE_CONTENT_TYPE,
  Witness,
  witnessedLog,
} from '@cairn/tlog/witness';
import type { CliIo } from '../src/cli-io.js';
import { builtBin, runBuilt } from './support/run-cli.js';
import {
  DirectoryWitnessState,
  runWitness,
  startWitnessServer,
  witnessVerifierKey,
  type WitnessServer,
} from '../src/witness-command.js';

const WITNESS_NAME = 'witness.test/w1';

function captureIo(): CliIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (l) => out.push(l), stderr: (l) => err.push(l) };
}

async function bytesAt(store: BlobStore, key: string): Promise<Uint8Array | undefined> {
  try {
    const got = await store.get(key);
    if (got.notModified) throw new Error('304');
    return new Uint8Array(await new Response(got.body).arrayBuffer());
  } catch (error) {
    if ((error as { code?: unknown }).code === 'NOT_FOUND') return undefined;
    throw error;
  }
}

const text = (bytes: Uint8Array | undefined) => new TextDecoder().decode(bytes);

/** A URL nothing listens on: a server started and closed. */
async function deadUrl(): Promise<string> {
  const server = await startWitnessServer(
    new Witness({
      logs: [],
      state: new DirectoryWitnessState(tmpdir()),
      cosigner: await createCosigner('dead.test/w', new Uint8Array(32)),
    }),
  );
  await server.close();
  return server.url;
}

function serviceOn(
  store: BlobStore,
  keys: RepositoryKeys,
  witnesses: { url: string; key: string }[],
  threshold: number,
  log: (line: string) => void = () => undefined,
): OriginService {
  return new OriginService({
    store,
    online: { snapshot: [keys.snapshot], timestamp: [keys.timestamp] },
    policy: TEST_POLICY,
    authWindowMs: 300_000,
    logger: createLogger({ write: log }),
    logKey: keys.log,
    witnesses: { witnesses, threshold, timeoutMs: 5_000 },
  });
}

async function initWith(
  store: BlobStore,
  keys: RepositoryKeys,
  witnesses: string[],
  witnessThreshold: number,
) {
  return initRepository(store, {
    rootSigners: keys.root,
    rootThreshold: 2,
    publishers: [
      { ...keyRef(keys.alice), name: 'alice' },
      { ...keyRef(keys.bob), name: 'bob' },
    ],
    targetsThreshold: 2,
    snapshotKey: keyRef(keys.snapshot),
    timestampKey: keyRef(keys.timestamp),
    rootExpiry: TEST_POLICY.expiry.root,
    now: new Date(),
    log: { name: TEST_LOG_NAME, key: keys.log, witnesses, witnessThreshold },
  });
}

describe('an origin whose checkpoints a witness cosigns', () => {
  let dir: string;
  let server: WitnessServer;
  let witness: Witness;
  let witnessKey: string;
  let keys: RepositoryKeys;
  const store = new MemoryBlobStore();
  let service: OriginService;
  const errors: unknown[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cairn-witness-'));
    const seed = crypto.getRandomValues(new Uint8Array(32));
    witnessKey = await witnessVerifierKey(WITNESS_NAME, seed);
    keys = await generateRepositoryKeys();
    const logKey = (await logConfigFor(keys.log, TEST_LOG_NAME)).key;
    witness = new Witness({
      logs: [await witnessedLog(logKey)],
      state: new DirectoryWitnessState(join(dir, 'state')),
      cosigner: await createCosigner(WITNESS_NAME, seed),
    });
    server = await startWitnessServer(witness, { onError: (e) => errors.push(e) });
    await initWith(store, keys, [witnessKey], 1);
    service = serviceOn(store, keys, [{ url: server.url, key: witnessKey }], 1);
  });

  afterAll(async () => {
    await server.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  async function policy() {
    const root = await service.ctx.roots.newest();
    const config = logConfigFromRoot(root.signed.extra);
    if (config === undefined) throw new Error('no log');
    return checkpointPolicy(config);
  }

  it('publishes two releases; each checkpoint carries a valid cosignature', async () => {
    const sizes: number[] = [];
    for (const release of ['release 1', 'release 2']) {
      await publishFiles(service, { 'main.cvd': release }, [keys.alice, keys.bob]);
      const note = text(await bytesAt(store, 'log/checkpoint'));
      const opened = await openCheckpoint(note, await policy());
      expect(opened.cosignatures.map((c) => c.name)).toEqual([WITNESS_NAME]);
      sizes.push(opened.checkpoint.size);
    }
    // root 1 at init; then targets and snapshot per release.
    expect(sizes).toEqual([3, 5]);
    const state = JSON.parse(
      await readFile(join(dir, 'state', `${encodeURIComponent(TEST_LOG_NAME)}.json`), 'utf8'),
    ) as { size: number; origin: string };
    expect(state).toMatchObject({ origin: TEST_LOG_NAME, size: 5 });
    expect(errors).toEqual([]);
  });

  it('a client requiring the quorum accepts the cosigned release, and refuses it uncosigned', async () => {
    const cosigned = await bytesAt(store, 'log/checkpoint');
    const stripped = new TextEncoder().encode(
      text(cosigned)
        .split('\n')
        .filter((line) => !line.startsWith(`\u2014 ${WITNESS_NAME} `))
        .join('\n'),
    );
    const mirror = createServer((request, response) => {
      const key = decodeURIComponent(new URL(request.url ?? '/', 'http://m').pathname.slice(1));
      void (async () => {
        const bytes =
          key === 'log/checkpoint' && serveStripped ? stripped : await bytesAt(store, key);
        if (bytes === undefined) {
          response.writeHead(404).end();
          return;
        }
        response.writeHead(200, { 'content-length': bytes.length }).end(bytes);
      })();
    });
    let serveStripped = false;
    await new Promise<void>((done) => mirror.listen(0, '127.0.0.1', done));
    const url = `http://127.0.0.1:${String((mirror.address() as AddressInfo).port)}/`;
    try {
      const trustedRoot = await bytesAt(store, 'metadata/1.root.json');
      const config = (name: string) => ({
        installDir: join(dir, name, 'install'),
        stateDir: join(dir, name, 'state'),
        mirrors: [url],
        trustedRoot,
      });
      const report = await createUpdater(config('accepts')).update();
      expect(report).toMatchObject({ log: { origin: TEST_LOG_NAME, size: 5 } });
      expect(await readFile(join(dir, 'accepts', 'install', 'main.cvd'), 'utf8')).toBe('release 2');

      serveStripped = true;
      const refused = await createUpdater(config('refuses'))
        .update()
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      expect(refused).toMatchObject({ name: 'ClientError', code: 'NOT_IN_LOG' });
      expect(String((refused as Error).message)).toContain(
        'its checkpoint does not verify (THRESHOLD: 0 witnesses cosigned, 1 required)',
      );
      await expect(stat(join(dir, 'refuses', 'install', 'main.cvd'))).rejects.toThrow(/ENOENT/);
    } finally {
      await new Promise((done) => mirror.close(done));
    }
  });

  it('refuses a forked checkpoint under the same log key, and does not cosign it', async () => {
    const current = parseCheckpoint(parseNote(text(await bytesAt(store, 'log/checkpoint'))).text);
    const fork = new MemoryBlobStore();
    const writer = new LogWriter({
      store: fork,
      signer: await logSignerFor(keys.log, TEST_LOG_NAME),
    });
    const entries = (n: number, hex: string) =>
      Array.from({ length: n }, (_, i) =>
        encodeEntry({
          role: 'targets',
          version: i + 1,
          length: 1,
          sha256: hex.repeat(64),
          time: '2026-11-23T07:00:00.000Z',
        }),
      );
    const same = await writer.append(entries(current.size, 'a'));
    expect(same.size).toBe(current.size);
    const post = (body: string) => fetch(`${server.url}/add-checkpoint`, { method: 'POST', body });

    const sameSize = await post(
      formatAddCheckpointRequest({ oldSize: current.size, proof: [], checkpoint: same.checkpoint }),
    );
    expect(sameSize.status).toBe(409);
    expect(await sameSize.text()).not.toMatch(/\u2014/u);

    const longer = await writer.append(entries(2, 'b'));
    const readTile = async (level: number, index: number, width: number) =>
      (await bytesAt(fork, `log/${tilePath({ level, index, width })}`)) ?? new Uint8Array();
    const proof = await consistencyProofFromTiles(current.size, longer.size, readTile);
    const larger = await post(
      formatAddCheckpointRequest({ oldSize: current.size, proof, checkpoint: longer.checkpoint }),
    );
    expect(larger.status).toBe(422);
    expect(await larger.text()).not.toMatch(/\u2014/u);

    const stale = await post(
      formatAddCheckpointRequest({ oldSize: 0, proof: [], checkpoint: longer.checkpoint }),
    );
    expect(stale.status).toBe(409);
    expect(stale.headers.get('content-type')).toBe(TREE_SIZE_CONTENT_TYPE);
    expect(await stale.text()).toBe(`${String(current.size)}\n`);
  });

  it('with the witness down and threshold 1, publication fails and nothing new is visible', async () => {
    await server.close();
    const timestamp = await bytesAt(store, 'metadata/timestamp.json');
    const checkpoint = await bytesAt(store, 'log/checkpoint');
    const failure = await publishFiles(service, { 'main.cvd': 'release 3' }, [
      keys.alice,
      keys.bob,
    ]).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toMatchObject({ name: 'OriginError', code: 'WITNESS_UNAVAILABLE' });
    expect(String((failure as Error).message)).toMatch(
      /^0 of 1 witnesses cosigned the log's checkpoint \(0 the root declares\), 1 required: http:\/\/127\.0\.0\.1:\d+: fetch failed/,
    );
    const tick = await service.tick();
    expect(tick.errors.join('\n')).toMatch(/WITNESS_UNAVAILABLE|witnesses cosigned/);
    expect(await bytesAt(store, 'metadata/timestamp.json')).toEqual(timestamp);
    expect(await bytesAt(store, 'log/checkpoint')).toEqual(checkpoint);
  });

  it('once the witness is back, a scheduled run finishes the publication, cosigned', async () => {
    const port = Number(new URL(server.url).port);
    server = await startWitnessServer(witness, { port, onError: (e) => errors.push(e) });
    const tick = await service.tick();
    // The publication was planned before the log refused it: the run finishes that plan.
    expect(tick).toMatchObject({ recovered: [3], errors: [] });
    const opened = await openCheckpoint(
      text(await bytesAt(store, 'log/checkpoint')),
      await policy(),
    );
    expect(opened.checkpoint.size).toBe(7);
    expect(opened.cosignatures.map((c) => c.name)).toEqual([WITNESS_NAME]);
  });
});

describe('a witness below the threshold', () => {
  it('threshold 0 and the witness down: publishes, with a warning', async () => {
    const keys = await generateRepositoryKeys();
    const store = new MemoryBlobStore();
    const seed = crypto.getRandomValues(new Uint8Array(32));
    const witnessKey = await witnessVerifierKey(WITNESS_NAME, seed);
    await initWith(store, keys, [witnessKey], 0);
    const lines: string[] = [];
    const service = serviceOn(store, keys, [{ url: await deadUrl(), key: witnessKey }], 0, (l) =>
      lines.push(l),
    );
    expect(await publishFiles(service, { 'main.cvd': 'v1' }, [keys.alice, keys.bob])).toMatchObject(
      { targetsVersion: 1, snapshotVersion: 1 },
    );
    const note = parseNote(text(await bytesAt(store, 'log/checkpoint')));
    expect(note.signatures.map((s) => s.name)).toEqual([TEST_LOG_NAME]);
    expect(parseCheckpoint(note.text).size).toBe(3);
    const warnings = lines.filter((l) => l.includes('witness did not cosign'));
    expect(warnings.length).toBeGreaterThan(0);
    expect(warnings[0]).toMatch(/"level":"warn"/);
  });

  it('a witness that missed checkpoints answers 409 with its size; the origin proves from there', async () => {
    const keys = await generateRepositoryKeys();
    const store = new MemoryBlobStore();
    const seed = crypto.getRandomValues(new Uint8Array(32));
    const witnessKey = await witnessVerifierKey(WITNESS_NAME, seed);
    const stateDir = await mkdtemp(join(tmpdir(), 'cairn-witness-late-'));
    const state = new DirectoryWitnessState(stateDir);
    const witness = new Witness({
      logs: [await witnessedLog((await logConfigFor(keys.log, TEST_LOG_NAME)).key)],
      state,
      cosigner: await createCosigner(WITNESS_NAME, seed),
    });
    let server = await startWitnessServer(witness);
    const port = Number(new URL(server.url).port);
    try {
      await initWith(store, keys, [witnessKey], 0);
      const service = serviceOn(store, keys, [{ url: server.url, key: witnessKey }], 0);
      const signers = [keys.alice, keys.bob];
      const cosignedBy = async () =>
        parseNote(text(await bytesAt(store, 'log/checkpoint'))).signatures.map((s) => s.name);
      await publishFiles(service, { 'main.cvd': 'v1' }, signers);
      expect(await cosignedBy()).toEqual([TEST_LOG_NAME, WITNESS_NAME]);
      await server.close();
      await publishFiles(service, { 'main.cvd': 'v2' }, signers);
      expect(await cosignedBy()).toEqual([TEST_LOG_NAME]);
      expect((await state.get(TEST_LOG_NAME))?.size).toBe(3);
      server = await startWitnessServer(witness, { port });
      // The writer sends old 5; the witness holds 3: 409, then a proof from 3 to 7.
      await publishFiles(service, { 'main.cvd': 'v3' }, signers);
      expect(await cosignedBy()).toEqual([TEST_LOG_NAME, WITNESS_NAME]);
      expect((await state.get(TEST_LOG_NAME))?.size).toBe(7);
    } finally {
      await server.close().catch(() => undefined);
      await rm(stateDir, { recursive: true, force: true });
    }
  });

  it('an origin that cannot reach the quorum the root declares refuses to start', async () => {
    const keys = await generateRepositoryKeys();
    const store = new MemoryBlobStore();
    const witnessKey = await witnessVerifierKey(WITNESS_NAME, new Uint8Array(32).fill(3));
    await initWith(store, keys, [witnessKey], 1);
    const service = serviceOn(store, keys, [], 0);
    const error = await service.checkLogKey().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isOriginError(error, 'CONFIG_INVALID')).toBe(true);
  });
});

describe('cairn witness', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cairn-witness-cmd-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keygen writes a 32-byte seed, mode 0600, prints the vkey, and never overwrites', async () => {
    const io = captureIo();
    const out = join(dir, 'w.key');
    expect(await runWitness(['keygen', '--out', out, '--name', WITNESS_NAME], io)).toBe(0);
    const seed = new Uint8Array(await readFile(out));
    expect(seed.length).toBe(32);
    expect((await stat(out)).mode & 0o777).toBe(0o600);
    expect(io.out[1]).toBe(await witnessVerifierKey(WITNESS_NAME, seed));
    expect(io.out[1]).toMatch(/^witness\.test\/w1\+[0-9a-f]{8}\+B[A-P]/);
    await expect(
      runWitness(['keygen', '--out', out, '--name', WITNESS_NAME], captureIo()),
    ).rejects.toMatchObject({ code: 'EEXIST' });
  });

  it('serve answers add-checkpoint until stopped; bad flags are usage errors', async () => {
    const keygen = captureIo();
    const keyFile = join(dir, 'serve.key');
    await runWitness(['keygen', '--out', keyFile, '--name', WITNESS_NAME], keygen);
    const keys = await generateRepositoryKeys();
    const logKey = (await logConfigFor(keys.log, TEST_LOG_NAME)).key;
    const io = captureIo();
    let stop = () => undefined as void;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    const running = runWitness(
      [
        'serve',
        '--key',
        keyFile,
        '--name',
        WITNESS_NAME,
        '--log',
        logKey,
        '--state',
        join(dir, 's'),
      ],
      io,
      { stop: () => stopped },
    );
    for (let i = 0; i < 100 && io.out.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    const url = /on (http:\/\/\S+)/.exec(io.out[0] ?? '')?.[1];
    expect(io.out[1]).toBe(keygen.out[1]);
    // A checkpoint signed by the log key: the log's first append, on a store of its own.
    const writer = new LogWriter({
      store: new MemoryBlobStore(),
      signer: await logSignerFor(keys.log, TEST_LOG_NAME),
    });
    const appended = await writer.append([new Uint8Array([1])]);
    const response = await fetch(`${url ?? ''}/add-checkpoint`, {
      method: 'POST',
      body: formatAddCheckpointRequest({ oldSize: 0, proof: [], checkpoint: appended.checkpoint }),
    });
    expect(response.status).toBe(200);
    expect(await response.text()).toMatch(/^\u2014 witness\.test\/w1 \S+\n$/u);
    expect((await fetch(`${url ?? ''}/add-checkpoint`)).status).toBe(405);
    stop();
    expect(await running).toBe(0);

    await expect(runWitness(['serve', '--name', WITNESS_NAME], captureIo())).rejects.toThrow(
      /missing --key/,
    );
    await expect(
      runWitness(
        ['serve', '--key', keyFile, '--name', WITNESS_NAME, '--log', 'nope', '--state', dir],
        captureIo(),
      ),
    ).rejects.toThrow(/--log/);
  });
  it('the built cairn: keygen, then serve until SIGTERM, exit 0', async () => {
    const cairn = builtBin('main');
    const keyFile = join(dir, 'built.key');
    const keygen = await runBuilt(cairn, [
      'witness',
      'keygen',
      '--out',
      keyFile,
      '--name',
      WITNESS_NAME,
    ]);
    expect(keygen.code).toBe(0);
    const vkey = keygen.stdout.split('\n')[1];
    const keys = await generateRepositoryKeys();
    const logKey = (await logConfigFor(keys.log, TEST_LOG_NAME)).key;
    const child = spawn(
      process.execPath,
      [
        cairn,
        'witness',
        'serve',
        '--key',
        keyFile,
        '--name',
        WITNESS_NAME,
        '--log',
        logKey,
        '--state',
        join(dir, 'built-state'),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    for (let i = 0; i < 200 && stdout.split('\n').length < 3; i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    const url = /on (http:\/\/\S+)/.exec(stdout)?.[1];
    expect(stdout.split('\n')[1]).toBe(vkey);
    const writer = new LogWriter({
      store: new MemoryBlobStore(),
      signer: await logSignerFor(keys.log, TEST_LOG_NAME),
    });
    const appended = await writer.append([new Uint8Array([2])]);
    const response = await fetch(`${url ?? ''}/add-checkpoint`, {
      method: 'POST',
      body: formatAddCheckpointRequest({ oldSize: 0, proof: [], checkpoint: appended.checkpoint }),
    });
    expect(response.status).toBe(200);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
