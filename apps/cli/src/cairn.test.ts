import { describe, expect, it } from 'vitest';
import type { CliIo } from './cli-io.js';
import { COMMANDS, EXIT_FAILED, EXIT_USAGE, cairnVersion, runCairn } from './cairn.js';
import { UsageError } from './cli-io.js';

function captured(): CliIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (l) => out.push(l), stderr: (l) => err.push(l) };
}

const commandList = Object.keys(COMMANDS).join(', ');

describe('runCairn', () => {
  it('--help, -h and help print the same usage, listing every command', async () => {
    const outputs: string[][] = [];
    for (const flag of ['--help', '-h', 'help']) {
      const io = captured();
      expect(await runCairn([flag], io)).toBe(0);
      expect(io.err).toEqual([]);
      outputs.push(io.out);
    }
    expect(outputs[1]).toEqual(outputs[0]);
    expect(outputs[2]).toEqual(outputs[0]);
    for (const [name, command] of Object.entries(COMMANDS)) {
      expect(outputs[0]?.[0]).toMatch(new RegExp(`\\n  ${name} +${command.summary}\\n`));
    }
  });

  it('--version prints the version from package.json', async () => {
    const io = captured();
    expect(await runCairn(['--version'], io)).toBe(0);
    expect(io.out).toEqual([cairnVersion()]);
    expect(cairnVersion()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('refuses an unknown command with one USAGE line and exit 2', async () => {
    const io = captured();
    expect(await runCairn(['publish-everything'], io)).toBe(EXIT_USAGE);
    expect(io.out).toEqual([]);
    expect(io.err).toEqual([
      `✘ USAGE: unknown command "publish-everything" (commands: ${commandList}; see cairn --help)`,
    ]);
  });

  it('does not mistake Object.prototype names for commands', async () => {
    const io = captured();
    expect(await runCairn(['constructor'], io)).toBe(EXIT_USAGE);
    expect(await runCairn(['__proto__'], io)).toBe(EXIT_USAGE);
  });
});

describe('a command in the table', () => {
  it('gets the arguments after its name; a UsageError exits 2, another error 1', async () => {
    const seen: (readonly string[])[] = [];
    const commands = {
      ...COMMANDS,
      'test-only': {
        summary: 'registered by this test',
        run: (args: readonly string[]) => {
          seen.push(args);
          if (args[0] === 'usage') throw new UsageError('bad flag');
          if (args[0] === 'fail') throw new Error('boom');
          return Promise.resolve(0);
        },
      },
    };
    const io = captured();
    expect(await runCairn(['test-only', 'a', '--b'], io, commands)).toBe(0);
    expect(await runCairn(['test-only', 'usage'], io, commands)).toBe(EXIT_USAGE);
    expect(await runCairn(['test-only', 'fail'], io, commands)).toBe(EXIT_FAILED);
    expect(seen).toEqual([['a', '--b'], ['usage'], ['fail']]);
    expect(io.err).toEqual(['✘ USAGE: bad flag', '✘ INTERNAL: boom']);
  });
});
