/**
 * The repository over time (memory store, real HTTP, a clock the test moves): key changes
 * through a pending root, timestamp and snapshot re-signed before they expire, withdrawal as
 * a new version, garbage collection, and the operator endpoints.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { Ed25519Signer } from '@cairn/verify/signer';
import { proposeRootChange } from '../src/admin.js';
import { createLogger } from '../src/log.js';
import { OriginService } from '../src/service.js';
import { isOriginError } from '../src/errors.js';
import { readHead } from '../src/repository.js';
import { collectGarbage } from '../src/gc.js';
import {
  TEST_POLICY,
  clientView,
  ref,
  startTestOrigin,
  writeTree,
  type TestOrigin,
} from './support/origin-fixture.js';

const DAY = 86_400_000;
let clock: Date;
let origin: TestOrigin;
let dir: string;

beforeEach(async () => {
  clock = new Date();
  origin = await startTestOrigin({ now: () => clock });
  dir = await mkdtemp(join(tmpdir(), 'cairn-lifecycle-'));
});
afterEach(async () => {
  await origin.close();
  await rm(dir, { recursive: true, force: true });
});

async function release(
  files: Record<string, string>,
  signers = [origin.keys.alice, origin.keys.bob],
) {
  await rm(dir, { recursive: true, force: true });
  await writeTree(dir, files);
  const [first, ...rest] = signers;
  if (first === undefined) throw new Error('no signer');
  const draft = await origin.client(first).push(dir);
  let result = await origin.client(first).sign(draft.id, dir);
  for (const s of rest) result = await origin.client(s).sign(draft.id, dir);
  return { id: draft.id, result };
}

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    return isOriginError(error) ? error.code : String(error);
  }
}

const view = () => clientView(origin.store, () => clock);
const head = () => readHead(origin.store, origin.service.ctx.roots);

describe('key changes go through a pending root', () => {
  test('adding a publisher publishes the new root at once; the new publisher signs', async () => {
    await release({ a: '1' });
    await proposeRootChange(
      {
        store: origin.store,
        roots: origin.service.ctx.roots,
        now: clock,
        rootExpiry: TEST_POLICY.expiry.root,
      },
      { kind: 'add-publisher', publisher: ref(origin.keys.carol) },
      origin.keys.root,
    );
    expect((await origin.service.status()).pendingRoot?.version).toBe(2);
    const tick = await origin.service.tick();
    expect(tick.rootVersion).toBe(2);
    expect((await head()).root.signed.version).toBe(2);
    const { result } = await release({ a: '2' }, [origin.keys.carol, origin.keys.alice]);
    expect(result.published?.targetsVersion).toBe(2);
    expect(await view()).toEqual({ version: 2, files: { a: '2' } });
  });

  test('revoking a publisher whose signature the current release needs waits for the next release', async () => {
    await release({ a: '1' });
    const roots = {
      store: origin.store,
      roots: origin.service.ctx.roots,
      now: clock,
      rootExpiry: TEST_POLICY.expiry.root,
    };
    await proposeRootChange(
      roots,
      { kind: 'add-publisher', publisher: ref(origin.keys.carol) },
      origin.keys.root,
    );
    await proposeRootChange(
      roots,
      { kind: 'revoke-publisher', keyid: origin.keys.alice.keyid },
      origin.keys.root,
    );
    // Targets v1 carries alice's and bob's signatures: under the new root only bob's counts.
    expect((await origin.service.tick()).rootVersion).toBeUndefined();
    expect((await head()).root.signed.version).toBe(1);
    expect(await view()).toEqual({ version: 1, files: { a: '1' } });
    // Alice is refused at once.
    await writeTree(dir, { a: '2' });
    expect(await code(origin.client(origin.keys.alice).push(dir))).toBe('REVOKED_KEY');
    const { result } = await release({ a: '2' }, [origin.keys.bob, origin.keys.carol]);
    expect(result.published).toEqual({ targetsVersion: 2, snapshotVersion: 2 });
    expect((await head()).root.signed.version).toBe(2);
    expect((await origin.service.status()).pendingRoot).toBeUndefined();
    expect(await view()).toEqual({ version: 2, files: { a: '2' } });
  });

  test('an online key rotation waits until the origin holds the new key', async () => {
    await release({ a: '1' });
    const next = await Ed25519Signer.generate();
    await proposeRootChange(
      {
        store: origin.store,
        roots: origin.service.ctx.roots,
        now: clock,
        rootExpiry: TEST_POLICY.expiry.root,
      },
      { kind: 'rotate-online', role: 'timestamp', key: ref(next) },
      origin.keys.root,
    );
    const refused = await origin.service.tick();
    expect(refused.rootVersion).toBeUndefined();
    expect(refused.errors.join()).toContain('configure the new key and restart');
    expect((await head()).root.signed.version).toBe(1);
    const restarted = new OriginService({
      store: origin.store,
      online: { snapshot: [origin.keys.snapshot], timestamp: [origin.keys.timestamp, next] },
      policy: TEST_POLICY,
      authWindowMs: 300_000,
      logger: createLogger({ write: () => undefined }),
      now: () => clock,
      logKey: origin.keys.log,
    });
    expect((await restarted.tick()).rootVersion).toBe(2);
    const ts = (await head()).published?.timestamp;
    expect(ts?.signatures.map((s) => s.keyid).sort()).toEqual(
      [origin.keys.timestamp.keyid, next.keyid].sort(),
    );
    expect(await view()).toEqual({ version: 1, files: { a: '1' } });
  });

  test('a root change needs a threshold of root keys', async () => {
    const [one] = origin.keys.root;
    expect(
      await code(
        proposeRootChange(
          {
            store: origin.store,
            roots: origin.service.ctx.roots,
            now: clock,
            rootExpiry: TEST_POLICY.expiry.root,
          },
          { kind: 'add-publisher', publisher: ref(origin.keys.carol) },
          one === undefined ? [] : [one],
        ),
      ),
    ).toBe('CONFIG_INVALID');
    expect((await origin.service.status()).pendingRoot).toBeUndefined();
  });
});

describe('scheduled work', () => {
  test('re-signs timestamp and snapshot before they expire; clients never see them expire', async () => {
    await release({ a: '1' });
    expect((await origin.service.tick()).timestampVersion).toBeUndefined();
    clock = new Date(clock.getTime() + 0.6 * DAY);
    const first = await origin.service.tick();
    expect(first.timestampVersion).toBe(2);
    expect(first.snapshotVersion).toBeUndefined();
    clock = new Date(clock.getTime() + 4 * DAY);
    const second = await origin.service.tick();
    expect(second.snapshotVersion).toBe(2);
    const h = await head();
    expect(h.published?.snapshot.signed.version).toBe(2);
    expect(h.published?.targets.signed.version).toBe(1);
    expect(await view()).toEqual({ version: 1, files: { a: '1' } });
  });

  test('reports targets nearing expiry in status and metrics', async () => {
    await release({ a: '1' });
    expect((await origin.service.status()).targetsExpiringSoon).toBe(false);
    clock = new Date(clock.getTime() + 80 * DAY);
    const status = await origin.service.status();
    expect(status.targetsExpiringSoon).toBe(true);
    // Expiry is whole seconds, 90 days after the push: 10 days left, less the push's milliseconds.
    expect(status.targets?.expiresInSeconds).toBe(
      Math.floor((Date.parse(status.targets?.expires ?? '') - clock.getTime()) / 1000),
    );
    expect(10 * 86400 - (status.targets?.expiresInSeconds ?? 0)).toBeLessThanOrEqual(1);
    const metrics = await (await fetch(`${origin.url}/metrics`)).text();
    expect(metrics).toContain('cairn_origin_targets_expiring 1\n');
    expect(metrics).toContain(
      `cairn_origin_metadata_expires_seconds{role="targets"} ${status.targets?.expiresInSeconds}\n`,
    );
  });
});

describe('withdrawal and garbage collection', () => {
  test('withdrawing is a new version whose content is an earlier one', async () => {
    await release({ a: 'good' });
    await release({ a: 'bad' });
    const alice = origin.client(origin.keys.alice);
    const draft = await alice.withdraw(1);
    expect(draft).toMatchObject({
      kind: 'withdraw',
      fromVersion: 1,
      targetsVersion: 3,
      state: 'draft',
    });
    await rm(dir, { recursive: true, force: true });
    await writeTree(dir, { a: 'good' });
    await alice.sign(draft.id, dir);
    const result = await origin.client(origin.keys.bob).sign(draft.id, dir);
    expect(result.published).toEqual({ targetsVersion: 3, snapshotVersion: 3 });
    expect(await view()).toEqual({ version: 3, files: { a: 'good' } });
  });

  test('removes blobs no retained release references, and nothing a client needs', async () => {
    await release({ a: '1', keep: 'k' });
    await release({ a: '2', keep: 'k' });
    await release({ a: '3', keep: 'k' });
    clock = new Date(clock.getTime() + 2 * 3600_000);
    const ctx = {
      ...origin.service.ctx,
      policy: { ...TEST_POLICY, retention: { releases: 1, graceSeconds: 0 } },
    };
    const before = (await origin.store.list({ prefix: 'targets/' })).objects.map((o) => o.key);
    const report = await collectGarbage(ctx);
    const after = (await origin.store.list({ prefix: 'targets/' })).objects.map((o) => o.key);
    expect(report.retainedVersions).toEqual([3]);
    expect(report.deletedBlobs.length).toBeGreaterThan(0);
    expect(after).toEqual(before.filter((k) => !report.deletedBlobs.includes(k)));
    expect(report.deletedBlobs.every((k) => !k.endsWith('.keep'))).toBe(true);
    expect(await view()).toEqual({ version: 3, files: { a: '3', keep: 'k' } });
  });
});

describe('operator endpoints', () => {
  test('/health answers ok, /v1/status the versions', async () => {
    await release({ a: '1' });
    expect(await (await fetch(`${origin.url}/health`)).json()).toEqual({ status: 'ok' });
    const status = (await (await fetch(`${origin.url}/v1/status`)).json()) as Record<
      string,
      { version: number }
    >;
    expect([
      status.root?.version,
      status.targets?.version,
      status.snapshot?.version,
      status.timestamp?.version,
    ]).toEqual([1, 1, 1, 1]);
  });

  test('audit events record push, sign and publish with hashes', async () => {
    const { id } = await release({ a: '1' });
    const events = (await origin.service.audit.list()).filter(
      (e) => e.release === id || e.details?.release === id,
    );
    expect(events.map((e) => [e.action, e.outcome])).toEqual([
      ['push', 'ok'],
      ['upload', 'ok'],
      ['draft', 'ok'],
      ['sign', 'ok'],
      ['sign', 'ok'],
      ['publish', 'ok'],
    ]);
  });
});
