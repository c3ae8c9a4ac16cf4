/**
 * HTTP semantics the edge owes caches and clients (RFC 9110): entity tags, preconditions in the
 * order of section 13.2.2, and single byte ranges (section 14). Pure functions over header
 * values, so the rules are tested without a server.
 */
import type { ByteRange } from '@cairn/storage/blob-store';

/** The quoted strong entity tag for a storage etag. */
export function entityTag(etag: string): string {
  return `"${etag}"`;
}

interface TagList {
  readonly any: boolean;
  readonly tags: readonly { readonly weak: boolean; readonly opaque: string }[];
}

/** Parses `*` or a comma-separated list of entity tags; malformed members are dropped. */
function parseTagList(header: string): TagList {
  if (header.trim() === '*') return { any: true, tags: [] };
  const tags: { weak: boolean; opaque: string }[] = [];
  for (const match of header.matchAll(/(W\/)?"([^"]*)"/g)) {
    tags.push({ weak: match[1] !== undefined, opaque: match[2] ?? '' });
  }
  return { any: false, tags };
}

/** If-Match: strong comparison; a weak tag never matches. */
export function matchesStrong(header: string, etag: string): boolean {
  const list = parseTagList(header);
  return list.any || list.tags.some((tag) => !tag.weak && tag.opaque === etag);
}

/** If-None-Match: weak comparison. */
export function matchesWeak(header: string, etag: string): boolean {
  const list = parseTagList(header);
  return list.any || list.tags.some((tag) => tag.opaque === etag);
}

export interface Preconditions {
  readonly ifMatch?: string | undefined;
  readonly ifNoneMatch?: string | undefined;
  readonly ifModifiedSince?: string | undefined;
  readonly ifUnmodifiedSince?: string | undefined;
}

export type PreconditionOutcome = 'proceed' | 'not-modified' | 'failed';

function parseDate(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const time = Date.parse(text);
  return Number.isNaN(time) ? undefined : time;
}

/** HTTP dates have whole seconds; a stored time has milliseconds. */
const seconds = (date: Date): number => Math.floor(date.getTime() / 1000) * 1000;

/** RFC 9110 13.2.2, steps 1 to 4, for GET and HEAD of an object that exists. */
export function evaluatePreconditions(
  conditions: Preconditions,
  etag: string,
  lastModified: Date,
): PreconditionOutcome {
  if (conditions.ifMatch !== undefined) {
    if (!matchesStrong(conditions.ifMatch, etag)) return 'failed';
  } else {
    const since = parseDate(conditions.ifUnmodifiedSince);
    if (since !== undefined && seconds(lastModified) > since) return 'failed';
  }
  if (conditions.ifNoneMatch !== undefined) {
    if (matchesWeak(conditions.ifNoneMatch, etag)) return 'not-modified';
  } else {
    const since = parseDate(conditions.ifModifiedSince);
    if (since !== undefined && seconds(lastModified) <= since) return 'not-modified';
  }
  return 'proceed';
}

/** If-Range (13.1.5): the range applies only if the representation is the one named. */
export function ifRangeHolds(ifRange: string, etag: string, lastModified: Date): boolean {
  const trimmed = ifRange.trim();
  if (trimmed.startsWith('"') || trimmed.startsWith('W/')) {
    return !trimmed.startsWith('W/') && trimmed === entityTag(etag);
  }
  const date = parseDate(trimmed);
  return date !== undefined && seconds(lastModified) === date;
}

/**
 * One byte range from a Range header, or undefined to serve the whole object: the header is
 * absent, is not `bytes`, is malformed, or asks for several ranges (which a server may ignore;
 * multipart/byteranges helps no client of ours).
 */
export function parseRange(header: string | undefined): ByteRange | undefined {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (match === null) return undefined;
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return undefined;
  if (first === '') {
    const suffix = Number(last);
    return Number.isSafeInteger(suffix) ? { suffix } : undefined;
  }
  const offset = Number(first);
  if (!Number.isSafeInteger(offset)) return undefined;
  if (last === '') return { offset };
  const end = Number(last);
  if (!Number.isSafeInteger(end) || end < offset) return undefined;
  return { offset, length: end - offset + 1 };
}
