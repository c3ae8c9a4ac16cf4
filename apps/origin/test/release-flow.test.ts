/**
 * The two-person rule end to end over real HTTP (memory store): push, show, sign by one
 * publisher (not enough), by the same one again (counts once), by a second (published), and
 * a TUF client then sees exactly the pushed files.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { isOriginError } from '../src/errors.js';
import { TIMESTAMP_KEY } from '../src/layout.js';
import {
  clientView,
  startTestOrigin,
  writeTree,
  type TestOrigin,
} from './support/origin-fixture.js';

let origin: TestOrigin;
let dir: string;

beforeEach(async () => {
  origin = await startTestOrigin();
  dir = await mkdtemp(join(tmpdir(), 'cairn-release-'));
});
afterEach(async () => {
  await origin.close();
  await rm(dir, { recursive: true, force: true });
});

async function rejectionCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return isOriginError(error) ? error.code : `not an OriginError: ${String(error)}`;
  }
  return 'resolved';
}

describe('a release under the two-person rule', () => {
  test('is published only when a second publisher signs, and clients then see it whole', async () => {
    await writeTree(dir, { 'main.cvd': 'signatures v1\n'.repeat(1000), 'daily/a.cld': 'daily 1' });
    const alice = origin.client(origin.keys.alice);
    const bob = origin.client(origin.keys.bob);

    const draft = await alice.push(dir);
    expect(draft.state).toBe('draft');
    expect(draft.files.map((f) => [f.path, f.change])).toEqual([
      ['daily/a.cld', 'added'],
      ['main.cvd', 'added'],
    ]);
    expect(draft.targetsVersion).toBe(1);
    expect(await origin.store.head(TIMESTAMP_KEY)).toBeUndefined();

    const first = await alice.sign(draft.id, dir);
    expect(first).toMatchObject({ counted: true, signatures: 1, threshold: 2 });
    expect(first.published).toBeUndefined();
    const again = await alice.sign(draft.id, dir);
    expect(again).toMatchObject({ counted: false, signatures: 1, threshold: 2 });
    expect(await origin.store.head(TIMESTAMP_KEY)).toBeUndefined();

    const second = await bob.sign(draft.id, dir);
    expect(second).toMatchObject({
      counted: true,
      signatures: 2,
      published: { targetsVersion: 1, snapshotVersion: 1 },
    });
    expect(await clientView(origin.store)).toEqual({
      version: 1,
      files: { 'main.cvd': 'signatures v1\n'.repeat(1000), 'daily/a.cld': 'daily 1' },
    });
    expect((await alice.show(draft.id)).state).toBe('published');
  });

  test('the second release carries deltas, and show reports what changed', async () => {
    const alice = origin.client(origin.keys.alice);
    const bob = origin.client(origin.keys.bob);
    const lines = (n: number) =>
      Array.from({ length: 5000 }, (_, i) => `sig-${i}-${i === 77 ? n : 0}`).join('\n');
    await writeTree(dir, { 'main.cvd': lines(1), 'old.txt': 'going away' });
    const r1 = await alice.push(dir);
    await alice.sign(r1.id, dir);
    await bob.sign(r1.id, dir);

    await rm(join(dir, 'old.txt'));
    await writeTree(dir, { 'main.cvd': lines(2), 'new.txt': 'arrived' });
    const r2 = await bob.push(dir);
    expect(r2.comparedTo).toBe(1);
    expect(r2.files.map((f) => [f.path, f.change, f.deltas.length])).toEqual([
      ['main.cvd', 'changed', 1],
      ['new.txt', 'added', 0],
      ['old.txt', 'removed', 0],
    ]);
    const delta = r2.files[0]?.deltas[0];
    expect(delta?.baseVersion).toBe(1);
    expect(delta?.length).toBeLessThan(1000);
    await alice.sign(r2.id, dir);
    const published = await bob.sign(r2.id, dir);
    expect(published.published).toEqual({ targetsVersion: 2, snapshotVersion: 2 });
    const view = await clientView(origin.store);
    expect(view).toEqual({ version: 2, files: { 'main.cvd': lines(2), 'new.txt': 'arrived' } });
  });

  test('sign refuses when the local copy differs from the draft, and sends nothing', async () => {
    await writeTree(dir, { 'main.cvd': 'v1' });
    const alice = origin.client(origin.keys.alice);
    const draft = await alice.push(dir);
    await writeFile(join(dir, 'main.cvd'), 'v1 but changed');
    expect(await rejectionCode(alice.sign(draft.id, dir))).toBe('HASH_MISMATCH');
    expect((await alice.show(draft.id)).signatures).toEqual([]);
  });

  test('a signature over a superseded draft is refused', async () => {
    await writeTree(dir, { 'main.cvd': 'v1' });
    const alice = origin.client(origin.keys.alice);
    const old = await alice.push(dir);
    await writeTree(dir, { 'main.cvd': 'v1 fixed' });
    const current = await alice.push(dir);
    expect((await alice.show(old.id)).state).toBe('superseded');
    await writeTree(dir, { 'main.cvd': 'v1' });
    expect(await rejectionCode(alice.sign(old.id, dir))).toBe('STALE_DRAFT');
    expect((await alice.show(current.id)).state).toBe('draft');
  });

  test('an unknown key is refused with 401 UNKNOWN_KEY and nothing is stored', async () => {
    await writeTree(dir, { 'main.cvd': 'v1' });
    const carol = origin.client(origin.keys.carol);
    expect(await rejectionCode(carol.push(dir))).toBe('UNKNOWN_KEY');
    const releases = await origin.store.list({ prefix: '_origin/releases/' });
    expect(releases.objects).toEqual([]);
  });
});
