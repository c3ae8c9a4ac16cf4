// The whole update of a 100 MB signature database, one release behind (1% of records changed)
// and ten releases behind, against fetching the full file with curl and checking it with
// sha256sum: bytes transferred as a share of the full size, wall time and CPU.
//
// The repository is real: an origin publishes releases 1..11 into a MinIO bucket (deltas made
// by the origin, from the last ten versions for release 11), served by the edge on Node over that
// bucket, behind a counting proxy (test/support/fault-proxy.ts, all faults off) that both our
// client and curl go through. Each measured update runs `createUpdater(config).update()` in a
// fresh Node process (test/support/update-network.ts, runUpdateInChild), as `cairn update` would;
// curl and sha256sum run as child processes of one bash whose `times` gives their CPU.
//
// Run: npm run bench:update (builds first), or node bench/update.ts [--size-mb 100]
// [--rounds 3] once the packages are built.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createUpdater } from '@cairn/client/update';
import {
  ClientDirs,
  UpdateNetwork,
  runUpdateInChild,
  targetRequestPath,
  type ChildResult,
} from '../test/support/update-network.ts';
import { formatInteger, formatRatio, median, renderTable } from './stats.ts';

const PATH = 'main.cvd';
/** Releases published: the newest is one ahead of release 10 and ten ahead of release 1. */
const RELEASES = 11;
/** Everything, whatever happens; a run with the defaults takes about 3 minutes. */
const HARD_LIMIT_MS = 15 * 60_000;

interface Sample {
  /** Every body byte the proxy handed over: metadata and targets. */
  readonly bytes: number;
  /** Targets only (the delta or the file), as the client's report counts them. */
  readonly targetBytes: number;
  /** Spawn to exit, measured here. */
  readonly wallMs: number;
  /** update() alone, measured inside the child (without Node start-up); undefined for curl. */
  readonly innerMs: number | undefined;
  /** User + system CPU of the whole child process (tree), ms. */
  readonly cpuMs: number;
  readonly action: string;
}

type Row = 'curl' | 'one' | 'ten' | 'fresh';

const LABELS: Record<Row, string> = {
  curl: 'curl -o + sha256sum (baseline)',
  one: 'cairn, 1 release behind',
  ten: 'cairn, 10 releases behind',
  fresh: 'cairn, nothing installed (full)',
};

function machine(): string {
  const [one = 0, five = 0] = loadavg();
  return `Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'CPU'}, load average ${one.toFixed(2)} / ${five.toFixed(2)}`;
}

/** `0m1.234s` → ms. */
function bashTime(text: string): number {
  const match = /^(\d+)m([\d.]+)s$/.exec(text);
  if (match === null) throw new Error(`unexpected time ${JSON.stringify(text)}`);
  return (Number(match[1]) * 60 + Number(match[2])) * 1000;
}

/** curl the file through the proxy and sha256sum it, in one bash whose `times` reports the
 * CPU of both; checks the hash. */
async function curlAndHash(url: string, out: string, sha256: string): Promise<Sample> {
  const script = 'curl -sS --fail -o "$1" "$2" && sha256sum "$1" && rm -f "$1" && times';
  const started = performance.now();
  const child = spawn('bash', ['-c', script, 'bench', out, url], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  const code = await new Promise<number | null>((done) => child.once('close', done));
  const wallMs = performance.now() - started;
  const lines = stdout.trim().split('\n');
  if (code !== 0 || lines.length < 3)
    throw new Error(`curl + sha256sum failed (${code}): ${stdout}`);
  if (!lines[0]?.startsWith(`${sha256} `)) {
    throw new Error(`sha256sum printed ${lines[0]}, expected ${sha256}`);
  }
  // `times`: the shell's user and system time, then its children's.
  const [user = '', system = ''] = (lines.at(-1) ?? '').split(' ');
  return {
    bytes: 0,
    targetBytes: 0,
    wallMs,
    innerMs: undefined,
    cpuMs: bashTime(user) + bashTime(system),
    action: 'full',
  };
}

const { values } = parseArgs({
  options: {
    'size-mb': { type: 'string', default: '100' },
    rounds: { type: 'string', default: '3' },
  },
});
const sizeMb = Number(values['size-mb']);
const rounds = Number(values.rounds);
if (!(sizeMb > 0) || !Number.isSafeInteger(rounds) || rounds < 1) {
  console.error('✘ BAD_ARGUMENT: --size-mb must be a positive number, --rounds a whole number ≥ 1');
  process.exit(2);
}

const started = performance.now();
const work = await mkdtemp(join(tmpdir(), 'cairn-update-bench-'));
let network: UpdateNetwork | undefined;
setTimeout(() => {
  console.error(`✘ TIMEOUT: the benchmark ran for ${HARD_LIMIT_MS / 60_000} minutes; stopping.`);
  process.exit(1);
}, HARD_LIMIT_MS).unref();
const step = (message: string) => console.error(`… ${message}`);

try {
  console.log(`Update benchmark, ${new Date().toISOString()}: ${machine()}`);
  network = await UpdateNetwork.start({
    syncMirrors: 0,
    files: [{ path: PATH, approximateBytes: sizeMb * 1e6, seed: 1 }],
    changeShare: 0.01,
    // Releases 2..10 need no deltas for what is measured: publish them faster.
    pastVersions: 0,
    keepReleaseBytes: false,
    log: step,
  });
  const proxy = network.mirror('a').proxy;
  const mirrors = [proxy.url];
  const config = (client: ClientDirs) => ({
    installDir: client.installDir,
    stateDir: client.stateDir,
    mirrors,
    requestTimeoutMs: 30_000,
  });
  /** Brings `count` new clients to the latest release (in this process; not measured). */
  const clientsAtLatest = async (count: number): Promise<ClientDirs[]> => {
    const out: ClientDirs[] = [];
    for (let i = 0; i < count; i++) {
      const client = await ClientDirs.create(work);
      await createUpdater({ ...config(client), trustedRoot: network?.trustedRoot }).update();
      out.push(client);
    }
    step(`${count} clients at release ${network?.latest.version}`);
    return out;
  };

  await network.publish();
  const tenBehind = await clientsAtLatest(rounds);
  for (let v = 2; v < RELEASES; v++) await network.publish();
  const oneBehind = await clientsAtLatest(rounds);
  await network.setPastVersions(10);
  const release = await network.publish();
  const fresh: ClientDirs[] = [];
  for (let i = 0; i < rounds; i++) fresh.push(await ClientDirs.create(work));

  const fullBytes = (await network.originStore.head(`targets/${release.sha256.get(PATH)}.${PATH}`))
    ?.size;
  if (fullBytes === undefined) throw new Error('the published file is not in the bucket');
  const sha256 = release.sha256.get(PATH) ?? '';
  const deltaOne = network.delta(
    release,
    PATH,
    network.release(RELEASES - 1).sha256.get(PATH) ?? '',
  );
  const deltaTen = network.delta(release, PATH, network.release(1).sha256.get(PATH) ?? '');
  console.log(
    `${PATH}: ${formatInteger(fullBytes)} bytes, ${formatInteger(
      (await stat(join(oneBehind[0]?.installDir ?? '', PATH))).size,
    )} at release ${RELEASES - 1}; release ${RELEASES} lists deltas of ${formatInteger(
      deltaOne?.length ?? Number.NaN,
    )} bytes (from ${RELEASES - 1}) and ${formatInteger(deltaTen?.length ?? Number.NaN)} bytes (from 1)`,
  );

  const trustedRootBase64 = Buffer.from(network.trustedRoot).toString('base64');
  const runOurs = async (client: ClientDirs, expected: string): Promise<Sample> => {
    proxy.clearLog();
    const wallStarted = performance.now();
    const result: ChildResult = await runUpdateInChild(
      { ...config(client), trustedRootBase64 },
      undefined,
      { timeoutMs: 300_000 },
    );
    const wallMs = performance.now() - wallStarted;
    const file = result.report?.files.find((f) => f.path === PATH);
    if (result.code !== 0 || file === undefined || result.cpu === undefined) {
      throw new Error(`the update failed: ${JSON.stringify(result.error)} ${result.stderr}`);
    }
    if (file.sha256 !== sha256 || file.action !== expected) {
      throw new Error(
        `expected a ${expected} to ${sha256}, the report says ${JSON.stringify(file)}`,
      );
    }
    return {
      bytes: proxy.bodyBytes(),
      targetBytes: result.report?.bytesDownloaded ?? Number.NaN,
      wallMs,
      innerMs: result.updateMs,
      cpuMs: (result.cpu.user + result.cpu.system) / 1000,
      action: file.action,
    };
  };
  const url = `${proxy.url}${targetRequestPath(PATH, sha256).slice(1)}`;
  const runCurl = async (): Promise<Sample> => {
    proxy.clearLog();
    const sample = await curlAndHash(url, join(work, 'curl.out'), sha256);
    return { ...sample, bytes: proxy.bodyBytes(), targetBytes: proxy.bodyBytes() };
  };

  const samples = new Map<Row, Sample[]>();
  const rows: Row[] = ['curl', 'one', 'ten', 'fresh'];
  for (let round = 0; round < rounds; round++) {
    const order = rows.map((_, i) => rows[(i + round) % rows.length] as Row);
    for (const row of order) {
      let sample: Sample;
      if (row === 'curl') sample = await runCurl();
      else if (row === 'one') sample = await runOurs(oneBehind[round] as ClientDirs, 'delta');
      else if (row === 'ten') sample = await runOurs(tenBehind[round] as ClientDirs, 'delta');
      else sample = await runOurs(fresh[round] as ClientDirs, 'full');
      samples.set(row, [...(samples.get(row) ?? []), sample]);
      step(
        `round ${round + 1}/${rounds}: ${LABELS[row]}: ${formatInteger(sample.bytes)} bytes, ` +
          `${(sample.wallMs / 1000).toFixed(2)} s, CPU ${(sample.cpuMs / 1000).toFixed(2)} s`,
      );
    }
  }

  const med = (row: Row, pick: (s: Sample) => number | undefined): number =>
    median((samples.get(row) ?? []).map((s) => pick(s) ?? Number.NaN));
  const baseWall = med('curl', (s) => s.wallMs);
  const baseCpu = med('curl', (s) => s.cpuMs);
  const seconds = (ms: number) => (Number.isNaN(ms) ? '–' : (ms / 1000).toFixed(2));
  const percent = (share: number) =>
    share >= 0.1 ? `${(share * 100).toFixed(0)}%` : `${(share * 100).toPrecision(2)}%`;
  console.log(
    `\nMedians of ${rounds} rounds. Bytes: HTTP body bytes through the proxy (metadata included);` +
      ' targets: the delta or file alone.\n',
  );
  console.log(
    renderTable(
      [
        'run',
        'bytes',
        'of full',
        'targets',
        'of full',
        'wall s',
        'update() s',
        'CPU s',
        'wall ÷ curl',
        'CPU ÷ curl',
      ],
      rows.map((row) => {
        const bytes = med(row, (s) => s.bytes);
        const targetBytes = med(row, (s) => s.targetBytes);
        const wall = med(row, (s) => s.wallMs);
        const cpu = med(row, (s) => s.cpuMs);
        return [
          LABELS[row],
          formatInteger(bytes),
          percent(bytes / fullBytes),
          formatInteger(targetBytes),
          percent(targetBytes / fullBytes),
          seconds(wall),
          seconds(med(row, (s) => s.innerMs)),
          seconds(cpu),
          formatRatio(wall / baseWall),
          formatRatio(cpu / baseCpu),
        ];
      }),
    ),
  );
  console.log(
    `\n${((performance.now() - started) / 1000).toFixed(0)} s in all; load average after: ${loadavg()
      .slice(0, 2)
      .map((l) => l.toFixed(2))
      .join(' / ')}`,
  );
} finally {
  await network?.close().catch(() => undefined);
  await rm(work, { recursive: true, force: true });
}
