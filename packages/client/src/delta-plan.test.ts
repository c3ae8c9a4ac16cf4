import { TargetFile } from '@cairn/verify/metadata';
import { describe, expect, it } from 'vitest';
import {
  deltaTargetPath,
  matchesGlob,
  parseDeltaStep,
  planTarget,
  planUpdate,
  selectTargets,
  type FileDigest,
} from './delta-plan.js';
import { ClientError } from './errors.js';

/** Distinct, well-formed sha256 values. */
const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const C = 'c'.repeat(64);
const D = 'd'.repeat(64);
const DELTA_SHA = 'e'.repeat(64);

const PATH = 'daily.cvd';
const SIGNED = new TargetFile({ path: PATH, length: 1000, hashes: { sha256: C } });

function description(base: FileDigest, result: FileDigest, target = PATH): unknown {
  return { cairn_delta: { algorithm: 'copy-zstd', target, base, result } };
}

function delta(
  base: FileDigest,
  result: FileDigest,
  options: {
    length?: number;
    custom?: unknown;
    path?: string;
    hashes?: Record<string, string>;
  } = {},
): TargetFile {
  return new TargetFile({
    path: options.path ?? deltaTargetPath(PATH, base.sha256),
    length: options.length ?? 100,
    hashes: options.hashes ?? { sha256: DELTA_SHA },
    custom: 'custom' in options ? options.custom : description(base, result),
  });
}

function targetsOf(...files: TargetFile[]): Map<string, TargetFile> {
  return new Map(files.map((f) => [f.path, f]));
}

const installedA: FileDigest = { sha256: A, length: 900 };
const signedDigest: FileDigest = { sha256: C, length: 1000 };

describe('planTarget', () => {
  it('does nothing when the installed file is the signed one', () => {
    expect(planTarget(SIGNED, signedDigest, targetsOf(SIGNED))).toEqual({
      kind: 'current',
      target: SIGNED,
    });
  });

  it('downloads the full file when nothing is installed', () => {
    expect(planTarget(SIGNED, undefined, targetsOf(SIGNED))).toEqual({
      kind: 'full',
      target: SIGNED,
      reason: 'not-installed',
      downloadBytes: 1000,
    });
  });

  it('uses a delta whose base is the installed file and whose result is the signed one', () => {
    const d = delta(installedA, signedDigest, { length: 120 });
    const plan = planTarget(SIGNED, installedA, targetsOf(SIGNED, d));
    expect(plan).toEqual({
      kind: 'delta',
      target: SIGNED,
      steps: [{ file: d, base: installedA, result: signedDigest }],
      downloadBytes: 120,
      bytesSaved: 880,
    });
  });

  it('downloads the full file when no delta starts at the installed file', () => {
    const other = delta({ sha256: B, length: 900 }, signedDigest);
    expect(planTarget(SIGNED, installedA, targetsOf(SIGNED, other))).toMatchObject({
      kind: 'full',
      reason: 'no-delta',
    });
  });

  it('follows a chain through an older version, within maxChain', () => {
    const mid: FileDigest = { sha256: B, length: 950 };
    const first = delta(installedA, mid, { length: 50 });
    const second = delta(mid, signedDigest, { length: 70 });
    const targets = targetsOf(SIGNED, first, second);
    expect(planTarget(SIGNED, installedA, targets)).toEqual({
      kind: 'chain',
      target: SIGNED,
      steps: [
        { file: first, base: installedA, result: mid },
        { file: second, base: mid, result: signedDigest },
      ],
      downloadBytes: 120,
      bytesSaved: 880,
    });
    expect(planTarget(SIGNED, installedA, targets, { maxChain: 1 })).toMatchObject({
      kind: 'full',
      reason: 'no-delta',
    });
    expect(planTarget(SIGNED, installedA, targets, { maxChain: 0 })).toMatchObject({
      kind: 'full',
      reason: 'no-delta',
    });
  });

  it('stops at a cycle of deltas', () => {
    const mid: FileDigest = { sha256: B, length: 950 };
    const targets = targetsOf(SIGNED, delta(installedA, mid), delta(mid, installedA));
    expect(planTarget(SIGNED, installedA, targets, { maxChain: 10 })).toMatchObject({
      kind: 'full',
      reason: 'no-delta',
    });
  });

  it('downloads the full file when the deltas are not smaller', () => {
    const d = delta(installedA, signedDigest, { length: 1000 });
    expect(planTarget(SIGNED, installedA, targetsOf(SIGNED, d))).toMatchObject({
      kind: 'full',
      reason: 'delta-not-smaller',
      downloadBytes: 1000,
    });
  });

  it('downloads the full file when the signed target has no sha256', () => {
    const only512 = new TargetFile({
      path: PATH,
      length: 1000,
      hashes: { sha512: 'f'.repeat(128) },
    });
    expect(planTarget(only512, installedA, targetsOf(only512))).toMatchObject({
      kind: 'full',
      reason: 'no-sha256',
    });
  });

  it('compares the signed sha256 case-insensitively', () => {
    const upper = new TargetFile({ path: PATH, length: 1000, hashes: { sha256: C.toUpperCase() } });
    expect(planTarget(upper, signedDigest, targetsOf(upper)).kind).toBe('current');
  });

  describe('ignores a malformed or mismatched delta and downloads the full file', () => {
    const good = description(installedA, signedDigest) as { cairn_delta: Record<string, unknown> };
    // [name, the delta, whether it is well formed on its own (it then fails to fit)]
    const cases: [string, TargetFile, boolean?][] = [
      ['no custom', delta(installedA, signedDigest, { custom: undefined })],
      ['custom not an object', delta(installedA, signedDigest, { custom: 'copy-zstd' })],
      ['no cairn_delta', delta(installedA, signedDigest, { custom: { other: 1 } })],
      ['cairn_delta an array', delta(installedA, signedDigest, { custom: { cairn_delta: [] } })],
      [
        'another algorithm',
        delta(installedA, signedDigest, {
          custom: { cairn_delta: { ...good.cairn_delta, algorithm: 'bsdiff' } },
        }),
      ],
      [
        'another target',
        delta(installedA, signedDigest, {
          custom: description(installedA, signedDigest, 'main.cvd'),
        }),
      ],
      [
        'a base other than the one its path names',
        delta(installedA, signedDigest, {
          custom: description({ sha256: B, length: 900 }, signedDigest),
        }),
      ],
      [
        'a base length other than the installed length',
        delta(installedA, signedDigest, {
          custom: description({ sha256: A, length: 901 }, signedDigest),
        }),
        true,
      ],
      [
        'an uppercase base sha256',
        delta(installedA, signedDigest, {
          path: deltaTargetPath(PATH, A),
          custom: description({ sha256: A.toUpperCase(), length: 900 }, signedDigest),
        }),
      ],
      [
        'a short result sha256',
        delta(installedA, signedDigest, {
          custom: description(installedA, { sha256: 'c'.repeat(63), length: 1000 }),
        }),
      ],
      [
        'a fractional result length',
        delta(installedA, signedDigest, {
          custom: description(installedA, { sha256: C, length: 999.5 }),
        }),
      ],
      [
        'a negative base length',
        delta(installedA, signedDigest, {
          custom: description({ sha256: A, length: -1 }, signedDigest),
        }),
      ],
      [
        'a string length',
        delta(installedA, signedDigest, {
          custom: description({ sha256: A, length: '900' } as unknown as FileDigest, signedDigest),
        }),
      ],
      [
        'the signed sha256 with another length',
        delta(installedA, signedDigest, {
          custom: description(installedA, { sha256: C, length: 999 }),
        }),
        true,
      ],
      [
        'a delta file without a sha256 of its own',
        delta(installedA, signedDigest, { hashes: { sha512: 'f'.repeat(128) } }),
      ],
    ];
    for (const [name, file, wellFormed = false] of cases) {
      it(name, () => {
        expect(parseDeltaStep(file) !== undefined).toBe(wellFormed);
        expect(planTarget(SIGNED, installedA, targetsOf(SIGNED, file))).toEqual({
          kind: 'full',
          target: SIGNED,
          reason: 'malformed-delta',
          downloadBytes: 1000,
        });
      });
    }

    it('accepts unknown extra keys in the description', () => {
      const d = delta(installedA, signedDigest, {
        custom: { cairn_delta: { ...good.cairn_delta, level: 19 }, other: true },
      });
      expect(planTarget(SIGNED, installedA, targetsOf(SIGNED, d)).kind).toBe('delta');
    });

    it('a malformed second step of a chain', () => {
      const mid: FileDigest = { sha256: B, length: 950 };
      const second = delta(mid, signedDigest, { custom: description(mid, signedDigest, 'x.cvd') });
      expect(
        planTarget(SIGNED, installedA, targetsOf(SIGNED, delta(installedA, mid), second)),
      ).toMatchObject({ kind: 'full', reason: 'malformed-delta' });
    });
  });

  it('refuses a maxChain that is not a non-negative integer', () => {
    expect(() => planTarget(SIGNED, installedA, targetsOf(SIGNED), { maxChain: 1.5 })).toThrowError(
      new ClientError('CONFIG_INVALID', 'maxChain: expected a non-negative integer, received 1.5'),
    );
  });
});

describe('parseDeltaStep', () => {
  it('reads the base and result of a well-formed description', () => {
    const d = delta(installedA, signedDigest);
    expect(parseDeltaStep(d)).toEqual({ file: d, base: installedA, result: signedDigest });
  });
});

describe('matchesGlob', () => {
  const table: [string, string, boolean][] = [
    ['*.cvd', 'main.cvd', true],
    ['*.cvd', 'daily/main.cvd', false],
    ['*.cvd', 'main.cld', false],
    ['daily/*', 'daily/bytecode.cvd', true],
    ['daily/*', 'daily/sub/x.cvd', false],
    ['daily/*', 'daily', false],
    ['daily/**', 'daily/sub/x.cvd', true],
    ['daily/**', 'daily', true],
    ['**/*.cvd', 'main.cvd', true],
    ['**/*.cvd', 'a/b/c/main.cvd', true],
    ['**/*.cvd', 'a/b/c/main.cld', false],
    ['a/**/z', 'a/z', true],
    ['a/**/z', 'a/b/c/z', true],
    ['a/**/z', 'a/b/c/y', false],
    ['m*n*.c?d', 'main.c?d', true],
    ['m*n*.c?d', 'main.cvd', false],
    ['*', '', true],
    ['a+b.(c)[d]', 'a+b.(c)[d]', true],
    ['a+b.(c)[d]', 'aab.(c)[d]', false],
    ['.*', 'x', false],
    ['*a*a*a*a*a*a*b', 'a'.repeat(60), false],
    ['**/**/**/**/**/x', `${'d/'.repeat(40)}y`, false],
  ];
  for (const [pattern, path, expected] of table) {
    it(`${pattern} ${expected ? 'matches' : 'does not match'} ${path.slice(0, 30)}`, () => {
      expect(matchesGlob(pattern, path)).toBe(expected);
    });
  }
});

describe('selectTargets and planUpdate', () => {
  const main = new TargetFile({ path: 'main.cvd', length: 5000, hashes: { sha256: A } });
  const daily = new TargetFile({ path: 'daily/bytecode.cvd', length: 1000, hashes: { sha256: C } });
  const safe = new TargetFile({ path: 'safebrowsing.cld', length: 300, hashes: { sha256: D } });
  const dailyDelta = new TargetFile({
    path: deltaTargetPath('daily/bytecode.cvd', B),
    length: 100,
    hashes: { sha256: DELTA_SHA },
    custom: description({ sha256: B, length: 900 }, signedDigest, 'daily/bytecode.cvd'),
  });
  const targets = targetsOf(safe, dailyDelta, main, daily);

  it('selects every non-delta target, in path order', () => {
    expect(selectTargets(targets, 'all')).toEqual({ targets: [daily, main, safe], unmatched: [] });
  });

  it('selects names and patterns, and reports entries that matched nothing', () => {
    expect(
      selectTargets(targets, ['*.cvd', 'daily/*', 'safebrowsing.cld', 'gone.cvd', 'x/*']),
    ).toEqual({ targets: [daily, main, safe], unmatched: ['gone.cvd', 'x/*'] });
    expect(selectTargets(targets, ['main.cvd'])).toEqual({ targets: [main], unmatched: [] });
    // A name is exact; delta targets are never selected, even when named.
    expect(selectTargets(targets, ['main', '_delta/**', dailyDelta.path])).toEqual({
      targets: [],
      unmatched: ['main', '_delta/**', dailyDelta.path],
    });
  });

  it('refuses an empty entry', () => {
    expect(() => selectTargets(targets, ['main.cvd', ''])).toThrowError(
      new ClientError('CONFIG_INVALID', 'targets: expected non-empty names or patterns'),
    );
  });

  it('plans every wanted target and adds up the savings', () => {
    const installed = new Map<string, FileDigest>([
      ['main.cvd', { sha256: A, length: 5000 }],
      ['daily/bytecode.cvd', { sha256: B, length: 900 }],
    ]);
    expect(planUpdate(targets, installed, 'all')).toEqual({
      plans: [
        {
          kind: 'delta',
          target: daily,
          steps: [{ file: dailyDelta, base: { sha256: B, length: 900 }, result: signedDigest }],
          downloadBytes: 100,
          bytesSaved: 900,
        },
        { kind: 'current', target: main },
        { kind: 'full', target: safe, reason: 'not-installed', downloadBytes: 300 },
      ],
      unmatched: [],
      bytesSaved: 900,
      downloadBytes: 400,
    });
  });
});
