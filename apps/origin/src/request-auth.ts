/**
 * Publisher request authentication. Every request to the origin carries a signature by the
 * publisher's own key over the method, the path with query, the time, a random nonce, the
 * body's sha256 and the keyid. The time bounds how long a captured request stays usable; the
 * nonce, remembered for that long, makes it usable once.
 *
 * Headers: cairn-keyid, cairn-time (RFC 3339 UTC, whole seconds), cairn-nonce (32 lowercase
 * hex), cairn-content-sha256 (lowercase hex), cairn-signature (lowercase hex).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { BlobStore, ListPage } from '@cairn/storage/blob-store';
import { isStorageError } from '@cairn/storage/errors';
import { utf8 } from '@cairn/verify/encoding';
import type { Key } from '@cairn/verify/keys';
import type { Signer } from '@cairn/verify/signer';
import { OriginError } from './errors.js';
import { NONCES_PREFIX } from './layout.js';

export const KEYID_HEADER = 'cairn-keyid';
export const TIME_HEADER = 'cairn-time';
export const NONCE_HEADER = 'cairn-nonce';
export const CONTENT_SHA256_HEADER = 'cairn-content-sha256';
export const SIGNATURE_HEADER = 'cairn-signature';

const SIGNED_PREFIX = 'cairn-request-v1';

const KEYID = /^[0-9a-f]{64}$/;
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const NONCE = /^[0-9a-f]{32}$/;
const SHA256 = /^[0-9a-f]{64}$/;
// ed25519 signatures are 64 bytes and DER ECDSA P-256 ones at most 72; 256 bytes leaves room.
const SIGNATURE = /^(?:[0-9a-f]{2}){1,256}$/;
// RFC 9110 token.
const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// What a parsed URL's pathname + search can hold: visible ASCII, starting with a slash.
const PATH = /^\/[\x21-\x7e]*$/;

/** The sha256 of an empty body, which requests without one declare. */
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export function contentSha256(body: Uint8Array): string {
  return createHash('sha256').update(body).digest('hex');
}

/**
 * The path and query both sides sign: the WHATWG URL parser's pathname + search. `fetch` sends
 * exactly that, and the origin gets it back by parsing the request URL the same way.
 */
export function requestTarget(url: URL | string): string {
  const parsed = typeof url === 'string' ? new URL(url) : url;
  return `${parsed.pathname}${parsed.search}`;
}

/** Whole seconds, UTC: the one spelling of a time, so both sides sign the same bytes. */
export function formatRequestTime(time: Date): string {
  return time.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function parseRequestTime(text: string): Date | undefined {
  if (!TIME.test(text)) return undefined;
  const time = new Date(text);
  // Date accepts 2026-02-30 and rolls it over; the round trip refuses it.
  return Number.isNaN(time.getTime()) || formatRequestTime(time) !== text ? undefined : time;
}

export interface SignedFields {
  readonly method: string;
  /** Path and query as sent (see `requestTarget`). */
  readonly path: string;
  readonly time: string;
  readonly nonce: string;
  readonly contentSha256: string;
  readonly keyid: string;
}

/** The string a request signature is over. */
export function canonicalRequest(fields: SignedFields): string {
  // Upper case because fetch upper-cases the standard methods whatever the caller wrote.
  const method = fields.method.toUpperCase();
  // Only method and path are free text; without line breaks in them the fields cannot shift.
  if (!METHOD.test(method)) {
    throw new OriginError('MALFORMED', `method: not an HTTP method: ${JSON.stringify(method)}`);
  }
  if (!PATH.test(fields.path)) {
    throw new OriginError(
      'MALFORMED',
      `path: expected an encoded path starting with "/", received ${JSON.stringify(fields.path)}`,
    );
  }
  return [
    SIGNED_PREFIX,
    method,
    fields.path,
    fields.time,
    fields.nonce,
    fields.contentSha256,
    fields.keyid,
  ].join('\n');
}

/** The authentication headers for one request. A fresh nonce each call unless one is given. */
export async function signRequest(
  signer: Signer,
  request: { readonly method: string; readonly path: string; readonly contentSha256: string },
  options: { readonly now?: Date; readonly nonce?: string } = {},
): Promise<Record<string, string>> {
  const time = formatRequestTime(options.now ?? new Date());
  const nonce = options.nonce ?? randomBytes(16).toString('hex');
  const checks: [string, RegExp, string][] = [
    ['nonce', NONCE, nonce],
    ['contentSha256', SHA256, request.contentSha256],
    ['signer.keyid', KEYID, signer.keyid],
  ];
  for (const [name, pattern, value] of checks) {
    if (!pattern.test(value)) {
      throw new OriginError(
        'MALFORMED',
        `${name}: ${JSON.stringify(value)} is not lowercase hex of the right length`,
      );
    }
  }
  const fields = { ...request, time, nonce, keyid: signer.keyid };
  const signature = await signer.sign(utf8(canonicalRequest(fields)));
  return {
    [KEYID_HEADER]: signer.keyid,
    [TIME_HEADER]: time,
    [NONCE_HEADER]: nonce,
    [CONTENT_SHA256_HEADER]: request.contentSha256,
    [SIGNATURE_HEADER]: signature,
  };
}

export type KeyLookup = (
  keyid: string,
) => { readonly status: 'active'; readonly key: Key } | { readonly status: 'revoked' } | undefined;

export interface VerifyContext {
  /** The publishers this repository has had, current and revoked. */
  readonly lookupKey: KeyLookup;
  readonly nonces: NonceStore;
  readonly now: Date;
  /** How far the request's time may be from `now`, either way, inclusive. */
  readonly windowMs: number;
}

function header(
  headers: (name: string) => string | undefined,
  name: string,
  pattern: RegExp,
  expected: string,
): string {
  const value = headers(name);
  if (value === undefined || value === '') {
    throw new OriginError('MISSING_AUTH', `${name}: the header is missing`);
  }
  if (!pattern.test(value)) {
    throw new OriginError(
      'MISSING_AUTH',
      `${name}: expected ${expected}, received ${JSON.stringify(value.slice(0, 80))}`,
    );
  }
  return value;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(3).replace(/\.?0+$/, '')} s`;
}

/**
 * Checks a request's authentication headers and, last, claims its nonce. Resolves with the
 * publisher's keyid and the body hash the signature covers: the caller must then check the
 * body it reads against `contentSha256` (HASH_MISMATCH), since only the hash is signed here.
 */
export async function verifyRequest(
  headers: (name: string) => string | undefined,
  request: { readonly method: string; readonly path: string },
  context: VerifyContext,
): Promise<{ keyid: string; contentSha256: string }> {
  if (context.windowMs > context.nonces.windowMs) {
    // The store would prune nonces of requests the time check still lets through.
    throw new OriginError(
      'INTERNAL',
      `windowMs ${context.windowMs} exceeds the nonce store's ${context.nonces.windowMs}`,
    );
  }
  const keyid = header(headers, KEYID_HEADER, KEYID, '64 lowercase hex characters');
  const timeText = header(headers, TIME_HEADER, TIME, 'a UTC time like 2026-11-23T10:00:00Z');
  const nonce = header(headers, NONCE_HEADER, NONCE, '32 lowercase hex characters');
  const sha = header(headers, CONTENT_SHA256_HEADER, SHA256, '64 lowercase hex characters');
  const signature = header(headers, SIGNATURE_HEADER, SIGNATURE, 'a lowercase hex signature');
  const time = parseRequestTime(timeText);
  if (time === undefined) {
    throw new OriginError('MISSING_AUTH', `${TIME_HEADER}: ${timeText} is not a calendar time`);
  }

  const found = context.lookupKey(keyid);
  if (found === undefined) {
    throw new OriginError('UNKNOWN_KEY', `${keyid} is not the key of any publisher`);
  }
  if (found.status === 'revoked') {
    throw new OriginError('REVOKED_KEY', `${keyid} was a publisher's key and has been revoked`);
  }

  const skew = time.getTime() - context.now.getTime();
  if (Math.abs(skew) > context.windowMs) {
    throw new OriginError(
      'EXPIRED_REQUEST',
      `${TIME_HEADER} ${timeText} is ${seconds(Math.abs(skew))} ${skew > 0 ? 'ahead of' : 'behind'} ` +
        `the origin's clock (${context.now.toISOString()}); at most ${seconds(context.windowMs)} is accepted`,
    );
  }

  const signed = canonicalRequest({ ...request, time: timeText, nonce, contentSha256: sha, keyid });
  if (!(await found.key.verify(signature, utf8(signed)))) {
    throw new OriginError(
      'BAD_SIGNATURE',
      `${SIGNATURE_HEADER} does not verify with key ${keyid} over ${request.method.toUpperCase()} ${request.path}`,
    );
  }

  // Only now: claiming before the signature verified would let anyone burn others' nonces.
  await context.nonces.claim(keyid, nonce, time);
  return { keyid, contentSha256: sha };
}

/** Bucket names sort as numbers: ms since 1970 divided by any window of a second or more fits. */
const BUCKET_DIGITS = 12;
const BUCKET = /^(\d{12})\//;
/** Deletes in flight at once while pruning: enough to be quick, few enough to spare the store. */
const PRUNE_CONCURRENCY = 16;

function storageFailure(action: string, cause: unknown): OriginError {
  if (isStorageError(cause, 'UNAVAILABLE')) {
    return new OriginError('STORAGE_UNAVAILABLE', `${action}: storage is unavailable`, { cause });
  }
  return new OriginError('INTERNAL', `${action}: unexpected storage failure`, { cause });
}

/**
 * The nonces seen, one empty object each, grouped in buckets of `windowMs` by the request's
 * signed time. The bucket comes from the signed time, never the clock, so a request sent again
 * maps to the same object however much later it arrives; and the create-only write makes two
 * concurrent copies of one request, even on two origin instances, race for a single winner.
 */
export class NonceStore {
  readonly #store: BlobStore;
  readonly windowMs: number;

  constructor(store: BlobStore, windowMs: number) {
    if (!Number.isSafeInteger(windowMs) || windowMs < 1000) {
      throw new OriginError(
        'INTERNAL',
        `windowMs: expected whole ms >= 1000, received ${windowMs}`,
      );
    }
    this.#store = store;
    this.windowMs = windowMs;
  }

  #bucket(time: Date): string {
    return String(Math.floor(time.getTime() / this.windowMs)).padStart(BUCKET_DIGITS, '0');
  }

  /** Records the nonce; REPLAYED_REQUEST if it was recorded before. */
  async claim(keyid: string, nonce: string, time: Date): Promise<void> {
    if (!KEYID.test(keyid) || !NONCE.test(nonce)) {
      throw new OriginError('INTERNAL', `claim: keyid ${keyid} or nonce ${nonce} is malformed`);
    }
    const key = `${NONCES_PREFIX}${this.#bucket(time)}/${keyid}.${nonce}`;
    try {
      await this.#store.put(key, new Uint8Array(), { ifNoneMatch: '*' });
    } catch (cause) {
      if (isStorageError(cause, 'PRECONDITION_FAILED')) {
        throw new OriginError(
          'REPLAYED_REQUEST',
          `nonce ${nonce} of key ${keyid} was used before: this request was already received`,
          { cause },
        );
      }
      throw storageFailure('recording the request nonce', cause);
    }
  }

  /**
   * Deletes the buckets that ended at least two windows before `now`: by then every request in
   * them fails the time check, with a window to spare for clocks that disagree between origin
   * instances. Returns how many nonces were deleted.
   */
  async prune(now: Date): Promise<number> {
    const oldestKept = Math.floor(now.getTime() / this.windowMs) - 2;
    let deleted = 0;
    let cursor: string | undefined;
    for (;;) {
      let page: ListPage;
      try {
        page = await this.#store.list({ prefix: NONCES_PREFIX, cursor });
      } catch (cause) {
        throw storageFailure('listing request nonces', cause);
      }
      const expired: string[] = [];
      let reachedKept = false;
      for (const { key } of page.objects) {
        const bucket = BUCKET.exec(key.slice(NONCES_PREFIX.length))?.[1];
        if (bucket === undefined) continue;
        // Keys list in order and buckets sort as numbers: the rest are all kept.
        if (Number(bucket) >= oldestKept) {
          reachedKept = true;
          break;
        }
        expired.push(key);
      }
      for (let i = 0; i < expired.length; i += PRUNE_CONCURRENCY) {
        const batch = expired.slice(i, i + PRUNE_CONCURRENCY);
        try {
          await Promise.all(batch.map((key) => this.#store.delete(key)));
        } catch (cause) {
          throw storageFailure('deleting old request nonces', cause);
        }
        deleted += batch.length;
      }
      if (reachedKept || page.cursor === undefined) return deleted;
      cursor = page.cursor;
    }
  }
}
