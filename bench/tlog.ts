// The transparency log at scale: 100 000 entries appended through LogWriter into a directory
// store (tiles, entry bundles, checkpoint, lease — everything an origin writes), then inclusion
// and consistency proofs built from those tiles by LogReader and verified, as a client or a
// monitor does. Baselines, in this process, on the same machine:
//   - raw puts: the very objects each append wrote (same keys and sizes), put into a fresh
//     directory store with no hashing, lease or checks — what storage alone costs;
//   - sha256: node:crypto over every entry once — the floor of any Merkle log.
// Proof sizes are compared with the theory: an inclusion proof has ⌈log2 n⌉ hashes at most, a
// consistency proof ⌈log2 n⌉ + 1.
//
// Run: npm run bench:tlog (builds first), or node bench/tlog.ts [--entries 100000] [--batch 100]
// [--singles 1000] [--proofs 1000] once the packages are built.
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { BlobStore, PutBody, PutOptions } from '@cairn/storage/blob-store';
import { FsBlobStore } from '@cairn/storage/fs-store';
import { parseCheckpoint, type Checkpoint } from '@cairn/tlog/checkpoint';
import { encodeEntry } from '@cairn/tlog/entry';
import { LogReader } from '@cairn/tlog/log-reader';
import { LogWriter } from '@cairn/tlog/log-writer';
import { leafHash, verifyConsistency, verifyInclusion } from '@cairn/tlog/merkle';
import { useNodeSha256 } from '@cairn/tlog/node-hash';
import { createEd25519Signer, parseNote } from '@cairn/tlog/note';
import { consistencyProofFromTiles, rootFromTiles, tilePath } from '@cairn/tlog/tiles';
import { formatInteger, formatRatio, median, renderTable } from './stats.ts';

const { values: args } = parseArgs({
  options: {
    entries: { type: 'string', default: '100000' },
    batch: { type: 'string', default: '100' },
    singles: { type: 'string', default: '1000' },
    proofs: { type: 'string', default: '1000' },
  },
});
const ENTRIES = Number(args.entries);
const BATCH = Number(args.batch);
const SINGLES = Number(args.singles);
const PROOFS = Number(args.proofs);

useNodeSha256();

/** A store that passes everything through and records each put (key and bytes). */
function recording(inner: BlobStore, puts: { key: string; bytes: Uint8Array }[]): BlobStore {
  return {
    get: (key, options) => inner.get(key, options),
    head: (key) => inner.head(key),
    put: (key: string, body: PutBody, options?: PutOptions) => {
      if (body instanceof Uint8Array) puts.push({ key, bytes: body });
      return inner.put(key, body, options);
    },
    copy: (from, to, options) => inner.copy(from, to, options),
    delete: (key) => inner.delete(key),
    list: (options) => inner.list(options),
  };
}

function entryBytes(i: number): Uint8Array {
  const role = i % 2 === 0 ? 'targets' : 'snapshot';
  return encodeEntry({
    role,
    version: Math.floor(i / 2) + 1,
    length: 1000 + (i % 5000),
    sha256: createHash('sha256').update(String(i)).digest('hex'),
    time: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(),
  });
}

/** Puts the recorded objects again, in order, into a fresh store: storage's own cost. */
async function rawPuts(puts: readonly { key: string; bytes: Uint8Array }[]): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-bench-tlog-raw-'));
  try {
    const store = new FsBlobStore(dir);
    const start = performance.now();
    for (const { key, bytes } of puts) await store.put(key, bytes);
    return performance.now() - start;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function summary(values: readonly number[]): string {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return `${String(Math.min(...values))} / ${mean.toFixed(1)} / ${String(Math.max(...values))}`;
}

async function main(): Promise<void> {
  console.log(
    `cairn bench tlog — ${formatInteger(ENTRIES)} entries in batches of ${String(BATCH)}, ` +
      `${String(SINGLES)} single appends, ${String(PROOFS)} proofs of each kind; ` +
      `${String(cpus().length)} cores, load ${loadavg()[0]?.toFixed(2) ?? '?'}, Node ${process.version}`,
  );
  const dir = await mkdtemp(join(tmpdir(), 'cairn-bench-tlog-'));
  try {
    const signer = await createEd25519Signer('bench.cairn/log', new Uint8Array(32).fill(3));
    const puts: { key: string; bytes: Uint8Array }[] = [];
    const store = recording(new FsBlobStore(dir), puts);
    const writer = new LogWriter({ store, signer });
    const all = Array.from({ length: ENTRIES + SINGLES }, (_, i) => entryBytes(i));

    // sha256 floor.
    let start = performance.now();
    for (const e of all.slice(0, ENTRIES)) createHash('sha256').update(e).digest();
    const hashMs = performance.now() - start;

    // Batched appends.
    start = performance.now();
    let lastReport = start;
    for (let at = 0; at < ENTRIES; at += BATCH) {
      await writer.append(all.slice(at, Math.min(ENTRIES, at + BATCH)));
      if (performance.now() - lastReport > 5000) {
        lastReport = performance.now();
        process.stderr.write(
          `  appended ${formatInteger(at + BATCH)} / ${formatInteger(ENTRIES)}\n`,
        );
      }
    }
    const batchedMs = performance.now() - start;
    const batchedPuts = puts.splice(0);
    const batchedRawMs = await rawPuts(batchedPuts);

    // Single-entry appends, as one publication's worth at a time.
    const singleMs: number[] = [];
    for (let i = 0; i < SINGLES; i++) {
      const t = performance.now();
      await writer.append([all[ENTRIES + i] as Uint8Array]);
      singleMs.push(performance.now() - t);
    }
    const singlePuts = puts.splice(0);
    const singleRawMs = await rawPuts(singlePuts);
    const singleTotal = singleMs.reduce((a, b) => a + b, 0);

    const size = ENTRIES + SINGLES;
    console.log('\nappends (directory store)');
    console.log(
      renderTable(
        [
          'run',
          'entries',
          'appends',
          'puts',
          'entries/s',
          'ms/append (median)',
          '÷ raw puts',
          '÷ sha256',
        ],
        [
          [
            `batches of ${String(BATCH)}`,
            formatInteger(ENTRIES),
            formatInteger(Math.ceil(ENTRIES / BATCH)),
            formatInteger(batchedPuts.length),
            formatInteger((ENTRIES / batchedMs) * 1000),
            '—',
            formatRatio(batchedMs / batchedRawMs),
            formatRatio(batchedMs / hashMs),
          ],
          [
            'single entries',
            formatInteger(SINGLES),
            formatInteger(SINGLES),
            formatInteger(singlePuts.length),
            formatInteger((SINGLES / singleTotal) * 1000),
            median(singleMs).toFixed(2),
            formatRatio(singleTotal / singleRawMs),
            '—',
          ],
        ],
      ),
    );

    // Proofs from the tiles, through the reader a client uses.
    const fetchLog = async (path: string): Promise<Uint8Array> => {
      const result = await store.get(`log/${path}`);
      if (result.notModified) throw new Error('304');
      return new Uint8Array(await new Response(result.body).arrayBuffer());
    };
    const text = (await writer.checkpointText()) ?? '';
    const head: Checkpoint = parseCheckpoint(parseNote(text).text);
    const reader = new LogReader(fetchLog);
    const inclusionLengths: number[] = [];
    start = performance.now();
    for (let i = 0; i < PROOFS; i++) {
      const index = Math.floor(Math.random() * size);
      const proof = await reader.proveInclusion(head, index, all[index] as Uint8Array);
      inclusionLengths.push(proof.length);
    }
    const inclusionMs = performance.now() - start;
    // Verification alone (the proof in hand), as a client with cached tiles does.
    const sample = Math.floor(size / 3);
    const sampleProof = await reader.proveInclusion(head, sample, all[sample] as Uint8Array);
    const sampleLeaf = await leafHash(all[sample] as Uint8Array);
    start = performance.now();
    for (let i = 0; i < PROOFS; i++) {
      await verifyInclusion(sampleLeaf, sample, size, sampleProof, head.rootHash);
    }
    const verifyMs = performance.now() - start;

    // Consistency from every earlier size the log really had (batch boundaries).
    const consistencyLengths: number[] = [];
    const readTile = (level: number, index: number, width: number): Promise<Uint8Array> =>
      fetchLog(tilePath({ level, index, width }));
    start = performance.now();
    for (let i = 0; i < PROOFS; i++) {
      const old = BATCH * (1 + Math.floor(Math.random() * (ENTRIES / BATCH - 1)));
      const oldRoot = await rootFromTiles(old, readTile);
      const proof = await consistencyProofFromTiles(old, size, readTile);
      await verifyConsistency(old, size, oldRoot, head.rootHash, proof);
      consistencyLengths.push(proof.length);
    }
    const consistencyMs = performance.now() - start;
    const log2 = Math.ceil(Math.log2(size));
    console.log(`\nproofs at n = ${formatInteger(size)} (⌈log2 n⌉ = ${String(log2)})`);
    console.log(
      renderTable(
        ['proof', 'hashes min / mean / max', 'theory (max)', 'bytes (max)', 'per second'],
        [
          [
            'inclusion, built from tiles + verified',
            summary(inclusionLengths),
            String(log2),
            formatInteger(Math.max(...inclusionLengths) * 32),
            formatInteger((PROOFS / inclusionMs) * 1000),
          ],
          [
            'inclusion, verify only',
            String(sampleProof.length),
            String(log2),
            formatInteger(sampleProof.length * 32),
            formatInteger((PROOFS / verifyMs) * 1000),
          ],
          [
            'consistency (old root + proof from tiles + verify)',
            summary(consistencyLengths),
            String(log2 + 1),
            formatInteger(Math.max(...consistencyLengths) * 32),
            formatInteger((PROOFS / consistencyMs) * 1000),
          ],
        ],
      ),
    );
    if (Math.max(...inclusionLengths) > log2 || Math.max(...consistencyLengths) > log2 + 1) {
      throw new Error('a proof is longer than the theory allows');
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
