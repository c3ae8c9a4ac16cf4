// The child process bench/delta.ts measures for our codec, the way it measures the CLI tools:
// one process per operation, files in and out, under /usr/bin/time -v. Plain JavaScript on
// purpose: a shipped CLI runs compiled JavaScript, and Node's type stripping (which a .ts entry
// would load) adds about 23 MB of RSS and 20 ms of start-up that are no part of the codec.
//
//   node bench/delta-codec.mjs encode BASE TARGET DELTA
//   node bench/delta-codec.mjs apply BASE DELTA OUT          applyDeltaStream, chunks to disk
//   node bench/delta-codec.mjs apply-in-memory BASE DELTA OUT   applyDelta, then one write
//
// It does its I/O the way a client should: files are hashed while they are read (reads run on
// libuv's thread pool, hashing on the main thread) and handed to the codec through its sha256
// port, which still compares them with the header; output chunks are written while the next
// ones are hashed. Prints one JSON line of phase timings in ms for the report's detail.
import { createHash } from 'node:crypto';
import { open, readFile, writeFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { applyDelta, applyDeltaStream } from '@cairn/delta/apply';
import { encodeDelta } from '@cairn/delta/encode';
import { nodeApplyOptions, nodeSha256 } from '@cairn/delta/node';

/** Reads a file in 8 MiB chunks, hashing each while the next one is read. */
async function readAndHash(path) {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    const bytes = new Uint8Array(size);
    const hash = createHash('sha256');
    const chunk = 8 << 20;
    let pending = size > 0 ? file.read(bytes, 0, Math.min(chunk, size), 0) : undefined;
    for (let at = 0; pending !== undefined;) {
      const { bytesRead } = await pending;
      if (bytesRead === 0) throw new Error(`${path}: shorter than its size`);
      const next = at + bytesRead;
      pending =
        next < size ? file.read(bytes, next, Math.min(chunk, size - next), next) : undefined;
      hash.update(bytes.subarray(at, next));
      at = next;
    }
    return { bytes, sha256: new Uint8Array(hash.digest()) };
  } finally {
    await file.close();
  }
}

/** A sha256 port that answers with the digests taken while reading, and hashes anything else. */
function knownDigests(files) {
  return {
    ...nodeSha256,
    digest: (data) => {
      const known = files.find((f) => f.bytes === data);
      return known ? Promise.resolve(known.sha256) : nodeSha256.digest(data);
    },
  };
}

async function encode(basePath, targetPath, deltaPath) {
  const t0 = performance.now();
  const [base, target] = await Promise.all([readAndHash(basePath), readAndHash(targetPath)]);
  const t1 = performance.now();
  const delta = await encodeDelta(base.bytes, target.bytes, {
    sha256: knownDigests([base, target]),
  });
  const t2 = performance.now();
  await writeFile(deltaPath, delta);
  return { 'read+hash': t1 - t0, encode: t2 - t1, write: performance.now() - t2 };
}

async function apply(basePath, deltaPath, outPath) {
  const t0 = performance.now();
  const [base, delta] = await Promise.all([readAndHash(basePath), readFile(deltaPath)]);
  const t1 = performance.now();
  const options = { ...nodeApplyOptions, sha256: knownDigests([base]) };
  const reader = applyDeltaStream(base.bytes, delta, options).getReader();
  const file = await open(outPath, 'w');
  const inFlight = [];
  let position = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      // Explicit positions: writes in flight together may complete in any order.
      inFlight.push(file.write(value, 0, value.length, position));
      position += value.length;
      if (inFlight.length >= 8) await inFlight.shift();
    }
    await Promise.all(inFlight);
  } finally {
    await file.close();
  }
  return { 'read+hash': t1 - t0, 'apply+write': performance.now() - t1 };
}

async function applyInMemory(basePath, deltaPath, outPath) {
  const t0 = performance.now();
  const [base, delta] = await Promise.all([readFile(basePath), readFile(deltaPath)]);
  const t1 = performance.now();
  const result = await applyDelta(base, delta, nodeApplyOptions);
  const t2 = performance.now();
  await writeFile(outPath, result);
  return { read: t1 - t0, apply: t2 - t1, write: performance.now() - t2 };
}

const operations = { encode, apply, 'apply-in-memory': applyInMemory };
const [name, first, second, output] = process.argv.slice(2);
const operation = name === undefined ? undefined : operations[name];
if (operation === undefined || !first || !second || !output) {
  console.error('usage: node bench/delta-codec.mjs encode|apply|apply-in-memory A B OUT');
  process.exit(2);
}
console.log(JSON.stringify(await operation(first, second, output)));
