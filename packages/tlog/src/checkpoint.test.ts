import { getPublicKeyAsync } from '@noble/ed25519';
import { describe, expect, it } from 'vitest';
import { fromBase64, fromHex, toBase64 } from './bytes.js';
import {
  cosignatureTimestamp,
  createCosignatureVerifier,
  createCosigner,
  formatCheckpoint,
  openCheckpoint,
  parseCheckpoint,
} from './checkpoint.js';
import { isTlogError, type TlogErrorCode } from './errors.js';
import {
  createEd25519Signer,
  createEd25519Verifier,
  formatVerifierKey,
  keyHash,
  parseNote,
  parseVerifierKey,
  signNote,
} from './note.js';
import { ARCHE_CHECKPOINT, ARCHE_LOG_KEY, REMORA_WITNESS_KEY } from './vectors/real-checkpoint.js';
import { ROOTS_HEX } from './vectors/rfc6962.js';

async function rejects(promise: Promise<unknown>, code: TlogErrorCode): Promise<void> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isTlogError(error, code), `expected ${code}, got ${String(error)}`).toBe(true);
}

const ORIGIN = 'example.com/cairn/log';
const root = fromHex(ROOTS_HEX[8] ?? '');
const body = `${ORIGIN}\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n`;

const logSeed = new Uint8Array(32).fill(3);
const logSigner = await createEd25519Signer(ORIGIN, logSeed);
const logVerifier = await createEd25519Verifier(ORIGIN, await getPublicKeyAsync(logSeed));
const witnessSeeds = [new Uint8Array(32).fill(4), new Uint8Array(32).fill(5)];
const cosigners = await Promise.all(
  witnessSeeds.map((s, i) =>
    createCosigner(`witness${String(i)}.example`, s, () => 1_700_000_000 + i),
  ),
);
const witnesses = await Promise.all(
  witnessSeeds.map(async (s, i) =>
    createCosignatureVerifier(`witness${String(i)}.example`, await getPublicKeyAsync(s)),
  ),
);

describe('checkpoint body (C2SP tlog-checkpoint)', () => {
  it('formats and parses origin, size, root and extensions', () => {
    expect(formatCheckpoint({ origin: ORIGIN, size: 8, rootHash: root, extensions: [] })).toBe(
      body,
    );
    expect(parseCheckpoint(body)).toEqual({
      origin: ORIGIN,
      size: 8,
      rootHash: root,
      extensions: [],
    });
    const withExt = formatCheckpoint({
      origin: ORIGIN,
      size: 8,
      rootHash: root,
      extensions: ['ext one'],
    });
    expect(withExt).toBe(`${body}ext one\n`);
    expect(parseCheckpoint(withExt).extensions).toEqual(['ext one']);
  });

  it('rejects malformed bodies', () => {
    const b64 = 'XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=';
    for (const bad of [
      `${ORIGIN}\n8\n${b64}`, // no final newline
      `${ORIGIN}\n08\n${b64}\n`, // leading zero
      `${ORIGIN}\n-1\n${b64}\n`,
      `${ORIGIN}\n9007199254740992\n${b64}\n`, // beyond 2^53 - 1
      `${ORIGIN}\n8\n${b64.slice(4)}\n`, // wrong length
      `${ORIGIN}\n8\n${b64.replace('=', '')}\n`, // unpadded
      `${ORIGIN}\n8\n`,
      `\n8\n${b64}\n`,
      `${ORIGIN}\n8\n${b64}\n\next\n`, // empty extension line
    ]) {
      let error: unknown;
      try {
        parseCheckpoint(bad);
      } catch (e) {
        error = e;
      }
      expect(isTlogError(error, 'MALFORMED_CHECKPOINT'), JSON.stringify(bad)).toBe(true);
    }
  });
});

describe('cosignatures (C2SP tlog-cosignature)', () => {
  it('uses algorithm 0x04 for the key hash and carries the timestamp', async () => {
    const pub = await getPublicKeyAsync(witnessSeeds[0] ?? new Uint8Array());
    expect(witnesses[0]?.keyHash).toBe(await keyHash('witness0.example', 0x04, pub));
    expect(witnesses[0]?.keyHash).not.toBe(await keyHash('witness0.example', 0x01, pub));
    expect(
      (await formatVerifierKey('witness0.example', 0x04, pub)).split('+')[2]?.startsWith('B'),
    ).toBe(true);
    const sig = await cosigners[0]?.sign(body);
    expect(sig).toHaveLength(72);
    expect(cosignatureTimestamp(sig ?? new Uint8Array())).toBe(1_700_000_000);
    expect(Array.from((sig ?? new Uint8Array()).slice(0, 8))).toEqual([
      0, 0, 0, 0, 0x65, 0x53, 0xf1, 0x00,
    ]);
  });

  it('opens a checkpoint signed by the log and cosigned by a quorum of witnesses', async () => {
    const note = await signNote(body, [logSigner, ...cosigners]);
    const opened = await openCheckpoint(note, {
      origin: ORIGIN,
      log: logVerifier,
      witnesses,
      witnessThreshold: 2,
    });
    expect(opened.checkpoint).toEqual({ origin: ORIGIN, size: 8, rootHash: root, extensions: [] });
    expect(opened.cosignatures).toEqual([
      { name: 'witness0.example', timestamp: 1_700_000_000 },
      { name: 'witness1.example', timestamp: 1_700_000_001 },
    ]);
  });

  it('rejects a missing log signature, a wrong origin, too few witnesses and forged cosignatures', async () => {
    const policy = { origin: ORIGIN, log: logVerifier, witnesses, witnessThreshold: 2 };
    await rejects(openCheckpoint(await signNote(body, cosigners), policy), 'UNKNOWN_KEY');
    await rejects(
      openCheckpoint(await signNote(body, [logSigner, ...cosigners]), {
        ...policy,
        origin: 'other',
      }),
      'WRONG_ORIGIN',
    );
    await rejects(
      openCheckpoint(await signNote(body, [logSigner, cosigners[0] ?? logSigner]), policy),
      'THRESHOLD',
    );

    // A cosignature whose timestamp was changed no longer verifies: the time is signed.
    const note = parseNote(await signNote(body, [logSigner, ...cosigners]));
    const forged = note.signatures.map((s, i) => {
      if (i !== 1) return s;
      const sig = s.signature.slice();
      sig[7] = (sig[7] ?? 0) ^ 1;
      return { ...s, signature: sig };
    });
    const { formatNote } = await import('./note.js');
    await rejects(
      openCheckpoint(formatNote({ text: body, signatures: forged }), policy),
      'BAD_SIGNATURE',
    );

    // A plain ed25519 signature by the witness key is not a cosignature (different key hash).
    const plain = await createEd25519Signer(
      'witness0.example',
      witnessSeeds[0] ?? new Uint8Array(),
    );
    const opened = await openCheckpoint(await signNote(body, [logSigner, plain]), {
      ...policy,
      witnessThreshold: 0,
    });
    expect(opened.cosignatures).toEqual([]);
    expect(opened.unverified.map((s) => s.name)).toEqual(['witness0.example']);
  });

  it('has the base64 of the RFC 6962 head of 8 leaves as its root line', () => {
    expect(fromBase64('XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=')).toEqual(root);
  });
});

describe('a real witnessed checkpoint (transparency.dev staging CT log)', () => {
  it('verifies the log signature and the remora.n621.de cosignature', async () => {
    const logKey = await parseVerifierKey(ARCHE_LOG_KEY);
    const witnessKey = await parseVerifierKey(REMORA_WITNESS_KEY);
    expect([logKey.algorithm, logKey.keyHash]).toEqual([0x01, 0xba2f06c0]);
    expect([witnessKey.algorithm, witnessKey.keyHash]).toEqual([0x04, 0xda77ade7]);
    const policy = {
      origin: 'arche2025h1.staging.ct.transparency.dev',
      log: await createEd25519Verifier(logKey.name, logKey.publicKey),
      witnesses: [await createCosignatureVerifier(witnessKey.name, witnessKey.publicKey)],
      witnessThreshold: 1,
    };
    const opened = await openCheckpoint(ARCHE_CHECKPOINT, policy);
    expect(opened.checkpoint.size).toBe(1432088532);
    expect(toBase64(opened.checkpoint.rootHash)).toBe(
      'U7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=',
    );
    expect(opened.cosignatures).toEqual([{ name: 'remora.n621.de', timestamp: 1779573024 }]);
    expect(opened.unverified.map((s) => s.name)).toEqual([
      'arche2025h1.staging.ct.transparency.dev',
      'transparency.dev/DEV:witness-little-garden',
      'witness1.smartit.nu/witness1',
      'witness.stagemole.eu',
    ]);
    await rejects(
      openCheckpoint(ARCHE_CHECKPOINT.replace('\n1432088532\n', '\n1432088533\n'), policy),
      'BAD_SIGNATURE',
    );
  });
});
