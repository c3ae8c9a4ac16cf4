import { describe, expect, it } from 'vitest';
import { failureHint, failureLine } from './cli-io.js';
import {
  columns,
  flagOrEnv,
  formatBytes,
  formatTimeLeft,
  parseCommand,
  type Usage,
} from './command-support.js';

const USAGE: Usage = {
  command: 'cairn x',
  synopsis: 'cairn x [--name N] [--many M ...] ARG',
  details: [],
};
const OPTIONS = {
  name: { type: 'string' },
  many: { type: 'string', multiple: true },
  json: { type: 'boolean' },
} as const;

function usageFailure(args: readonly string[]): string[] {
  try {
    parseCommand(USAGE, args, OPTIONS, 1);
  } catch (error) {
    return [failureLine(error), failureHint(error) ?? ''];
  }
  return ['parsed'];
}

describe('parseCommand', () => {
  it('parses options, repeated options and positionals', () => {
    const { values, positionals } = parseCommand(
      USAGE,
      ['arg', '--name', 'n', '--many', 'a', '--many=b', '--json'],
      OPTIONS,
      1,
    );
    expect(values).toEqual({ name: 'n', many: ['a', 'b'], json: true });
    expect(positionals).toEqual(['arg']);
  });

  it('accepts -h and --help with any positionals', () => {
    expect(parseCommand(USAGE, ['a', 'b', '-h'], OPTIONS, 1).values.help).toBe(true);
  });

  it('turns every mistake into one USAGE line and the synopsis as the hint', () => {
    const hint = '  hint: usage: cairn x [--name N] [--many M ...] ARG';
    expect(usageFailure(['--nmae', 'n'])).toEqual([
      '✘ USAGE: cairn x: unknown option --nmae',
      hint,
    ]);
    expect(usageFailure(['--name'])).toEqual(['✘ USAGE: cairn x: --name needs a value', hint]);
    expect(usageFailure(['--json=yes'])).toEqual(['✘ USAGE: cairn x: --json takes no value', hint]);
    expect(usageFailure(['a', 'b', 'c'])).toEqual([
      '✘ USAGE: cairn x: unexpected argument "b" "c"',
      hint,
    ]);
  });
});

describe('formats', () => {
  it('formatBytes uses binary units with one decimal', () => {
    expect([0, 1023, 1024, 1536, 1024 ** 2 * 13.74, 1024 ** 3, 1024 ** 5].map(formatBytes)).toEqual(
      ['0 B', '1023 B', '1.0 KiB', '1.5 KiB', '13.7 MiB', '1.0 GiB', '1024.0 TiB'],
    );
  });

  it('formatTimeLeft uses the largest unit with at least two of it', () => {
    expect(
      [5, 119, 120, 7199, 7200, 172_799, 172_800, -90, -86_400 * 3].map(formatTimeLeft),
    ).toEqual([
      'in 5s',
      'in 119s',
      'in 2m',
      'in 119m',
      'in 2h',
      'in 47h',
      'in 2d',
      'expired 90s ago',
      'expired 3d ago',
    ]);
  });

  it('columns pads to the widest cell and right-aligns the columns asked for', () => {
    expect(
      columns(
        [
          ['a', '1', 'x'],
          ['long', '100', ''],
        ],
        [1],
      ),
    ).toEqual(['a       1  x', 'long  100']);
  });

  it('flagOrEnv prefers the flag and treats empty as unset', () => {
    expect(flagOrEnv('flag', { V: 'env' }, 'V')).toBe('flag');
    expect(flagOrEnv(undefined, { V: 'env' }, 'V')).toBe('env');
    expect(flagOrEnv('', { V: '' }, 'V')).toBeUndefined();
  });
});
