// Delta codecs on large files: ours (@cairn/delta) against xdelta3 -9, bsdiff and
// zstd --patch-from --long -19 (and -3, for information), on the same generated inputs, each
// tool one process per operation under /usr/bin/time -v: delta size, encode and apply wall time,
// peak RSS. Every apply's output is checked against the target's sha256.
//
// Inputs (bench/delta-inputs.ts, deterministic): a 100 MB sorted signature database and its next
// version with 1% of records added, removed or changed; a 100 MB binary with scattered inserts
// and deletes; a 500 MB database with 1% changed. bsdiff sits out the 500 MB case (it needs
// about 9 × the file in memory) and so does zstd -19 unless --zstd19-large is given (it runs at
// about 0.3 MB/s on these files: half an hour there).
//
// Run: npm run bench:delta (builds first), or node bench/delta.ts [--scale 0.1] [--only db100]
// once the packages are built. Installs Debian's xdelta3, bsdiff, zstd and time when absent.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat, statfs } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeBinaries, writeSignatureDatabases } from './delta-inputs.ts';
import { formatInteger, formatRatio, median } from './stats.ts';

const CODEC = fileURLToPath(new URL('./delta-codec.mjs', import.meta.url));
/** Runs shorter than this get two more for a median; longer ones (bsdiff, zstd -19) run once. */
const REPEAT_BELOW_MS = 20_000;
/** One tool run that takes longer than this is killed and reported as a timeout. */
const RUN_TIMEOUT_MS = 30 * 60_000;
const MB = 1e6;

type ToolKey = 'cairn' | 'xdelta3' | 'bsdiff' | 'zstd19' | 'zstd3';
/** The baselines the size goal is measured against (zstd -3 is for information). */
const BASELINES: readonly ToolKey[] = ['xdelta3', 'bsdiff', 'zstd19'];

interface Files {
  readonly base: string;
  readonly target: string;
  readonly delta: string;
  readonly out: string;
  /** zstd's --long: a window covering the larger file. */
  readonly windowLog: number;
}

interface Tool {
  readonly key: ToolKey;
  readonly label: string;
  encode(f: Files): string[];
  apply(f: Files): string[];
}

const TOOLS: readonly Tool[] = [
  {
    key: 'cairn',
    label: 'cairn (@cairn/delta)',
    encode: (f) => [process.execPath, CODEC, 'encode', f.base, f.target, f.delta],
    apply: (f) => [process.execPath, CODEC, 'apply', f.base, f.delta, f.out],
  },
  {
    key: 'xdelta3',
    label: 'xdelta3 -9',
    encode: (f) => ['xdelta3', '-9', '-f', '-e', '-s', f.base, f.target, f.delta],
    apply: (f) => ['xdelta3', '-f', '-d', '-s', f.base, f.delta, f.out],
  },
  {
    key: 'bsdiff',
    label: 'bsdiff',
    encode: (f) => ['bsdiff', f.base, f.target, f.delta],
    apply: (f) => ['bspatch', f.base, f.out, f.delta],
  },
  ...([19, 3] as const).map((level): Tool => ({
    key: level === 19 ? 'zstd19' : 'zstd3',
    label: `zstd --patch-from --long -${level}`,
    encode: (f) => [
      'zstd',
      '-q',
      '-f',
      `-${level}`,
      `--long=${f.windowLog}`,
      `--patch-from=${f.base}`,
      f.target,
      '-o',
      f.delta,
    ],
    apply: (f) => [
      'zstd',
      '-q',
      '-d',
      '-f',
      `--long=${f.windowLog}`,
      `--patch-from=${f.base}`,
      f.delta,
      '-o',
      f.out,
    ],
  })),
];

interface InputSpec {
  readonly key: string;
  readonly label: string;
  readonly bytes: number;
  readonly kind: 'database' | 'binary';
  readonly seed: number;
  readonly tools: readonly ToolKey[];
  readonly skipped: string;
}

interface Run {
  readonly ms: number;
  readonly peakBytes: number;
  readonly detail: string;
}

interface ToolResult {
  readonly tool: Tool;
  /** Ours only: median ms from reading the base to the last byte written, in the process. */
  readonly applyInProcessMs?: number;
  readonly deltaBytes: number;
  readonly encodeMs: number;
  readonly applyMs: number;
  readonly encodePeak: number;
  readonly applyPeak: number;
  readonly runs: number;
  readonly detail: string;
}

interface InputResult {
  readonly spec: InputSpec;
  readonly description: string;
  readonly baseBytes: number;
  readonly targetBytes: number;
  readonly results: readonly ToolResult[];
}

function machine(): string {
  const [one = 0, five = 0] = loadavg();
  return (
    `node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ` +
    `load average ${one.toFixed(2)} / ${five.toFixed(2)} (1 / 5 min)`
  );
}

function toolVersions(): string {
  const first = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    return `${r.stdout}${r.stderr}`.split('\n').find((l) => l.trim() !== '') ?? '?';
  };
  const dpkg = (pkg: string) =>
    spawnSync('dpkg-query', ['-W', '-f', '${Version}', pkg], { encoding: 'utf8' }).stdout;
  return [
    `xdelta3 ${dpkg('xdelta3')}`,
    `bsdiff ${dpkg('bsdiff')}`,
    first('zstd', ['--version']).replace(/^\*+ /, '').replace(/ \*+$/, ''),
  ].join('; ');
}

function have(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** apt-get install when a tool is missing; apt-get update first only if that fails. */
function ensureTools(): void {
  const needed: [string, string][] = [
    ['xdelta3', 'xdelta3'],
    ['bsdiff', 'bsdiff'],
    ['bspatch', 'bsdiff'],
    ['zstd', 'zstd'],
    ['/usr/bin/time', 'time'],
  ];
  const missing = [...new Set(needed.filter(([cmd]) => !have(cmd)).map(([, pkg]) => pkg))];
  if (missing.length === 0) return;
  console.error(`… installing ${missing.join(', ')} (apt-get)`);
  const install = () =>
    spawnSync('apt-get', ['install', '-y', ...missing], { stdio: ['ignore', 'ignore', 'inherit'] })
      .status === 0;
  if (!install()) {
    spawnSync('apt-get', ['update'], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (!install()) {
      console.error(`✘ TOOLS_MISSING: could not install ${missing.join(', ')} with apt-get.`);
      console.error('  Install them by hand (Debian: apt-get install xdelta3 bsdiff zstd time).');
      process.exit(1);
    }
  }
}

/** Runs argv under /usr/bin/time -v: wall time measured here, peak RSS as time reports it. */
function timed(argv: readonly string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn('/usr/bin/time', ['-v', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const ms = performance.now() - started;
      if (code !== 0) {
        const why = signal === null ? `exit ${code}` : `signal ${signal}`;
        reject(new Error(`${argv.join(' ')}: ${why}\n${stderr.slice(-2000)}`));
        return;
      }
      const kb = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr)?.[1];
      if (kb === undefined) {
        reject(new Error(`${argv[0]}: /usr/bin/time printed no peak RSS`));
        return;
      }
      resolve({ ms, peakBytes: Number(kb) * 1024, detail: stdout.trim() });
    });
  });
}

/** The first run, then two more if it was quick: median time, highest peak. */
async function measure(argv: readonly string[]): Promise<{ run: Run; count: number }> {
  const runs = [await timed(argv)];
  if ((runs[0]?.ms ?? Infinity) < REPEAT_BELOW_MS) {
    runs.push(await timed(argv), await timed(argv));
  }
  return {
    run: {
      ms: median(runs.map((r) => r.ms)),
      peakBytes: Math.max(...runs.map((r) => r.peakBytes)),
      detail: runs.map((r) => r.detail).join(' '),
    },
    count: runs.length,
  };
}

function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path, { highWaterMark: 8 << 20 })
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

async function benchInput(spec: InputSpec, dir: string): Promise<InputResult> {
  const base = join(dir, `${spec.key}.base`);
  const target = join(dir, `${spec.key}.target`);
  console.error(`… ${spec.label}: generating`);
  let description: string;
  if (spec.kind === 'database') {
    const s = await writeSignatureDatabases(base, target, spec.bytes, spec.seed);
    description =
      `${formatInteger(s.records)} records of ~104 bytes; next version: ` +
      `${formatInteger(s.added)} added, ${formatInteger(s.removed)} removed, ` +
      `${formatInteger(s.changed)} changed`;
  } else {
    const s = await writeBinaries(base, target, spec.bytes, spec.seed);
    description =
      `${formatInteger(s.inserts)} inserts (${formatInteger(s.insertedBytes)} random bytes) and ` +
      `${formatInteger(s.deletes)} deletes (${formatInteger(s.deletedBytes)} bytes), scattered`;
  }
  const [baseBytes, targetBytes] = [(await stat(base)).size, (await stat(target)).size];
  const expected = await sha256File(target);
  const results: ToolResult[] = [];
  for (const tool of TOOLS.filter((t) => spec.tools.includes(t.key))) {
    const files: Files = {
      base,
      target,
      delta: join(dir, `${spec.key}.${tool.key}.delta`),
      out: join(dir, `${spec.key}.${tool.key}.out`),
      windowLog: Math.max(27, Math.ceil(Math.log2(Math.max(baseBytes, targetBytes)))),
    };
    console.error(`… ${spec.label}: ${tool.label} encode`);
    const encoded = await measure(tool.encode(files));
    const deltaBytes = (await stat(files.delta)).size;
    console.error(`… ${spec.label}: ${tool.label} apply`);
    const applied = await measure(tool.apply(files));
    const actual = await sha256File(files.out);
    if (actual !== expected) {
      throw new Error(`${tool.label} on ${spec.label}: the applied file is not the target`);
    }
    await rm(files.out);
    await rm(files.delta);
    const inProcess = (tool.key === 'cairn' ? applied.run.detail.split(' ') : [])
      .map((json) => JSON.parse(json) as Record<string, number>)
      .map((phases) => (phases['read+hash'] ?? NaN) + (phases['apply+write'] ?? NaN))
      .filter((ms) => !Number.isNaN(ms));
    results.push({
      ...(inProcess.length > 0 ? { applyInProcessMs: median(inProcess) } : {}),
      tool,
      deltaBytes,
      encodeMs: encoded.run.ms,
      applyMs: applied.run.ms,
      encodePeak: encoded.run.peakBytes,
      applyPeak: applied.run.peakBytes,
      runs: Math.min(encoded.count, applied.count),
      detail:
        tool.key === 'cairn' ? `encode ${encoded.run.detail}; apply ${applied.run.detail}` : '',
    });
  }
  await rm(base);
  await rm(target);
  return { spec, description, baseBytes, targetBytes, results };
}

/** Columns before `leftColumns` are left-aligned (text), the rest right-aligned (figures). */
function markdownTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  leftColumns = 1,
): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  const rule = header.map((_, i) => (i < leftColumns ? '---' : '---:'));
  return [line(header), line(rule), ...rows.map(line)].join('\n');
}

const mb = (bytes: number) => (bytes / MB).toFixed(bytes >= 100 * MB ? 0 : 1);
const seconds = (ms: number) => (ms / 1000).toFixed(ms >= 10_000 ? 1 : 2);

function bestBaseline(input: InputResult): ToolResult | undefined {
  return input.results
    .filter((r) => BASELINES.includes(r.tool.key))
    .reduce<ToolResult | undefined>(
      (b, r) => (b && b.deltaBytes <= r.deltaBytes ? b : r),
      undefined,
    );
}

function inputReport(input: InputResult): string {
  const fileBytes = Math.max(input.baseBytes, input.targetBytes);
  const best = bestBaseline(input);
  const rows = input.results.map((r) => [
    r.tool.label,
    formatInteger(r.deltaBytes),
    best ? formatRatio(r.deltaBytes / best.deltaBytes) : '–',
    seconds(r.encodeMs),
    seconds(r.applyMs),
    formatInteger(input.targetBytes / MB / (r.applyMs / 1000)),
    mb(r.encodePeak),
    mb(r.applyPeak),
    formatRatio(Math.max(r.encodePeak, r.applyPeak) / fileBytes),
    String(r.runs),
  ]);
  const ours = input.results.find((r) => r.tool.key === 'cairn');
  return [
    `### ${input.spec.label}`,
    '',
    `base ${formatInteger(input.baseBytes)} bytes, target ${formatInteger(input.targetBytes)} ` +
      `bytes: ${input.description}.${input.spec.skipped ? ` ${input.spec.skipped}` : ''}`,
    '',
    markdownTable(
      [
        'tool',
        'delta bytes',
        `size / best${best ? ` (${best.tool.label})` : ''}`,
        'encode s',
        'apply s',
        'apply MB/s',
        'encode peak MB',
        'apply peak MB',
        'peak / file',
        'runs',
      ],
      rows,
    ),
    '',
    ours ? `cairn phases (ms, per run): ${ours.detail}` : '',
  ].join('\n');
}

interface Goal {
  readonly input: string;
  readonly goal: string;
  readonly ours: string;
  readonly bound: string;
  readonly met: boolean;
}

function goals(input: InputResult): Goal[] {
  const ours = input.results.find((r) => r.tool.key === 'cairn');
  const xdelta = input.results.find((r) => r.tool.key === 'xdelta3');
  const best = bestBaseline(input);
  if (!ours) return [];
  const out: Goal[] = [];
  const label = input.spec.label;
  if (best) {
    out.push({
      input: label,
      goal: `delta ≤ 1.1 × best of ${input.results
        .filter((r) => BASELINES.includes(r.tool.key))
        .map((r) => r.tool.label)
        .join(', ')}`,
      ours: `${formatInteger(ours.deltaBytes)} B`,
      bound: `${formatInteger(1.1 * best.deltaBytes)} B`,
      met: ours.deltaBytes <= 1.1 * best.deltaBytes,
    });
  }
  if (xdelta) {
    out.push({
      input: label,
      goal: 'encode no slower than xdelta3 -9',
      ours: `${seconds(ours.encodeMs)} s`,
      bound: `${seconds(xdelta.encodeMs)} s`,
      met: ours.encodeMs <= xdelta.encodeMs,
    });
  }
  const rate = input.targetBytes / MB / (ours.applyMs / 1000);
  out.push({
    input: label,
    goal: 'apply ≥ 300 MB/s (process wall time, I/O included)',
    ours: `${formatInteger(rate)} MB/s`,
    bound: '300 MB/s',
    met: rate >= 300,
  });
  if (ours.applyInProcessMs !== undefined) {
    const inProcess = input.targetBytes / MB / (ours.applyInProcessMs / 1000);
    out.push({
      input: label,
      goal: 'apply ≥ 300 MB/s (Node start-up excluded: read, hash, apply, hash, write)',
      ours: `${formatInteger(inProcess)} MB/s`,
      bound: '300 MB/s',
      met: inProcess >= 300,
    });
  }
  const fileBytes = Math.max(input.baseBytes, input.targetBytes);
  const peak = Math.max(ours.encodePeak, ours.applyPeak);
  out.push({
    input: label,
    goal: 'peak memory ≤ 3 × file size',
    ours: `${mb(peak)} MB`,
    bound: `${mb(3 * fileBytes)} MB`,
    met: peak <= 3 * fileBytes,
  });
  return out;
}

const { values } = parseArgs({
  options: {
    scale: { type: 'string', default: '1' },
    only: { type: 'string' },
    'zstd19-large': { type: 'boolean', default: false },
  },
});
const scale = Number(values.scale);
if (!(scale > 0)) {
  console.error(`✘ BAD_ARGUMENT: --scale must be a positive number, received ${values.scale}`);
  process.exit(2);
}
const size = (bytes: number) => Math.round(bytes * scale);
const allTools: ToolKey[] = ['cairn', 'xdelta3', 'bsdiff', 'zstd19', 'zstd3'];
const allSpecs: InputSpec[] = [
  {
    key: 'db100',
    label: `signature database, ${mb(size(100 * MB))} MB, 1% of records changed`,
    bytes: size(100 * MB),
    kind: 'database',
    seed: 1,
    tools: allTools,
    skipped: '',
  },
  {
    key: 'bin100',
    label: `binary, ${mb(size(100 * MB))} MB, scattered inserts and deletes`,
    bytes: size(100 * MB),
    kind: 'binary',
    seed: 2,
    tools: allTools,
    skipped: '',
  },
  {
    key: 'db500',
    label: `signature database, ${mb(size(500 * MB))} MB, 1% of records changed`,
    bytes: size(500 * MB),
    kind: 'database',
    seed: 3,
    tools: values['zstd19-large']
      ? ['cairn', 'xdelta3', 'zstd19', 'zstd3']
      : ['cairn', 'xdelta3', 'zstd3'],
    skipped: values['zstd19-large']
      ? 'bsdiff left out (about 9 × the file in memory).'
      : 'bsdiff left out (about 9 × the file in memory); zstd -19 too (about 0.3 MB/s here: ' +
        'half an hour; --zstd19-large runs it).',
  },
];
const specs = allSpecs.filter(
  (s) => values.only === undefined || values.only.split(',').includes(s.key),
);

ensureTools();
const dir = await mkdtemp(join(tmpdir(), 'cairn-delta-bench-'));
try {
  const largest = Math.max(...specs.map((s) => s.bytes));
  const free = await statfs(dir);
  // Base, target, one tool's delta and output at a time, with room to spare.
  if (free.bavail * free.bsize < 3.5 * largest) {
    console.error(
      `✘ DISK_SPACE: ${dir} has ${mb(free.bavail * free.bsize)} MB free; ` +
        `this run needs about ${mb(3.5 * largest)} MB.`,
    );
    process.exit(1);
  }
  const started = performance.now();
  console.log(`Delta benchmark, ${new Date().toISOString()}: ${machine()}`);
  console.log(`${toolVersions()}\n`);
  const inputs: InputResult[] = [];
  for (const spec of specs) {
    const input = await benchInput(spec, dir);
    inputs.push(input);
    console.log(`${inputReport(input)}\n`);
  }
  const all = inputs.flatMap(goals);
  console.log('### Goals\n');
  console.log(
    markdownTable(
      ['input', 'goal', 'ours', 'bound', 'met'],
      all.map((g) => [g.input, g.goal, g.ours, g.bound, g.met ? 'yes' : 'NO']),
      2,
    ),
  );
  console.log(
    `\n${((performance.now() - started) / 60_000).toFixed(1)} min in all; ${machine()}. ` +
      'MB = 10^6 bytes; peak = maximum RSS from /usr/bin/time -v; times are medians of 3 runs ' +
      `when a run took under ${REPEAT_BELOW_MS / 1000} s, else one run.`,
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
