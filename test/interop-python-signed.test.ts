// Metadata built and signed by python-tuf 7.0.1 / securesystemslib 1.6.0 (the reference
// implementation), read, verified and updated from by @cairn/verify. The repository and the
// canonical bytes come from test/fixtures/interop/build_repo.py, run in the pinned venv.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { canonicalize } from '@cairn/verify/canonical-json';
import { toHex } from '@cairn/verify/encoding';
import { Key } from '@cairn/verify/keys';
import { Metadata, matchPathPattern } from '@cairn/verify/metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkForeignRepository, type ForeignRepository } from './support/foreign-repository.js';
import { runPython } from './support/python.js';

const fixture = (name: string) =>
  fileURLToPath(new URL(`./fixtures/interop/${name}`, import.meta.url));
const buildScript = fixture('build_repo.py');

/** Runs a fixture script with `input` on stdin; returns its stdout, which must be JSON. */
async function pythonJSON(script: string, input: unknown): Promise<unknown> {
  const result = await runPython(fixture(script), [], { input: JSON.stringify(input) });
  if (result.code !== 0) throw new Error(`${script} exited with ${result.code}:\n${result.stderr}`);
  expect(result.stderr).toBe('');
  return JSON.parse(result.stdout);
}

/** Our answer for each [pattern, path] pair; a throw is an answer too, and never python's. */
function ourMatches(pairs: readonly (readonly [string, string])[]): (boolean | string)[] {
  return pairs.map(([pattern, path]) => {
    try {
      return matchPathPattern(path, pattern);
    } catch (e) {
      return `throws ${(e as Error).name}`;
    }
  });
}

function allPairs(patterns: readonly string[], paths: readonly string[]): [string, string][] {
  return patterns.flatMap((pattern) => paths.map((path): [string, string] => [pattern, path]));
}

type Output = Omit<ForeignRepository, 'dir'>;

/** The script's stdout, checked field by field: a shape we did not expect fails here. */
function parseOutput(stdout: string): Output {
  const value = JSON.parse(stdout) as Output;
  expect(Object.keys(value).sort()).toEqual([
    'canonical',
    'delegator',
    'files',
    'keyids',
    'targets',
  ]);
  for (const field of ['canonical', 'delegator', 'files'] as const) {
    for (const v of Object.values(value[field])) expect(typeof v).toBe('string');
  }
  for (const hex of Object.values(value.canonical)) expect(hex).toMatch(/^([0-9a-f]{2})+$/);
  for (const key of Object.values(value.keyids)) {
    expect(Object.keys(key).sort()).toEqual(['keytype', 'scheme']);
  }
  for (const t of Object.values(value.targets)) {
    expect(Object.keys(t).sort()).toEqual(['length', 'role', 'sha256', 'sha512']);
    expect(t.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(t.sha512).toMatch(/^[0-9a-f]{128}$/);
  }
  return value;
}

describe('a repository built and signed by python-tuf', { timeout: 30_000 }, () => {
  let repo: ForeignRepository | undefined;

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cairn-interop-python-repo-'));
    const result = await runPython(buildScript, [dir]);
    if (result.code !== 0) {
      throw new Error(`build_repo.py exited with ${result.code}:\n${result.stderr}`);
    }
    expect(result.stderr).toBe('');
    repo = { dir, ...parseOutput(result.stdout) };
  }, 60_000);

  afterAll(async () => {
    if (repo !== undefined) await rm(repo.dir, { recursive: true, force: true });
  });

  checkForeignRepository('python-tuf', () => {
    if (repo === undefined) throw new Error('the python-tuf repository was not built');
    return repo;
  });
});

describe('delegation path patterns, matched by python-tuf and by us', { timeout: 30_000 }, () => {
  it('agree on which targets a role with ordinary patterns may list', async () => {
    const pairs = allPairs(
      [
        '*',
        'releases/*',
        'products/*/*',
        'a/*/c',
        '*/*',
        '*.tar',
        '.*',
        '*.',
        '?',
        '??',
        '[ab]*',
        '[!ab]*',
        '[a-c]',
        '[a-]',
        '[!-]',
        '[[]',
        '[*]',
        '[?]',
        '[^a]',
        '[\\]',
        '[',
        'a]',
        '{a,b}',
        'a\\b',
        '\\*',
        '**',
        'x/**',
        'a$',
        '(a)',
        'a|b',
        '+',
        'é*',
        '[é]',
        '*\u{1f600}',
        '',
      ],
      [
        'a',
        'b',
        'c',
        'x',
        '.hidden',
        'a.tar',
        'releases/v1.tar',
        'releases/v1/x.tar',
        'products/av/daily.cvd',
        'a/b/c',
        '*',
        '?',
        '[',
        'a]',
        '\\',
        '{a,b}',
        'a\\b',
        '^',
        '-',
        'a$',
        '(a)',
        'a|b',
        '+',
        'é',
        'éa',
        'x\u{1f600}',
        '\u{1f600}',
      ],
    );
    expect(pairs.length).toBe(945);
    expect(ourMatches(pairs)).toEqual(await pythonJSON('match_paths.py', pairs));
  });

  // Regression: fnmatch sets where `]` comes first are literal and reversed ranges match
  // nothing; a naive translation to a JS RegExp answers differently or throws a SyntaxError.
  it('agree on bracket expressions that start with "]" and on reversed ranges', async () => {
    const pairs = allPairs(
      ['[]]x', '[!]]x', '[][]', '[]a[]', '[c-a]', 'releases/[]]*'],
      [']x', 'ax', 'x', ']', '[', 'a', 'b', 'releases/]1', 'releases/1'],
    );
    expect(ourMatches(pairs)).toEqual(await pythonJSON('match_paths.py', pairs));
  });
});

describe(
  'a python-signed targets role whose names are special to JavaScript objects',
  { timeout: 30_000 },
  () => {
    // Object-literal text: JSON.parse makes "__proto__" an own property, as python makes a key.
    const SIGNED = `{"_type":"targets","spec_version":"1.0.31","version":1,
    "expires":"2030-01-01T00:00:00Z","__proto__":{"note":"an unrecognized field"},
    "targets":{"__proto__":{"length":1,"hashes":{"sha256":"00"}},
      "constructor":{"length":1,"hashes":{"sha256":"00"}},
      "toString":{"length":1,"hashes":{"sha256":"00"}}}}`;

    interface Signed {
      metadata: string;
      canonical: string;
      keyid: string;
      key: unknown;
      targets: string[];
    }
    let signed: Signed | undefined;

    beforeAll(async () => {
      signed = (await pythonJSON('sign_targets.py', JSON.parse(SIGNED))) as Signed;
      expect(Object.keys(signed).sort()).toEqual([
        'canonical',
        'key',
        'keyid',
        'metadata',
        'targets',
      ]);
      expect(signed.targets).toEqual(['__proto__', 'constructor', 'toString']);
    }, 60_000);

    const parse = () => {
      if (signed === undefined) throw new Error('sign_targets.py did not run');
      return {
        signed,
        md: Metadata.fromBytes(new TextEncoder().encode(signed.metadata), 'targets'),
        key: Key.fromJSON(signed.key, 'key'),
      };
    };

    it("parses it, keeps every target and verifies python-tuf's signature", async () => {
      const { signed, md, key } = parse();
      expect([...md.signed.targets.keys()]).toEqual(['__proto__', 'constructor', 'toString']);
      expect(toHex(md.signedBytes())).toBe(signed.canonical);
      expect(md.signatures.map((s) => s.keyid)).toEqual([signed.keyid]);
      expect(await key.verify(md.signatures[0]?.sig ?? '', md.signedBytes())).toBe(true);
    });

    // Regression: assigning a key named "__proto__" into a plain object sets its prototype
    // and drops the entry; the model must re-serialize it like any other name.
    it("re-serializes it to exactly python-tuf's canonical bytes", () => {
      const { signed, md } = parse();
      // Compared as text, so a failure shows which entries went missing.
      expect(new TextDecoder().decode(canonicalize(md.signed.toJSON()))).toBe(
        Buffer.from(signed.canonical, 'hex').toString('utf8'),
      );
    });
  },
);
