import { readFile, readdir, stat, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { utf8 } from '@cairn/verify/encoding';
import { VerifyError } from '@cairn/verify/errors';
import type { TargetFile } from '@cairn/verify/metadata';
import {
  buildRoot,
  buildTimestamp,
  describeMetadata,
  describeTarget,
  signNew,
} from '@cairn/verify/repository';
import { Ed25519Signer } from '@cairn/verify/signer';
import { nodeHashPort } from './node-hash.js';
import {
  downloadTargetTo,
  initTrustedRoot,
  targetFilePath,
  type TargetDownloader,
} from './tuf-client.js';
import { failureOf } from './testing/failure.js';
import { makeTempDir, removeTempDir } from './testing/temp-dir.js';

let dir: string;

beforeEach(async () => {
  dir = await makeTempDir('cairn-tuf-client-');
});

afterEach(async () => {
  await removeTempDir(dir);
});

function failure(promise: Promise<unknown>): Promise<VerifyError> {
  return failureOf(VerifyError, promise);
}

describe('initTrustedRoot', () => {
  const expires = new Date('2031-01-01T00:00:00Z');

  async function rootSignedBy(signers: Ed25519Signer[], threshold: number): Promise<Uint8Array> {
    const spec = {
      keys: signers.map((s) => ({ keyid: s.keyid, publicKey: s.publicKey })),
      threshold,
    };
    const root = buildRoot({
      expires,
      roles: { root: spec, timestamp: spec, snapshot: spec, targets: spec },
    });
    return (await signNew(root, signers)).toBytes();
  }

  it('stores a self-signed root byte for byte as root.json', async () => {
    const a = await Ed25519Signer.generate();
    const bytes = await rootSignedBy([a], 1);
    const md = join(dir, 'metadata');
    await initTrustedRoot(md, bytes);
    expect(await readdir(md)).toEqual(['root.json']);
    expect(new Uint8Array(await readFile(join(md, 'root.json')))).toEqual(bytes);
  });

  it('accepts an expired root: only the final root of a refresh must be current', async () => {
    const a = await Ed25519Signer.generate();
    const spec = { keys: [{ keyid: a.keyid, publicKey: a.publicKey }], threshold: 1 };
    const old = buildRoot({
      expires: new Date('2001-01-01T00:00:00Z'),
      roles: { root: spec, timestamp: spec, snapshot: spec, targets: spec },
    });
    await initTrustedRoot(dir, (await signNew(old, [a])).toBytes());
    expect(await readdir(dir)).toEqual(['root.json']);
  });

  it('refuses a root below its own threshold with THRESHOLD and writes nothing', async () => {
    const [a, b] = [await Ed25519Signer.generate(), await Ed25519Signer.generate()];
    const twoOfTwo = await rootSignedBy([a, b], 2);
    const onlyA = JSON.parse(new TextDecoder().decode(twoOfTwo)) as { signatures: unknown[] };
    onlyA.signatures = onlyA.signatures.slice(0, 1);
    const e = await failure(initTrustedRoot(dir, utf8(JSON.stringify(onlyA))));
    expect(e.code).toBe('THRESHOLD');
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses other metadata with WRONG_TYPE and writes nothing', async () => {
    const a = await Ed25519Signer.generate();
    const ts = buildTimestamp({
      expires,
      snapshot: await describeMetadata(nodeHashPort, 1, utf8('x')),
    });
    const e = await failure(initTrustedRoot(dir, (await signNew(ts, [a])).toBytes()));
    expect(e.code).toBe('WRONG_TYPE');
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses bytes that are not JSON with MALFORMED and writes nothing', async () => {
    const e = await failure(initTrustedRoot(join(dir, 'md'), utf8('not json')));
    expect(e.code).toBe('MALFORMED');
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('downloadTargetTo', () => {
  const content = utf8('signature database v42\n');
  let target: TargetFile;

  beforeEach(async () => {
    target = await describeTarget(nodeHashPort, 'dir/db.cvd', content, {
      algorithms: ['sha256', 'sha512'],
    });
  });

  /** Serves fixed bytes and counts downloads, like an Updater would. */
  function serving(bytes: Uint8Array): TargetDownloader & { calls: (string | undefined)[] } {
    const calls: (string | undefined)[] = [];
    return {
      calls,
      downloadTarget(_target: TargetFile, base?: string): Promise<Uint8Array> {
        calls.push(base);
        return Promise.resolve(bytes);
      },
    };
  }

  it('downloads into targetDir/quote(path, "") when nothing is there', async () => {
    const source = serving(content);
    const result = await downloadTargetTo(source, target, join(dir, 't'), 'http://mirror/targets/');
    expect(result).toEqual({ path: join(dir, 't', 'dir%2Fdb.cvd'), downloaded: true });
    expect(source.calls).toEqual(['http://mirror/targets/']);
    expect(await readdir(join(dir, 't'))).toEqual(['dir%2Fdb.cvd']);
    expect(new Uint8Array(await readFile(result.path))).toEqual(content);
  });

  it('skips the download when the file there already matches length and hashes', async () => {
    const path = targetFilePath(dir, target);
    await writeFile(path, content);
    const before = (await stat(path)).mtimeMs;
    const source = serving(content);
    expect(await downloadTargetTo(source, target, dir)).toEqual({ path, downloaded: false });
    expect(source.calls).toEqual([]);
    expect((await stat(path)).mtimeMs).toBe(before);
  });

  it('replaces a file of the same length with different bytes', async () => {
    const path = targetFilePath(dir, target);
    const stale = content.slice();
    stale[0] = 0x53; // 's' -> 'S'
    await writeFile(path, stale);
    const source = serving(content);
    expect(await downloadTargetTo(source, target, dir)).toEqual({ path, downloaded: true });
    expect(source.calls).toEqual([undefined]);
    expect(new Uint8Array(await readFile(path))).toEqual(content);
    expect(await readdir(dir)).toEqual(['dir%2Fdb.cvd']);
  });

  it('replaces a file of another length', async () => {
    const path = targetFilePath(dir, target);
    await writeFile(path, 'older, shorter');
    expect(await downloadTargetTo(serving(content), target, dir)).toEqual({
      path,
      downloaded: true,
    });
    expect(new Uint8Array(await readFile(path))).toEqual(content);
  });

  it('refuses bytes that do not match the target with BAD_HASH and leaves the old file', async () => {
    const path = targetFilePath(dir, target);
    await writeFile(path, 'previous release');
    const tampered = content.slice();
    tampered[5] = 0x21;
    const e = await failure(downloadTargetTo(serving(tampered), target, dir));
    expect(e.code).toBe('BAD_HASH');
    expect(await readdir(dir)).toEqual(['dir%2Fdb.cvd']);
    expect(await readFile(path, 'utf8')).toBe('previous release');
  });

  it('leaves no file at all when the download fails', async () => {
    const failing: TargetDownloader = {
      downloadTarget: () => Promise.reject(new VerifyError('NOT_FOUND', 'GET x: HTTP 404')),
    };
    const e = await failure(downloadTargetTo(failing, target, join(dir, 't')));
    expect(e.code).toBe('NOT_FOUND');
    expect(await readdir(dir)).toEqual([]);
  });

  it('treats a directory in the way as a cache miss and fails to replace it', async () => {
    await mkdir(targetFilePath(dir, target));
    await expect(downloadTargetTo(serving(content), target, dir)).rejects.toMatchObject({
      code: 'EISDIR',
    });
    expect(await readdir(dir)).toEqual(['dir%2Fdb.cvd']);
  });
});
