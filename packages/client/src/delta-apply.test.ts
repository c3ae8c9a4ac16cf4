import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeDelta } from '@cairn/delta/encode';
import { DeltaError } from '@cairn/delta/errors';
import { VerifyError } from '@cairn/verify/errors';
import { TargetFile } from '@cairn/verify/metadata';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { applyDeltas, type DownloadedDelta } from './delta-apply.js';
import { parseDeltaStep, planTarget } from './delta-plan.js';
import type { ClientError } from './errors.js';
import { Installation, nodeInstallFileSystem, type InstallFileSystem } from './install.js';
import { withStateLock } from './state-lock.js';
import { deltaTargetFile } from './testing/delta-target.js';
import { failure } from './testing/failure.js';
import { makeTempDir, removeTempDir } from './testing/temp-dir.js';

const PATH = 'daily.cvd';

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function sha512(bytes: Uint8Array): string {
  return createHash('sha512').update(bytes).digest('hex');
}

/** A signature database of `count` lines; `version` changes every 50th line. */
function database(count: number, version: number): Uint8Array {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const changed = i % 50 === 7 ? version : 0;
    lines.push(
      `Win.Trojan.Agent-${i}-${changed}:0:*:${(i * 2654435761) % 4294967296}${'f'.repeat(20)}`,
    );
  }
  return new TextEncoder().encode(`${lines.join('\n')}\n`);
}

/** The signed target of `bytes` (sha256 and sha512, as a publisher may list both). */
function signedTarget(bytes: Uint8Array): TargetFile {
  return new TargetFile({
    path: PATH,
    length: bytes.length,
    hashes: { sha256: sha256(bytes), sha512: sha512(bytes) },
  });
}

/** The `_delta/...` target the origin would list for `bytes` (a delta from `base` to `result`). */
function deltaTarget(bytes: Uint8Array, base: Uint8Array, result: Uint8Array): TargetFile {
  return deltaTargetFile(PATH, bytes, base, result);
}

function downloaded(bytes: Uint8Array, base: Uint8Array, result: Uint8Array): DownloadedDelta {
  const step = parseDeltaStep(deltaTarget(bytes, base, result));
  if (step === undefined) throw new Error('test delta target is malformed');
  return { step, bytes };
}

/** The sha256 of a file: comparing digests, not 300 KB arrays element by element, keeps the
 * assertions exact and fast. */
async function digestOf(path: string): Promise<string> {
  return sha256(new Uint8Array(await readFile(path)));
}

const V1 = database(4000, 1);
const V2 = database(4000, 2);
const V3 = database(4100, 3);
let d12: Uint8Array;
let d23: Uint8Array;
let dir: string;
let basePath: string;
let temps: number;

beforeAll(async () => {
  d12 = await encodeDelta(V1, V2);
  d23 = await encodeDelta(V2, V3);
});

beforeEach(async () => {
  dir = await makeTempDir('cairn-delta-apply-');
  basePath = join(dir, PATH);
  await writeFile(basePath, V1);
  temps = 0;
});

afterEach(async () => {
  await removeTempDir(dir);
});

const tempPathFor = () =>
  Promise.resolve(join(dir, `.${PATH}.cairn-${String(++temps).padStart(12, '0')}.tmp`));

describe('applyDeltas', () => {
  it('test inputs: the deltas are much smaller than the files', () => {
    expect(V1.length).toBeGreaterThan(200_000);
    expect(d12.length).toBeLessThan(V2.length / 20);
    expect(d23.length).toBeLessThan(V3.length / 20);
  });

  it('rebuilds the signed target into a temp file', async () => {
    const out = await applyDeltas({
      basePath,
      deltas: [downloaded(d12, V1, V2)],
      target: signedTarget(V2),
      tempPathFor,
    });
    expect(out).toBe(join(dir, `.${PATH}.cairn-000000000001.tmp`));
    expect(await digestOf(out)).toBe(sha256(V2));
    expect((await readdir(dir)).sort()).toEqual([`.${PATH}.cairn-000000000001.tmp`, PATH]);
  });

  it('applies a chain, and removes the intermediate file', async () => {
    const out = await applyDeltas({
      basePath,
      deltas: [downloaded(d12, V1, V2), downloaded(d23, V2, V3)],
      target: signedTarget(V3),
      tempPathFor,
    });
    expect(await digestOf(out)).toBe(sha256(V3));
    expect((await readdir(dir)).sort()).toEqual([`.${PATH}.cairn-000000000002.tmp`, PATH]);
  });

  async function expectDeltaFailed(
    deltas: DownloadedDelta[],
    target: TargetFile,
    fs?: InstallFileSystem,
  ): Promise<ClientError> {
    const e = await failure(
      applyDeltas({ basePath, deltas, target, tempPathFor, ...(fs === undefined ? {} : { fs }) }),
    );
    expect(e.code).toBe('DELTA_FAILED');
    expect(e.message.startsWith(`applying deltas to ${PATH} failed: `)).toBe(true);
    // No temp file left behind; the base untouched.
    expect(await readdir(dir)).toEqual([PATH]);
    expect(await digestOf(basePath)).toBe(sha256(V1));
    return e;
  }

  it('fails with DELTA_FAILED on a corrupted delta, leaving no temp file', async () => {
    const corrupted = d12.slice();
    const at = corrupted.length - 20;
    corrupted[at] = (corrupted[at] ?? 0) ^ 0xff;
    // Listed with the corrupted bytes' own hash, so only the codec can notice.
    const e = await expectDeltaFailed([downloaded(corrupted, V1, V2)], signedTarget(V2));
    expect(e.cause).toBeInstanceOf(DeltaError);
    expect((e.cause as DeltaError).code).toBe('CORRUPT');
  });

  it('fails with DELTA_FAILED when the delta bytes are not the listed ones', async () => {
    const listed = downloaded(d12, V1, V2);
    const other = d12.slice();
    other[100] = (other[100] ?? 0) ^ 1;
    const e = await expectDeltaFailed([{ step: listed.step, bytes: other }], signedTarget(V2));
    expect(e.cause).toBeInstanceOf(VerifyError);
    expect((e.cause as VerifyError).code).toBe('BAD_HASH');
  });

  it('fails with DELTA_FAILED when the installed file is not the delta base', async () => {
    await writeFile(basePath, V3.subarray(0, V1.length));
    const e = await failure(
      applyDeltas({
        basePath,
        deltas: [downloaded(d12, V1, V2)],
        target: signedTarget(V2),
        tempPathFor,
      }),
    );
    expect(e.code).toBe('DELTA_FAILED');
    expect((e.cause as DeltaError).code).toBe('BASE_MISMATCH');
    expect(await readdir(dir)).toEqual([PATH]);
  });

  it('checks the result against the signed target, not only the delta header', async () => {
    // A valid delta that rebuilds V2, applied for a signed target that is V3.
    const e = await expectDeltaFailed([downloaded(d12, V1, V2)], signedTarget(V3));
    expect(e.cause).toBeInstanceOf(VerifyError);
    // V2 is shorter than V3: the length check at the end says so.
    expect((e.cause as VerifyError).code).toBe('BAD_LENGTH');
    const sameLength = new TargetFile({
      path: PATH,
      length: V2.length,
      hashes: { sha256: sha256(V2), sha512: sha512(V1.subarray(0, V2.length)) },
    });
    const mismatch = await expectDeltaFailed([downloaded(d12, V1, V2)], sameLength);
    expect((mismatch.cause as VerifyError).code).toBe('BAD_HASH');
    expect((mismatch.cause as VerifyError).message).toContain('sha512');
  });

  it('fails with DELTA_FAILED when the disk is full, leaving no temp file', async () => {
    const full: InstallFileSystem = {
      ...nodeInstallFileSystem,
      async createFile(path) {
        const writer = await nodeInstallFileSystem.createFile(path);
        return {
          ...writer,
          write: () =>
            Promise.reject(
              Object.assign(new Error('ENOSPC: no space left on device, write'), {
                code: 'ENOSPC',
              }),
            ),
        };
      },
    };
    const e = await expectDeltaFailed([downloaded(d12, V1, V2)], signedTarget(V2), full);
    expect(e.message).toBe(
      `applying deltas to ${PATH} failed: ENOSPC: no space left on device, write`,
    );
  });

  it('fails with DELTA_FAILED when given no deltas', async () => {
    const e = await expectDeltaFailed([], signedTarget(V2));
    expect(e.message).toBe(`applying deltas to ${PATH} failed: no deltas to apply`);
  });
});

describe('planned, applied and installed', () => {
  it('updates an installed file through a delta and can roll it back', async () => {
    const installDir = join(dir, 'clamav');
    const stateDir = join(dir, 'state');
    const dt = deltaTarget(d12, V1, V2);
    const targets = new Map([
      [PATH, signedTarget(V2)],
      [dt.path, dt],
    ]);
    await withStateLock(stateDir, async (lock) => {
      const installation = await Installation.open({ installDir, stateDir, lock });
      const first = await installation.tempPathFor(PATH);
      await writeFile(first, V1);
      await installation.install(PATH, first, {
        sha256: sha256(V1),
        length: V1.length,
        version: 1,
      });

      const installed = await installation.installed(PATH);
      const plan = planTarget(signedTarget(V2), installed, targets);
      if (plan.kind !== 'delta') throw new Error(`expected a delta plan, got ${plan.kind}`);
      expect(plan.bytesSaved).toBe(V2.length - d12.length);
      const temp = await applyDeltas({
        basePath: installation.filePath(PATH),
        deltas: plan.steps.map((step) => ({ step, bytes: d12 })),
        target: plan.target,
        tempPathFor: () => installation.tempPathFor(PATH),
      });
      await installation.install(PATH, temp, { sha256: sha256(V2), length: V2.length, version: 2 });
      expect(await digestOf(join(installDir, PATH))).toBe(sha256(V2));
      await installation.rollback(PATH);
      expect(await digestOf(join(installDir, PATH))).toBe(sha256(V1));
    });
  });
});
