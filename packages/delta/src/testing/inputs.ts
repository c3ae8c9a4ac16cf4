/**
 * Small deterministic inputs for the tests: a seeded generator, sorted signature databases with
 * records added, removed and changed, and binaries with scattered inserts and deletes. Portable,
 * so the workerd run can rebuild the same inputs the test vectors were made from.
 */

/** xorshift32: deterministic test data, nothing secret. */
export class TestRandom {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0 || 0x9e3779b9;
  }

  next(): number {
    let x = this.#state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#state = x >>> 0;
    return this.#state;
  }

  below(n: number): number {
    return this.next() % n;
  }

  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = this.next() & 0xff;
    return out;
  }
}

const encoder = new TextEncoder();
const HEX = '0123456789abcdef';
const NAMES = ['Win.Trojan.Agent', 'Doc.Malware.Emotet', 'Unix.Worm.Mirai', 'Pdf.Exploit.Generic'];

function hex(random: TestRandom, digits: number): string {
  let s = '';
  for (let i = 0; i < digits; i++) s += HEX[random.below(16)];
  return s;
}

function record(random: TestRandom): string {
  const name = NAMES[random.below(NAMES.length)] ?? 'Win.Trojan.Agent';
  return `${hex(random, 64)}:${random.below(1_000_000)}:${name}-${random.below(10_000_000)}-0:73`;
}

export interface TextEdits {
  readonly added: number;
  readonly removed: number;
  readonly changed: number;
}

/**
 * A sorted database of `lines` records and a next version in which each record was, with
 * probability `rate` each, removed, changed (new size and revision) or followed by a new one.
 */
export function signatureDatabases(
  seed: number,
  lines: number,
  rate: number,
): { base: Uint8Array; target: Uint8Array; edits: TextEdits } {
  const random = new TestRandom(seed);
  const records = Array.from({ length: lines }, () => record(random)).sort();
  const next: string[] = [];
  let added = 0;
  let removed = 0;
  let changed = 0;
  const threshold = Math.round(rate * 1_000_000);
  for (const r of records) {
    const roll = random.below(1_000_000);
    if (roll < threshold) {
      removed++;
    } else if (roll < 2 * threshold) {
      changed++;
      const [hash = '', , name = ''] = r.split(':');
      next.push(`${hash}:${random.below(1_000_000)}:${name.replace(/-0$/, '-1')}:74`);
    } else if (roll < 3 * threshold) {
      added++;
      next.push(r, record(random));
    } else {
      next.push(r);
    }
  }
  next.sort();
  return {
    base: encoder.encode(records.join('\n') + '\n'),
    target: encoder.encode(next.join('\n') + '\n'),
    edits: { added, removed, changed },
  };
}

/**
 * A binary of `length` bytes (runs of random bytes, counters and zeros) and a version with
 * `edits` scattered inserts of random bytes and deletes, each up to `maxEdit` bytes.
 */
export function binaries(
  seed: number,
  length: number,
  edits: number,
  maxEdit = 512,
): { base: Uint8Array; target: Uint8Array } {
  const random = new TestRandom(seed);
  const base = new Uint8Array(length);
  for (let at = 0; at < length;) {
    const run = Math.min(length - at, 256 + random.below(4096));
    const kind = random.below(3);
    for (let i = 0; i < run; i++) {
      base[at + i] = kind === 0 ? random.next() & 0xff : kind === 1 ? (at + i) >>> 4 : 0;
    }
    at += run;
  }
  const positions = Array.from({ length: edits }, () => random.below(length)).sort((a, b) => a - b);
  const parts: Uint8Array[] = [];
  let from = 0;
  for (const p of positions) {
    if (p < from) continue;
    parts.push(base.subarray(from, p));
    const size = 1 + random.below(maxEdit);
    if (random.below(2) === 0) {
      parts.push(random.bytes(size));
      from = p;
    } else {
      from = Math.min(length, p + size);
    }
  }
  parts.push(base.subarray(from));
  return { base, target: concat(parts) };
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return chunks;
    chunks.push(value);
  }
}
