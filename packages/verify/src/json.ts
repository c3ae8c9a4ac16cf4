/**
 * Strict JSON reading for metadata. `JSON.parse` turns `1.0` into the integer 1, but a TUF
 * implementation in Python sees a float and refuses it; so numbers are checked in the text
 * itself, and every field is type-checked with its path in the error.
 */
import { VerifyError } from './errors.js';
import { fromUtf8 } from './encoding.js';
import { MAX_JSON_DEPTH } from './limits.js';

export type JsonObject = { [key: string]: unknown };

/** Parses UTF-8 JSON text; rejects invalid UTF-8, non-integer numbers and deep nesting. */
export function parseJson(bytes: Uint8Array, what: string): unknown {
  let text: string;
  try {
    text = fromUtf8(bytes);
  } catch (cause) {
    throw new VerifyError('MALFORMED', `${what}: not valid UTF-8`, { cause });
  }
  checkNumbersAndDepth(text, what);
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new VerifyError('MALFORMED', `${what}: not valid JSON`, { cause });
  }
}

function checkNumbersAndDepth(text: string, what: string): void {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      // Skip the string, honouring escapes.
      for (i++; i < text.length; i++) {
        const s = text.charCodeAt(i);
        if (s === 0x5c /* \ */) i++;
        else if (s === 0x22) break;
      }
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > MAX_JSON_DEPTH) {
        throw new VerifyError('MALFORMED', `${what}: nested deeper than ${MAX_JSON_DEPTH} levels`);
      }
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    } else if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      let j = i + 1;
      while (j < text.length && /[0-9.eE+-]/.test(text[j] ?? '')) j++;
      const token = text.slice(i, j);
      if (/[.eE]/.test(token)) {
        throw new VerifyError('MALFORMED', `${what}: only integers are allowed, received ${token}`);
      }
      i = j - 1;
    }
  }
}

export function asObject(value: unknown, where: string): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new VerifyError('MALFORMED', `${where}: expected an object, received ${describe(value)}`);
  }
  return value as JsonObject;
}

export function asArray(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value)) {
    throw new VerifyError('MALFORMED', `${where}: expected an array, received ${describe(value)}`);
  }
  return value;
}

export function asString(value: unknown, where: string): string {
  if (typeof value !== 'string') {
    throw new VerifyError('MALFORMED', `${where}: expected a string, received ${describe(value)}`);
  }
  return value;
}

export function asBoolean(value: unknown, where: string): boolean {
  if (typeof value !== 'boolean') {
    throw new VerifyError('MALFORMED', `${where}: expected a boolean, received ${describe(value)}`);
  }
  return value;
}

export function asInteger(value: unknown, where: string, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new VerifyError(
      'MALFORMED',
      `${where}: expected an integer >= ${min}, received ${describe(value)}`,
    );
  }
  return value;
}

export function asStringArray(value: unknown, where: string): string[] {
  return asArray(value, where).map((item, i) => asString(item, `${where}[${i}]`));
}

export function asStringRecord(value: unknown, where: string): Record<string, string> {
  const obj = asObject(value, where);
  // Object.fromEntries, not assignment: a key named "__proto__" must stay an ordinary entry.
  return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, asString(v, `${where}.${k}`)]));
}

/** The fields of `obj` other than `known`: kept so re-serialization never breaks a signature. */
export function extraFields(obj: JsonObject, known: readonly string[]): JsonObject {
  return Object.fromEntries(Object.entries(obj).filter(([k]) => !known.includes(k)));
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.slice(0, 40))}`;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return typeof value === 'object' ? 'an object' : typeof value;
}
