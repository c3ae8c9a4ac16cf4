import { createServer } from 'node:net';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError, type CliIo } from './cli-io.js';
import type { CommandDeps } from './command-support.js';
import { formatCheckpoint } from '@cairn/tlog/checkpoint';
import { createEd25519Signer, signNote } from '@cairn/tlog/note';
import {
  AuditError,
  EXIT_FAILED,
  EXIT_USAGE,
  ReadProgress,
  auditReport,
  defaultOutDir,
  parseAuditDate,
  parseFormats,
  parseWindow,
  readCheckpointFile,
  runAudit,
  writeFileAtomic,
} from './audit-command.js';
import { Metadata, Role, Root, SPEC_VERSION } from '@cairn/verify/metadata';
import { Ed25519Signer, signMetadata } from '@cairn/verify/signer';
import type { Anomaly, History, HistoryEntry } from './log-history.js';

/** A root version 1 that verifies: readHistory checks the pinned root before it reads anything. */
async function rootBytes(): Promise<Uint8Array> {
  const signer = await Ed25519Signer.generate();
  const role = new Role([signer.keyid], 1);
  const root = new Root({
    specVersion: SPEC_VERSION,
    version: 1,
    expires: new Date('2030-01-01T00:00:00Z'),
    extra: {},
    consistentSnapshot: true,
    keys: new Map([[signer.keyid, signer.publicKey]]),
    roles: { root: role, targets: role, snapshot: role, timestamp: role },
  });
  return (await signMetadata(new Metadata(root), [signer])).toBytes();
}

function captured(): CliIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (l) => out.push(l), stderr: (l) => err.push(l) };
}

const deps: CommandDeps = {
  env: {},
  terminal: { isTTY: false, write: () => undefined },
  now: () => new Date('2026-11-23T08:00:00Z'),
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cairn-audit-unit-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('parseAuditDate', () => {
  it('takes a day as its first or last millisecond, UTC', () => {
    expect(parseAuditDate('2026-11-01', '--from', 'start').toISOString()).toBe(
      '2026-11-01T00:00:00.000Z',
    );
    expect(parseAuditDate('2026-11-30', '--to', 'end').toISOString()).toBe(
      '2026-11-30T23:59:59.999Z',
    );
    expect(parseAuditDate('2028-02-29', '--to', 'end').toISOString()).toBe(
      '2028-02-29T23:59:59.999Z',
    );
  });

  it('takes a time with its zone', () => {
    expect(parseAuditDate('2026-11-01T09:30:00Z', '--from', 'start').toISOString()).toBe(
      '2026-11-01T09:30:00.000Z',
    );
    expect(parseAuditDate('2026-11-01T10:30+01:00', '--from', 'end').toISOString()).toBe(
      '2026-11-01T09:30:00.000Z',
    );
    expect(parseAuditDate('2026-11-01t01:02:03.4567-0230', '--to', 'end').toISOString()).toBe(
      '2026-11-01T03:32:03.456Z',
    );
  });

  it.each([
    ['yesterday', 'expected an ISO 8601 day or time'],
    ['2026-11-1', 'expected an ISO 8601 day or time'],
    ['2026-02-29', 'no such day'],
    ['2026-13-01', 'no such day'],
    ['2026-11-01T09:30:00', 'a time needs its zone (Z or ±hh:mm)'],
    ['2026-11-01T24:00:00Z', 'no such time'],
    ['2026-11-01T09:30:00+25:00', 'no such time zone offset'],
  ])('refuses %j with BAD_DATE: %s', (text, problem) => {
    expect(() => parseAuditDate(text, '--from', 'start')).toThrow(
      expect.objectContaining({
        name: 'AuditError',
        code: 'BAD_DATE',
        message: `--from: ${problem}, received ${JSON.stringify(text)}`,
      }),
    );
  });
});

describe('parseWindow', () => {
  it('is inclusive, and one day is a whole day', () => {
    const w = parseWindow('2026-11-02', '2026-11-02');
    expect([w.from.toISOString(), w.to.toISOString()]).toEqual([
      '2026-11-02T00:00:00.000Z',
      '2026-11-02T23:59:59.999Z',
    ]);
  });

  it('refuses a window that ends before it starts', () => {
    expect(() => parseWindow('2026-11-03', '2026-11-02T12:00:00Z')).toThrow(
      expect.objectContaining({
        code: 'BAD_DATE',
        message:
          'the window ends before it starts: --from 2026-11-03T00:00:00.000Z, --to 2026-11-02T12:00:00.000Z',
      }),
    );
  });
});

describe('defaultOutDir and parseFormats', () => {
  it('names the directory after the window as given', () => {
    expect(defaultOutDir('2026-11-01', '2026-11-30')).toBe('cairn-audit-2026-11-01-2026-11-30');
    expect(defaultOutDir('2026-11-01T09:30:00Z', '2026-11-01T10:30+01:00')).toBe(
      'cairn-audit-2026-11-01T093000Z-2026-11-01T1030+0100',
    );
  });

  it('takes a comma-separated subset, all three by default', () => {
    expect(parseFormats(undefined)).toEqual(['html', 'md', 'json']);
    expect(parseFormats('json, markdown,json')).toEqual(['json', 'md']);
    expect(() => parseFormats('pdf')).toThrow(
      'cairn audit: --format: expected html, md or json (comma-separated), received "pdf"',
    );
  });
});

// ---------------------------------------------------------------------------------------------
// auditReport over a hand-made history

const H = (d: string) => d.repeat(64);
const alice = { keyid: H('a'), name: 'alice', named: true };
const bob = { keyid: H('b'), name: 'bob', named: true };
const carol = { keyid: H('c'), name: 'carol', named: true };
const anon = { keyid: H('f'), name: 'ffffffffffff', named: false };

function entry(
  index: number,
  role: string,
  version: number,
  time: string,
  extra: Partial<HistoryEntry> = {},
): HistoryEntry {
  return {
    index,
    role,
    version,
    length: 100 + index,
    sha256: H(String(index % 10)),
    time,
    entryText: `{"index":${index}}`,
    leafHash: H('e'),
    inclusionProof: [H('1'), H('2')],
    file: `metadata/${version}.${role}.json`,
    status: 'verified',
    rootVersion: 1,
    ...extra,
  };
}

function targets(index: number, version: number, time: string, signers = [bob, alice]) {
  return entry(index, 'targets', version, time, {
    approvals: {
      role: 'targets',
      threshold: 2,
      signers,
      invalid: [],
      meetsThreshold: true,
      meetsPolicy: true,
    },
    release: {
      targetsVersion: version,
      files: [
        { path: 'z.cvd', length: 2, hashes: { sha256: H('3') } },
        { path: 'a.cld', length: 1, hashes: { sha512: H('4') } },
      ],
    },
  });
}

function history(entries: HistoryEntry[], anomalies: Anomaly[] = []): History {
  return {
    mirror: 'http://127.0.0.1:1/',
    readAt: '2026-11-23T08:00:00.000Z',
    checkpoint: { origin: 'log.example', size: entries.length, rootHash: H('9'), note: 'note\n' },
    log: { origin: 'log.example', key: 'log.example+00+AA', witnesses: [], witnessThreshold: 0 },
    latest: { root: 2, targets: 3 },
    entries,
    releases: entries.filter((e) => e.role !== 'root' && e.role !== 'snapshot'),
    keyChanges: entries.filter((e) => e.role === 'root'),
    anomalies,
  };
}

const ROOT_CHANGE = entry(3, 'root', 2, '2026-11-02T12:00:00.000Z', {
  approvals: {
    role: 'root',
    threshold: 1,
    signers: [anon],
    invalid: [],
    meetsThreshold: true,
    meetsPolicy: true,
  },
  root: {
    keys: [],
    roles: {
      root: { keyids: [H('f')], threshold: 1 },
      targets: { keyids: [H('a'), H('c')], threshold: 2 },
      snapshot: { keyids: [H('5')], threshold: 1 },
      timestamp: { keyids: [H('6')], threshold: 1 },
    },
    logKey: 'log.example+00+AA',
    changes: {
      previousVersion: 1,
      roles: [
        {
          role: 'targets',
          added: [carol],
          removed: [bob],
          thresholdBefore: 2,
          thresholdAfter: 2,
        },
      ],
      logKeyChanged: false,
    },
  },
});

const PINNED = { version: 1, sha256: H('0') };

const HISTORY = history(
  [
    entry(0, 'root', 1, '2026-10-31T23:59:59.999Z'),
    targets(1, 1, '2026-10-31T23:59:59.999Z'),
    targets(2, 2, '2026-11-01T00:00:00.000Z'),
    ROOT_CHANGE,
    entry(4, 'snapshot', 3, '2026-11-02T12:00:00.000Z'),
    targets(5, 3, '2026-11-02T23:59:59.999Z', [carol, alice]),
    targets(6, 4, '2026-11-03T00:00:00.000Z'),
  ],
  [
    {
      code: 'ROOT_CHAIN_BROKEN',
      severity: 'critical',
      message: 'before',
      index: 0,
      role: 'root',
      version: 1,
    },
    { code: 'THRESHOLD', severity: 'critical', message: 'before, not a root', index: 1 },
    {
      code: 'BELOW_POLICY',
      severity: 'warning',
      message: 'inside',
      index: 5,
      role: 'targets',
      version: 3,
    },
    { code: 'THRESHOLD', severity: 'critical', message: 'after', index: 6 },
    { code: 'UNLOGGED_ROOT', severity: 'critical', message: 'no index', role: 'root', version: 9 },
  ],
);

describe('auditReport', () => {
  const window = parseWindow('2026-11-01', '2026-11-02');
  const report = auditReport(HISTORY, { window, pinnedRoot: PINNED });

  it('lists exactly the releases and key changes logged in the window, in log order', () => {
    expect(report.releases.map((r) => `${r.role} v${r.version} @${r.log.index}`)).toEqual([
      'targets v2 @2',
      'targets v3 @5',
    ]);
    expect(report.keyChanges.map((c) => `root v${c.version} @${c.log.index}`)).toEqual([
      'root v2 @3',
    ]);
  });

  it('gives each release its files by path, its signers by name, and its proof', () => {
    expect(report.releases[1]).toEqual({
      role: 'targets',
      version: 3,
      time: '2026-11-02T23:59:59.999Z',
      length: 105,
      sha256: H('5'),
      status: 'verified',
      rootVersion: 1,
      threshold: 2,
      signers: [
        { keyid: H('a'), name: 'alice' },
        { keyid: H('c'), name: 'carol' },
      ],
      log: { index: 5, entry: '{"index":5}', leafHash: H('e'), inclusionProof: [H('1'), H('2')] },
      files: [
        { path: 'a.cld', length: 1, sha256: null },
        { path: 'z.cvd', length: 2, sha256: H('3') },
      ],
    });
  });

  it('gives each key change the keys added and removed per role, an unnamed key as null', () => {
    expect(report.keyChanges[0]).toEqual({
      version: 2,
      time: '2026-11-02T12:00:00.000Z',
      length: 103,
      sha256: H('3'),
      status: 'verified',
      signers: [{ keyid: H('f'), name: null }],
      log: { index: 3, entry: '{"index":3}', leafHash: H('e'), inclusionProof: [H('1'), H('2')] },
      roles: [
        {
          role: 'targets',
          added: [{ keyid: H('c'), name: 'carol' }],
          removed: [{ keyid: H('b'), name: 'bob' }],
          threshold: { before: 2, after: 2 },
        },
      ],
      logKeyChanged: false,
    });
  });

  it('keeps the anomalies in the window, those of no entry, and those of earlier roots', () => {
    expect(report.anomalies).toEqual([
      {
        code: 'ROOT_CHAIN_BROKEN',
        severity: 'critical',
        message: 'before',
        logIndex: 0,
        time: '2026-10-31T23:59:59.999Z',
        role: 'root',
        version: 1,
      },
      {
        code: 'BELOW_POLICY',
        severity: 'warning',
        message: 'inside',
        logIndex: 5,
        time: '2026-11-02T23:59:59.999Z',
        role: 'targets',
        version: 3,
      },
      {
        code: 'UNLOGGED_ROOT',
        severity: 'critical',
        message: 'no index',
        role: 'root',
        version: 9,
      },
    ]);
  });

  it('holds no time of its own unless given one', () => {
    expect(report.window).toEqual({
      from: '2026-11-01T00:00:00.000Z',
      to: '2026-11-02T23:59:59.999Z',
    });
    expect(JSON.stringify(report)).not.toContain('2026-11-23');
    const at = auditReport(HISTORY, {
      window,
      pinnedRoot: PINNED,
      generatedAt: new Date('2026-12-01T00:00:00Z'),
    });
    expect(at.generatedAt).toBe('2026-12-01T00:00:00.000Z');
    expect(Object.keys(at)).toEqual([
      'format',
      'window',
      'generatedAt',
      'mirror',
      'pinnedRoot',
      'log',
      'anomalies',
      'releases',
      'keyChanges',
    ]);
    expect(report.pinnedRoot).toEqual(PINNED);
  });

  it('is empty for a window with nothing logged', () => {
    const empty = auditReport(HISTORY, {
      window: parseWindow('2026-12-01', '2026-12-31'),
      pinnedRoot: PINNED,
    });
    expect([empty.releases, empty.keyChanges]).toEqual([[], []]);
  });
});

/** A checkpoint note signed by a throwaway log key: its form is right, its key unknown. */
async function signedCheckpoint(size: number): Promise<string> {
  const signer = await createEd25519Signer('example.com/log', new Uint8Array(32).fill(7));
  const body = formatCheckpoint({
    origin: 'example.com/log',
    size,
    rootHash: new Uint8Array(32).fill(1),
    extensions: [],
  });
  return signNote(body, [signer]);
}

describe('readCheckpointFile', () => {
  const hint =
    "  hint: give a signed checkpoint note: an earlier report's checkpoint.txt, or the checkpoint file of cairn monitor --state";

  // Its own directory: writeFileAtomic's test below counts the files in `dir`.
  let files: string;
  beforeAll(async () => {
    files = await mkdtemp(join(tmpdir(), 'cairn-audit-checkpoint-'));
  });
  afterAll(async () => {
    await rm(files, { recursive: true, force: true });
  });

  it('returns the note as written, byte for byte', async () => {
    const file = join(files, 'checkpoint.txt');
    const note = await signedCheckpoint(12);
    await writeFile(file, note);
    expect(await readCheckpointFile(file)).toBe(note);
    expect(note.split('\n').slice(0, 3)).toEqual([
      'example.com/log',
      '12',
      'AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=',
    ]);
  });

  it.each([
    ['missing', undefined, /^--checkpoint .*missing\.txt: ENOENT: no such file or directory/],
    ['empty', '', /^--checkpoint .*empty\.txt: not a signed checkpoint note \(/],
    [
      'unsigned',
      'example.com/log\n12\nAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n',
      /: not a signed checkpoint note \(/,
    ],
    ['json', '{"size": 12}\n', /: not a signed checkpoint note \(/],
    ['latin1', Buffer.from([0x61, 0xff, 0x0a]), /: not a signed checkpoint note \(/],
    ['huge', 'x'.repeat(64 * 1024 + 1), /: more than 65536 bytes$/],
  ])('refuses a %s file with BAD_CHECKPOINT', async (name, content, message) => {
    const file = join(files, `${name}.txt`);
    if (content !== undefined) await writeFile(file, content);
    const error = await readCheckpointFile(file).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(AuditError);
    expect((error as AuditError).code).toBe('BAD_CHECKPOINT');
    expect((error as AuditError).message).toMatch(message);
    const io = captured();
    const args = [
      '--mirror',
      'http://m/',
      '--root',
      'r',
      '--from',
      '2026-11-01',
      '--to',
      '2026-11-02',
    ];
    expect(await runAudit([...args, '--checkpoint', file], io, deps)).toBe(EXIT_USAGE);
    expect(io.err[0]).toBe(`✘ BAD_CHECKPOINT: ${(error as AuditError).message}`);
    expect(io.err[1]).toBe(hint);
    expect(io.err).toHaveLength(2);
  });

  it('needs a file name', async () => {
    const args = [
      '--mirror',
      'http://m/',
      '--root',
      'r',
      '--from',
      '2026-11-01',
      '--to',
      '2026-11-02',
    ];
    await expect(runAudit([...args, '--checkpoint'], captured(), deps)).rejects.toThrow(UsageError);
  });
});

describe('writeFileAtomic', () => {
  it('replaces the file whole and leaves no temporary file', async () => {
    const path = join(dir, 'audit.json');
    await writeFile(path, 'old');
    await writeFileAtomic(path, 'new');
    expect(await readFile(path, 'utf8')).toBe('new');
    expect(await readdir(dir)).toEqual(['audit.json']);
  });
});

describe('ReadProgress', () => {
  it('counts the answers, and draws on a terminal only', async () => {
    const written: string[] = [];
    let clock = 0;
    const progress = new ReadProgress(
      { isTTY: true, write: (t) => void written.push(t) },
      () => clock,
    );
    const fetchOk = progress.wrap(() => Promise.resolve(new Response('x')));
    await fetchOk('http://a/');
    clock = 50;
    await fetchOk('http://a/');
    clock = 1500;
    await fetchOk('http://a/');
    progress.finish();
    expect(written).toEqual(['\rreading   1 files\x1b[K', '\rreading   3 files\x1b[K', '\r\x1b[K']);
    expect(progress.summary()).toBe('read 3 files in 1.5 s');
  });
});

describe('runAudit', () => {
  it('prints its usage for --help', async () => {
    const io = captured();
    expect(await runAudit(['--help'], io, deps)).toBe(0);
    expect(io.out[0]?.split('\n').slice(0, 2)).toEqual([
      'Usage: cairn audit --mirror URL --root FILE --from DATE --to DATE [--out DIR] [--format html,md,json] [--generated-at TIME] [--checkpoint FILE]',
      '',
    ]);
  });

  it('needs the mirror, the root and the window', async () => {
    await expect(
      runAudit(['--mirror', 'http://m/', '--root', 'r.json'], captured(), deps),
    ).rejects.toThrow(new UsageError('cairn audit: missing --from DATE'));
    await expect(
      runAudit(['--root', 'r', '--from', '2026-11-01', '--to', '2026-11-02'], captured(), deps),
    ).rejects.toThrow('cairn audit: missing --mirror URL');
  });

  it('takes only an http(s) mirror', async () => {
    const args = ['--root', 'r', '--from', '2026-11-01', '--to', '2026-11-02'];
    await expect(runAudit(['--mirror', 'ftp://m/', ...args], captured(), deps)).rejects.toThrow(
      'cairn audit: --mirror: expected an http(s) URL, received "ftp://m/"',
    );
  });

  it('exits 2 with BAD_DATE and a hint for a bad date', async () => {
    const io = captured();
    const args = ['--mirror', 'http://m/', '--root', 'r', '--from', '1 Nov', '--to', '2026-11-02'];
    expect(await runAudit(args, io, deps)).toBe(EXIT_USAGE);
    expect(io.err).toEqual([
      '✘ BAD_DATE: --from: expected an ISO 8601 day or time, received "1 Nov"',
      '  hint: give a day (2026-11-01) or a time with its zone (2026-11-01T09:30:00Z, 2026-11-01T10:30+01:00)',
    ]);
  });

  it('exits 1 for a --root that is missing or not a root', async () => {
    const range = ['--from', '2026-11-01', '--to', '2026-11-02', '--out', join(dir, 'never')];
    const missing = captured();
    const file = join(dir, 'missing.json');
    expect(await runAudit(['--mirror', 'http://m/', '--root', file, ...range], missing, deps)).toBe(
      EXIT_FAILED,
    );
    expect(missing.err).toEqual([
      `✘ IO: ENOENT: no such file or directory, open '${file}'`,
      `  hint: --root ${file}: give the repository's root.json`,
    ]);
    const notRoot = join(dir, 'not-root.json');
    await writeFile(notRoot, '{"signed": {"_type": "targets"}, "signatures": []}');
    const wrong = captured();
    expect(
      await runAudit(['--mirror', 'http://m/', '--root', notRoot, ...range], wrong, deps),
    ).toBe(EXIT_FAILED);
    expect(wrong.err[0]).toMatch(/^✘ WRONG_TYPE: /);
    expect(wrong.err[1]).toBe(
      '  hint: --root must be a root.json of this repository, and that root must declare its log (x-cairn-log)',
    );
  });

  it('exits 1 with UNREACHABLE when the mirror does not answer, writing nothing', async () => {
    // A port that was just free: nothing listens there.
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
      });
    });
    const root = join(dir, 'root.json');
    await writeFile(root, await rootBytes());
    const out = join(dir, 'never');
    const io = captured();
    const mirror = `http://127.0.0.1:${port}/`;
    const code = await runAudit(
      [
        '--mirror',
        mirror,
        '--root',
        root,
        '--from',
        '2026-11-01',
        '--to',
        '2026-11-02',
        '--out',
        out,
      ],
      io,
      deps,
    );
    expect(code).toBe(EXIT_FAILED);
    expect(io.err[0]).toBe(`reading the log and its metadata through ${mirror}`);
    expect(io.err[1]).toMatch(new RegExp(`^✘ UNREACHABLE: ${mirror}: ${mirror}metadata/`));
    expect(io.err[2]).toBe(
      '  hint: check --mirror: it must serve metadata/ and log/ (cairn mirror serve, or the origin)',
    );
    await expect(readdir(out)).rejects.toThrow('ENOENT');
  });
});
