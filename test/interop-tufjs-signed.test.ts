// Metadata built and signed with @tufjs/models 5.0.2 (tuf-js's model) and node:crypto keys,
// read, verified and updated from by @cairn/verify. Nothing of ours touches the repository
// until the checks: keyids, canonical bytes and signatures are all tuf-js's.
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalString } from '@cairn/verify/canonical-json';
import {
  Metadata as CairnMetadata,
  Root as CairnRoot,
  verifyDelegate,
} from '@cairn/verify/metadata';
// @tufjs/models' own canonicalizer (an exact-version dependency of it): the keyid formula of
// securesystemslib, computed the way a tuf-js user would.
import { canonicalize } from '@tufjs/canonical-json';
import {
  Key,
  MetaFile,
  Metadata,
  MetadataKind,
  Root,
  Signature,
  Snapshot,
  TargetFile,
  Targets,
  Timestamp,
} from '@tufjs/models';
// Not re-exported from the package index; the package has no exports map, so these are public.
import { Delegations } from '@tufjs/models/dist/delegations.js';
import { DelegatedRole, Role } from '@tufjs/models/dist/role.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkForeignRepository, type ForeignRepository } from './support/foreign-repository.js';

type KeyKind = 'ed25519' | 'ecdsa';
type TargetsRole = 'targets' | 'releases' | 'bins';

interface TufjsSigner {
  readonly key: Key;
  /** The Metadata.sign callback; records the bytes tuf-js asked it to sign. */
  readonly sign: (data: Buffer) => Signature;
  readonly signed: Buffer[];
}

function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

function sha512(data: Uint8Array): string {
  return createHash('sha512').update(data).digest('hex');
}

function newSigner(kind: KeyKind): TufjsSigner {
  const { privateKey, publicKey } =
    kind === 'ed25519'
      ? generateKeyPairSync('ed25519')
      : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keytype = kind === 'ed25519' ? 'ed25519' : 'ecdsa';
  const scheme = kind === 'ed25519' ? 'ed25519' : 'ecdsa-sha2-nistp256';
  // securesystemslib's forms: raw 32-byte hex for ed25519, SubjectPublicKeyInfo PEM for ECDSA.
  const pub =
    kind === 'ed25519'
      ? publicKey.export({ type: 'spki', format: 'der' }).subarray(-32).toString('hex')
      : (publicKey.export({ type: 'spki', format: 'pem' }) as string);
  const keyval = { public: pub };
  const keyID = sha256(canonicalize({ keytype, scheme, keyval }));
  const signed: Buffer[] = [];
  return {
    key: new Key({ keyID, keyType: keytype, scheme, keyVal: keyval }),
    signed,
    sign: (data: Buffer) => {
      signed.push(data);
      return new Signature({ keyID, sig: signWith(kind, privateKey, data) });
    },
  };
}

function signWith(kind: KeyKind, privateKey: KeyObject, data: Buffer): string {
  // node:crypto's ECDSA signatures are DER, as securesystemslib's are.
  return sign(kind === 'ed25519' ? null : 'sha256', data, privateKey).toString('hex');
}

const SPEC_VERSION = '1.0.31';

function expiresIn(days: number): string {
  return new Date(Date.now() + days * 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Builds the same repository as test/fixtures/interop/build_repo.py, with tuf-js. */
async function buildRepository(dir: string): Promise<ForeignRepository> {
  await mkdir(join(dir, 'metadata'), { recursive: true });
  const expires = expiresIn(7);
  const common = { version: 1, specVersion: SPEC_VERSION, expires };
  const s = {
    rootEd25519: newSigner('ed25519'),
    rootEcdsa: newSigner('ecdsa'),
    timestamp: newSigner('ecdsa'),
    snapshot: newSigner('ed25519'),
    targets: newSigner('ecdsa'),
    releases: newSigner('ed25519'),
    bins: newSigner('ecdsa'),
  };
  const signers: Record<string, TufjsSigner[]> = {
    root: [s.rootEd25519, s.rootEcdsa],
    timestamp: [s.timestamp],
    snapshot: [s.snapshot],
    targets: [s.targets],
    releases: [s.releases],
    bins: [s.bins],
  };
  const delegator = {
    root: 'root',
    timestamp: 'root',
    snapshot: 'root',
    targets: 'root',
    releases: 'targets',
    bins: 'targets',
  };

  const contents: Record<TargetsRole, Record<string, Uint8Array>> = {
    targets: {
      'readme.txt': new TextEncoder().encode('Cairn interop: tuf-js signed this repository.\n'),
      'data/signatures.db': new Uint8Array(4096).map((_, i) => i % 256),
    },
    releases: { 'releases/v1.tar': new TextEncoder().encode('release one\n') },
    bins: { 'bins/data.bin': new Uint8Array([0, 1, 0x62, 0x69, 0x6e, 0xff]) },
  };
  // Escapes, a control character, non-ASCII and an astral key: what canonical JSON
  // implementations most easily disagree on (see the U+FFFF test below for one that does).
  const custom = {
    b: 'caf\u00e9 \n\t"quoted" \\ \u0001 \u2603',
    a: [true, null, -5, 0, 2 ** 40],
    '\u{1f600}': 2,
  };

  const listing: Record<string, ForeignRepository['targets'][string]> = {};
  const targetFiles: Record<TargetsRole, Record<string, TargetFile>> = {
    targets: {},
    releases: {},
    bins: {},
  };
  for (const role of ['targets', 'releases', 'bins'] as const) {
    for (const [path, data] of Object.entries(contents[role])) {
      const hashes = { sha256: sha256(data), sha512: sha512(data) };
      targetFiles[role][path] = new TargetFile({
        path,
        length: data.length,
        hashes,
        unrecognizedFields: path === 'readme.txt' ? { custom } : {},
      });
      listing[path] = { role, length: data.length, ...hashes };
      const slash = path.lastIndexOf('/');
      await mkdir(join(dir, 'targets', path.slice(0, slash + 1)), { recursive: true });
      for (const digest of Object.values(hashes)) {
        const name = `${path.slice(0, slash + 1)}${digest}.${path.slice(slash + 1)}`;
        await writeFile(join(dir, 'targets', name), data);
      }
    }
  }

  const keyIDs = (role: string) => (signers[role] ?? []).map((x) => x.key.keyID);
  const rootKeys: Record<string, Key> = {};
  for (const role of ['root', 'timestamp', 'snapshot', 'targets'])
    for (const x of signers[role] ?? []) rootKeys[x.key.keyID] = x.key;
  const root = new Root({
    ...common,
    consistentSnapshot: true,
    keys: rootKeys,
    roles: {
      root: new Role({ keyIDs: keyIDs('root'), threshold: 2 }),
      timestamp: new Role({ keyIDs: keyIDs('timestamp'), threshold: 1 }),
      snapshot: new Role({ keyIDs: keyIDs('snapshot'), threshold: 1 }),
      targets: new Role({ keyIDs: keyIDs('targets'), threshold: 1 }),
    },
  });

  const binsPrefix = sha256('bins/data.bin').slice(0, 2);
  const otherPrefix = ((parseInt(binsPrefix, 16) + 1) % 256).toString(16).padStart(2, '0');
  const targets = new Targets({
    ...common,
    targets: targetFiles.targets,
    unrecognizedFields: { x_cairn_note: 'unrecognized field, kept by every reader \u00e9' },
    delegations: new Delegations({
      keys: { [s.releases.key.keyID]: s.releases.key, [s.bins.key.keyID]: s.bins.key },
      roles: {
        releases: new DelegatedRole({
          name: 'releases',
          keyIDs: keyIDs('releases'),
          threshold: 1,
          terminating: false,
          paths: ['releases/*'],
        }),
        bins: new DelegatedRole({
          name: 'bins',
          keyIDs: keyIDs('bins'),
          threshold: 1,
          terminating: false,
          pathHashPrefixes: [otherPrefix, binsPrefix],
        }),
      },
    }),
  });
  const releases = new Targets({ ...common, targets: targetFiles.releases });
  const bins = new Targets({ ...common, targets: targetFiles.bins });

  const files: Record<string, string> = {};
  const canonical: Record<string, string> = {};
  const write = async (
    role: string,
    signed: Root | Timestamp | Snapshot | Targets,
    name: string,
  ): Promise<Buffer> => {
    const md = new Metadata(signed);
    for (const signer of signers[role] ?? []) {
      signer.signed.length = 0;
      md.sign(signer.sign);
      // tuf-js hands every signer the same bytes: the canonical form of the signed part.
      canonical[role] = signer.signed[0]?.toString('hex') ?? '';
    }
    const bytes = Buffer.from(JSON.stringify(md.toJSON(), null, 1));
    await writeFile(join(dir, 'metadata', name), bytes);
    files[role] = name;
    return bytes;
  };
  await write('root', root, '1.root.json');
  const snapshotMeta: Record<string, MetaFile> = {};
  for (const [role, signed] of [
    ['targets', targets],
    ['releases', releases],
    ['bins', bins],
  ] as const) {
    const bytes = await write(role, signed, `1.${role}.json`);
    snapshotMeta[`${role}.json`] = new MetaFile({
      version: 1,
      length: bytes.length,
      hashes: { sha256: sha256(bytes) },
    });
  }
  const snapshotBytes = await write(
    'snapshot',
    new Snapshot({ ...common, meta: snapshotMeta }),
    '1.snapshot.json',
  );
  await write(
    'timestamp',
    new Timestamp({
      ...common,
      snapshotMeta: new MetaFile({
        version: 1,
        length: snapshotBytes.length,
        hashes: { sha256: sha256(snapshotBytes), sha512: sha512(snapshotBytes) },
      }),
    }),
    'timestamp.json',
  );

  const keyids: Record<string, { keytype: string; scheme: string }> = {};
  for (const x of Object.values(s))
    keyids[x.key.keyID] = { keytype: x.key.keyType, scheme: x.key.scheme };
  return { dir, files, delegator, canonical, keyids, targets: listing };
}

const KINDS = {
  root: MetadataKind.Root,
  timestamp: MetadataKind.Timestamp,
  snapshot: MetadataKind.Snapshot,
} as const;

/** tuf-js's own reading of a file it wrote, as its Updater would parse it. */
async function readWithTufjs(repo: ForeignRepository, role: string) {
  const text = await readFile(join(repo.dir, 'metadata', repo.files[role] ?? ''), 'utf8');
  const kind = KINDS[role as keyof typeof KINDS] ?? MetadataKind.Targets;
  return Metadata.fromJSON(kind as MetadataKind.Targets, JSON.parse(text) as Record<string, never>);
}

describe('a repository built and signed with @tufjs/models', { timeout: 30_000 }, () => {
  let repo: ForeignRepository | undefined;

  beforeAll(async () => {
    repo = await buildRepository(await mkdtemp(join(tmpdir(), 'cairn-interop-tufjs-repo-')));
  });

  afterAll(async () => {
    if (repo !== undefined) await rm(repo.dir, { recursive: true, force: true });
  });

  const load = () => {
    if (repo === undefined) throw new Error('the tuf-js repository was not built');
    return repo;
  };

  it('is a repository tuf-js itself accepts: every file re-canonicalizes to what it signed and verifies', async () => {
    const r = load();
    for (const [role, delegator] of Object.entries(r.delegator)) {
      const md = await readWithTufjs(r, role);
      expect(Buffer.from(canonicalize(md.signed.toJSON())).toString('hex')).toBe(r.canonical[role]);
      const by = await readWithTufjs(r, delegator);
      expect(() => by.verifyDelegate(role, md)).not.toThrow();
    }
  });

  checkForeignRepository('tuf-js', load);

  it('disagrees with tuf-js where tuf-js disagrees with securesystemslib: keys ordered by UTF-16 code unit', async () => {
    // @tufjs/canonical-json sorts object keys with Array.prototype.sort (UTF-16 code units);
    // securesystemslib sorts by code point, and so do we. U+FFFF and U+1F600 (a surrogate
    // pair starting 0xD83D) are ordered differently by the two rules, so tuf-js signs bytes
    // that python-tuf and we canonicalize differently, and its signature does not verify.
    const signer = newSigner('ed25519');
    const root = new Root({ version: 1, specVersion: SPEC_VERSION, expires: expiresIn(1) });
    for (const role of ['root', 'timestamp', 'snapshot', 'targets']) root.addKey(signer.key, role);
    const rootMd = new Metadata(root);
    rootMd.sign(signer.sign);
    const targets = new Targets({
      version: 1,
      specVersion: SPEC_VERSION,
      expires: expiresIn(1),
      targets: {
        x: new TargetFile({
          path: 'x',
          length: 0,
          hashes: { sha256: sha256('') },
          unrecognizedFields: { custom: { '\uffff': 1, '\u{1f600}': 2 } },
        }),
      },
    });
    const targetsMd = new Metadata(targets);
    signer.signed.length = 0;
    targetsMd.sign(signer.sign);
    const tufjsBytes = signer.signed[0]?.toString('utf8') ?? '';
    expect(tufjsBytes).toContain('"custom":{"\u{1f600}":2,"\uffff":1}');
    // tuf-js verifies its own signature.
    expect(() => rootMd.verifyDelegate('targets', targetsMd)).not.toThrow();

    const encode = (md: Metadata<Root> | Metadata<Targets>) =>
      new TextEncoder().encode(JSON.stringify(md.toJSON()));
    const ourRoot = CairnMetadata.fromBytes(encode(rootMd), 'root');
    const ourTargets = CairnMetadata.fromBytes(encode(targetsMd), 'targets');
    expect(ourRoot.signed).toBeInstanceOf(CairnRoot);
    // securesystemslib.formats.encode_canonical({"\uffff": 1, "\U0001F600": 2}) is
    // '{"\uffff":1,"😀":2}' (verified with securesystemslib 1.6.0).
    expect(canonicalString(ourTargets.signed.toJSON())).toContain(
      '"custom":{"\uffff":1,"\u{1f600}":2}',
    );
    await expect(verifyDelegate(ourRoot.signed, 'root', ourRoot)).resolves.toBe(undefined);
    await expect(verifyDelegate(ourRoot.signed, 'targets', ourTargets)).rejects.toMatchObject({
      name: 'VerifyError',
      code: 'THRESHOLD',
    });
  });
});
