/**
 * Canonical JSON exactly as securesystemslib's `encode_canonical` produces it, because that
 * is what TUF signatures are made over:
 * - object keys sorted by Unicode code point (not UTF-16 code unit, as JS sort would);
 * - no whitespace;
 * - integers only (no floats, no exponents);
 * - in strings only `\` and `"` are escaped; everything else, control characters and
 *   non-ASCII included, is written as-is and the whole text is encoded as UTF-8.
 */
import { VerifyError } from './errors.js';
import { utf8 } from './encoding.js';

export function canonicalString(value: unknown): string {
  const parts: string[] = [];
  write(value, parts, 0);
  return parts.join('');
}

export function canonicalize(value: unknown): Uint8Array {
  return utf8(canonicalString(value));
}

/** Compares two strings by Unicode code point, which is Python's `sorted()` order. */
export function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const ca = ia.next();
    const cb = ib.next();
    if (ca.done === true) return cb.done === true ? 0 : -1;
    if (cb.done === true) return 1;
    const diff = (ca.value.codePointAt(0) ?? 0) - (cb.value.codePointAt(0) ?? 0);
    if (diff !== 0) return diff;
  }
}

const MAX_DEPTH = 100;

/** A UTF-16 surrogate without its pair cannot be encoded as UTF-8 (Python raises too). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function writeString(text: string, out: string[]): void {
  if (LONE_SURROGATE.test(text)) {
    throw new VerifyError(
      'MALFORMED',
      'canonical JSON: a string holds an unpaired UTF-16 surrogate',
    );
  }
  out.push('"', text.replace(/["\\]/g, '\\$&'), '"');
}

function write(value: unknown, out: string[], depth: number): void {
  if (depth > MAX_DEPTH) {
    throw new VerifyError('MALFORMED', `canonical JSON: nesting deeper than ${MAX_DEPTH} levels`);
  }
  if (value === null) {
    out.push('null');
  } else if (value === true) {
    out.push('true');
  } else if (value === false) {
    out.push('false');
  } else if (typeof value === 'string') {
    writeString(value, out);
  } else if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) {
      throw new VerifyError(
        'MALFORMED',
        `canonical JSON: only integers are allowed, received ${String(value)}`,
      );
    }
    // -0 is an integer to JS but prints as 0, as Python's int does.
    out.push(String(value === 0 ? 0 : value));
  } else if (Array.isArray(value)) {
    out.push('[');
    value.forEach((item, i) => {
      if (i > 0) out.push(',');
      write(item, out, depth + 1);
    });
    out.push(']');
  } else if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(
      ([, v]) => v !== undefined,
    );
    entries.sort(([a], [b]) => compareCodePoints(a, b));
    out.push('{');
    entries.forEach(([k, v], i) => {
      if (i > 0) out.push(',');
      writeString(k, out);
      out.push(':');
      write(v, out, depth + 1);
    });
    out.push('}');
  } else {
    throw new VerifyError(
      'MALFORMED',
      `canonical JSON: cannot encode a value of type ${typeof value}`,
    );
  }
}
