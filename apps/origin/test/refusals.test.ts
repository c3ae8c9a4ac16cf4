/**
 * Bad input and bad requests over real HTTP: each gets its status and code, and nothing is
 * stored (memory store, inspected after each refusal).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Signer } from '@cairn/verify/signer';
import { contentSha256, signRequest } from '../src/request-auth.js';
import { startTestOrigin, type TestOrigin } from './support/origin-fixture.js';

let origin: TestOrigin;
beforeAll(async () => {
  origin = await startTestOrigin();
});
afterAll(() => origin.close());

async function send(
  signer: Signer,
  method: string,
  path: string,
  body?: string,
  options: { now?: Date; nonce?: string; sha?: string; headers?: Record<string, string> } = {},
): Promise<{
  status: number;
  body: { error?: string; message?: string } & Record<string, unknown>;
}> {
  const bytes = new TextEncoder().encode(body ?? '');
  const headers = await signRequest(
    signer,
    { method, path, contentSha256: options.sha ?? contentSha256(bytes) },
    {
      ...(options.now ? { now: options.now } : {}),
      ...(options.nonce ? { nonce: options.nonce } : {}),
    },
  );
  const response = await fetch(`${origin.url}${path}`, {
    method,
    headers: { ...headers, ...options.headers },
    ...(body === undefined ? {} : { body: bytes }),
  });
  return { status: response.status, body: (await response.json()) as never };
}

const manifest = (files: unknown) => JSON.stringify({ files });
const file = (path: string, extra: Record<string, unknown> = {}) => ({
  path,
  length: 1,
  sha256: 'a'.repeat(64),
  ...extra,
});

async function privateObjects(): Promise<string[]> {
  const page = await origin.store.list({ prefix: '_origin/releases/' });
  return page.objects.map((o) => o.key);
}

describe('publisher requests are refused with a code, and nothing is stored', () => {
  test.each([
    ['absolute name', [file('/etc/passwd')], 400, 'INVALID_NAME'],
    ['climbing name', [file('a/../../x')], 400, 'INVALID_NAME'],
    ['backslash', [file('a\\b')], 400, 'INVALID_NAME'],
    ['reserved delta directory', [file('_delta/x')], 400, 'INVALID_NAME'],
    ['file and directory', [file('a'), file('a/b')], 400, 'INVALID_NAME'],
    ['duplicate', [file('a'), file('a')], 400, 'DUPLICATE_NAME'],
    ['empty release', [], 400, 'EMPTY_RELEASE'],
    ['unknown field', [file('a', { mode: 0o644 })], 400, 'UNKNOWN_FIELD'],
    ['bad hash', [file('a', { sha256: 'xyz' })], 400, 'MALFORMED'],
    ['oversized file', [file('a', { length: 2 ** 31 })], 413, 'TOO_LARGE'],
  ])('%s', async (_name, files, status, code) => {
    const result = await send(origin.keys.alice, 'POST', '/v1/releases', manifest(files));
    expect(result).toMatchObject({ status, body: { error: code } });
    expect(await privateObjects()).toEqual([]);
  });

  test('an unknown top-level field', async () => {
    const result = await send(
      origin.keys.alice,
      'POST',
      '/v1/releases',
      JSON.stringify({ files: [file('a')], channel: 'x' }),
    );
    expect(result).toMatchObject({
      status: 400,
      body: { error: 'UNKNOWN_FIELD', message: 'request.channel: unknown field' },
    });
  });

  test('a body that is not JSON', async () => {
    const result = await send(origin.keys.alice, 'POST', '/v1/releases', '{"files": [');
    expect(result).toMatchObject({ status: 400, body: { error: 'MALFORMED' } });
  });

  test('a body other than the one signed', async () => {
    const result = await send(origin.keys.alice, 'POST', '/v1/releases', manifest([file('a')]), {
      sha: contentSha256(new TextEncoder().encode('something else')),
    });
    expect(result).toMatchObject({ status: 400, body: { error: 'HASH_MISMATCH' } });
    expect(await privateObjects()).toEqual([]);
  });

  test('an unknown key: 401 UNKNOWN_KEY', async () => {
    const result = await send(origin.keys.carol, 'POST', '/v1/releases', manifest([file('a')]));
    expect(result).toMatchObject({ status: 401, body: { error: 'UNKNOWN_KEY' } });
  });

  test('an expired request: 401 EXPIRED_REQUEST', async () => {
    const result = await send(origin.keys.alice, 'POST', '/v1/releases', manifest([file('a')]), {
      now: new Date(Date.now() - 10 * 60_000),
    });
    expect(result).toMatchObject({ status: 401, body: { error: 'EXPIRED_REQUEST' } });
    expect(await privateObjects()).toEqual([]);
  });

  test('a replayed request: 401 REPLAYED_REQUEST, and the first one alone took effect', async () => {
    const nonce = 'ab'.repeat(16);
    const now = new Date();
    const first = await send(origin.keys.alice, 'POST', '/v1/releases', manifest([file('r')]), {
      now,
      nonce,
    });
    expect(first.status).toBe(201);
    const before = await privateObjects();
    const replay = await send(origin.keys.alice, 'POST', '/v1/releases', manifest([file('r')]), {
      now,
      nonce,
    });
    expect(replay).toMatchObject({ status: 401, body: { error: 'REPLAYED_REQUEST' } });
    expect(await privateObjects()).toEqual(before);
  });

  test('no authentication at all: 401 MISSING_AUTH', async () => {
    const response = await fetch(`${origin.url}/v1/releases`, {
      method: 'POST',
      body: manifest([file('a')]),
    });
    expect(response.status).toBe(401);
    expect(((await response.json()) as { error: string }).error).toBe('MISSING_AUTH');
  });

  test.each([
    ['other bytes than declared', 'jello', 'HASH_MISMATCH'],
    ['more bytes than declared', 'hello, and more', 'LENGTH_MISMATCH'],
  ])('an upload with %s: %s, nothing staged', async (_name, sent, code) => {
    const bytes = new TextEncoder().encode('hello');
    const created = await send(
      origin.keys.alice,
      'POST',
      '/v1/releases',
      manifest([{ path: 'h', length: 5, sha256: contentSha256(bytes) }]),
    );
    const id = created.body.id as string;
    const headers = await signRequest(origin.keys.alice, {
      method: 'PUT',
      path: `/v1/releases/${id}/files/0`,
      contentSha256: contentSha256(bytes),
    });
    const response = await fetch(`${origin.url}/v1/releases/${id}/files/0`, {
      method: 'PUT',
      headers,
      body: new TextEncoder().encode(sent),
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toBe(code);
    expect(
      (await privateObjects()).filter((k) => k.startsWith(`_origin/releases/${id}/files/`)),
    ).toEqual([]);
  });

  test('completing a release with files missing: 409 RELEASE_STATE', async () => {
    const created = await send(origin.keys.alice, 'POST', '/v1/releases', manifest([file('m')]));
    const id = created.body.id as string;
    const result = await send(origin.keys.alice, 'POST', `/v1/releases/${id}/complete`, '{}');
    expect(result).toMatchObject({ status: 409, body: { error: 'RELEASE_STATE' } });
  });

  test('an unknown release: 404 NOT_FOUND', async () => {
    const result = await send(origin.keys.alice, 'GET', '/v1/releases/20260101T000000Z-00000000');
    expect(result).toMatchObject({ status: 404, body: { error: 'NOT_FOUND' } });
  });

  test('every refusal is an audit event with who and why', async () => {
    await send(origin.keys.carol, 'POST', '/v1/releases', manifest([file('audit-me')]));
    const events = await origin.service.audit.list();
    const refusal = events.filter((e) => e.action === 'refusal' && e.code === 'UNKNOWN_KEY').at(-1);
    expect(refusal).toMatchObject({ outcome: 'refused', actor: origin.keys.carol.keyid });
  });
});
