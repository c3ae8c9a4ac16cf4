/** The built `cairn` bin: help, version, and how it refuses what it does not know. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../src/cairn.js';
import { builtBin, runBuilt } from './support/run-cli.js';

const cairn = builtBin('main');
const commandList = Object.keys(COMMANDS).join(', ');
const { version } = JSON.parse(
  readFileSync(new URL('../package.json', import.meta.url), 'utf8'),
) as { version: string };

describe('cairn', () => {
  it('--help prints the usage and the command table, exit 0', async () => {
    const result = await runBuilt(cairn, ['--help']);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^Usage: cairn <command> \[options\]\n/);
    for (const [name, command] of Object.entries(COMMANDS)) {
      expect(result.stdout).toMatch(new RegExp(`\\n  ${name} +${command.summary}\\n`));
    }
  });

  it('--version prints the package version, exit 0', async () => {
    expect(await runBuilt(cairn, ['--version'])).toEqual({
      code: 0,
      stdout: `${version}\n`,
      stderr: '',
    });
  });

  it('an unknown command is a usage error: one line, exit 2', async () => {
    expect(await runBuilt(cairn, ['frobnicate', '--now'])).toEqual({
      code: 2,
      stdout: '',
      stderr: `✘ USAGE: unknown command "frobnicate" (commands: ${commandList}; see cairn --help)\n`,
    });
  });

  it('no command is a usage error, exit 2', async () => {
    const result = await runBuilt(cairn, []);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      `✘ USAGE: no command given (commands: ${commandList}; see cairn --help)\n`,
    );
  });
});
