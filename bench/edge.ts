// Serving a repository over HTTP: the edge on Node (`startEdge` over an FsBlobStore, what
// `cairn mirror serve` runs) and the edge Worker in workerd (Miniflare running
// apps/edge/dist-worker/index.js on an R2 binding), against nginx serving the same files with
// sendfile, in the same run, under the same load from wrk.
//
// Two requests: `metadata/timestamp.json` (~1 KB, what every client asks for on every check) and
// a 10 MB hash-named target (a full download). For each, every server gets `wrk --latency` for
// --duration seconds per round, the servers taking turns in an order that rotates each round, so
// load from other processes on a busy machine hits all of them alike. Medians over the rounds.
//
// Run: npm run bench:edge (builds @cairn/edge first), or node bench/edge.ts [--rounds 3]
// [--duration 10] [--connections 16] [--threads 1] once it is built. wrk and nginx are Debian
// packages: the benchmark installs them with apt-get when they are missing.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseEdgeConfig } from '@cairn/edge/config';
import { startEdge, type RunningEdge } from '@cairn/edge/node';
import { FsBlobStore } from '@cairn/storage/fs-store';
import type { R2BucketLike } from '@cairn/storage/r2-store';
import { Miniflare, convertV4MiniflareOptions } from 'miniflare';
import { formatInteger, formatRatio, max, median, min, renderTable } from './stats.ts';

const WORKER_SCRIPT = new URL('../apps/edge/dist-worker/index.js', import.meta.url).pathname;
/** wrangler.jsonc's compatibility_date: the bundle runs as deployed. */
const COMPATIBILITY_DATE = '2026-11-02';
const MiB = 2 ** 20;
const TARGET_BYTES = 10 * MiB;
/** Before the measured rounds, per server and request: JIT, page cache, the Worker's Cache API. */
const WARM_UP_SECONDS = 3;
/** Everything, whatever happens; a run with the defaults takes about 3.5 minutes. */
const HARD_LIMIT_MS = 15 * 60_000;

// ---------------------------------------------------------------------------------------------
// Tools

function have(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** apt-get install when a tool is missing; apt-get update first only if that fails. */
function ensureTools(): void {
  const missing = [
    ...new Set(
      (
        [
          ['wrk', 'wrk'],
          ['nginx', 'nginx-light'],
        ] as const
      )
        .filter(([command]) => !have(command))
        .map(([, pkg]) => pkg),
    ),
  ];
  if (missing.length === 0) return;
  const install = () => {
    console.error(`… apt-get install -y ${missing.join(' ')}`);
    return (
      spawnSync('apt-get', ['install', '-y', ...missing], {
        stdio: ['ignore', 'ignore', 'inherit'],
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      }).status === 0
    );
  };
  if (!install()) {
    console.error('… apt-get update');
    spawnSync('apt-get', ['update'], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (!install()) {
      console.error(`✘ TOOLS_MISSING: could not install ${missing.join(', ')} with apt-get.`);
      console.error('  Install them by hand (Debian, as root: apt-get install wrk nginx-light).');
      process.exit(1);
    }
  }
}

function firstLine(command: string, args: string[]): string {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  return `${r.stdout}${r.stderr}`.split('\n').find((l) => l.trim() !== '') ?? '?';
}

function machine(): string {
  const [one = 0, five = 0] = loadavg();
  return (
    `node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ` +
    `load average ${one.toFixed(2)} / ${five.toFixed(2)} (1 / 5 min)`
  );
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
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

// ---------------------------------------------------------------------------------------------
// The repository and the servers

interface Request {
  readonly key: 'small' | 'large';
  readonly label: string;
  /** The storage key, and the URL path without its leading slash. */
  readonly path: string;
  readonly bytes: Uint8Array<ArrayBuffer>;
}

async function writeRepository(dir: string): Promise<Request[]> {
  // A timestamp.json as the origin writes one: canonical JSON, one signature, ~1 KB with the
  // snapshot's hashes; its exact content does not matter to a server in direct mode.
  const timestamp = new TextEncoder().encode(
    JSON.stringify({
      signatures: [{ keyid: 'ab'.repeat(32), sig: 'cd'.repeat(64) }],
      signed: {
        _type: 'timestamp',
        expires: '2030-01-01T00:00:00Z',
        meta: {
          'snapshot.json': {
            hashes: { sha256: 'ef'.repeat(32), sha512: '01'.repeat(64) },
            length: 123_456,
            version: 4242,
          },
        },
        spec_version: '1.0.31',
        version: 4242,
        x_cairn: { note: 'padding to a typical size '.repeat(16) },
      },
    }),
  );
  const target = randomBytes(TARGET_BYTES);
  const sha256 = createHash('sha256').update(target).digest('hex');
  const requests: Request[] = [
    {
      key: 'small',
      label: `${formatInteger(timestamp.length)} B timestamp.json`,
      path: 'metadata/timestamp.json',
      bytes: timestamp,
    },
    {
      key: 'large',
      label: `${TARGET_BYTES / MiB} MiB target`,
      path: `targets/${sha256}.main.cvd`,
      bytes: new Uint8Array(target),
    },
  ];
  for (const request of requests) {
    await mkdir(join(dir, request.path, '..'), { recursive: true });
    await writeFile(join(dir, request.path), request.bytes);
  }
  return requests;
}

interface Server {
  readonly key: 'nginx' | 'node' | 'workerd';
  readonly label: string;
  readonly url: string;
  close(): Promise<void>;
}

async function startNginx(root: string, repo: string): Promise<Server> {
  const prefix = join(root, 'nginx');
  await mkdir(prefix);
  const port = await freePort();
  const temp = (name: string) => `${name}_temp_path ${join(prefix, name)};`;
  // One worker, as the Node edge has one event loop; wrk and the server share the 2 cores here.
  const config = `
daemon off;
master_process on;
worker_processes 1;
pid ${join(prefix, 'nginx.pid')};
error_log ${join(prefix, 'error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  ${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(temp).join('\n  ')}
  types { application/json json; }
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:${port};
    root ${repo};
    location / { add_header Cache-Control "public, max-age=31536000, immutable"; }
    location = /metadata/timestamp.json { add_header Cache-Control "public, max-age=60"; }
  }
}
`;
  const file = join(prefix, 'nginx.conf');
  await writeFile(file, config);
  const child: ChildProcess = spawn(
    'nginx',
    ['-p', `${prefix}/`, '-e', join(prefix, 'error.log'), '-c', file],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}`);
    const ok = await fetch(`${url}/metadata/timestamp.json`).then(
      async (r) => (await r.arrayBuffer(), r.ok),
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) throw new Error('nginx did not answer within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    key: 'nginx',
    label: `${firstLine('nginx', ['-v']).replace(/^nginx version: /, '')} (sendfile, 1 worker)`,
    url,
    async close() {
      // SIGQUIT: a graceful stop of the master and its worker.
      child.kill('SIGQUIT');
      await withTimeout(exited, 10_000, 'nginx stop').catch(() => child.kill('SIGKILL'));
    },
  };
}

async function startNodeEdge(repo: string): Promise<Server> {
  const edge: RunningEdge = await startEdge({
    config: parseEdgeConfig({}),
    store: new FsBlobStore(repo),
  });
  return {
    key: 'node',
    label: 'edge on Node (startEdge, FsBlobStore)',
    url: edge.url,
    close: () => edge.close(),
  };
}

async function startWorkerdEdge(root: string, requests: readonly Request[]): Promise<Server> {
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      workers: [
        {
          name: 'cairn-edge',
          modules: true,
          scriptPath: WORKER_SCRIPT,
          compatibilityDate: COMPATIBILITY_DATE,
          r2Buckets: ['BUCKET'],
          bindings: { CAIRN_STORAGE: 'r2' },
        },
      ],
      // R2 and the Cache API on disk, as a deployment's storage is not in the isolate's memory.
      resourcePersistencePath: join(root, 'miniflare'),
      host: '127.0.0.1',
      port: await freePort(),
    }),
  );
  try {
    const url = (await withTimeout(mf.ready, 60_000, 'Miniflare start')).href.replace(/\/$/, '');
    // Miniflare's R2 types need workers-types; the adapter's view of a bucket is enough here.
    const bucket = (await mf.getR2Bucket('BUCKET')) as unknown as R2BucketLike;
    for (const request of requests) await bucket.put(request.path, request.bytes);
    return {
      key: 'workerd',
      label: 'edge Worker in workerd (Miniflare, R2)',
      url,
      close: () => mf.dispose(),
    };
  } catch (error) {
    await mf.dispose();
    throw error;
  }
}

/** Each server must answer each request with exactly the file's bytes before it is timed. */
async function checkServes(server: Server, requests: readonly Request[]): Promise<void> {
  for (const request of requests) {
    const response = await fetch(`${server.url}/${request.path}`);
    const body = new Uint8Array(await response.arrayBuffer());
    const want = createHash('sha256').update(request.bytes).digest('hex');
    const got = createHash('sha256').update(body).digest('hex');
    if (response.status !== 200 || got !== want) {
      throw new Error(
        `${server.label}: GET /${request.path} gave ${response.status}, ${body.length} bytes, sha256 ${got}`,
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// wrk

interface WrkResult {
  readonly requestsPerSecond: number;
  readonly p99Ms: number;
  readonly bytesPerSecond: number;
}

const UNIT_MS: Readonly<Record<string, number>> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };
const UNIT_BYTES: Readonly<Record<string, number>> = {
  B: 1,
  KB: 2 ** 10,
  MB: 2 ** 20,
  GB: 2 ** 30,
  TB: 2 ** 40,
};

function parseWrk(output: string): WrkResult {
  const rate = /^Requests\/sec:\s+([\d.]+)/m.exec(output);
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s|m)\b/m.exec(output);
  const transfer = /^Transfer\/sec:\s+([\d.]+)(B|KB|MB|GB|TB)\b/m.exec(output);
  if (rate === null || p99 === null || transfer === null) {
    throw new Error(`unexpected wrk output:\n${output}`);
  }
  const errors = /^\s+(Non-2xx or 3xx responses|Socket errors): (.*)$/m.exec(output);
  if (errors !== null) throw new Error(`wrk: ${errors[1]}: ${errors[2]}\n${output}`);
  return {
    requestsPerSecond: Number(rate[1]),
    p99Ms: Number(p99[1]) * (UNIT_MS[p99[2] ?? ''] ?? Number.NaN),
    bytesPerSecond: Number(transfer[1]) * (UNIT_BYTES[transfer[2] ?? ''] ?? Number.NaN),
  };
}

interface Load {
  readonly threads: number;
  readonly connections: number;
}

function wrk(url: string, seconds: number, load: Load): Promise<WrkResult> {
  return new Promise((resolve, reject) => {
    const args = [
      `-t${load.threads}`,
      `-c${load.connections}`,
      `-d${seconds}s`,
      '--timeout',
      '10s',
      '--latency',
      url,
    ];
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (output += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (output += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 30) * 1000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`wrk ${args.join(' ')} exited with ${code}:\n${output}`));
      else {
        try {
          resolve(parseWrk(output));
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// The report

type Samples = Map<string, WrkResult[]>;

const sampleKey = (request: Request, server: Server) => `${request.key}/${server.key}`;

/** One table per request: each server's medians, and their ratios to nginx's. */
function report(
  requests: readonly Request[],
  servers: readonly Server[],
  samples: Samples,
): string {
  const tables: string[] = [];
  for (const request of requests) {
    const of = (server: Server) => samples.get(sampleKey(request, server)) ?? [];
    const nginx = servers.find((s) => s.key === 'nginx');
    const baseRate = median((nginx === undefined ? [] : of(nginx)).map((r) => r.requestsPerSecond));
    const baseP99 = median((nginx === undefined ? [] : of(nginx)).map((r) => r.p99Ms));
    const rows = servers.map((server) => {
      const runs = of(server);
      const rates = runs.map((r) => r.requestsPerSecond);
      const rate = median(rates);
      const p99 = median(runs.map((r) => r.p99Ms));
      return [
        server.label,
        formatInteger(rate),
        `${formatInteger(min(rates))}–${formatInteger(max(rates))}`,
        formatInteger(median(runs.map((r) => r.bytesPerSecond / MiB))),
        p99 >= 10 ? p99.toFixed(0) : p99.toFixed(2),
        formatRatio(rate / baseRate),
        formatRatio(p99 / baseP99),
      ];
    });
    tables.push(
      `GET ${request.label} (${request.path.startsWith('metadata/') ? 'mutable, max-age=60' : 'immutable'})`,
      renderTable(
        ['server', 'req/s', 'min–max', 'MiB/s', 'p99 ms', 'req/s ÷ nginx', 'p99 ÷ nginx'],
        rows,
      ),
      '',
    );
  }
  return tables.join('\n');
}

// ---------------------------------------------------------------------------------------------

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '16' },
    threads: { type: 'string', default: '1' },
  },
});
const rounds = Number(values.rounds);
const duration = Number(values.duration);
const load: Load = { threads: Number(values.threads), connections: Number(values.connections) };
for (const [name, value] of Object.entries({ rounds, duration, ...load })) {
  if (!Number.isSafeInteger(value) || value < 1) {
    console.error(`✘ BAD_ARGUMENT: --${name} must be a whole number ≥ 1`);
    process.exit(2);
  }
}

ensureTools();
const started = performance.now();
const root = await mkdtemp(join(tmpdir(), 'cairn-edge-bench-'));
const servers: Server[] = [];
setTimeout(() => {
  console.error(`✘ TIMEOUT: the benchmark ran for ${HARD_LIMIT_MS / 60_000} minutes; stopping.`);
  for (const server of servers) void server.close();
  process.exit(1);
}, HARD_LIMIT_MS).unref();
try {
  console.log(`Edge benchmark, ${new Date().toISOString()}: ${machine()}`);
  console.log(
    `${firstLine('wrk', ['-v'])}; -t${load.threads} -c${load.connections}, ${duration} s per run, ${rounds} rounds\n`,
  );
  const repo = join(root, 'repo');
  const requests = await writeRepository(repo);
  // nginx's worker drops root for nobody (or www-data), which must read the files.
  for (const dir of [root, repo, join(repo, 'metadata'), join(repo, 'targets')]) {
    await chmod(dir, 0o755);
  }
  servers.push(await startNginx(root, repo));
  servers.push(await startNodeEdge(repo));
  servers.push(await startWorkerdEdge(root, requests));
  for (const server of servers) await checkServes(server, requests);

  for (const request of requests) {
    for (const server of servers) {
      console.error(`… warm-up: ${server.label}, ${request.label}`);
      await wrk(`${server.url}/${request.path}`, WARM_UP_SECONDS, load);
    }
  }
  const samples: Samples = new Map();
  for (let round = 0; round < rounds; round++) {
    const order = servers.map((_, i) => servers[(i + round) % servers.length] as Server);
    for (const request of requests) {
      for (const server of order) {
        const result = await wrk(`${server.url}/${request.path}`, duration, load);
        console.error(
          `… round ${round + 1}/${rounds}: ${server.label}, ${request.label}: ` +
            `${formatInteger(result.requestsPerSecond)} req/s, p99 ${result.p99Ms.toFixed(2)} ms`,
        );
        const key = sampleKey(request, server);
        samples.set(key, [...(samples.get(key) ?? []), result]);
      }
    }
  }
  console.log(report(requests, servers, samples));
  console.log(
    `\n${((performance.now() - started) / 1000).toFixed(0)} s in all; load average after: ${loadavg()
      .slice(0, 2)
      .map((l) => l.toFixed(2))
      .join(' / ')}`,
  );
} finally {
  for (const server of servers.reverse()) await server.close().catch(() => undefined);
  await rm(root, { recursive: true, force: true });
}
