import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isOriginError } from '@cairn/origin/errors';
import { publicKeyFileText } from '@cairn/origin/key-file';
import { logConfigFromRoot } from '@cairn/tlog/log-config';
import { Ed25519Signer } from '@cairn/verify/signer';
import type { CliIo } from './cli-io.js';
import type { CommandDeps } from './command-support.js';
import { parsePublisherArgument, runInit } from './init-command.js';
import { witnessVerifierKey } from './witness-command.js';

describe('parsePublisherArgument', () => {
  it('takes NAME= before the file, or names the publisher after the file', () => {
    expect(parsePublisherArgument('bob=keys/laptop.key.pub')).toEqual({
      name: 'bob',
      file: 'keys/laptop.key.pub',
    });
    expect(parsePublisherArgument('keys/alice.key.pub')).toEqual({
      name: 'alice',
      file: 'keys/alice.key.pub',
    });
    expect(parsePublisherArgument('carol.pub')).toEqual({ name: 'carol', file: 'carol.pub' });
    expect(parsePublisherArgument('release-bot_2.key')).toEqual({
      name: 'release-bot_2',
      file: 'release-bot_2.key',
    });
    // Only the first = splits: the rest is the file's.
    expect(parsePublisherArgument('dave=a=b.pub')).toEqual({ name: 'dave', file: 'a=b.pub' });
  });

  it('refuses a name that is not 1 to 64 of A-Z a-z 0-9 . _ -', () => {
    for (const arg of [
      '=alice.pub',
      'a b=alice.pub',
      'é=alice.pub',
      `${'x'.repeat(65)}=a.pub`,
      'keys/my key.pub',
    ]) {
      let refused: unknown;
      try {
        parsePublisherArgument(arg);
      } catch (error) {
        refused = error;
      }
      expect({ arg, refused: isOriginError(refused, 'INVALID_PUBLISHER_NAME') }).toEqual({
        arg,
        refused: true,
      });
    }
  });
});

describe('runInit --witness', () => {
  const WITNESS = 'witness.test/w1';

  async function setup() {
    const dir = await mkdtemp(join(tmpdir(), 'cairn-init-witness-'));
    const alice = await Ed25519Signer.generate();
    await writeFile(join(dir, 'alice.pub'), publicKeyFileText(alice.keyid, alice.publicKey));
    await writeFile(
      join(dir, 'origin.json'),
      JSON.stringify({
        storage: { type: 'fs', directory: 'repository' },
        policy: { thresholds: { root: 1, targets: 1 } },
      }),
    );
    const deps: CommandDeps = {
      env: { CAIRN_ROOT_PASSPHRASE: 'root pass', CAIRN_ONLINE_PASSPHRASE: 'online pass' },
      terminal: { isTTY: false, columns: 80, write: () => undefined },
      now: () => new Date(),
    };
    const args = (...extra: string[]) => [
      '--config',
      join(dir, 'origin.json'),
      '--root-keys',
      join(dir, 'root'),
      '--publisher',
      join(dir, 'alice.pub'),
      ...extra,
    ];
    return { dir, deps, args };
  }

  const silent: CliIo = { stdout: () => undefined, stderr: () => undefined };

  it('declares the witnesses and their threshold in root version 1', async () => {
    const { dir, deps, args } = await setup();
    try {
      const w1 = await witnessVerifierKey(WITNESS, new Uint8Array(32).fill(1));
      const w2 = await witnessVerifierKey('witness.test/w2', new Uint8Array(32).fill(2));
      const out: string[] = [];
      const io: CliIo = { stdout: (l) => out.push(l), stderr: () => undefined };
      const code = await runInit(
        args('--witness', w1, '--witness', w2, '--witness-threshold', '1', '--json'),
        io,
        deps,
      );
      expect(code).toBe(0);
      expect((JSON.parse(out.join('\n')) as { witnesses: unknown }).witnesses).toEqual({
        threshold: 1,
        keys: [w1, w2],
      });
      const root = JSON.parse(
        await readFile(join(dir, 'repository', 'metadata', '1.root.json'), 'utf8'),
      ) as { signed: Record<string, unknown> };
      expect(logConfigFromRoot(root.signed)).toMatchObject({
        witnesses: [w1, w2],
        witnessThreshold: 1,
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a key that is not a witness key, or a threshold above their number, writing nothing', async () => {
    const { dir, deps, args } = await setup();
    try {
      const w1 = await witnessVerifierKey(WITNESS, new Uint8Array(32).fill(1));
      for (const [extra, message] of [
        [['--witness', 'nope'], /--witness: .*"nope"/],
        [['--witness', w1, '--witness-threshold', '2'], /--witness-threshold 2 is more than the 1/],
        [['--witness', w1, '--witness', w1], /given twice/],
      ] as const) {
        await expect(runInit(args(...extra), silent, deps)).rejects.toThrow(message);
      }
      expect((await readdir(dir)).sort()).toEqual(['alice.pub', 'origin.json']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
