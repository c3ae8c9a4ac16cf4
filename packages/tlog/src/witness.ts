/**
 * A transparency-log witness (C2SP tlog-witness): the `add-checkpoint` request and response
 * formats, and a witness that cosigns (C2SP tlog-cosignature, cosignature/v1) a log's new
 * checkpoint only when it extends the last one it cosigned for that log.
 *
 * Pure: the witness's state (per log origin: size and root hash) lives behind a port with
 * compare-and-swap, so the check of `old` and the write of the new state are one atomic step
 * (tlog-witness: otherwise two racing requests could roll the witness back).
 *
 * Refusals are TlogErrors; `witnessHttpStatus` maps their codes to the statuses
 * tlog-witness prescribes. A size conflict is not an error but an answer (409 with the
 * witness's size), so the log can retry with the right proof.
 */
import { fromBase64, fromUtf8, toBase64, utf8 } from './bytes.js';
import { createCosignatureVerifier, parseCheckpoint, type Checkpoint } from './checkpoint.js';
import { isTlogError, TlogError, type TlogErrorCode } from './errors.js';
import { HASH_SIZE, MAX_NOTE_BYTES } from './limits.js';
import { EMPTY_ROOT, verifyConsistency } from './merkle.js';
import {
  ALGORITHM_COSIGNATURE_V1,
  ALGORITHM_ED25519,
  createEd25519Verifier,
  openNote,
  parseNote,
  parseVerifierKey,
  type NoteSignature,
  type NoteSigner,
  type NoteVerifier,
} from './note.js';

/** tlog-witness: a client MUST NOT send more than 63 consistency proof lines. */
export const MAX_PROOF_LINES = 63;

/** The old size line, at most 63 proof lines of 45 bytes, a blank line and a checkpoint note:
 * a request any larger is not one a log would send. */
export const MAX_ADD_CHECKPOINT_BYTES = MAX_NOTE_BYTES + 4096;

/** The media type of a 409 answer's body: the witness's size in decimal and a newline. */
export const TREE_SIZE_CONTENT_TYPE = 'text/x.tlog.size';

export interface AddCheckpointRequest {
  /** The size of the checkpoint the log believes the witness last cosigned. */
  readonly oldSize: number;
  /** RFC 6962 consistency proof from `oldSize` to the checkpoint's size. */
  readonly proof: readonly Uint8Array[];
  /** The checkpoint as a signed note (C2SP signed-note text). */
  readonly checkpoint: string;
}

const SIZE = /^(?:0|[1-9][0-9]*)$/;

function badRequest(message: string): TlogError {
  return new TlogError('INVALID_ARGUMENT', `add-checkpoint: ${message}`);
}

/** `old <size>\n`, one base64 hash per line, a blank line, then the signed checkpoint. */
export function formatAddCheckpointRequest(request: AddCheckpointRequest): string {
  const { oldSize, proof, checkpoint } = request;
  if (!Number.isSafeInteger(oldSize) || oldSize < 0) {
    throw badRequest(`oldSize must be a non-negative integer, got ${String(oldSize)}`);
  }
  if (proof.length > MAX_PROOF_LINES) {
    throw badRequest(
      `at most ${String(MAX_PROOF_LINES)} proof hashes, got ${String(proof.length)}`,
    );
  }
  const lines = proof.map((hash) => {
    if (hash.length !== HASH_SIZE) throw badRequest('proof hashes must be 32 bytes');
    return `${toBase64(hash)}\n`;
  });
  return `old ${String(oldSize)}\n${lines.join('')}\n${checkpoint}`;
}

/** Parses an add-checkpoint request body strictly; INVALID_ARGUMENT (400) when it is not one. */
export function parseAddCheckpointRequest(body: Uint8Array | string): AddCheckpointRequest {
  const bytes = typeof body === 'string' ? utf8(body) : body;
  if (bytes.length > MAX_ADD_CHECKPOINT_BYTES) {
    throw new TlogError(
      'TOO_LARGE',
      `add-checkpoint: request is ${String(bytes.length)} bytes, limit ${String(MAX_ADD_CHECKPOINT_BYTES)}`,
    );
  }
  const text = fromUtf8(bytes);
  if (text === undefined) throw badRequest('request is not valid UTF-8');
  const split = text.indexOf('\n\n');
  if (split < 0) throw badRequest('no blank line before the checkpoint');
  const [oldLine = '', ...proofLines] = text.slice(0, split).split('\n');
  const sizeText = oldLine.startsWith('old ') ? oldLine.slice(4) : undefined;
  if (sizeText === undefined || !SIZE.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) {
    throw badRequest(`expected "old <size>" first, got ${JSON.stringify(oldLine.slice(0, 40))}`);
  }
  if (proofLines.length > MAX_PROOF_LINES) {
    throw badRequest(`more than ${String(MAX_PROOF_LINES)} proof lines`);
  }
  const proof = proofLines.map((line) => {
    const hash = fromBase64(line);
    if (hash?.length !== HASH_SIZE) {
      throw badRequest(`proof line ${JSON.stringify(line.slice(0, 60))} is not a base64 hash`);
    }
    return hash;
  });
  return { oldSize: Number(sizeText), proof, checkpoint: text.slice(split + 2) };
}

/** The 200 body: one note signature line per cosignature. */
export function formatCosignatureLines(signatures: readonly NoteSignature[]): string {
  if (signatures.length === 0) throw badRequest('a response carries at least one cosignature');
  return signatures
    .map((s) => {
      const raw = new Uint8Array(4 + s.signature.length);
      new DataView(raw.buffer).setUint32(0, s.keyHash);
      raw.set(s.signature, 4);
      return `\u2014 ${s.name} ${toBase64(raw)}\n`;
    })
    .join('');
}

/**
 * The cosignatures in a 200 body that `witness` made over `checkpointText` (the checkpoint
 * body, not the note), each verified; signatures by other keys are ignored (tlog-witness).
 * Throws when the body is malformed or `witness` did not sign it validly.
 */
export async function openCosignatureLines(
  checkpointText: string,
  body: string,
  witness: NoteVerifier,
): Promise<NoteSignature[]> {
  const opened = await openNote(`${checkpointText}\n${body}`, [witness], 1);
  return [...opened.verified];
}

/** The body of a 409 answer: the size in decimal and a newline. */
export function formatTreeSize(size: number): string {
  return `${String(size)}\n`;
}

/** Parses a 409 answer's body; INVALID_ARGUMENT when it is not a size line. */
export function parseTreeSize(body: string): number {
  const text = body.endsWith('\n') ? body.slice(0, -1) : body;
  if (!SIZE.test(text) || !Number.isSafeInteger(Number(text))) {
    throw badRequest(`expected a tree size, got ${JSON.stringify(body.slice(0, 40))}`);
  }
  return Number(text);
}

/** What a witness remembers of one log: the last checkpoint it cosigned. */
export interface WitnessedState {
  readonly size: number;
  readonly rootHash: Uint8Array;
}

/** The witness's storage, one record per log origin, updated by compare-and-swap. */
export interface WitnessStateStore {
  /** The record and its version tag, or undefined when the log was never cosigned. */
  get(origin: string): Promise<(WitnessedState & { readonly etag?: string }) | undefined>;
  /** Writes the record if its version tag is still `expectedEtag` (undefined: only if absent).
   * False when another write came first. */
  put(origin: string, state: WitnessedState, expectedEtag: string | undefined): Promise<boolean>;
}

export type AddCheckpointResult =
  | {
      readonly kind: 'cosigned';
      readonly checkpoint: Checkpoint;
      readonly cosignatures: readonly NoteSignature[];
      /** The 200 body. */
      readonly body: string;
    }
  | {
      /** `old` is not the witness's size: 409, with `size` in the body. */
      readonly kind: 'conflict';
      readonly size: number;
    };

export interface WitnessOptions {
  /** The logs this witness follows: ed25519 note verifiers, named by their origin line. */
  readonly logs: readonly NoteVerifier[];
  readonly state: WitnessStateStore;
  /** The witness's cosignature/v1 signer (createCosigner). */
  readonly cosigner: NoteSigner;
}

/** How many times a lost compare-and-swap is re-evaluated before CONFLICT. */
const MAX_STATE_RACES = 5;

/** A log a witness follows, from its vkey (`name+hash+base64(0x01 || key)`). */
export async function witnessedLog(vkey: string): Promise<NoteVerifier> {
  const parsed = await parseVerifierKey(vkey);
  if (parsed.algorithm !== ALGORITHM_ED25519) {
    throw new TlogError('MALFORMED_KEY', `log key ${parsed.name} must be an ed25519 note key`);
  }
  return createEd25519Verifier(parsed.name, parsed.publicKey);
}

/** A cosignature/v1 verifier from a witness's vkey (`name+hash+base64(0x04 || key)`). */
export async function witnessVerifier(vkey: string): Promise<NoteVerifier> {
  const parsed = await parseVerifierKey(vkey);
  if (parsed.algorithm !== ALGORITHM_COSIGNATURE_V1) {
    throw new TlogError('MALFORMED_KEY', `witness key ${parsed.name} must be a cosignature/v1 key`);
  }
  return createCosignatureVerifier(parsed.name, parsed.publicKey);
}

export class Witness {
  readonly #logs: ReadonlyMap<string, NoteVerifier>;
  readonly #state: WitnessStateStore;
  readonly #cosigner: NoteSigner;

  constructor(options: WitnessOptions) {
    const logs = new Map<string, NoteVerifier>();
    for (const log of options.logs) {
      if (logs.has(log.name)) {
        throw new TlogError('INVALID_ARGUMENT', `two keys for the log ${log.name}`);
      }
      logs.set(log.name, log);
    }
    this.#logs = logs;
    this.#state = options.state;
    this.#cosigner = options.cosigner;
  }

  /** The origins this witness follows. */
  get origins(): readonly string[] {
    return [...this.#logs.keys()];
  }

  /**
   * Handles one add-checkpoint request body. Refusals throw TlogError (see witnessHttpStatus):
   * INVALID_ARGUMENT / MALFORMED_* / TOO_LARGE 400, WRONG_ORIGIN 404 (a log this witness does
   * not follow), UNKNOWN_KEY / BAD_SIGNATURE 403, MALFORMED_PROOF / INVALID_PROOF 422,
   * INCONSISTENT 409 (same size, another root: a fork), CONFLICT 409 (state kept changing).
   */
  async addCheckpoint(body: Uint8Array | string): Promise<AddCheckpointResult> {
    const request = parseAddCheckpointRequest(body);
    const note = parseNote(request.checkpoint);
    const checkpoint = parseCheckpoint(note.text);
    const log = this.#logs.get(checkpoint.origin);
    if (log === undefined) {
      throw new TlogError(
        'WRONG_ORIGIN',
        `this witness does not follow the log ${JSON.stringify(checkpoint.origin)}`,
      );
    }
    // Signatures by other keys (the log's witnesses) are ignored; the log's must verify.
    await openNote(request.checkpoint, [log], 1);
    if (request.oldSize > checkpoint.size) {
      throw badRequest(
        `old size ${String(request.oldSize)} is larger than the checkpoint's ${String(checkpoint.size)}`,
      );
    }
    for (let race = 0; race < MAX_STATE_RACES; race++) {
      const stored = await this.#state.get(checkpoint.origin);
      const size = stored?.size ?? 0;
      if (request.oldSize !== size) return { kind: 'conflict', size };
      // Equal sizes with other roots throw INCONSISTENT; a smaller tree never gets here (400).
      await verifyConsistency(
        size,
        checkpoint.size,
        stored?.rootHash ?? EMPTY_ROOT,
        checkpoint.rootHash,
        request.proof,
      );
      const unchanged = stored !== undefined && size === checkpoint.size;
      if (
        !unchanged &&
        !(await this.#state.put(
          checkpoint.origin,
          { size: checkpoint.size, rootHash: checkpoint.rootHash },
          stored?.etag,
        ))
      ) {
        continue;
      }
      const cosignatures = [
        {
          name: this.#cosigner.name,
          keyHash: this.#cosigner.keyHash,
          signature: await this.#cosigner.sign(note.text),
        },
      ];
      return {
        kind: 'cosigned',
        checkpoint,
        cosignatures,
        body: formatCosignatureLines(cosignatures),
      };
    }
    throw new TlogError(
      'CONFLICT',
      `the witness's state for ${checkpoint.origin} changed under ${String(MAX_STATE_RACES)} requests in a row`,
    );
  }
}

/** The HTTP status tlog-witness prescribes for each refusal; 500 means a fault of the witness. */
export const WITNESS_HTTP_STATUS: Readonly<Record<TlogErrorCode, number>> = {
  INVALID_ARGUMENT: 400,
  MALFORMED_NOTE: 400,
  MALFORMED_CHECKPOINT: 400,
  TOO_LARGE: 400,
  WRONG_ORIGIN: 404,
  UNKNOWN_KEY: 403,
  BAD_SIGNATURE: 403,
  THRESHOLD: 403,
  INCONSISTENT: 409,
  CONFLICT: 409,
  MALFORMED_PROOF: 422,
  INVALID_PROOF: 422,
  MALFORMED_KEY: 500,
  MALFORMED_TILE: 500,
  MALFORMED_ENTRY: 500,
  SPLIT_VIEW: 500,
  NOT_FOUND: 500,
  LOCKED: 500,
};

/** The status for anything `addCheckpoint` throws. */
export function witnessHttpStatus(error: unknown): number {
  return isTlogError(error) ? WITNESS_HTTP_STATUS[error.code] : 500;
}
