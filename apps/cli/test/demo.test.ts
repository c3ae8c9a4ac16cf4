/** `cairn demo`, the README's main job, run as a user runs it. */
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { builtBin, runBuilt } from './support/run-cli.js';

const cairn = builtBin('main');
let work: string;

beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'cairn-demo-test-'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('cairn demo', () => {
  it('publishes a co-signed release, installs it verified, and refuses both attacks', async () => {
    const dir = join(work, 'demo');
    const result = await runBuilt(cairn, ['demo', '--dir', dir]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const lines = result.stdout.split('\n');
    expect(lines).toContain(
      '   bob signed too: 2 of 2 signatures verify — the release is approved',
    );
    expect(lines).toContain(
      '   alice signed: targets: 1 valid signature(s), the threshold is 2 — not enough, nothing can be published yet',
    );
    expect(
      lines.filter((l) => l.startsWith('   ✔ refused: BAD_HASH — target daily.cvd: sha256 is ')),
    ).toHaveLength(1);
    expect(lines).toContain(
      '   ✔ refused: THRESHOLD — targets: 1 valid signature(s), the threshold is 2',
    );
    expect(lines).toContain('   ✔ the installed daily.cvd is unchanged (byte for byte)');
    expect(lines).toContain('   ✔ the client still trusts targets v1 (unchanged on disk)');

    expect((await readdir(join(dir, 'repository', 'metadata'))).sort()).toEqual([
      '1.root.json',
      '1.snapshot.json',
      '1.targets.json',
      '2.snapshot.json',
      '2.targets.json',
      'root.json',
      'timestamp.json',
    ]);
    expect((await readdir(join(dir, 'client', 'targets'))).sort()).toEqual([
      'daily.cvd',
      'main.cvd',
    ]);
    // The client trusts exactly what the repository published as v1, byte for byte.
    expect(await readFile(join(dir, 'client', 'metadata', 'targets.json'))).toEqual(
      await readFile(join(dir, 'repository', 'metadata', '1.targets.json')),
    );
  });

  it('runs again over its own earlier directory', async () => {
    const dir = join(work, 'demo');
    expect((await runBuilt(cairn, ['demo', '--dir', dir])).code).toBe(0);
    expect((await runBuilt(cairn, ['demo', '--dir', dir])).code).toBe(0);
  });

  it('refuses to overwrite a directory it did not make: USAGE, exit 2, nothing touched', async () => {
    const dir = join(work, 'precious');
    await mkdir(dir);
    await writeFile(join(dir, 'keep.txt'), 'mine');
    const result = await runBuilt(cairn, ['demo', '--dir', dir]);
    expect(result).toEqual({
      code: 2,
      stdout: '',
      stderr: `✘ USAGE: ${dir} exists and was not made by cairn demo; choose another --dir\n`,
    });
    expect(await readdir(dir)).toEqual(['keep.txt']);
  });

  it('an unknown option is USAGE, exit 2', async () => {
    const result = await runBuilt(cairn, ['demo', '--frobnicate']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^✘ USAGE: cairn demo: .*usage: cairn demo \[--dir DIR\]\)\n$/);
  });
});
