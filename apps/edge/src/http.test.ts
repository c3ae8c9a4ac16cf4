import { describe, expect, test } from 'vitest';
import {
  entityTag,
  evaluatePreconditions,
  ifRangeHolds,
  matchesStrong,
  matchesWeak,
  parseRange,
} from './http.js';

const ETAG = 'abc123';
/** Stored times carry milliseconds; HTTP dates do not. */
const MODIFIED = new Date('2026-11-02T12:00:00.750Z');
const AT = 'Mon, 02 Nov 2026 12:00:00 GMT';
const BEFORE = 'Mon, 02 Nov 2026 11:59:59 GMT';
const AFTER = 'Mon, 02 Nov 2026 12:00:01 GMT';

describe('entity tags', () => {
  test('a storage etag is sent quoted, strong', () => {
    expect(entityTag(ETAG)).toBe('"abc123"');
  });

  test('If-Match compares strongly: a weak tag never matches', () => {
    expect(matchesStrong('"abc123"', ETAG)).toBe(true);
    expect(matchesStrong('*', ETAG)).toBe(true);
    expect(matchesStrong('  *  ', ETAG)).toBe(true);
    expect(matchesStrong('"x", "abc123"', ETAG)).toBe(true);
    expect(matchesStrong('"x","abc123"', ETAG)).toBe(true);
    expect(matchesStrong('W/"abc123"', ETAG)).toBe(false);
    expect(matchesStrong('"abc1234"', ETAG)).toBe(false);
    expect(matchesStrong('abc123', ETAG)).toBe(false);
    expect(matchesStrong('"ABC123"', ETAG)).toBe(false);
    expect(matchesStrong('', ETAG)).toBe(false);
    expect(matchesStrong('"*"', ETAG)).toBe(false);
  });

  test('If-None-Match compares weakly: the W/ form matches too', () => {
    expect(matchesWeak('"abc123"', ETAG)).toBe(true);
    expect(matchesWeak('W/"abc123"', ETAG)).toBe(true);
    expect(matchesWeak('"x", W/"abc123"', ETAG)).toBe(true);
    expect(matchesWeak('*', ETAG)).toBe(true);
    expect(matchesWeak('"x", "y"', ETAG)).toBe(false);
    expect(matchesWeak('abc123', ETAG)).toBe(false);
    expect(matchesWeak('', ETAG)).toBe(false);
  });
});

describe('preconditions, in the order of RFC 9110 13.2.2', () => {
  const evaluate = (conditions: Parameters<typeof evaluatePreconditions>[0]) =>
    evaluatePreconditions(conditions, ETAG, MODIFIED);

  test('none: proceed', () => {
    expect(evaluate({})).toBe('proceed');
  });

  test('step 1: If-Match decides first; a failed one is 412 whatever follows', () => {
    expect(evaluate({ ifMatch: '"other"' })).toBe('failed');
    expect(evaluate({ ifMatch: '"other"', ifNoneMatch: '"abc123"' })).toBe('failed');
    expect(evaluate({ ifMatch: '"other"', ifModifiedSince: AFTER })).toBe('failed');
    expect(evaluate({ ifMatch: '"abc123"' })).toBe('proceed');
  });

  test('step 2: If-Unmodified-Since only without If-Match', () => {
    expect(evaluate({ ifUnmodifiedSince: BEFORE })).toBe('failed');
    expect(evaluate({ ifUnmodifiedSince: AT })).toBe('proceed');
    expect(evaluate({ ifUnmodifiedSince: AFTER })).toBe('proceed');
    expect(evaluate({ ifMatch: '"abc123"', ifUnmodifiedSince: BEFORE })).toBe('proceed');
    expect(evaluate({ ifUnmodifiedSince: 'not a date' })).toBe('proceed');
  });

  test('step 3: If-None-Match that matches is 304 for GET and HEAD', () => {
    expect(evaluate({ ifNoneMatch: '"abc123"' })).toBe('not-modified');
    expect(evaluate({ ifNoneMatch: '*' })).toBe('not-modified');
    expect(evaluate({ ifMatch: '"abc123"', ifNoneMatch: 'W/"abc123"' })).toBe('not-modified');
    expect(evaluate({ ifNoneMatch: '"other"' })).toBe('proceed');
  });

  test('step 4: If-Modified-Since only without If-None-Match', () => {
    expect(evaluate({ ifModifiedSince: AT })).toBe('not-modified');
    expect(evaluate({ ifModifiedSince: AFTER })).toBe('not-modified');
    expect(evaluate({ ifModifiedSince: BEFORE })).toBe('proceed');
    expect(evaluate({ ifNoneMatch: '"other"', ifModifiedSince: AFTER })).toBe('proceed');
    expect(evaluate({ ifModifiedSince: 'yesterday' })).toBe('proceed');
  });

  test('step 2 comes before step 3', () => {
    expect(evaluate({ ifUnmodifiedSince: BEFORE, ifNoneMatch: '"abc123"' })).toBe('failed');
  });
});

describe('If-Range', () => {
  test('an entity tag must match strongly', () => {
    expect(ifRangeHolds('"abc123"', ETAG, MODIFIED)).toBe(true);
    expect(ifRangeHolds(' "abc123" ', ETAG, MODIFIED)).toBe(true);
    expect(ifRangeHolds('W/"abc123"', ETAG, MODIFIED)).toBe(false);
    expect(ifRangeHolds('"other"', ETAG, MODIFIED)).toBe(false);
  });

  test('a date must be the Last-Modified exactly, to the second', () => {
    expect(ifRangeHolds(AT, ETAG, MODIFIED)).toBe(true);
    expect(ifRangeHolds(BEFORE, ETAG, MODIFIED)).toBe(false);
    expect(ifRangeHolds(AFTER, ETAG, MODIFIED)).toBe(false);
    expect(ifRangeHolds('garbage', ETAG, MODIFIED)).toBe(false);
  });
});

describe('parseRange', () => {
  test('one range of each form', () => {
    expect(parseRange('bytes=0-99')).toEqual({ offset: 0, length: 100 });
    expect(parseRange('bytes=0-0')).toEqual({ offset: 0, length: 1 });
    expect(parseRange('bytes=1000-1999')).toEqual({ offset: 1000, length: 1000 });
    expect(parseRange('bytes=500-')).toEqual({ offset: 500 });
    expect(parseRange('bytes=-500')).toEqual({ suffix: 500 });
    expect(parseRange('bytes=007-9')).toEqual({ offset: 7, length: 3 });
    expect(parseRange('  bytes=1-2  ')).toEqual({ offset: 1, length: 2 });
  });

  test('a zero suffix is kept, for the app to answer 416', () => {
    expect(parseRange('bytes=-0')).toEqual({ suffix: 0 });
  });

  test('whatever is not one valid byte range means the whole object', () => {
    for (const header of [
      undefined,
      '',
      'bytes=',
      'bytes=-',
      'bytes=5-4',
      'bytes=0-1,3-4',
      'bytes=0-1, 3-4',
      'items=0-1',
      'bytes 0-1',
      'bytes=a-b',
      'bytes= 0-1',
      'bytes=1.5-2',
      'bytes=--1',
      'bytes=99999999999999999999-',
      'bytes=0-99999999999999999999',
      'bytes=-99999999999999999999',
    ]) {
      expect(parseRange(header), String(header)).toBeUndefined();
    }
  });
});
