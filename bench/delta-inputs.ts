// Deterministic inputs for the delta benchmark: a sorted text signature database and a version
// of it with 1% of its records added, removed or changed, and a binary file and a version of it
// with scattered inserts and deletes. Same seed, same bytes, on any machine.
//
// Files are written in chunks, so generating 500 MB needs a few MB of memory, not 500.
import { open, type FileHandle } from 'node:fs/promises';

/** xoshiro128**: fast, seedable, and good enough for test data (not for anything secret). */
export class Prng {
  readonly #s = new Uint32Array(4);

  constructor(seed: number) {
    // splitmix32 spreads a small seed over the four state words.
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      this.#s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }

  /** 32 random bits as an unsigned integer. */
  uint32(): number {
    const s = this.#s;
    const s0 = s[0] ?? 0;
    const s1 = s[1] ?? 0;
    const s2 = s[2] ?? 0;
    const s3 = s[3] ?? 0;
    const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    const n2 = s2 ^ s0;
    const n3 = s3 ^ s1;
    s[1] = s1 ^ n2;
    s[0] = s0 ^ n3;
    s[2] = n2 ^ t;
    s[3] = rotl(n3, 11);
    return r;
  }

  /** A uniform integer in [0, n), n ≤ 2^32. */
  below(n: number): number {
    return Math.floor((this.uint32() / 0x1_0000_0000) * n);
  }

  /** A uniform float in [0, 1). */
  unit(): number {
    return this.uint32() / 0x1_0000_0000;
  }

  /** Fills `out` with pseudo-random bytes. */
  fill(out: Uint8Array): void {
    const words = Math.floor(out.length / 4);
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    for (let i = 0; i < words; i++) view.setUint32(i * 4, this.uint32(), true);
    for (let i = words * 4; i < out.length; i++) out[i] = this.uint32() & 0xff;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Buffers small writes into large ones. */
class ChunkedWriter {
  readonly #handle: FileHandle;
  readonly #chunk: Uint8Array;
  #used = 0;
  #written = 0;

  constructor(handle: FileHandle, chunkSize = 4 << 20) {
    this.#handle = handle;
    this.#chunk = new Uint8Array(chunkSize);
  }

  get length(): number {
    return this.#written + this.#used;
  }

  async write(bytes: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < bytes.length) {
      const n = Math.min(bytes.length - offset, this.#chunk.length - this.#used);
      this.#chunk.set(bytes.subarray(offset, offset + n), this.#used);
      this.#used += n;
      offset += n;
      if (this.#used === this.#chunk.length) await this.flush();
    }
  }

  async flush(): Promise<void> {
    if (this.#used === 0) return;
    await this.#handle.write(this.#chunk, 0, this.#used);
    this.#written += this.#used;
    this.#used = 0;
  }
}

const HEX = '0123456789abcdef';
const PLATFORMS = ['Win', 'Unix', 'Osx', 'Doc', 'Pdf', 'Html', 'Js', 'Andr', 'Email', 'Xls'];
const CATEGORIES = [
  'Trojan',
  'Malware',
  'Exploit',
  'Downloader',
  'Dropper',
  'Ransomware',
  'Adware',
  'Worm',
  'Phishing',
  'Packed',
  'Spyware',
  'Virus',
];
const FAMILIES = [
  'Agent',
  'Emotet',
  'Zbot',
  'Generic',
  'Qakbot',
  'Ramnit',
  'Sality',
  'Mirai',
  'Gafgyt',
  'Lokibot',
  'AgentTesla',
  'Formbook',
  'Nanocore',
  'Remcos',
  'Ursnif',
  'Dridex',
  'TrickBot',
  'IcedID',
  'CobaltStrike',
  'Kryptik',
  'Tiggre',
  'Wacatac',
  'Glupteba',
  'Xmrig',
  'Bladabindi',
  'Njrat',
  'Vobfus',
  'Virut',
  'Expiro',
  'Neshta',
];

interface SignatureRecord {
  /** The top 48 bits of the sha256, strictly increasing: the database is sorted by hash. */
  prefix: number;
  /** The other 208 bits, as 52 hex digits. */
  rest: string;
  size: number;
  name: string;
  flevel: number;
}

function randomHex(prng: Prng, digits: number): string {
  let s = '';
  for (let i = 0; i < digits; i++) s += HEX[prng.uint32() & 15];
  return s;
}

function randomName(prng: Prng): string {
  const platform = PLATFORMS[prng.below(PLATFORMS.length)] ?? 'Win';
  const category = CATEGORIES[prng.below(CATEGORIES.length)] ?? 'Trojan';
  const family = FAMILIES[prng.below(FAMILIES.length)] ?? 'Agent';
  return `${platform}.${category}.${family}-${1_000_000 + prng.below(9_000_000)}-${prng.below(3)}`;
}

function newRecord(prng: Prng, prefix: number): SignatureRecord {
  return {
    prefix,
    rest: randomHex(prng, 52),
    // Sample sizes: log-uniform from 100 bytes to ~10 MB, as real samples spread.
    size: Math.floor(100 * Math.pow(10, prng.unit() * 5)),
    name: randomName(prng),
    flevel: 70 + prng.below(30),
  };
}

const encoder = new TextEncoder();

/** `sha256:size:name:flevel`, the layout of a ClamAV .hsb line. About 110 bytes. */
function formatRecord(r: SignatureRecord): string {
  return `${r.prefix.toString(16).padStart(12, '0')}${r.rest}:${r.size}:${r.name}:${r.flevel}\n`;
}

export interface SignatureDatabaseStats {
  readonly baseBytes: number;
  readonly targetBytes: number;
  readonly records: number;
  readonly added: number;
  readonly removed: number;
  readonly changed: number;
}

/**
 * Writes a sorted signature database of about `bytes` bytes to `basePath`, and to `targetPath`
 * the next version: `changeFraction` of the records (default 1%) each removed, changed (new size,
 * new name revision, new flevel: the hash, the sort key, stays) or followed by a new record with
 * a new hash, one third each, at random places.
 */
export async function writeSignatureDatabases(
  basePath: string,
  targetPath: string,
  bytes: number,
  seed: number,
  changeFraction = 0.01,
): Promise<SignatureDatabaseStats> {
  const prng = new Prng(seed);
  const averageRecordBytes = 110;
  const records = Math.ceil(bytes / averageRecordBytes);
  // Gaps of at least 2 between prefixes leave room to insert a record between two others.
  const span = 2 ** 48;
  const meanGap = Math.floor(span / (records + 1));
  const base = await open(basePath, 'w');
  const target = await open(targetPath, 'w');
  const baseOut = new ChunkedWriter(base);
  const targetOut = new ChunkedWriter(target);
  let added = 0;
  let removed = 0;
  let changed = 0;
  let count = 0;
  try {
    let prefix = 0;
    while (baseOut.length < bytes) {
      const gap = 2 + prng.below(2 * meanGap - 3);
      prefix += gap;
      const record = newRecord(prng, prefix);
      count++;
      const line = encoder.encode(formatRecord(record));
      await baseOut.write(line);
      if (prng.unit() >= changeFraction) {
        await targetOut.write(line);
        continue;
      }
      const kind = prng.below(3);
      if (kind === 0) {
        removed++;
      } else if (kind === 1) {
        changed++;
        const revised: SignatureRecord = {
          ...record,
          size: Math.floor(100 * Math.pow(10, prng.unit() * 5)),
          name: record.name.replace(/-\d+$/, `-${prng.below(3) + 1}`),
          flevel: 70 + prng.below(30),
        };
        await targetOut.write(encoder.encode(formatRecord(revised)));
      } else {
        added++;
        await targetOut.write(line);
        // The next base record is at least 2 higher, so prefix + 1 keeps the order strict.
        await targetOut.write(encoder.encode(formatRecord(newRecord(prng, prefix + 1))));
      }
    }
    await baseOut.flush();
    await targetOut.flush();
  } finally {
    await base.close();
    await target.close();
  }
  return {
    baseBytes: baseOut.length,
    targetBytes: targetOut.length,
    records: count,
    added,
    removed,
    changed,
  };
}

export interface BinaryStats {
  readonly baseBytes: number;
  readonly targetBytes: number;
  readonly inserts: number;
  readonly deletes: number;
  readonly insertedBytes: number;
  readonly deletedBytes: number;
}

/**
 * Fills `out` with executable-like content: 64 KiB sections of random bytes (compressed or
 * encrypted data), tables of little-endian 32-bit values that grow slowly (offsets, relocations),
 * English-like text (strings, resources) and zero padding, in proportions 4 : 3 : 2 : 1.
 */
function fillBinary(prng: Prng, out: Uint8Array): void {
  const section = 64 << 10;
  const words = encoder.encode(
    'the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were her she there been one all we their has would when if so what no more out up into do any your',
  );
  for (let start = 0; start < out.length; start += section) {
    const part = out.subarray(start, Math.min(out.length, start + section));
    const kind = prng.below(10);
    if (kind < 4) {
      prng.fill(part);
    } else if (kind < 7) {
      let value = prng.uint32() >>> 8;
      const view = new DataView(part.buffer, part.byteOffset, part.byteLength);
      for (let i = 0; i + 4 <= part.length; i += 4) {
        value = (value + (prng.uint32() & 0xff)) >>> 0;
        view.setUint32(i, value, true);
      }
    } else if (kind < 9) {
      for (let i = 0; i < part.length;) {
        const w = prng.below(words.length - 8);
        const n = Math.min(part.length - i, 2 + prng.below(7));
        part.set(words.subarray(w, w + n), i);
        i += n;
      }
    } else {
      part.fill(0);
    }
  }
}

/**
 * Writes a binary of `bytes` bytes to `basePath` and to `targetPath` a version with `edits`
 * scattered edits (default one per 50 KB), half inserts of 1–4096 random bytes, half deletes of
 * 1–4096 bytes, at uniformly random places.
 */
export async function writeBinaries(
  basePath: string,
  targetPath: string,
  bytes: number,
  seed: number,
  edits = Math.round(bytes / 50_000),
): Promise<BinaryStats> {
  const prng = new Prng(seed);
  const positions = Array.from({ length: edits }, () => prng.below(bytes)).sort((a, b) => a - b);
  const base = await open(basePath, 'w');
  const target = await open(targetPath, 'w');
  const baseOut = new ChunkedWriter(base);
  const targetOut = new ChunkedWriter(target);
  let inserts = 0;
  let deletes = 0;
  let insertedBytes = 0;
  let deletedBytes = 0;
  const chunk = new Uint8Array(4 << 20);
  let next = 0;
  let skip = 0;
  try {
    for (let start = 0; start < bytes; start += chunk.length) {
      const part = chunk.subarray(0, Math.min(chunk.length, bytes - start));
      fillBinary(prng, part);
      await baseOut.write(part);
      let cursor = 0;
      while (cursor < part.length) {
        if (skip > 0) {
          const n = Math.min(skip, part.length - cursor);
          skip -= n;
          cursor += n;
          continue;
        }
        const edit = positions[next];
        const end = edit === undefined ? part.length : Math.min(part.length, edit - start);
        if (end > cursor) {
          await targetOut.write(part.subarray(cursor, end));
          cursor = end;
          continue;
        }
        next++;
        const length = 1 + prng.below(4096);
        if (prng.below(2) === 0) {
          const inserted = new Uint8Array(length);
          prng.fill(inserted);
          await targetOut.write(inserted);
          inserts++;
          insertedBytes += length;
        } else {
          skip = length;
          deletes++;
          deletedBytes += length;
        }
      }
    }
    await baseOut.flush();
    await targetOut.flush();
  } finally {
    await base.close();
    await target.close();
  }
  return {
    baseBytes: baseOut.length,
    targetBytes: targetOut.length,
    inserts,
    deletes,
    insertedBytes,
    deletedBytes,
  };
}
