// Publishing a 1 GB release to MinIO: `cairn push` plus the two signatures that publish it,
// against a plain @aws-sdk/client-s3 upload of the same bytes, in the same run, to the same MinIO.
//
// Inputs (bench/delta-inputs.ts, deterministic): 10 signature databases of 100 MB each as release
// 1, and release 2 in which 1% of the records of every file were added, removed or changed, so
// release 2 gets one delta per file against release 1.
//
// Each round starts two fresh origins (bench/publish-origin.ts: a worker thread each, over an
// S3BlobStore on a fresh bucket) and publishes release 1 to the first, untimed. Then, in an order
// that rotates from round to round, each side moves the 10 files of release 2:
//   - plain PutObject: one PutObjectCommand per file, its body a file stream, one after another;
//   - plain Upload: lib-storage `Upload` per file, 8 MiB parts, 4 at once (S3BlobStore's way);
//   - ours: `PublisherClient.push` (hash, upload into staging, deltas, draft), then `sign` by the
//     two publishers the threshold needs; the second signature publishes (server-side copies to
//     the public keys, metadata, log entry, timestamp);
//   - ours without deltas, a diagnostic: the same on the second origin, its policy's deltas off
//     (release 2 is its first release: without deltas, release 1 would change nothing).
// Fresh buckets for every plain upload. Every storage call of the origins is recorded, so the
// report shows where the time went. Medians over the rounds.
//
// Run: npm run bench:publish (builds first), or node bench/publish.ts [--scale 0.1] [--rounds 3]
// once the packages are built. MinIO is found or built by @cairn/storage/testing/minio.
import { once } from 'node:events';
import { createReadStream, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, statfs } from 'node:fs/promises';
import { Agent as HttpAgent } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { encodeDelta } from '@cairn/delta/encode';
import { PublisherClient, scanDirectory } from '@cairn/origin/publisher-client';
import type { ReleaseSummary } from '@cairn/origin/releases';
import { startMinio, uniqueBucketName, type MinioServer } from '@cairn/storage/testing/minio';
import { Ed25519Signer } from '@cairn/verify/signer';
import { writeSignatureDatabases } from './delta-inputs.ts';
import {
  epochMs,
  type OriginCommand,
  type OriginMessage,
  type OriginRequest,
  type StoreCall,
} from './publish-origin.ts';
import { formatInteger, formatRatio, max, median, min } from './stats.ts';

const ORIGIN_SCRIPT = new URL('./publish-origin.ts', import.meta.url);
const MB = 1e6;
const MiB = 2 ** 20;
/** S3BlobStore's defaults for a streamed put. */
const PART_SIZE = 8 * MiB;
const PART_CONCURRENCY = 4;
/** The goal: publishing at most this many times the plain upload. */
const GOAL = 1.3;
/** An origin's start, a bucket's removal: seconds each; this only catches a hang. */
const STEP_TIMEOUT_MS = 120_000;
/** The whole run, whatever happens (a cold MinIO build alone takes about 7 minutes). */
const HARD_LIMIT_MS = 30 * 60_000;

// ---------------------------------------------------------------------------------------------
// Inputs

interface InputFile {
  readonly name: string;
  readonly release1Bytes: number;
  readonly release2Bytes: number;
  readonly added: number;
  readonly removed: number;
  readonly changed: number;
}

interface Inputs {
  readonly release1: string;
  readonly release2: string;
  readonly files: readonly InputFile[];
}

async function writeInputs(dir: string, count: number, bytes: number): Promise<Inputs> {
  const release1 = join(dir, 'release-1');
  const release2 = join(dir, 'release-2');
  await mkdir(release1);
  await mkdir(release2);
  const files: InputFile[] = [];
  for (let i = 0; i < count; i++) {
    const name = `sigs-${String(i).padStart(2, '0')}.hsb`;
    const s = await writeSignatureDatabases(
      join(release1, name),
      join(release2, name),
      bytes,
      1000 + i,
    );
    files.push({
      name,
      release1Bytes: s.baseBytes,
      release2Bytes: s.targetBytes,
      added: s.added,
      removed: s.removed,
      changed: s.changed,
    });
  }
  return { release1, release2, files };
}

// ---------------------------------------------------------------------------------------------
// CPU accounting: this process (all its threads) and the MinIO server

/** CPU seconds (user + system) MinIO has used: the server is its watchdog shell's child. */
async function minioCpuSeconds(minio: MinioServer): Promise<number> {
  const shell = minio.pid;
  if (shell === undefined) return Number.NaN;
  try {
    const children = (await readFile(`/proc/${shell}/task/${shell}/children`, 'utf8')).trim();
    let total = 0;
    for (const pid of children.split(/\s+/).filter((p) => p !== '')) {
      const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ');
      // utime and stime, fields 14 and 15 of proc(5), in clock ticks (1/100 s on Linux).
      total += (Number(fields?.[11]) + Number(fields?.[12])) / 100;
    }
    return total;
  } catch {
    return Number.NaN;
  }
}

type Loop = ReturnType<typeof performance.eventLoopUtilization>;

interface CpuMark {
  readonly at: number;
  readonly process: NodeJS.CpuUsage;
  readonly minio: number;
  readonly main: Loop;
  readonly origin: Loop | undefined;
}

async function cpuMark(minio: MinioServer, origin?: OriginWorker): Promise<CpuMark> {
  return {
    at: epochMs(),
    process: process.cpuUsage(),
    minio: await minioCpuSeconds(minio),
    main: performance.eventLoopUtilization(),
    origin: origin?.loop(),
  };
}

interface CpuSpan {
  readonly seconds: number;
  /** CPU seconds of this process (every thread) and of MinIO. */
  readonly processCpu: number;
  readonly minioCpu: number;
  /** Share of the time the main thread (the publisher) and the origin's thread were busy. */
  readonly mainBusy: number;
  readonly originBusy: number;
}

function cpuSpan(from: CpuMark, to: CpuMark): CpuSpan {
  const loop = (a: Loop | undefined, b: Loop | undefined) =>
    a === undefined || b === undefined
      ? Number.NaN
      : performance.eventLoopUtilization(b, a).utilization;
  return {
    seconds: (to.at - from.at) / 1000,
    processCpu:
      (to.process.user - from.process.user + to.process.system - from.process.system) / 1e6,
    minioCpu: to.minio - from.minio,
    mainBusy: loop(from.main, to.main),
    originBusy: loop(from.origin, to.origin),
  };
}

// ---------------------------------------------------------------------------------------------
// The plain uploads

type PlainKey = 'put' | 'upload';

function s3Client(minio: MinioServer): S3Client {
  return new S3Client({
    endpoint: minio.endpoint,
    region: minio.region,
    credentials: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
    forcePathStyle: true,
    // As S3BlobStore: checksums only where an operation requires them (the SDK's default adds
    // a CRC32 of every part, which costs the plain side CPU the origin does not spend).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { httpAgent: new HttpAgent({ keepAlive: true, maxSockets: 64 }) },
  });
}

async function plainRun(
  minio: MinioServer,
  inputs: Inputs,
  how: PlainKey,
): Promise<{ ms: number; cpu: CpuSpan }> {
  const bucket = uniqueBucketName('bench-plain');
  await minio.createBucket(bucket);
  const client = s3Client(minio);
  try {
    const before = await cpuMark(minio);
    for (const file of inputs.files) {
      const body = createReadStream(join(inputs.release2, file.name), { highWaterMark: MiB });
      if (how === 'put') {
        await client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: file.name,
            Body: body,
            ContentLength: file.release2Bytes,
          }),
        );
      } else {
        await new Upload({
          client,
          params: { Bucket: bucket, Key: file.name, Body: body },
          partSize: PART_SIZE,
          queueSize: PART_CONCURRENCY,
        }).done();
      }
    }
    const after = await cpuMark(minio);
    return { ms: after.at - before.at, cpu: cpuSpan(before, after) };
  } finally {
    client.destroy();
    await withTimeout(minio.removeBucket(bucket), STEP_TIMEOUT_MS, `removing ${bucket}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Ours

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

interface Secrets {
  readonly request: OriginRequest['secrets'];
  readonly alice: Ed25519Signer;
  readonly bob: Ed25519Signer;
}

async function makeSecrets(): Promise<Secrets> {
  const secret = () => crypto.getRandomValues(new Uint8Array(32));
  const request = {
    root: [secret(), secret()],
    publishers: [secret(), secret()],
    snapshot: secret(),
    timestamp: secret(),
  };
  const [alice, bob] = await Promise.all(
    request.publishers.map((s) => Ed25519Signer.fromSecretKey(s)),
  );
  if (alice === undefined || bob === undefined) throw new Error('two publishers expected');
  return { request, alice, bob };
}

/** An origin on its own thread and bucket, and its two publishers' clients. */
class OriginWorker {
  readonly #worker: Worker;
  readonly alice: PublisherClient;
  readonly bob: PublisherClient;

  private constructor(worker: Worker, url: string, secrets: Secrets) {
    this.#worker = worker;
    this.alice = new PublisherClient(url, secrets.alice);
    this.bob = new PublisherClient(url, secrets.bob);
  }

  static async start(
    minio: MinioServer,
    secrets: Secrets,
    deltas: OriginRequest['deltas'],
  ): Promise<OriginWorker> {
    const worker = new Worker(ORIGIN_SCRIPT, {
      workerData: {
        connection: minio.connection,
        secrets: secrets.request,
        deltas,
      } satisfies OriginRequest,
    });
    try {
      const message = await withTimeout(OriginWorker.#next(worker), STEP_TIMEOUT_MS, 'origin');
      if (message.type !== 'ready') throw new Error(`origin worker sent ${message.type}`);
      return new OriginWorker(worker, message.url, secrets);
    } catch (error) {
      await worker.terminate();
      throw error;
    }
  }

  static async #next(worker: Worker): Promise<OriginMessage> {
    // once() rejects when the worker emits 'error'.
    const [message] = (await once(worker, 'message')) as [OriginMessage];
    return message;
  }

  async #ask(command: OriginCommand): Promise<OriginMessage> {
    const answer = OriginWorker.#next(this.#worker);
    this.#worker.postMessage(command);
    return withTimeout(answer, STEP_TIMEOUT_MS, `origin worker (${command.type})`);
  }

  loop(): Loop {
    return this.#worker.performance.eventLoopUtilization();
  }

  /** The storage calls the origin made since the last time. */
  async takeCalls(): Promise<StoreCall[]> {
    const answer = await this.#ask({ type: 'take-calls' });
    if (answer.type !== 'calls') throw new Error(`origin worker sent ${answer.type}`);
    return [...answer.calls];
  }

  async close(): Promise<void> {
    try {
      await this.#ask({ type: 'close' });
    } finally {
      await this.#worker.terminate();
    }
  }
}

interface Marks {
  started: number;
  firstUpload: number;
  pushed: number;
  /** After `between`, which is left out of the times. */
  resumed: number;
  signed: number;
  published: number;
}

/**
 * Pushes `dir` and has both publishers sign it: the second signature publishes it. `between`
 * runs after the push, off the clock.
 */
async function pushAndPublish(
  origin: OriginWorker,
  dir: string,
  marks: Marks,
  between?: () => Promise<void>,
): Promise<ReleaseSummary> {
  marks.started = epochMs();
  const draft = await origin.alice.push(dir, {
    progress: (phase) => {
      if (phase === 'upload' && Number.isNaN(marks.firstUpload)) marks.firstUpload = epochMs();
    },
  });
  marks.pushed = epochMs();
  await between?.();
  marks.resumed = epochMs();
  await origin.alice.sign(draft.id, dir);
  marks.signed = epochMs();
  const result = await origin.bob.sign(draft.id, dir);
  marks.published = epochMs();
  if (result.published === undefined) {
    throw new Error(`release ${draft.id} was not published after two signatures`);
  }
  return draft;
}

function newMarks(): Marks {
  return {
    started: Number.NaN,
    firstUpload: Number.NaN,
    pushed: Number.NaN,
    resumed: Number.NaN,
    signed: Number.NaN,
    published: Number.NaN,
  };
}

interface OursRun {
  readonly calls: readonly StoreCall[];
  readonly marks: Marks;
  readonly pushMs: number;
  readonly publishMs: number;
  readonly totalMs: number;
  readonly summary: ReleaseSummary;
  readonly profile: Profile;
  readonly pushCpu: CpuSpan;
  readonly publishCpu: CpuSpan;
}

async function oursRun(minio: MinioServer, origin: OriginWorker, inputs: Inputs): Promise<OursRun> {
  await origin.takeCalls();
  const marks = newMarks();
  const before = await cpuMark(minio, origin);
  let middle: CpuMark | undefined;
  const summary = await pushAndPublish(origin, inputs.release2, marks, async () => {
    middle = await cpuMark(minio, origin);
  });
  const after = await cpuMark(minio, origin);
  const calls = await origin.takeCalls();
  const pushMs = marks.pushed - marks.started;
  const publishMs = marks.published - marks.resumed;
  return {
    calls,
    marks,
    pushMs,
    publishMs,
    totalMs: pushMs + publishMs,
    summary,
    profile: analyse(calls, marks),
    pushCpu: cpuSpan(before, middle ?? after),
    publishCpu: cpuSpan(middle ?? before, after),
  };
}

// ---------------------------------------------------------------------------------------------
// Where the time went

interface Profile {
  /** Push start to the first byte sent: hashing every file, then the manifest's POST. */
  readonly hashMs: number;
  /** First staged upload's start to the last one's end, and their durations summed. */
  readonly uploadSpanMs: number;
  readonly uploadSumMs: number;
  /** Delta work, summed over files: reading target and base back from storage, encoding. */
  readonly deltaReadMs: number;
  readonly deltaEncodeMs: number;
  /** Last upload stored to push returning: delta work not overlapped, then the draft. */
  readonly afterUploadsMs: number;
  readonly sign1Ms: number;
  readonly sign2Ms: number;
  /** Server-side copies to the public keys: summed, and first start to last end. */
  readonly copySumMs: number;
  readonly copySpanMs: number;
  /** Publication steps other than the copies: plan, metadata, log, timestamp, clean-up. */
  readonly publishOtherMs: number;
  /** The second signer's own part before publication: show, hash the directory, POST. */
  readonly sign2BeforeCopyMs: number;
  /** Storage calls on the push path other than the uploads and the delta's reads and writes. */
  readonly smallCallsOnPush: number;
}

function analyse(calls: readonly StoreCall[], marks: Marks): Profile {
  const sum = (cs: readonly StoreCall[]) => cs.reduce((n, c) => n + (c.end - c.start), 0);
  const fileIndex = (key: string) => Number(/\/(?:files|deltas)\/(\d+)/.exec(key)?.[1]);
  const uploads = calls.filter((c) => c.op === 'put' && /\/files\/\d+$/.test(c.key));
  const deltaPuts = calls.filter(
    (c) => c.op === 'put' && /\/deltas\/\d+-[0-9a-f]{64}$/.test(c.key),
  );
  let deltaReadMs = 0;
  let deltaEncodeMs = 0;
  for (const put of deltaPuts) {
    const i = fileIndex(put.key);
    const upload = uploads.find((u) => fileIndex(u.key) === i);
    if (upload === undefined) continue;
    // The delta's reads: the staged file and its base blob, after the upload, before the put.
    const reads = calls.filter(
      (c) =>
        c.op === 'get' &&
        c.start >= upload.end &&
        c.end <= put.start &&
        (c.key.endsWith(`/files/${i}`) || c.key.startsWith('targets/')),
    );
    if (reads.length === 0) continue;
    const readEnd = max(reads.map((c) => c.end));
    deltaReadMs += readEnd - min(reads.map((c) => c.start));
    deltaEncodeMs += put.start - readEnd;
  }
  const lastUpload = max(uploads.map((u) => u.end));
  const copies = calls.filter((c) => c.op === 'copy');
  const firstCopy = copies.length === 0 ? marks.published : min(copies.map((c) => c.start));
  const lastCopy = copies.length === 0 ? marks.published : max(copies.map((c) => c.end));
  const onPush = calls.filter((c) => c.start >= marks.started && c.end <= marks.pushed);
  return {
    hashMs: marks.firstUpload - marks.started,
    uploadSpanMs: lastUpload - min(uploads.map((u) => u.start)),
    uploadSumMs: sum(uploads),
    deltaReadMs,
    deltaEncodeMs,
    afterUploadsMs: marks.pushed - lastUpload,
    sign1Ms: marks.signed - marks.resumed,
    sign2Ms: marks.published - marks.signed,
    copySumMs: sum(copies),
    copySpanMs: lastCopy - firstCopy,
    sign2BeforeCopyMs: firstCopy - marks.signed,
    publishOtherMs: marks.published - lastCopy,
    smallCallsOnPush: onPush.length - uploads.length - deltaPuts.length,
  };
}

/** The storage calls of one run that took 20 ms or more, on stderr, for --timeline. */
function timeline(run: OursRun): void {
  const t0 = run.marks.started;
  const at = (t: number) => ((t - t0) / 1000).toFixed(2).padStart(7);
  console.error(`timeline: push ended ${at(run.marks.pushed)}, publish ${at(run.marks.published)}`);
  for (const c of run.calls.filter((c) => c.end - c.start >= 20)) {
    const key = c.key.replace(/[0-9a-f]{64}/g, '…').replace(/^_origin\/releases\/[^/]+\//, '');
    console.error(`${at(c.start)} ${at(c.end)} ${at(c.end - c.start + t0)} ${c.op} ${key}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function machine(): string {
  const [one = 0, five = 0] = loadavg();
  return (
    `node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ` +
    `load average ${one.toFixed(2)} / ${five.toFixed(2)} (1 / 5 min)`
  );
}

/** Columns before `leftColumns` are left-aligned (text), the rest right-aligned (figures). */
function markdownTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  leftColumns = 1,
): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  const rule = header.map((_, i) => (i < leftColumns ? '---' : '---:'));
  return [line(header), line(rule), ...rows.map(line)].join('\n');
}

const seconds = (ms: number) => (ms / 1000).toFixed(2);

/** Costs measured alone, on an otherwise idle event loop: what no overlap can hide. */
interface Floors {
  /** scanDirectory of release 2: what push does before sending, and each signature again. */
  readonly hashMs: number;
  /** encodeDelta of the first file against its release 1 version, both already in memory. */
  readonly encodeMs: number;
}

async function measureFloors(inputs: Inputs): Promise<Floors> {
  const hash: number[] = [];
  const encode: number[] = [];
  const first = inputs.files[0];
  if (first === undefined) throw new Error('no input files');
  const base = await readFile(join(inputs.release1, first.name));
  const target = await readFile(join(inputs.release2, first.name));
  for (let i = 0; i < 3; i++) {
    let t = performance.now();
    await scanDirectory(inputs.release2);
    hash.push(performance.now() - t);
    t = performance.now();
    await encodeDelta(base, target);
    encode.push(performance.now() - t);
  }
  return { hashMs: median(hash), encodeMs: median(encode) };
}

interface Results {
  readonly inputs: Inputs;
  floors?: Floors;
  readonly plain: Record<PlainKey, { ms: number; cpu: CpuSpan }[]>;
  readonly ours: OursRun[];
  readonly noDeltas: OursRun[];
}

function report(r: Results): string {
  const put = median(r.plain.put.map((p) => p.ms));
  const upload = median(r.plain.upload.map((p) => p.ms));
  const row = (label: string, samples: readonly number[]) => [
    label,
    seconds(median(samples)),
    seconds(min(samples)),
    seconds(max(samples)),
    formatRatio(median(samples) / put),
    formatRatio(median(samples) / upload),
  ];
  const ours = (pick: (o: OursRun) => number) => r.ours.map(pick);
  const noDeltas = (pick: (o: OursRun) => number) => r.noDeltas.map(pick);
  const totals = markdownTable(
    ['what', 'median s', 'min s', 'max s', '/ PutObject', '/ Upload'],
    [
      row(
        'plain: PutObject per file, file stream',
        r.plain.put.map((p) => p.ms),
      ),
      row(
        'plain: lib-storage Upload, 8 MiB parts × 4',
        r.plain.upload.map((p) => p.ms),
      ),
      row(
        'ours: push (hash, upload, deltas, draft)',
        ours((o) => o.pushMs),
      ),
      row(
        'ours: publish (2 signatures, copies, metadata)',
        ours((o) => o.publishMs),
      ),
      row(
        'ours: total',
        ours((o) => o.totalMs),
      ),
      row(
        'diagnostic: ours without deltas, push',
        noDeltas((o) => o.pushMs),
      ),
      row(
        'diagnostic: ours without deltas, total',
        noDeltas((o) => o.totalMs),
      ),
    ],
  );
  const total = median(ours((o) => o.totalMs));
  const goal = `goal: total ≤ ${GOAL} × the plain upload: ${formatRatio(total / put)} × PutObject, ${formatRatio(total / upload)} × Upload: ${total / put <= GOAL ? 'met' : 'NOT met'}`;

  const p = (pick: (x: Profile) => number) => seconds(median(r.ours.map((o) => pick(o.profile))));
  const n = (pick: (x: Profile) => number) =>
    seconds(median(r.noDeltas.map((o) => pick(o.profile))));
  const phases = markdownTable(
    ['phase (medians)', 'ours s', 'no deltas s'],
    [
      ['push: hash all files, then POST the manifest', p((x) => x.hashMs), n((x) => x.hashMs)],
      [
        'push: first upload start to last upload stored',
        p((x) => x.uploadSpanMs),
        n((x) => x.uploadSpanMs),
      ],
      [
        '  of which uploads into staging (summed)',
        p((x) => x.uploadSumMs),
        n((x) => x.uploadSumMs),
      ],
      [
        'push: last upload stored to draft returned',
        p((x) => x.afterUploadsMs),
        n((x) => x.afterUploadsMs),
      ],
      ['deltas: reading target and base back (summed)', p((x) => x.deltaReadMs), '–'],
      ['deltas: encoding (summed)', p((x) => x.deltaEncodeMs), '–'],
      ['publish: first signature (show, re-hash, POST)', p((x) => x.sign1Ms), n((x) => x.sign1Ms)],
      [
        'publish: second signature, before the copies',
        p((x) => x.sign2BeforeCopyMs),
        n((x) => x.sign2BeforeCopyMs),
      ],
      [
        'publish: server-side copies to public keys',
        p((x) => x.copySpanMs),
        n((x) => x.copySpanMs),
      ],
      [
        'publish: metadata, log, timestamp, clean-up',
        p((x) => x.publishOtherMs),
        n((x) => x.publishOtherMs),
      ],
    ],
  );
  const cpu = (label: string, spans: readonly CpuSpan[]) => [
    label,
    seconds(median(spans.map((c) => c.seconds * 1000))),
    median(spans.map((c) => c.processCpu)).toFixed(1),
    median(spans.map((c) => c.minioCpu)).toFixed(1),
    spans.some((c) => !Number.isNaN(c.originBusy))
      ? `${Math.round(100 * median(spans.map((c) => c.mainBusy)))}% / ${Math.round(100 * median(spans.map((c) => c.originBusy)))}%`
      : `${Math.round(100 * median(spans.map((c) => c.mainBusy)))}%`,
  ];
  const cpuTable = markdownTable(
    ['run (medians)', 'wall s', 'bench process CPU s', 'MinIO CPU s', 'main / origin thread busy'],
    [
      cpu(
        'plain PutObject',
        r.plain.put.map((x) => x.cpu),
      ),
      cpu(
        'plain Upload',
        r.plain.upload.map((x) => x.cpu),
      ),
      cpu(
        'ours: push',
        r.ours.map((o) => o.pushCpu),
      ),
      cpu(
        'ours: publish',
        r.ours.map((o) => o.publishCpu),
      ),
      cpu(
        'ours without deltas: push',
        r.noDeltas.map((o) => o.pushCpu),
      ),
      cpu(
        'ours without deltas: publish',
        r.noDeltas.map((o) => o.publishCpu),
      ),
    ],
  );
  const first = r.ours[0]?.summary;
  const deltaRows = (first?.files ?? []).map((f) => {
    const input = r.inputs.files.find((i) => i.name === f.path);
    const delta = f.deltas[0]?.length ?? Number.NaN;
    return [
      f.path,
      formatInteger(f.length ?? Number.NaN),
      input ? `${input.added} / ${input.removed} / ${input.changed}` : '',
      formatInteger(delta),
      `${((100 * delta) / (f.length ?? Number.NaN)).toFixed(2)}%`,
    ];
  });
  const deltaBytes = first?.deltaBytes ?? Number.NaN;
  const deltas = markdownTable(
    ['file', 'bytes', 'records added / removed / changed', 'delta bytes', 'delta / file'],
    [
      ...deltaRows,
      [
        'all',
        formatInteger(first?.totalBytes ?? Number.NaN),
        '',
        formatInteger(deltaBytes),
        `${((100 * deltaBytes) / (first?.totalBytes ?? Number.NaN)).toFixed(2)}%`,
      ],
    ],
  );
  const floors =
    r.floors === undefined
      ? ''
      : `Alone, on an idle event loop (medians of 3): hashing release 2 as push and each ` +
        `signature do (scanDirectory): ${seconds(r.floors.hashMs)} s; encodeDelta of one ` +
        `file against its release 1 version, both in memory: ${seconds(r.floors.encodeMs)} s, ` +
        `so about ${seconds(r.floors.encodeMs * r.inputs.files.length)} s for the release.`;
  return [
    '### Publishing release 2 (medians of the rounds)',
    '',
    totals,
    '',
    goal,
    '',
    '### Where the time goes',
    '',
    phases,
    '',
    cpuTable,
    '',
    floors,
    '',
    '### Deltas of release 2 against release 1 (from the draft)',
    '',
    deltas,
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------

const { values } = parseArgs({
  options: {
    scale: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '3' },
    files: { type: 'string', default: '10' },
    timeline: { type: 'boolean', default: false },
  },
});
const scale = Number(values.scale);
const rounds = Number(values.rounds);
const fileCount = Number(values.files);
if (!(scale > 0) || !Number.isSafeInteger(rounds) || rounds < 1) {
  console.error('✘ BAD_ARGUMENT: --scale must be > 0 and --rounds a whole number ≥ 1');
  process.exit(2);
}
if (!Number.isSafeInteger(fileCount) || fileCount < 1 || fileCount > 100) {
  console.error(`✘ BAD_ARGUMENT: --files must be from 1 to 100, received ${values.files}`);
  process.exit(2);
}
const fileBytes = Math.round(100 * MB * scale);

const started = performance.now();
const dir = await mkdtemp(join(tmpdir(), 'cairn-publish-bench-'));
setTimeout(() => {
  console.error(`✘ TIMEOUT: the benchmark ran for ${HARD_LIMIT_MS / 60_000} minutes; stopping.`);
  // MinIO's exit hook stops the server and removes its directory.
  rmSync(dir, { recursive: true, force: true });
  process.exit(1);
}, HARD_LIMIT_MS).unref();
let minio: MinioServer | undefined;
try {
  const free = await statfs(dir);
  // Two releases here; in MinIO (same temporary directory) release 1, release 2 staged and
  // public on both origins, and a plain copy.
  const need = 8 * fileCount * fileBytes;
  if (free.bavail * free.bsize < need) {
    console.error(
      `✘ DISK_SPACE: ${dir} has ${formatInteger((free.bavail * free.bsize) / MB)} MB free; ` +
        `this run needs about ${formatInteger(need / MB)} MB.`,
    );
    await rm(dir, { recursive: true, force: true });
    process.exit(1);
  }
  console.log(`Publish benchmark, ${new Date().toISOString()}: ${machine()}\n`);
  console.error(`… generating ${fileCount} files of ${fileBytes / MB} MB, two releases`);
  const inputs = await writeInputs(dir, fileCount, fileBytes);
  for (const f of inputs.files) {
    if ((await stat(join(inputs.release2, f.name))).size !== f.release2Bytes) {
      throw new Error(`${f.name}: not the size it was generated with`);
    }
  }
  minio = await startMinio({ log: (line) => console.error(`[minio] ${line}`) });
  const secrets = await makeSecrets();
  const results: Results = { inputs, plain: { put: [], upload: [] }, ours: [], noDeltas: [] };
  const sides = ['put', 'ours', 'upload', 'no-deltas'] as const;
  for (let round = 0; round < rounds; round++) {
    console.error(`… round ${round + 1} of ${rounds}: publishing release 1 (untimed)`);
    const [ours, noDeltas] = await Promise.all([
      OriginWorker.start(minio, secrets, 'default'),
      OriginWorker.start(minio, secrets, 'none'),
    ]);
    try {
      // Without deltas, release 1 would change nothing of what release 2 costs.
      await pushAndPublish(ours, inputs.release1, newMarks());
      // Each side goes first once every four rounds.
      const order = sides.map((_, i) => sides[(i + round) % sides.length] ?? 'put');
      for (const side of order) {
        if (side === 'put' || side === 'upload') {
          const run = await plainRun(minio, inputs, side);
          results.plain[side].push(run);
          console.error(`  plain ${side}: ${seconds(run.ms)} s`);
        } else {
          const run = await oursRun(minio, side === 'ours' ? ours : noDeltas, inputs);
          const expected = side === 'ours' ? inputs.files.length : 0;
          const made = run.summary.files.reduce((k, f) => k + f.deltas.length, 0);
          if (made !== expected) {
            throw new Error(`${side}: the draft has ${made} deltas, expected ${expected}`);
          }
          (side === 'ours' ? results.ours : results.noDeltas).push(run);
          console.error(
            `  ${side}: push ${seconds(run.pushMs)} s, publish ${seconds(run.publishMs)} s`,
          );
        }
      }
    } finally {
      await Promise.all([ours.close(), noDeltas.close()]);
    }
  }
  console.error('… measuring hashing and encoding alone');
  results.floors = await measureFloors(inputs);
  if (values.timeline) {
    for (const run of [...results.ours, ...results.noDeltas]) timeline(run);
  }
  console.log(report(results));
  console.log(
    `\n${formatInteger(inputs.files.reduce((k, f) => k + f.release2Bytes, 0))} bytes in ` +
      `${fileCount} files; ${rounds} rounds; ` +
      `${((performance.now() - started) / 60_000).toFixed(1)} min in all; ${machine()}.`,
  );
} finally {
  await minio?.stop();
  await rm(dir, { recursive: true, force: true });
}
