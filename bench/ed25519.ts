// Ed25519 verifications per second: the pure-JS verifier our core uses (@noble/ed25519, strict
// RFC 8032 with zip215: false, as Key.verify calls it) against node:crypto (OpenSSL), which
// tuf-js uses. Same keys, same messages, same signatures for every verifier; the verifiers take
// turns round by round and each figure is the median over the measured rounds.
//
// Run: npm run bench (builds first), or node bench/ed25519.ts once the packages are built.
import { createPublicKey, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { getPublicKeyAsync, signAsync, verifyAsync } from '@noble/ed25519';
import { canonicalize } from '@cairn/verify/canonical-json';
import { toHex } from '@cairn/verify/encoding';
import { Key } from '@cairn/verify/keys';
import { formatInteger, formatRatio, max, median, min, renderTable } from './stats.ts';

export interface Ed25519BenchOptions {
  /** Milliseconds each verifier runs per round. Default 500. */
  readonly roundMs?: number;
  /** Measured rounds, after one unmeasured warm-up round. Default 5. */
  readonly rounds?: number;
}

export type VerifierKey = 'node' | 'noble' | 'key-verify';

export interface VerifierRate {
  readonly key: VerifierKey;
  readonly label: string;
  readonly medianPerSecond: number;
  readonly minPerSecond: number;
  readonly maxPerSecond: number;
}

export interface Ed25519Result {
  readonly date: string;
  readonly keys: number;
  readonly messages: number;
  readonly messageBytes: number;
  readonly rounds: number;
  readonly roundMs: number;
  readonly verifiers: readonly VerifierRate[];
  readonly nobleOverNode: number;
  readonly keyVerifyOverNode: number;
}

const KEY_COUNT = 16;
const MESSAGE_COUNT = 64;
/** Verifications between two clock reads: keeps performance.now() out of the figure. */
const BATCH = 16;

interface Case {
  readonly message: Uint8Array;
  readonly signature: Uint8Array;
  readonly signatureHex: string;
  readonly publicKey: Uint8Array;
  readonly keyObject: KeyObject;
  readonly key: Key;
}

interface Verifier {
  readonly key: VerifierKey;
  readonly label: string;
  verify(c: Case, message?: Uint8Array): boolean | Promise<boolean>;
}

const VERIFIERS: readonly Verifier[] = [
  {
    key: 'node',
    label: 'node:crypto verify (OpenSSL), KeyObject made once',
    verify: (c, message = c.message) => nodeVerify(null, message, c.keyObject, c.signature),
  },
  {
    key: 'noble',
    label: '@noble/ed25519 3.2.0 verifyAsync, zip215: false',
    verify: (c, message = c.message) =>
      verifyAsync(c.signature, message, c.publicKey, { zip215: false }),
  },
  {
    key: 'key-verify',
    label: 'Key.verify (@cairn/verify/keys: hex decode + noble)',
    verify: (c, message = c.message) => c.key.verify(c.signatureHex, message),
  },
];

/** A timestamp's signed part in canonical JSON: what a client verifies most often. */
function timestampMessage(i: number): Uint8Array {
  const hash = toHex(crypto.getRandomValues(new Uint8Array(32)));
  return canonicalize({
    _type: 'timestamp',
    expires: '2026-11-24T00:00:00Z',
    meta: {
      'snapshot.json': { hashes: { sha256: hash }, length: 1_570_000 + i, version: 1000 + i },
    },
    spec_version: '1.0.31',
    version: 100_000 + i,
  });
}

async function makeCases(): Promise<Case[]> {
  const keys: { secret: Uint8Array; publicKey: Uint8Array; keyObject: KeyObject; key: Key }[] = [];
  for (let i = 0; i < KEY_COUNT; i++) {
    const secret = crypto.getRandomValues(new Uint8Array(32));
    const publicKey = await getPublicKeyAsync(secret);
    const keyObject = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey).toString('base64url') },
      format: 'jwk',
    });
    keys.push({
      secret,
      publicKey,
      keyObject,
      key: new Key('ed25519', 'ed25519', toHex(publicKey)),
    });
  }
  const cases: Case[] = [];
  for (let i = 0; i < MESSAGE_COUNT; i++) {
    const k = keys[i % KEY_COUNT];
    if (k === undefined) throw new Error('unreachable: no key');
    const message = timestampMessage(i);
    const signature = await signAsync(message, k.secret);
    cases.push({ ...k, message, signature, signatureHex: toHex(signature) });
  }
  return cases;
}

/** Every verifier must accept every case and reject a tampered one, or the figures mean nothing. */
async function checkVerifiers(cases: readonly Case[]): Promise<void> {
  for (const v of VERIFIERS) {
    for (const c of cases) {
      if (!(await v.verify(c))) throw new Error(`${v.label} rejected a valid signature`);
      const tampered = c.message.slice();
      const at = tampered.length - 2; // a digit of the version
      tampered[at] = (tampered[at] ?? 0) ^ 1;
      if (await v.verify(c, tampered)) throw new Error(`${v.label} accepted a tampered message`);
    }
  }
}

async function verificationsPerSecond(
  verifier: Verifier,
  cases: readonly Case[],
  ms: number,
): Promise<number> {
  let done = 0;
  const started = performance.now();
  let now = started;
  while (now - started < ms) {
    for (let i = 0; i < BATCH; i++) {
      const c = cases[(done + i) % cases.length];
      if (c === undefined || !(await verifier.verify(c))) {
        throw new Error(`${verifier.label} rejected a valid signature`);
      }
    }
    done += BATCH;
    now = performance.now();
  }
  return done / ((now - started) / 1000);
}

export async function benchEd25519(options: Ed25519BenchOptions = {}): Promise<Ed25519Result> {
  const roundMs = options.roundMs ?? 500;
  const rounds = options.rounds ?? 5;
  const cases = await makeCases();
  await checkVerifiers(cases);

  const rates = new Map<VerifierKey, number[]>(VERIFIERS.map((v) => [v.key, []]));
  for (let round = -1; round < rounds; round++) {
    // Rotate the order each round; round -1 is the warm-up and is not recorded.
    const order = VERIFIERS.map((_, i) => VERIFIERS[(i + round + 1) % VERIFIERS.length]);
    for (const verifier of order) {
      if (verifier === undefined) continue;
      const rate = await verificationsPerSecond(verifier, cases, roundMs);
      if (round >= 0) rates.get(verifier.key)?.push(rate);
    }
  }

  const verifiers = VERIFIERS.map((v) => {
    const r = rates.get(v.key) ?? [];
    return {
      key: v.key,
      label: v.label,
      medianPerSecond: median(r),
      minPerSecond: min(r),
      maxPerSecond: max(r),
    };
  });
  const rateOf = (key: VerifierKey) =>
    verifiers.find((v) => v.key === key)?.medianPerSecond ?? Number.NaN;
  return {
    date: new Date().toISOString(),
    keys: KEY_COUNT,
    messages: MESSAGE_COUNT,
    messageBytes: Math.round(
      cases.reduce((sum, c) => sum + c.message.length, 0) / Math.max(1, cases.length),
    ),
    rounds,
    roundMs,
    verifiers,
    nobleOverNode: rateOf('noble') / rateOf('node'),
    keyVerifyOverNode: rateOf('key-verify') / rateOf('node'),
  };
}

export function formatEd25519Report(result: Ed25519Result): string {
  const rows = result.verifiers.map((v) => [
    v.label,
    formatInteger(v.medianPerSecond),
    formatInteger(v.minPerSecond),
    formatInteger(v.maxPerSecond),
  ]);
  return [
    `Ed25519 verifications per second: ${result.messages} canonical-JSON timestamp messages ` +
      `(~${result.messageBytes} bytes) under ${result.keys} keys; ` +
      `median of ${result.rounds} rounds of ${result.roundMs} ms`,
    '',
    renderTable(['verifier', 'median /s', 'min /s', 'max /s'], rows),
    '',
    `noble/node:crypto      = ${formatRatio(result.nobleOverNode)}  (above 1: noble is faster)`,
    `Key.verify/node:crypto = ${formatRatio(result.keyVerifyOverNode)}`,
  ].join('\n');
}

if (import.meta.main) {
  console.log(formatEd25519Report(await benchEd25519()));
}
