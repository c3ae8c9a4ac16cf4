import { describe, expect, it } from 'vitest';
import type { CliIo } from './cli-io.js';
import {
  CONFORMANCE_USAGE,
  parseConformanceArgs,
  runConformanceClient,
} from './tuf-conformance.js';

function usageError(argv: string[]): string {
  try {
    parseConformanceArgs(argv);
  } catch (e) {
    if (e instanceof Error && e.name === 'UsageError') return e.message;
    throw e;
  }
  throw new Error(`expected a UsageError for ${JSON.stringify(argv)}`);
}

function captured(): CliIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (l) => out.push(l), stderr: (l) => err.push(l) };
}

describe('parseConformanceArgs', () => {
  it('parses init as client_runner.py calls it', () => {
    expect(parseConformanceArgs(['--metadata-dir', '/md', 'init', '/root.json'])).toEqual({
      kind: 'init',
      metadataDir: '/md',
      trustedRoot: '/root.json',
    });
  });

  it('parses refresh with the URL first or last, and flags after the command', () => {
    const expected = { kind: 'refresh', metadataDir: '/md', metadataUrl: 'http://h/m/' };
    expect(
      parseConformanceArgs(['--metadata-url', 'http://h/m/', '--metadata-dir', '/md', 'refresh']),
    ).toEqual(expected);
    expect(
      parseConformanceArgs(['refresh', '--metadata-dir', '/md', '--metadata-url', 'http://h/m/']),
    ).toEqual(expected);
    expect(
      parseConformanceArgs(['--metadata-dir=/md', 'refresh', '--metadata-url=http://h/m/']),
    ).toEqual(expected);
  });

  it('parses download with repeated --target-name, in order', () => {
    expect(
      parseConformanceArgs([
        '--metadata-url',
        'http://h/%5B%3F%5D/metadata/',
        '--metadata-dir',
        '/md',
        '--target-name',
        'b/c.txt',
        '--target-dir',
        '/td',
        '--target-base-url',
        'http://h/t/',
        'download',
        '--target-name',
        'a.txt',
      ]),
    ).toEqual({
      kind: 'download',
      metadataDir: '/md',
      // Base URLs are used verbatim: percent-escapes stay as they are.
      metadataUrl: 'http://h/%5B%3F%5D/metadata/',
      targetNames: ['b/c.txt', 'a.txt'],
      targetDir: '/td',
      targetBaseUrl: 'http://h/t/',
    });
  });

  it('recognizes --help and -h anywhere', () => {
    expect(parseConformanceArgs(['--help'])).toEqual({ kind: 'help' });
    expect(parseConformanceArgs(['refresh', '-h'])).toEqual({ kind: 'help' });
  });

  it.each([
    [[], 'missing command: init, refresh or download'],
    [
      ['--metadata-dir', '/md', 'update'],
      'unknown command "update": expected init, refresh or download',
    ],
    [['init', '/root.json'], 'missing --metadata-dir'],
    [
      ['--metadata-dir', '/md', 'init'],
      'init takes one argument, the trusted root file, received 0',
    ],
    [
      ['--metadata-dir', '/md', 'init', 'a', 'b'],
      'init takes one argument, the trusted root file, received 2',
    ],
    [['--metadata-dir', '/md', 'refresh'], 'missing --metadata-url'],
    [['--metadata-dir', '', '--metadata-url', 'u', 'refresh'], '--metadata-dir is empty'],
    [
      ['--metadata-dir', '/a', '--metadata-dir', '/b', '--metadata-url', 'u', 'refresh'],
      '--metadata-dir was given 2 times',
    ],
    [
      ['--metadata-dir', '/md', '--metadata-url', 'u', 'refresh', 'extra'],
      'refresh takes no arguments, received ["extra"]',
    ],
    [
      [
        '--metadata-dir',
        '/md',
        '--metadata-url',
        'u',
        '--target-dir',
        '/t',
        '--target-base-url',
        'b',
        'download',
      ],
      'missing --target-name',
    ],
    [
      [
        '--metadata-dir',
        '/md',
        '--metadata-url',
        'u',
        '--target-name',
        'x',
        '--target-base-url',
        'b',
        'download',
      ],
      'missing --target-dir',
    ],
    [
      [
        '--metadata-dir',
        '/md',
        '--metadata-url',
        'u',
        '--target-name',
        'x',
        '--target-dir',
        '/t',
        'download',
      ],
      'missing --target-base-url',
    ],
  ])('refuses %j: %s', (argv, message) => {
    expect(usageError(argv)).toBe(message);
  });

  it('refuses an unknown flag and a flag without its value', () => {
    expect(usageError(['--metadata-dir', '/md', '--verbose', 'refresh'])).toMatch(
      /^Unknown option '--verbose'/,
    );
    expect(usageError(['refresh', '--metadata-dir'])).toMatch(
      /^Option '--metadata-dir <value>' argument missing/,
    );
  });
});

describe('runConformanceClient', () => {
  it('prints the usage for --help and exits 0', async () => {
    const io = captured();
    expect(await runConformanceClient(['--help'], io)).toBe(0);
    expect(io.out).toEqual([CONFORMANCE_USAGE]);
    expect(io.err).toEqual([]);
  });

  it('prints one USAGE line and exits 1 for bad arguments', async () => {
    const io = captured();
    expect(await runConformanceClient(['refresh'], io)).toBe(1);
    expect(io.out).toEqual([]);
    expect(io.err).toEqual(['✘ USAGE: missing --metadata-dir (see cairn-tuf-client --help)']);
  });

  it('prints one INVALID_STATE line and exits 1 when refresh runs before init', async () => {
    const io = captured();
    const code = await runConformanceClient(
      [
        '--metadata-dir',
        '/nonexistent/cairn/md',
        '--metadata-url',
        'http://127.0.0.1:9/',
        'refresh',
      ],
      io,
      {
        fetcher: { fetch: () => Promise.reject(new Error('no fetch expected')) },
      },
    );
    expect(code).toBe(1);
    expect(io.err).toEqual([
      '✘ INVALID_STATE: no trusted root: initialize the client with a root first',
    ]);
  });
});
