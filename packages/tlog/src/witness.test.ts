import { getPublicKeyAsync } from '@noble/ed25519';
import { describe, expect, test } from 'vitest';
import { toBase64, utf8 } from './bytes.js';
import { createCosigner, formatCheckpoint, openCheckpoint } from './checkpoint.js';
import { isTlogError } from './errors.js';
import {
  consistencyProof,
  leafHash,
  rootFromLeafHashes,
  subtreeReaderFromLeafHashes,
} from './merkle.js';
import {
  ALGORITHM_COSIGNATURE_V1,
  ALGORITHM_ED25519,
  createEd25519Signer,
  formatVerifierKey,
  signNote,
} from './note.js';
import {
  formatAddCheckpointRequest,
  formatTreeSize,
  MAX_PROOF_LINES,
  openCosignatureLines,
  parseAddCheckpointRequest,
  parseTreeSize,
  Witness,
  witnessedLog,
  witnessHttpStatus,
  witnessVerifier,
  type WitnessedState,
  type WitnessStateStore,
} from './witness.js';

const ORIGIN = 'cairn.test/log';
const LOG_SEED = new Uint8Array(32).fill(7);
const FORGER_SEED = new Uint8Array(32).fill(8);
const WITNESS_SEED = new Uint8Array(32).fill(9);
const WITNESS = 'witness.test/w1';
const NOW = 1_795_000_000;

/** A state store in memory, with a hook that runs before each put (to stage races). */
class MemoryState implements WitnessStateStore {
  readonly records = new Map<string, { state: WitnessedState; etag: string }>();
  beforePut: (() => void) | undefined;
  #next = 0;

  get(origin: string) {
    const r = this.records.get(origin);
    return Promise.resolve(r === undefined ? undefined : { ...r.state, etag: r.etag });
  }

  put(origin: string, state: WitnessedState, expected: string | undefined) {
    this.beforePut?.();
    if (this.records.get(origin)?.etag !== expected) return Promise.resolve(false);
    this.records.set(origin, { state, etag: String(++this.#next) });
    return Promise.resolve(true);
  }
}

async function leaves(n: number, tag = 'entry'): Promise<Uint8Array[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => leafHash(utf8(`${tag} ${String(i)}`))));
}

async function signedCheckpoint(hashes: readonly Uint8Array[], seed = LOG_SEED) {
  const body = formatCheckpoint({
    origin: ORIGIN,
    size: hashes.length,
    rootHash: await rootFromLeafHashes(hashes),
    extensions: [],
  });
  return { body, note: await signNote(body, [await createEd25519Signer(ORIGIN, seed)]) };
}

async function request(hashes: readonly Uint8Array[], oldSize: number, seed = LOG_SEED) {
  const proof = await consistencyProof(subtreeReaderFromLeafHashes(hashes), oldSize, hashes.length);
  const { body, note } = await signedCheckpoint(hashes, seed);
  return { body, text: formatAddCheckpointRequest({ oldSize, proof, checkpoint: note }) };
}

async function setup() {
  const logKey = await formatVerifierKey(
    ORIGIN,
    ALGORITHM_ED25519,
    await getPublicKeyAsync(LOG_SEED),
  );
  const witnessKey = await formatVerifierKey(
    WITNESS,
    ALGORITHM_COSIGNATURE_V1,
    await getPublicKeyAsync(WITNESS_SEED),
  );
  const state = new MemoryState();
  const witness = new Witness({
    logs: [await witnessedLog(logKey)],
    state,
    cosigner: await createCosigner(WITNESS, WITNESS_SEED, () => NOW),
  });
  return { logKey, witnessKey, state, witness };
}

async function refusal(promise: Promise<unknown>): Promise<{ code: string; status: number }> {
  try {
    await promise;
  } catch (error) {
    if (!isTlogError(error)) throw error;
    return { code: error.code, status: witnessHttpStatus(error) };
  }
  throw new Error('expected a refusal');
}

describe('add-checkpoint request and response formats', () => {
  test('round trip of a request with a proof, byte for byte', () => {
    const proof = [new Uint8Array(32).fill(1), new Uint8Array(32).fill(2)];
    const checkpoint = `${ORIGIN}\n5\n${toBase64(new Uint8Array(32))}\n\n\u2014 ${ORIGIN} AAAA\n`;
    const text = formatAddCheckpointRequest({ oldSize: 3, proof, checkpoint });
    expect(text).toBe(
      `old 3\n${toBase64(proof[0] as Uint8Array)}\n${toBase64(proof[1] as Uint8Array)}\n\n${checkpoint}`,
    );
    expect(parseAddCheckpointRequest(text)).toEqual({ oldSize: 3, proof, checkpoint });
    expect(parseAddCheckpointRequest(`old 0\n\n${checkpoint}`)).toEqual({
      oldSize: 0,
      proof: [],
      checkpoint,
    });
  });

  test.each([
    ['no old line', 'old\n\nx\n'],
    ['leading zero', 'old 03\n\nx\n'],
    ['negative', 'old -1\n\nx\n'],
    ['no blank line', 'old 3\n'],
    ['bad base64 proof line', 'old 3\nnot-base64\n\nx\n'],
    ['short hash', `old 3\n${toBase64(new Uint8Array(31))}\n\nx\n`],
    [
      'too many proof lines',
      `old 3\n${`${toBase64(new Uint8Array(32))}\n`.repeat(MAX_PROOF_LINES + 1)}\nx\n`,
    ],
  ])('refuses %s with 400', (_, text) => {
    let status = 0;
    try {
      parseAddCheckpointRequest(text);
    } catch (error) {
      status = witnessHttpStatus(error);
    }
    expect(status).toBe(400);
  });

  test('tree size bodies', () => {
    expect(formatTreeSize(42)).toBe('42\n');
    expect(parseTreeSize('42\n')).toBe(42);
    expect(() => parseTreeSize('4x\n')).toThrow(/tree size/);
  });
});

describe('Witness.addCheckpoint', () => {
  test('first sight with old 0, then a consistent extension: cosigned, state kept', async () => {
    const { witness, witnessKey, state } = await setup();
    const all = await leaves(9);
    const first = await request(all.slice(0, 5), 0);
    const result = await witness.addCheckpoint(first.text);
    if (result.kind !== 'cosigned') throw new Error(result.kind);
    expect(result.checkpoint.size).toBe(5);
    expect(result.body).toMatch(/^\u2014 witness\.test\/w1 [A-Za-z0-9+/=]+\n$/u);
    const verifier = await witnessVerifier(witnessKey);
    const cosignatures = await openCosignatureLines(first.body, result.body, verifier);
    expect(cosignatures.map((c) => c.name)).toEqual([WITNESS]);
    expect(state.records.get(ORIGIN)?.state.size).toBe(5);

    const second = await request(all, 5);
    const next = await witness.addCheckpoint(second.text);
    expect(next.kind).toBe('cosigned');
    expect(state.records.get(ORIGIN)?.state).toEqual({
      size: 9,
      rootHash: await rootFromLeafHashes(all),
    });
    // The note with the cosignature appended opens under a policy requiring the witness.
    if (next.kind !== 'cosigned') throw new Error(next.kind);
    const { note } = await signedCheckpoint(all);
    const opened = await openCheckpoint(`${note}${next.body}`, {
      origin: ORIGIN,
      log: await witnessedLog((await setup()).logKey),
      witnesses: [verifier],
      witnessThreshold: 1,
    });
    expect(opened.cosignatures).toEqual([{ name: WITNESS, timestamp: NOW }]);
  });

  test('the same checkpoint again is cosigned again; the state does not change', async () => {
    const { witness, state } = await setup();
    const hashes = await leaves(4);
    await witness.addCheckpoint((await request(hashes, 0)).text);
    const etag = state.records.get(ORIGIN)?.etag;
    expect((await witness.addCheckpoint((await request(hashes, 4)).text)).kind).toBe('cosigned');
    expect(state.records.get(ORIGIN)?.etag).toBe(etag);
  });

  test('a wrong old size is a conflict carrying the witness size', async () => {
    const { witness } = await setup();
    const hashes = await leaves(6);
    await witness.addCheckpoint((await request(hashes.slice(0, 3), 0)).text);
    expect(await witness.addCheckpoint((await request(hashes, 0)).text)).toEqual({
      kind: 'conflict',
      size: 3,
    });
    expect(await witness.addCheckpoint((await request(hashes, 2)).text)).toEqual({
      kind: 'conflict',
      size: 3,
    });
  });

  test('a fork of the same size is 409 INCONSISTENT, a larger fork 422, neither cosigned', async () => {
    const { witness, state } = await setup();
    const honest = await leaves(6);
    await witness.addCheckpoint((await request(honest, 0)).text);
    const forked = [...honest.slice(0, 4), ...(await leaves(2, 'forked'))];
    expect(await refusal(witness.addCheckpoint((await request(forked, 6)).text))).toEqual({
      code: 'INCONSISTENT',
      status: 409,
    });
    const longer = [...forked, ...(await leaves(3, 'more'))];
    expect(await refusal(witness.addCheckpoint((await request(longer, 6)).text))).toEqual({
      code: 'INVALID_PROOF',
      status: 422,
    });
    expect(state.records.get(ORIGIN)?.state).toEqual({
      size: 6,
      rootHash: await rootFromLeafHashes(honest),
    });
  });

  test('a smaller tree than old is 400; a proof with old 0 is 422', async () => {
    const { witness } = await setup();
    const hashes = await leaves(4);
    const { note } = await signedCheckpoint(hashes);
    expect(
      await refusal(
        witness.addCheckpoint(
          formatAddCheckpointRequest({ oldSize: 5, proof: [], checkpoint: note }),
        ),
      ),
    ).toEqual({ code: 'INVALID_ARGUMENT', status: 400 });
    const proof = [new Uint8Array(32)];
    expect(
      await refusal(
        witness.addCheckpoint(formatAddCheckpointRequest({ oldSize: 0, proof, checkpoint: note })),
      ),
    ).toEqual({ code: 'MALFORMED_PROOF', status: 422 });
  });

  test('another key under the log name is 403; an unknown log is 404', async () => {
    const { witness, state } = await setup();
    const hashes = await leaves(3);
    expect(
      await refusal(witness.addCheckpoint((await request(hashes, 0, FORGER_SEED)).text)),
    ).toEqual({ code: 'UNKNOWN_KEY', status: 403 });
    const body = formatCheckpoint({
      origin: 'other.test/log',
      size: 3,
      rootHash: await rootFromLeafHashes(hashes),
      extensions: [],
    });
    const note = await signNote(body, [await createEd25519Signer('other.test/log', LOG_SEED)]);
    expect(
      await refusal(
        witness.addCheckpoint(
          formatAddCheckpointRequest({ oldSize: 0, proof: [], checkpoint: note }),
        ),
      ),
    ).toEqual({ code: 'WRONG_ORIGIN', status: 404 });
    expect(state.records.size).toBe(0);
  });

  test('a lost compare-and-swap is re-evaluated: the racing request answers 409', async () => {
    const { witness, state } = await setup();
    const hashes = await leaves(8);
    await witness.addCheckpoint((await request(hashes.slice(0, 2), 0)).text);
    // Another request moves the state to 8 between our check and our write.
    const racing = await rootFromLeafHashes(hashes);
    state.beforePut = () => {
      state.beforePut = undefined;
      const current = state.records.get(ORIGIN);
      state.records.set(ORIGIN, {
        state: { size: 8, rootHash: racing },
        etag: `${current?.etag ?? ''}x`,
      });
    };
    expect(await witness.addCheckpoint((await request(hashes.slice(0, 5), 2)).text)).toEqual({
      kind: 'conflict',
      size: 8,
    });
    expect(state.records.get(ORIGIN)?.state.size).toBe(8);
  });
});
