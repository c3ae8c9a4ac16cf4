// Cold TUF refresh of one large repository: our client against tuf-js and python-tuf.
//
// One repository whose top-level targets metadata lists 10 000 targets is built once and served
// on 127.0.0.1 from a worker thread. Each iteration gives a client a fresh metadata directory
// holding only the trusted root and times: create the updater, refresh (root, timestamp,
// snapshot, targets) and look up one target. Clients take turns round by round, so drift on a
// busy machine lands on all of them alike. python-tuf runs in one long-lived process that times
// itself, so interpreter start-up is excluded from its figure and reported on its own.
//
// Run: npm run bench (builds first), or node bench/tuf-refresh.ts once the packages are built.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { FsMetadataStore } from '@cairn/client/fs-metadata-store';
import { HttpFetcher } from '@cairn/client/http-fetcher';
import { nodeHashPort } from '@cairn/client/node-hash';
import { Updater, type UpdaterOptions } from '@cairn/verify/updater';
import { Updater as TufJsUpdater } from 'tuf-js';
import { ensurePythonVenv } from '../test/support/python.ts';
import { formatInteger, formatMs, formatRatio, max, median, min, renderTable } from './stats.ts';
import type {
  RepositoryCommand,
  RepositoryMessage,
  RepositoryReady,
  RepositoryRequest,
} from './tuf-refresh-server.ts';

export interface RefreshBenchOptions {
  /** Targets listed in the top-level targets metadata. Default 10 000. */
  readonly targetCount?: number | undefined;
  /** Unmeasured rounds first (JIT, caches, connection pools). Default 2. */
  readonly warmupRounds?: number;
  /** Measured rounds, each client at most once per round. Default 11. */
  readonly rounds?: number;
  /**
   * A client leaves the measured rounds once its samples add up to this much, after at least
   * one sample. tuf-js needs about a minute per refresh at 10 000 targets (see README), so it
   * gets one sample, its first refresh, where the others get every round. Default 30 s.
   */
  readonly clientBudgetMs?: number;
}

export type RefreshClientKey = 'cairn' | 'cairn-memory' | 'tuf-js' | 'python-tuf';

export interface ClientTiming {
  readonly key: RefreshClientKey;
  readonly label: string;
  readonly samplesMs: readonly number[];
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  /** What the client requested in its first warm-up refresh, with statuses. */
  readonly requests: readonly string[];
}

export interface RefreshResult {
  readonly date: string;
  readonly targetCount: number;
  readonly targetsFile: string;
  readonly targetsBytes: number;
  readonly lookupPath: string;
  readonly buildMs: number;
  readonly clients: readonly ClientTiming[];
  /** Spawn to ready of the python-tuf process: interpreter start-up plus imports. */
  readonly pythonStartupMs: number;
  readonly oursOverTufJs: number;
  readonly oursOverPython: number;
}

const PYTHON_SCRIPT = fileURLToPath(new URL('./tuf_refresh_python.py', import.meta.url));
const SERVER_SCRIPT = new URL('./tuf-refresh-server.ts', import.meta.url);
/** Building and signing 10 000 targets takes a few seconds; this is the outer bound. */
const BUILD_TIMEOUT_MS = 120_000;
/** Answers from the server worker and python come in well under a second. */
const STEP_TIMEOUT_MS = 30_000;
/** A refresh that takes this long has hung; tuf-js takes about a minute at 10 000 targets. */
const REFRESH_TIMEOUT_MS = 240_000;
const PYTHON_STARTUP_PROBES = 3;
/** See the warm-up below: a refresh this long is measured on its first run. */
const SLOW_REFRESH_MS = 5_000;

interface Outcome {
  readonly ms: number;
  readonly length: number;
  readonly sha256: string | undefined;
}

interface RefreshClient {
  readonly key: RefreshClientKey;
  readonly label: string;
  /** One cold refresh in `dir`, which holds only root.json. */
  run(dir: string): Promise<Outcome>;
  close(): Promise<void>;
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The worker thread that builds and serves the repository. */
class RepositoryServer {
  readonly #worker: Worker;
  readonly ready: RepositoryReady;

  private constructor(worker: Worker, ready: RepositoryReady) {
    this.#worker = worker;
    this.ready = ready;
  }

  static async start(targetCount: number): Promise<RepositoryServer> {
    const worker = new Worker(SERVER_SCRIPT, {
      workerData: { targetCount } satisfies RepositoryRequest,
    });
    try {
      const message = await withTimeout(
        RepositoryServer.#next(worker),
        BUILD_TIMEOUT_MS,
        'building the repository',
      );
      if (message.type !== 'ready') throw new Error(`repository worker sent ${message.type}`);
      return new RepositoryServer(worker, message);
    } catch (error) {
      await worker.terminate();
      throw error;
    }
  }

  static async #next(worker: Worker): Promise<RepositoryMessage> {
    // once() rejects when the worker emits 'error', e.g. when building threw.
    const [message] = (await once(worker, 'message')) as [RepositoryMessage];
    return message;
  }

  async #ask(command: RepositoryCommand): Promise<RepositoryMessage> {
    const answer = RepositoryServer.#next(this.#worker);
    this.#worker.postMessage(command);
    return withTimeout(answer, STEP_TIMEOUT_MS, `repository worker (${command.type})`);
  }

  /** Paths requested since the last call, each with its status. */
  async takeRequests(): Promise<string[]> {
    const answer = await this.#ask({ type: 'take-requests' });
    if (answer.type !== 'requests') throw new Error(`repository worker sent ${answer.type}`);
    return [...answer.requests];
  }

  async close(): Promise<void> {
    try {
      await this.#ask({ type: 'close' });
    } finally {
      await this.#worker.terminate();
    }
  }
}

type MetadataStore = UpdaterOptions['store'];

/** Holds metadata in memory: isolates verification from the file system's write cost. */
class MemoryMetadataStore implements MetadataStore {
  readonly #files = new Map<string, Uint8Array>();

  load(roleName: string): Promise<Uint8Array | undefined> {
    return Promise.resolve(this.#files.get(roleName));
  }

  persist(roleName: string, bytes: Uint8Array): Promise<void> {
    this.#files.set(roleName, bytes);
    return Promise.resolve();
  }

  remove(roleName: string): Promise<void> {
    this.#files.delete(roleName);
    return Promise.resolve();
  }
}

function cairnClient(
  key: 'cairn' | 'cairn-memory',
  repo: RepositoryReady,
  label: string,
): RefreshClient {
  return {
    key,
    label,
    async run(dir) {
      const started = performance.now();
      let store: MetadataStore;
      if (key === 'cairn') {
        store = new FsMetadataStore(dir);
      } else {
        store = new MemoryMetadataStore();
        await store.persist('root', repo.root);
      }
      const updater = new Updater({
        metadataBaseUrl: `${repo.url}metadata/`,
        fetcher: new HttpFetcher(),
        store,
        hash: nodeHashPort,
      });
      await updater.refresh();
      const info = await updater.getTargetInfo(repo.lookup.path);
      const ms = performance.now() - started;
      if (info === undefined) throw new Error(`${label}: ${repo.lookup.path} not found`);
      return { ms, length: info.length, sha256: info.hashes.sha256 };
    },
    close: () => Promise.resolve(),
  };
}

function tufJsClient(repo: RepositoryReady): RefreshClient {
  const label = 'tuf-js 6.0.2 Updater';
  return {
    key: 'tuf-js',
    label,
    async run(dir) {
      const started = performance.now();
      // The constructor reads and verifies dir/root.json, so it is inside the timing, as
      // python-tuf's constructor and our refresh() loading the root are.
      const updater = new TufJsUpdater({
        metadataDir: dir,
        metadataBaseUrl: `${repo.url}metadata/`,
        // No retries: every client makes exactly one request per file.
        config: { fetchRetries: 0 },
      });
      await updater.refresh();
      const info = await updater.getTargetInfo(repo.lookup.path);
      const ms = performance.now() - started;
      if (info === undefined) throw new Error(`${label}: ${repo.lookup.path} not found`);
      return { ms, length: info.length, sha256: info.hashes.sha256 };
    },
    close: () => Promise.resolve(),
  };
}

/** A python-tuf process speaking tuf_refresh_python.py's line protocol. */
class PythonProcess {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #lines: AsyncIterator<string>;
  #stderr = '';

  constructor(python: string, repo: RepositoryReady) {
    this.#child = spawn(python, [PYTHON_SCRIPT, `${repo.url}metadata/`, repo.lookup.path], {
      env: { ...process.env, PYTHONUTF8: '1', PYTHONDONTWRITEBYTECODE: '1' },
      stdio: 'pipe',
    });
    this.#child.stderr.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString('utf8')).slice(-4000);
    });
    this.#child.stdin.on('error', () => {}); // an early exit shows up as a missing line
    this.#lines = createInterface({ input: this.#child.stdout })[Symbol.asyncIterator]();
  }

  /** Waits for the ready line; returns milliseconds since spawn. */
  static async start(python: string, repo: RepositoryReady): Promise<[PythonProcess, number]> {
    const started = performance.now();
    const child = new PythonProcess(python, repo);
    try {
      const ready = (await child.#nextLine('starting python-tuf')) as { ready?: boolean };
      if (ready.ready !== true) throw new Error(`python-tuf: unexpected ${JSON.stringify(ready)}`);
      return [child, performance.now() - started];
    } catch (error) {
      await child.close();
      throw error;
    }
  }

  async #nextLine(what: string): Promise<unknown> {
    const next = await withTimeout(this.#lines.next(), REFRESH_TIMEOUT_MS, what);
    if (next.done === true) {
      throw new Error(`${what}: python exited. stderr:\n${this.#stderr}`);
    }
    return JSON.parse(next.value) as unknown;
  }

  async refresh(dir: string): Promise<Outcome> {
    this.#child.stdin.write(`${dir}\n`);
    const answer = (await this.#nextLine('python-tuf refresh')) as Partial<Outcome> & {
      error?: string;
    };
    if (answer.error !== undefined || typeof answer.ms !== 'number') {
      throw new Error(`python-tuf: ${answer.error ?? JSON.stringify(answer)}`);
    }
    return { ms: answer.ms, length: answer.length ?? -1, sha256: answer.sha256 };
  }

  async close(): Promise<void> {
    const child = this.#child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.stdin.end();
    try {
      await withTimeout(exited, 5_000, 'python-tuf exit');
    } catch {
      child.kill('SIGKILL');
      await exited;
    }
  }
}

async function pythonClient(
  python: string,
  repo: RepositoryReady,
): Promise<[RefreshClient, number[]]> {
  // Start-up is measured on throwaway processes too: one spawn is a noisy sample.
  const startups: number[] = [];
  for (let i = 0; i < PYTHON_STARTUP_PROBES; i++) {
    const [probe, ms] = await PythonProcess.start(python, repo);
    startups.push(ms);
    await probe.close();
  }
  const [child, ms] = await PythonProcess.start(python, repo);
  startups.push(ms);
  const client: RefreshClient = {
    key: 'python-tuf',
    label: 'python-tuf 7.0.1 ngclient',
    run: (dir) => child.refresh(dir),
    close: () => child.close(),
  };
  return [client, startups];
}

export async function benchTufRefresh(options: RefreshBenchOptions = {}): Promise<RefreshResult> {
  const targetCount = options.targetCount ?? 10_000;
  const warmupRounds = Math.max(1, options.warmupRounds ?? 2);
  const rounds = options.rounds ?? 11;
  const clientBudgetMs = options.clientBudgetMs ?? 30_000;

  const { python } = await ensurePythonVenv();
  const work = await mkdtemp(join(tmpdir(), 'cairn-bench-refresh-'));
  const clients: RefreshClient[] = [];
  let server: RepositoryServer | undefined;
  try {
    server = await RepositoryServer.start(targetCount);
    const repo = server.ready;
    clients.push(
      cairnClient('cairn', repo, 'cairn: verify Updater + @cairn/client adapters'),
      tufJsClient(repo),
    );
    const [py, pythonStartups] = await pythonClient(python, repo);
    clients.push(py, cairnClient('cairn-memory', repo, 'cairn, in-memory store (diagnostic)'));

    const samples = new Map<RefreshClientKey, number[]>(clients.map((c) => [c.key, []]));
    const requests = new Map<RefreshClientKey, string[]>();
    let iteration = 0;
    const runOnce = async (client: RefreshClient): Promise<number> => {
      const dir = join(work, `${client.key}-${iteration++}`);
      await mkdir(dir);
      await writeFile(join(dir, 'root.json'), repo.root);
      try {
        const outcome = await withTimeout(client.run(dir), REFRESH_TIMEOUT_MS, client.label);
        if (outcome.length !== repo.lookup.length || outcome.sha256 !== repo.lookup.sha256) {
          throw new Error(
            `${client.label} found ${repo.lookup.path} as ${outcome.length} bytes, sha256 ` +
              `${outcome.sha256}; the repository lists ${repo.lookup.length}, ${repo.lookup.sha256}`,
          );
        }
        return outcome.ms;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    };

    // Warm-up; the first round also records what each client fetched, so a client doing
    // different work (an extra file, a retry) is caught instead of measured. A first refresh
    // that takes longer than SLOW_REFRESH_MS counts as a sample and ends that client's warm-up:
    // what warming up saves (module loading, JIT) is milliseconds, under 1 % of such a refresh,
    // and repeating it would double the run time for nothing (tuf-js at 10 000 targets).
    const slow = new Set<RefreshClientKey>();
    for (let round = 0; round < warmupRounds; round++) {
      for (const client of clients) {
        if (slow.has(client.key)) continue;
        if (round === 0) await server.takeRequests();
        const ms = await runOnce(client);
        if (round === 0) requests.set(client.key, await server.takeRequests());
        if (round === 0 && ms > SLOW_REFRESH_MS) {
          slow.add(client.key);
          samples.get(client.key)?.push(ms);
        }
      }
    }
    const expected = [...(requests.get('cairn') ?? [])].sort().join(', ');
    for (const [key, list] of requests) {
      const got = [...list].sort().join(', ');
      if (got !== expected) {
        throw new Error(`${key} requested [${got}], but our client requested [${expected}]`);
      }
    }

    const spent = (key: RefreshClientKey) =>
      (samples.get(key) ?? []).reduce((sum, ms) => sum + ms, 0);
    for (let round = 0; round < rounds; round++) {
      // Rotate the order so no client always runs right after the same other one.
      const order = clients.map((_, i) => clients[(i + round) % clients.length]);
      for (const client of order) {
        if (client === undefined || spent(client.key) >= clientBudgetMs) continue;
        samples.get(client.key)?.push(await runOnce(client));
      }
    }

    const timings: ClientTiming[] = clients.map((c) => {
      const s = samples.get(c.key) ?? [];
      return {
        key: c.key,
        label: c.label,
        samplesMs: s,
        medianMs: median(s),
        minMs: min(s),
        maxMs: max(s),
        requests: requests.get(c.key) ?? [],
      };
    });
    const medianOf = (key: RefreshClientKey) =>
      timings.find((t) => t.key === key)?.medianMs ?? Number.NaN;
    return {
      date: new Date().toISOString(),
      targetCount: repo.targetCount,
      targetsFile: repo.targetsFile,
      targetsBytes: repo.targetsBytes,
      lookupPath: repo.lookup.path,
      buildMs: repo.buildMs,
      clients: timings,
      pythonStartupMs: median(pythonStartups),
      oursOverTufJs: medianOf('cairn') / medianOf('tuf-js'),
      oursOverPython: medianOf('cairn') / medianOf('python-tuf'),
    };
  } finally {
    for (const client of clients) await client.close();
    await server?.close();
    await rm(work, { recursive: true, force: true });
  }
}

export function formatRefreshReport(result: RefreshResult): string {
  const rows = result.clients.map((c) => [
    c.label,
    formatMs(c.medianMs),
    formatMs(c.minMs),
    formatMs(c.maxMs),
    String(c.samplesMs.length),
  ]);
  const python = result.clients.find((c) => c.key === 'python-tuf');
  rows.push([
    'python-tuf start-up (interpreter + imports)',
    formatMs(result.pythonStartupMs),
    '',
    '',
    String(PYTHON_STARTUP_PROBES + 1),
  ]);
  if (python !== undefined) {
    rows.push([
      'python-tuf one-shot (start-up + refresh)',
      formatMs(result.pythonStartupMs + python.medianMs),
      '',
      '',
      '',
    ]);
  }
  const requests = result.clients[0]?.requests.join(', ') ?? '';
  return [
    `TUF cold refresh + getTargetInfo: ${formatInteger(result.targetCount)} targets, ` +
      `${result.targetsFile} = ${formatInteger(result.targetsBytes)} bytes (ed25519, consistent snapshots)`,
    `repository built and signed in ${formatMs(result.buildMs)} ms; each refresh requested: ${requests}`,
    '',
    renderTable(['client', 'median ms', 'min', 'max', 'n'], rows),
    '',
    `ours/tuf-js     = ${formatRatio(result.oursOverTufJs)}  (below 1: ours is faster)`,
    `ours/python-tuf = ${formatRatio(result.oursOverPython)}  (python timed in-process)`,
  ].join('\n');
}

if (import.meta.main) {
  // --targets N measures another repository size, e.g. to see how a client scales.
  const { values } = parseArgs({ options: { targets: { type: 'string' } } });
  const targetCount = values.targets === undefined ? undefined : Number(values.targets);
  if (targetCount !== undefined && !(Number.isSafeInteger(targetCount) && targetCount > 0)) {
    throw new RangeError(`--targets: expected a positive integer, received ${values.targets}`);
  }
  console.log(formatRefreshReport(await benchTufRefresh({ targetCount })));
}
