import { describe, expect, it } from 'vitest';
import type { BlobStore, ListOptions, ListPage } from '@cairn/storage/blob-store';
import { StorageError } from '@cairn/storage/errors';
import { MemoryBlobStore } from '@cairn/storage/memory-store';
import { fromHex, utf8 } from '@cairn/verify/encoding';
import type { Key } from '@cairn/verify/keys';
import { Ed25519Signer } from '@cairn/verify/signer';
import { NONCES_PREFIX } from './layout.js';
import {
  EMPTY_SHA256,
  NonceStore,
  canonicalRequest,
  contentSha256,
  requestTarget,
  signRequest,
  verifyRequest,
  type KeyLookup,
} from './request-auth.js';

// RFC 8032 section 7.1, TEST 1, so the publisher's keyid is a fixed value.
const SECRET = fromHex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60');
const NOW = new Date('2026-11-23T10:00:00Z');
const WINDOW_MS = 300_000;
// 1795428000000 ms / 300000 ms: NOW starts a bucket, which the prune boundaries rely on.
const NOW_BUCKET = 5984760;
const NONCE = '00112233445566778899aabbccddeeff';
const BODY = utf8('{"files":[]}');
const REQUEST = { method: 'POST', path: '/v1/releases?draft=1' };

interface Publishers {
  readonly publisher: Ed25519Signer;
  readonly colleague: Ed25519Signer;
  readonly former: Ed25519Signer;
  readonly stranger: Ed25519Signer;
  readonly lookupKey: KeyLookup;
}

async function publishers(): Promise<Publishers> {
  if (SECRET === undefined) throw new Error('bad test secret');
  const publisher = await Ed25519Signer.fromSecretKey(SECRET);
  const colleague = await Ed25519Signer.generate();
  const former = await Ed25519Signer.generate();
  const stranger = await Ed25519Signer.generate();
  const active = new Map<string, Key>([
    [publisher.keyid, publisher.publicKey],
    [colleague.keyid, colleague.publicKey],
  ]);
  const lookupKey: KeyLookup = (keyid) => {
    if (keyid === former.keyid) return { status: 'revoked' };
    const key = active.get(keyid);
    return key === undefined ? undefined : { status: 'active', key };
  };
  return { publisher, colleague, former, stranger, lookupKey };
}

function headerReader(headers: Record<string, string>): (name: string) => string | undefined {
  return (name) => headers[name];
}

async function setup(store: BlobStore = new MemoryBlobStore()) {
  const keys = await publishers();
  const nonces = new NonceStore(store, WINDOW_MS);
  const context = { lookupKey: keys.lookupKey, nonces, now: NOW, windowMs: WINDOW_MS };
  const headers = await signRequest(
    keys.publisher,
    { ...REQUEST, contentSha256: contentSha256(BODY) },
    { now: NOW, nonce: NONCE },
  );
  const send = (
    sent: Record<string, string>,
    request: { method: string; path: string } = REQUEST,
    now: Date = NOW,
  ) => verifyRequest(headerReader(sent), request, { ...context, now });
  return { ...keys, store, nonces, headers, send };
}

async function storedKeys(store: BlobStore, prefix = NONCES_PREFIX): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.list({ prefix, cursor });
    keys.push(...page.objects.map((o) => o.key));
    cursor = page.cursor;
  } while (cursor !== undefined);
  return keys;
}

/**
 * A fake store whose reads, writes, deletes and listings fail as an unreachable S3 endpoint's
 * do. A subclass rather than an object literal, so methods added to BlobStore later still type.
 */
function unavailableStore(): BlobStore {
  const fail = () => Promise.reject(new StorageError('UNAVAILABLE', 'connect ECONNREFUSED'));
  return new (class extends MemoryBlobStore {
    override get = fail;
    override head = fail;
    override put = fail;
    override delete = fail;
    override list = fail;
  })();
}

/** A fake store that lists two objects per page, so that paging is exercised. */
class TwoPerPageStore extends MemoryBlobStore {
  override list(options: ListOptions): Promise<ListPage> {
    return super.list({ ...options, limit: 2 });
  }
}

describe('canonicalRequest', () => {
  it('joins the fields with newlines after the version line, upper-casing the method', () => {
    expect(
      canonicalRequest({
        method: 'post',
        path: '/v1/releases?draft=1',
        time: '2026-11-23T10:00:00Z',
        nonce: NONCE,
        contentSha256: EMPTY_SHA256,
        keyid: 'ab'.repeat(32),
      }),
    ).toBe(
      'cairn-request-v1\nPOST\n/v1/releases?draft=1\n2026-11-23T10:00:00Z\n' +
        `${NONCE}\n${EMPTY_SHA256}\n${'ab'.repeat(32)}`,
    );
  });

  it('refuses a path with a line break, which could shift the fields', () => {
    expect(() =>
      canonicalRequest({
        method: 'GET',
        path: '/v1\n/x',
        time: '2026-11-23T10:00:00Z',
        nonce: NONCE,
        contentSha256: EMPTY_SHA256,
        keyid: 'ab'.repeat(32),
      }),
    ).toThrow(expect.objectContaining({ code: 'MALFORMED' }));
  });
});

describe('helpers', () => {
  it('hashes the empty body to the well-known sha256', () => {
    expect(contentSha256(new Uint8Array())).toBe(EMPTY_SHA256);
    expect(EMPTY_SHA256).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('takes the request target as fetch sends it: encoded path and query, no fragment', () => {
    expect(requestTarget('https://origin.example/v1/a b?x=1#top')).toBe('/v1/a%20b?x=1');
    expect(requestTarget(new URL('https://origin.example'))).toBe('/');
  });
});

describe('signRequest', () => {
  it('returns the five headers, with the time in whole seconds', async () => {
    const { publisher } = await publishers();
    const sha = contentSha256(BODY);
    const headers = await signRequest(
      publisher,
      { ...REQUEST, contentSha256: sha },
      { now: new Date('2026-11-23T10:00:00.789Z'), nonce: NONCE },
    );
    expect(Object.keys(headers).sort()).toEqual([
      'cairn-content-sha256',
      'cairn-keyid',
      'cairn-nonce',
      'cairn-signature',
      'cairn-time',
    ]);
    expect(headers['cairn-keyid']).toBe(publisher.keyid);
    expect(headers['cairn-time']).toBe('2026-11-23T10:00:00Z');
    expect(headers['cairn-nonce']).toBe(NONCE);
    expect(headers['cairn-content-sha256']).toBe(sha);
    const signed = canonicalRequest({
      ...REQUEST,
      time: '2026-11-23T10:00:00Z',
      nonce: NONCE,
      contentSha256: sha,
      keyid: publisher.keyid,
    });
    expect(await publisher.publicKey.verify(headers['cairn-signature'] ?? '', utf8(signed))).toBe(
      true,
    );
  });

  it('draws a fresh 16-byte nonce for each request', async () => {
    const { publisher } = await publishers();
    const request = { ...REQUEST, contentSha256: EMPTY_SHA256 };
    const a = await signRequest(publisher, request);
    const b = await signRequest(publisher, request);
    expect(a['cairn-nonce']).toMatch(/^[0-9a-f]{32}$/);
    expect(a['cairn-nonce']).not.toBe(b['cairn-nonce']);
  });

  it('refuses a content hash that is not lowercase hex sha256', async () => {
    const { publisher } = await publishers();
    await expect(
      signRequest(publisher, { ...REQUEST, contentSha256: EMPTY_SHA256.toUpperCase() }),
    ).rejects.toMatchObject({ code: 'MALFORMED' });
  });
});

describe('verifyRequest', () => {
  it('accepts a good request, returns the keyid and body hash, and records the nonce', async () => {
    const { publisher, store, headers, send } = await setup();
    expect(await send(headers)).toEqual({
      keyid: publisher.keyid,
      contentSha256: contentSha256(BODY),
    });
    expect(await storedKeys(store)).toEqual([
      `_origin/nonces/00000${NOW_BUCKET}/${publisher.keyid}.${NONCE}`,
    ]);
  });

  it('accepts a method signed in lower case, as fetch upper-cases it', async () => {
    const { publisher, send } = await setup();
    const headers = await signRequest(
      publisher,
      { method: 'post', path: REQUEST.path, contentSha256: EMPTY_SHA256 },
      { now: NOW },
    );
    await expect(send(headers)).resolves.toMatchObject({ keyid: publisher.keyid });
  });

  it.each(['cairn-keyid', 'cairn-time', 'cairn-nonce', 'cairn-content-sha256', 'cairn-signature'])(
    'answers MISSING_AUTH naming %s when it is absent',
    async (name) => {
      const { store, headers, send } = await setup();
      const { [name]: _, ...rest } = headers;
      await expect(send(rest)).rejects.toMatchObject({
        code: 'MISSING_AUTH',
        message: `${name}: the header is missing`,
      });
      expect(await storedKeys(store)).toEqual([]);
    },
  );

  it.each([
    ['cairn-keyid', 'AB'.repeat(32), '64 lowercase hex characters'],
    ['cairn-time', '2026-11-23T10:00:00.000Z', 'a UTC time like 2026-11-23T10:00:00Z'],
    ['cairn-time', '2026-11-23T11:00:00+01:00', 'a UTC time like 2026-11-23T10:00:00Z'],
    ['cairn-nonce', NONCE.slice(2), '32 lowercase hex characters'],
    ['cairn-content-sha256', 'sha256:00', '64 lowercase hex characters'],
    ['cairn-signature', 'abc', 'a lowercase hex signature'],
  ])('answers MISSING_AUTH to a malformed %s (%s)', async (name, value, expected) => {
    const { headers, send } = await setup();
    await expect(send({ ...headers, [name]: value })).rejects.toMatchObject({
      code: 'MISSING_AUTH',
      message: `${name}: expected ${expected}, received ${JSON.stringify(value)}`,
    });
  });

  it('answers MISSING_AUTH to a time that is no date on the calendar', async () => {
    const { headers, send } = await setup();
    await expect(send({ ...headers, 'cairn-time': '2026-02-30T10:00:00Z' })).rejects.toMatchObject({
      code: 'MISSING_AUTH',
      message: 'cairn-time: 2026-02-30T10:00:00Z is not a calendar time',
    });
  });

  it('answers UNKNOWN_KEY to a key that was never a publisher', async () => {
    const { stranger, send } = await setup();
    const headers = await signRequest(
      stranger,
      { ...REQUEST, contentSha256: EMPTY_SHA256 },
      { now: NOW },
    );
    await expect(send(headers)).rejects.toMatchObject({
      code: 'UNKNOWN_KEY',
      message: `${stranger.keyid} is not the key of any publisher`,
    });
  });

  it('answers REVOKED_KEY to a revoked publisher, even when its signature is good', async () => {
    const { former, store, send } = await setup();
    const headers = await signRequest(
      former,
      { ...REQUEST, contentSha256: EMPTY_SHA256 },
      { now: NOW },
    );
    await expect(send(headers)).rejects.toMatchObject({
      code: 'REVOKED_KEY',
      message: `${former.keyid} was a publisher's key and has been revoked`,
    });
    expect(await storedKeys(store)).toEqual([]);
  });

  describe('the time window, inclusive at both edges', () => {
    it('accepts a request exactly windowMs old', async () => {
      const { headers, send } = await setup();
      await expect(
        send(headers, REQUEST, new Date(NOW.getTime() + WINDOW_MS)),
      ).resolves.toBeDefined();
    });

    it('accepts a request exactly windowMs ahead', async () => {
      const { headers, send } = await setup();
      await expect(
        send(headers, REQUEST, new Date(NOW.getTime() - WINDOW_MS)),
      ).resolves.toBeDefined();
    });

    it('refuses a request 1 ms older than the window, giving the skew', async () => {
      const { store, headers, send } = await setup();
      await expect(
        send(headers, REQUEST, new Date(NOW.getTime() + WINDOW_MS + 1)),
      ).rejects.toMatchObject({
        code: 'EXPIRED_REQUEST',
        message:
          "cairn-time 2026-11-23T10:00:00Z is 300.001 s behind the origin's clock " +
          '(2026-11-23T10:05:00.001Z); at most 300 s is accepted',
      });
      expect(await storedKeys(store)).toEqual([]);
    });

    it('refuses a request 1 ms further ahead than the window, giving the skew', async () => {
      const { headers, send } = await setup();
      await expect(
        send(headers, REQUEST, new Date(NOW.getTime() - WINDOW_MS - 1)),
      ).rejects.toMatchObject({
        code: 'EXPIRED_REQUEST',
        message:
          "cairn-time 2026-11-23T10:00:00Z is 300.001 s ahead of the origin's clock " +
          '(2026-11-23T09:54:59.999Z); at most 300 s is accepted',
      });
    });
  });

  it('answers BAD_SIGNATURE to another key signing in the name of a publisher', async () => {
    const { publisher, stranger, store, headers, send } = await setup();
    const signed = canonicalRequest({
      ...REQUEST,
      time: '2026-11-23T10:00:00Z',
      nonce: NONCE,
      contentSha256: contentSha256(BODY),
      keyid: publisher.keyid,
    });
    const forged = { ...headers, 'cairn-signature': await stranger.sign(utf8(signed)) };
    await expect(send(forged)).rejects.toMatchObject({
      code: 'BAD_SIGNATURE',
      message: `cairn-signature does not verify with key ${publisher.keyid} over POST /v1/releases?draft=1`,
    });
    expect(await storedKeys(store)).toEqual([]);
  });

  describe('answers BAD_SIGNATURE when any one signed field is altered', () => {
    it.each([
      ['the method', {}, { method: 'PUT', path: REQUEST.path }],
      ['the path', {}, { method: 'POST', path: '/v1/release?draft=1' }],
      ['the query', {}, { method: 'POST', path: '/v1/releases?draft=2' }],
      ['the time', { 'cairn-time': '2026-11-23T10:00:01Z' }, REQUEST],
      ['the nonce', { 'cairn-nonce': 'f'.repeat(32) }, REQUEST],
      ['the content hash', { 'cairn-content-sha256': EMPTY_SHA256 }, REQUEST],
    ])('%s', async (_, changed, request) => {
      const { store, headers, send } = await setup();
      await expect(send({ ...headers, ...changed }, request)).rejects.toMatchObject({
        code: 'BAD_SIGNATURE',
      });
      expect(await storedKeys(store)).toEqual([]);
    });

    it('the keyid (naming another active publisher)', async () => {
      const { colleague, store, headers, send } = await setup();
      await expect(send({ ...headers, 'cairn-keyid': colleague.keyid })).rejects.toMatchObject({
        code: 'BAD_SIGNATURE',
      });
      expect(await storedKeys(store)).toEqual([]);
    });
  });

  it('answers REPLAYED_REQUEST to the same request sent twice', async () => {
    const { publisher, store, headers, send } = await setup();
    await send(headers);
    await expect(send(headers, REQUEST, new Date(NOW.getTime() + 60_000))).rejects.toMatchObject({
      code: 'REPLAYED_REQUEST',
      message: `nonce ${NONCE} of key ${publisher.keyid} was used before: this request was already received`,
    });
    expect(await storedKeys(store)).toHaveLength(1);
  });

  it('lets exactly one of two concurrent copies of a request through', async () => {
    const { headers, send } = await setup();
    const outcomes = await Promise.allSettled([send(headers), send(headers)]);
    expect(outcomes.map((o) => o.status).sort()).toEqual(['fulfilled', 'rejected']);
  });

  it('consumes no nonce for a request whose signature fails', async () => {
    const { publisher, store, headers, send } = await setup();
    // Someone who saw a nonce tries to burn it for its owner with a forged request.
    const victimNonce = 'c'.repeat(32);
    await expect(send({ ...headers, 'cairn-nonce': victimNonce })).rejects.toMatchObject({
      code: 'BAD_SIGNATURE',
    });
    expect(await storedKeys(store)).toEqual([]);
    const genuine = await signRequest(
      publisher,
      { ...REQUEST, contentSha256: contentSha256(BODY) },
      { now: NOW, nonce: victimNonce },
    );
    await expect(send(genuine)).resolves.toMatchObject({ keyid: publisher.keyid });
  });

  it('answers STORAGE_UNAVAILABLE, keeping the cause, when the nonce cannot be recorded', async () => {
    const { headers, send } = await setup(unavailableStore());
    const failure = send(headers);
    await expect(failure).rejects.toMatchObject({
      code: 'STORAGE_UNAVAILABLE',
      message: 'recording the request nonce: storage is unavailable',
    });
    await expect(failure).rejects.toHaveProperty(
      'cause',
      expect.objectContaining({ name: 'StorageError', code: 'UNAVAILABLE' }),
    );
  });

  it('refuses a window wider than the nonce store remembers (INTERNAL)', async () => {
    const { headers, lookupKey } = await setup();
    const nonces = new NonceStore(new MemoryBlobStore(), 60_000);
    await expect(
      verifyRequest(headerReader(headers), REQUEST, {
        lookupKey,
        nonces,
        now: NOW,
        windowMs: WINDOW_MS,
      }),
    ).rejects.toMatchObject({ code: 'INTERNAL' });
  });
});

describe('NonceStore.prune', () => {
  const keyid = 'ab'.repeat(32);
  const at = (windowsBeforeNow: number, ms = 0) =>
    new Date(NOW.getTime() - windowsBeforeNow * WINDOW_MS + ms);

  async function filled(store: BlobStore) {
    const nonces = new NonceStore(store, WINDOW_MS);
    // Two nonces in each bucket from four windows ago to the current one.
    for (let windows = 4; windows >= 0; windows--) {
      await nonces.claim(keyid, `${windows}`.repeat(32), at(windows));
      await nonces.claim(keyid, `${windows}f`.repeat(16), at(windows, WINDOW_MS - 1000));
    }
    return nonces;
  }

  it('deletes the buckets that ended two windows ago or earlier, and only those', async () => {
    const memory = new MemoryBlobStore();
    const nonces = await filled(memory);
    expect(await nonces.prune(NOW)).toBe(4);
    expect(await storedKeys(memory)).toEqual([
      `_origin/nonces/00000${NOW_BUCKET - 2}/${keyid}.${'2'.repeat(32)}`,
      `_origin/nonces/00000${NOW_BUCKET - 2}/${keyid}.${'2f'.repeat(16)}`,
      `_origin/nonces/00000${NOW_BUCKET - 1}/${keyid}.${'1'.repeat(32)}`,
      `_origin/nonces/00000${NOW_BUCKET - 1}/${keyid}.${'1f'.repeat(16)}`,
      `_origin/nonces/00000${NOW_BUCKET}/${keyid}.${'0'.repeat(32)}`,
      `_origin/nonces/00000${NOW_BUCKET}/${keyid}.${'0f'.repeat(16)}`,
    ]);
    expect(await nonces.prune(NOW)).toBe(0);
  });

  it('keeps a bucket until it ended a full two windows ago', async () => {
    const memory = new MemoryBlobStore();
    const nonces = await filled(memory);
    expect(await nonces.prune(new Date(NOW.getTime() - 1))).toBe(2);
    expect(await nonces.prune(NOW)).toBe(2);
  });

  it('pages through the listing', async () => {
    const memory = new TwoPerPageStore();
    const nonces = await filled(memory);
    expect(await nonces.prune(NOW)).toBe(4);
    expect(await storedKeys(memory)).toHaveLength(6);
  });

  it('leaves objects outside the nonce prefix alone', async () => {
    const memory = new MemoryBlobStore();
    await memory.put('_origin/draft.json', utf8('{}'));
    const nonces = await filled(memory);
    await nonces.prune(new Date(NOW.getTime() + 100 * WINDOW_MS));
    expect(await storedKeys(memory, '_origin/')).toEqual(['_origin/draft.json']);
  });

  it('answers STORAGE_UNAVAILABLE when the store cannot list', async () => {
    const nonces = new NonceStore(unavailableStore(), WINDOW_MS);
    await expect(nonces.prune(NOW)).rejects.toMatchObject({
      code: 'STORAGE_UNAVAILABLE',
      message: 'listing request nonces: storage is unavailable',
    });
  });
});
