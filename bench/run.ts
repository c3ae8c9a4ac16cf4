// Runs every benchmark and prints each report, then one summary table of ours against the
// named baselines. `npm run bench` builds the packages first and then runs this file.
import { cpus, loadavg } from 'node:os';
import {
  benchEd25519,
  formatEd25519Report,
  type Ed25519Result,
  type VerifierKey,
} from './ed25519.ts';
import { formatInteger, formatMs, formatRatio, renderTable } from './stats.ts';
import {
  benchTufRefresh,
  formatRefreshReport,
  type RefreshClientKey,
  type RefreshResult,
} from './tuf-refresh.ts';

/**
 * The benchmarks bound their own time (about a minute on 2 idle cores, most of it one tuf-js
 * refresh); this only stops a run that hangs regardless. Temp dirs may then be left behind.
 */
const HARD_LIMIT_MS = 10 * 60_000;

function machine(): string {
  const [one = 0, five = 0] = loadavg();
  return (
    `node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ` +
    `load average ${one.toFixed(2)} / ${five.toFixed(2)} (1 / 5 min)`
  );
}

function summary(refresh: RefreshResult, ed: Ed25519Result): string {
  const ms = (key: RefreshClientKey) =>
    formatMs(refresh.clients.find((c) => c.key === key)?.medianMs ?? Number.NaN);
  const rate = (key: VerifierKey) =>
    formatInteger(ed.verifiers.find((v) => v.key === key)?.medianPerSecond ?? Number.NaN);
  const refreshName = `refresh, ${formatInteger(refresh.targetCount)} targets (median ms)`;
  const rows = [
    [refreshName, ms('cairn'), 'tuf-js 6.0.2', ms('tuf-js'), formatRatio(refresh.oursOverTufJs)],
    [
      refreshName,
      ms('cairn'),
      'python-tuf 7.0.1',
      ms('python-tuf'),
      formatRatio(refresh.oursOverPython),
    ],
    [
      'ed25519 noble verifyAsync (verify/s)',
      rate('noble'),
      'node:crypto',
      rate('node'),
      formatRatio(ed.nobleOverNode),
    ],
    [
      'ed25519 Key.verify (verify/s)',
      rate('key-verify'),
      'node:crypto',
      rate('node'),
      formatRatio(ed.keyVerifyOverNode),
    ],
  ];
  return [
    renderTable(['benchmark', 'ours', 'baseline', 'baseline figure', 'ours/baseline'], rows),
    '',
    'ms: lower is better, a ratio below 1 means ours is faster; ' +
      'verify/s: higher is better, a ratio below 1 means ours is slower.',
    'python-tuf is timed inside its process; its start-up (interpreter + imports), paid once ' +
      `per process, is another ${formatMs(refresh.pythonStartupMs)} ms.`,
  ].join('\n');
}

const watchdog = setTimeout(() => {
  console.error(
    `✘ BENCH_TIMEOUT: the benchmarks ran for more than ${HARD_LIMIT_MS / 60_000} minutes.`,
  );
  console.error('  Something hangs: rerun one benchmark alone, e.g. node bench/tuf-refresh.ts.');
  process.exit(1);
}, HARD_LIMIT_MS);
watchdog.unref();

const started = performance.now();
console.log(`Cairn benchmarks, ${new Date().toISOString()}: ${machine()}\n`);

console.error('… ed25519 verification (about 10 s)');
const ed = await benchEd25519();
console.log(`${formatEd25519Report(ed)}\n`);

console.error(
  '… TUF refresh: building the repository, then refreshing (about 1 min; one tuf-js refresh is most of it)',
);
const refresh = await benchTufRefresh();
console.log(`${formatRefreshReport(refresh)}\n`);

console.log(`Summary (${((performance.now() - started) / 1000).toFixed(0)} s; ${machine()})\n`);
console.log(summary(refresh, ed));
