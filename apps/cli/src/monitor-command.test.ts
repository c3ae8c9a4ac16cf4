import { describe, expect, it } from 'vitest';
import type { CliIo } from './cli-io.js';
import {
  EXIT_CRITICAL,
  EXIT_OK,
  EXIT_USAGE,
  EXIT_WARNINGS,
  exitCodeFor,
  parseMonitorArgs,
  renderMetrics,
  reportLines,
  runMonitor,
  type Alert,
  type MonitorReport,
} from './monitor-command.js';

// The network end to end (a real origin, mirrors, a webhook receiver): test/monitor.test.ts.

const LOG_NAME = 'cairn.test/log';

function captured(): CliIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (l) => out.push(l), stderr: (l) => err.push(l) };
}

describe('parseMonitorArgs', () => {
  it('reads every flag, with the documented defaults', () => {
    expect(parseMonitorArgs(['--mirror', 'http://a/', '--root', 'r.json'])).toEqual({
      mirrors: ['http://a/'],
      rootFile: 'r.json',
      stateDir: undefined,
      intervalSeconds: undefined,
      webhook: undefined,
      metricsFile: undefined,
      expiryWarningDays: 7,
      maxAgeSeconds: 3600,
      minApprovals: 0,
      timeoutMs: 30_000,
      json: false,
    });
    expect(
      parseMonitorArgs([
        '--mirror',
        'http://a/',
        '--mirror',
        'https://b.example/repo/',
        '--root',
        'r.json',
        '--state',
        's',
        '--interval',
        '60',
        '--webhook',
        'https://hooks.example/x',
        '--metrics-file',
        'm.prom',
        '--expiry-warning',
        '30',
        '--max-age',
        '600',
        '--min-approvals',
        '2',
        '--timeout',
        '5',
        '--json',
      ]),
    ).toEqual({
      mirrors: ['http://a/', 'https://b.example/repo/'],
      rootFile: 'r.json',
      stateDir: 's',
      intervalSeconds: 60,
      webhook: 'https://hooks.example/x',
      metricsFile: 'm.prom',
      expiryWarningDays: 30,
      maxAgeSeconds: 600,
      minApprovals: 2,
      timeoutMs: 5000,
      json: true,
    });
    expect(parseMonitorArgs(['--help'])).toBeUndefined();
  });

  it.each<[string, string[], string]>([
    ['no mirror', ['--root', 'r'], 'cairn monitor: missing --mirror'],
    ['no root', ['--mirror', 'http://a/'], 'cairn monitor: missing --root'],
    [
      'a mirror that is not http',
      ['--mirror', 'ftp://a/', '--root', 'r'],
      '--mirror: expected an http(s) URL, received "ftp://a/"',
    ],
    [
      '--once with --interval',
      ['--mirror', 'http://a/', '--root', 'r', '--once', '--interval', '5'],
      '--once and --interval exclude each other',
    ],
    [
      'a zero interval',
      ['--mirror', 'http://a/', '--root', 'r', '--interval', '0'],
      '--interval: expected a whole number of at least 1, received "0"',
    ],
    [
      'a positional',
      ['--mirror', 'http://a/', '--root', 'r', 'extra'],
      'unexpected argument "extra"',
    ],
  ])('refuses %s as a usage error', async (_name, args, message) => {
    expect(() => parseMonitorArgs(args)).toThrow(message);
    const io = captured();
    await expect(runMonitor(args, io)).rejects.toThrow(message);
    expect(EXIT_USAGE).toBe(2);
  });
});

const REPORT: MonitorReport = {
  checkedAt: '2026-11-23T07:00:00.000Z',
  primary: 'http://a.example',
  log: {
    origin: LOG_NAME,
    size: 12,
    rootHash: 'ab'.repeat(32),
    newEntries: 3,
    latest: { root: 2, targets: 5, snapshot: 6 },
  },
  expiries: [{ role: 'root', version: 2, expires: '2027-01-01T00:00:00.000Z' }],
  mirrors: [
    {
      url: 'http://a.example',
      reachable: true,
      checkpointSize: 12,
      timestampVersion: 9,
      timestampExpires: '2026-11-24T00:00:00.000Z',
      snapshotVersion: 6,
      targetsVersion: 5,
    },
    { url: 'http://b.example', reachable: false },
  ],
  alerts: [
    { code: 'STALE_MIRROR', severity: 'critical', mirror: 'http://c.example', message: 'behind' },
    { code: 'EXPIRY_AHEAD', severity: 'warning', role: 'root', version: 2, message: 'soon' },
  ],
  newAlerts: [],
  exitCode: EXIT_CRITICAL,
};

describe('the report', () => {
  it('prints what passed, then each alert, then the count', () => {
    expect(reportLines(REPORT)).toEqual([
      `✔ log ${LOG_NAME}: 12 entries, checkpoint verified through http://a.example; 3 checked now (root v2, targets v5, snapshot v6)`,
      '✔ mirror http://a.example: timestamp v9 → snapshot v6, targets v5, log size 12',
      '✘ STALE_MIRROR: behind',
      '⚠ EXPIRY_AHEAD: soon',
      '1 critical, 1 warning',
    ]);
  });

  it('is Prometheus text, every sample with its HELP and TYPE', () => {
    expect(renderMetrics(REPORT)).toBe(
      [
        '# HELP cairn_monitor_last_check_timestamp_seconds When the last check ran.',
        '# TYPE cairn_monitor_last_check_timestamp_seconds gauge',
        'cairn_monitor_last_check_timestamp_seconds 1795417200',
        '# HELP cairn_monitor_log_verified 1 when the log was read and its checkpoint verified.',
        '# TYPE cairn_monitor_log_verified gauge',
        'cairn_monitor_log_verified 1',
        '# HELP cairn_monitor_log_size Entries in the verified checkpoint.',
        '# TYPE cairn_monitor_log_size gauge',
        'cairn_monitor_log_size 12',
        '# HELP cairn_monitor_latest_version Newest logged version of each role.',
        '# TYPE cairn_monitor_latest_version gauge',
        'cairn_monitor_latest_version{role="root"} 2',
        'cairn_monitor_latest_version{role="targets"} 5',
        'cairn_monitor_latest_version{role="snapshot"} 6',
        '# HELP cairn_monitor_metadata_expiry_timestamp_seconds When the newest root and targets expire.',
        '# TYPE cairn_monitor_metadata_expiry_timestamp_seconds gauge',
        'cairn_monitor_metadata_expiry_timestamp_seconds{role="root"} 1798761600',
        '# HELP cairn_monitor_mirror_up 1 when the mirror answered.',
        '# TYPE cairn_monitor_mirror_up gauge',
        'cairn_monitor_mirror_up{mirror="http://a.example"} 1',
        'cairn_monitor_mirror_up{mirror="http://b.example"} 0',
        '# HELP cairn_monitor_mirror_snapshot_version The snapshot version each mirror’s timestamp names.',
        '# TYPE cairn_monitor_mirror_snapshot_version gauge',
        'cairn_monitor_mirror_snapshot_version{mirror="http://a.example"} 6',
        '# HELP cairn_monitor_mirror_checkpoint_size The log size each mirror’s checkpoint commits to.',
        '# TYPE cairn_monitor_mirror_checkpoint_size gauge',
        'cairn_monitor_mirror_checkpoint_size{mirror="http://a.example"} 12',
        '# HELP cairn_monitor_alerts Alerts raised by the last check, by severity.',
        '# TYPE cairn_monitor_alerts gauge',
        'cairn_monitor_alerts{severity="critical"} 1',
        'cairn_monitor_alerts{severity="warning"} 1',
        '# HELP cairn_monitor_alert Alerts raised by the last check, by code.',
        '# TYPE cairn_monitor_alert gauge',
        'cairn_monitor_alert{code="EXPIRY_AHEAD",severity="warning"} 1',
        'cairn_monitor_alert{code="STALE_MIRROR",severity="critical"} 1',
        '',
      ].join('\n'),
    );
  });

  it('exits 0 without alerts, 4 with warnings only, 1 with a critical one', () => {
    const warning = REPORT.alerts[1] as Alert;
    const critical = REPORT.alerts[0] as Alert;
    expect([exitCodeFor([]), exitCodeFor([warning]), exitCodeFor([warning, critical])]).toEqual([
      EXIT_OK,
      EXIT_WARNINGS,
      EXIT_CRITICAL,
    ]);
  });
});
