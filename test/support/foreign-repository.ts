// Checks that @cairn/verify reads a TUF repository that another implementation built and
// signed (python-tuf, @tufjs/models) exactly as that implementation meant it: the same parse,
// the same signatures valid, the same canonical bytes, and a working update over HTTP.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsMetadataStore } from '@cairn/client/fs-metadata-store';
import { HttpFetcher } from '@cairn/client/http-fetcher';
import { nodeHashPort } from '@cairn/client/node-hash';
import { canonicalize } from '@cairn/verify/canonical-json';
import { toHex } from '@cairn/verify/encoding';
import { computeKeyId, type Key } from '@cairn/verify/keys';
import {
  Metadata,
  Root,
  Targets,
  isTopLevelRole,
  verifyDelegate,
  type RoleType,
} from '@cairn/verify/metadata';
import { Updater } from '@cairn/verify/updater';
import { expect, it } from 'vitest';
import { serveDirectory } from './static-server.js';

/** What the foreign tool says it wrote; every field comes from the tool, not from our code. */
export interface ForeignRepository {
  /** Holds `metadata/` and `targets/`, laid out for consistent snapshots. */
  readonly dir: string;
  /** Role name -> file name under `metadata/`. */
  readonly files: Readonly<Record<string, string>>;
  /** Role name -> the role whose keys sign for it (root for root). */
  readonly delegator: Readonly<Record<string, string>>;
  /** Role name -> hex of the canonical bytes of its signed part, made by the foreign tool. */
  readonly canonical: Readonly<Record<string, string>>;
  /** Every keyid listed in the repository -> its type and scheme. */
  readonly keyids: Readonly<Record<string, { keytype: string; scheme: string }>>;
  /** Target path -> the role that lists it, its length and hashes. */
  readonly targets: Readonly<
    Record<string, { role: string; length: number; sha256: string; sha512: string }>
  >;
}

export const ROLES = ['root', 'timestamp', 'snapshot', 'targets', 'releases', 'bins'] as const;
export const KEY_KINDS = ['ecdsa/ecdsa-sha2-nistp256', 'ed25519/ed25519'];

export async function readMetadata(repo: ForeignRepository, role: string): Promise<Uint8Array> {
  const name = repo.files[role];
  if (name === undefined) throw new Error(`the repository has no file for ${role}`);
  return new Uint8Array(await readFile(join(repo.dir, 'metadata', name)));
}

function typeOf(role: string): RoleType {
  return isTopLevelRole(role) ? role : 'targets';
}

export async function parseRole(repo: ForeignRepository, role: string): Promise<Metadata> {
  return Metadata.fromBytes(await readMetadata(repo, role), typeOf(role), role);
}

async function delegatorOf(repo: ForeignRepository, role: string): Promise<Root | Targets> {
  const signed = (await parseRole(repo, repo.delegator[role] ?? '')).signed;
  if (!(signed instanceof Root || signed instanceof Targets)) {
    throw new Error(`${role}: its delegator is ${signed.type}`);
  }
  return signed;
}

/**
 * Flips byte 10 of the signature `sig` in a metadata file (XOR 0xff). Byte 10 lies inside
 * R of an ed25519 signature and inside r of a DER ECDSA one, so the signature stays well
 * formed and only the cryptography can catch it.
 */
export function flipSignatureByte(file: Uint8Array, sig: string): Uint8Array {
  const text = new TextDecoder().decode(file);
  const at = text.indexOf(`"${sig}"`);
  if (at < 0 || text.indexOf(`"${sig}"`, at + 1) >= 0) {
    throw new Error(`signature ${sig.slice(0, 16)}... is not in the file exactly once`);
  }
  const byte = (parseInt(sig.slice(20, 22), 16) ^ 0xff).toString(16).padStart(2, '0');
  const flipped = `${sig.slice(0, 20)}${byte}${sig.slice(22)}`;
  return new TextEncoder().encode(
    `${text.slice(0, at + 1)}${flipped}${text.slice(at + 1 + sig.length)}`,
  );
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function allKeys(md: Metadata): [string, Key][] {
  const { signed } = md;
  if (signed instanceof Root) return [...signed.keys];
  if (signed instanceof Targets) return [...(signed.delegations?.keys ?? [])];
  return [];
}

/**
 * Registers the checks every foreign repository must pass with our code. `tool` names who
 * signed it in test titles; `load` returns the repository once a beforeAll has built it.
 */
export function checkForeignRepository(tool: string, load: () => ForeignRepository): void {
  it(`lists exactly the roles and targets the test expects (${tool})`, () => {
    const repo = load();
    expect(Object.keys(repo.files).sort()).toEqual([...ROLES].sort());
    expect(Object.keys(repo.canonical).sort()).toEqual([...ROLES].sort());
    expect(repo.delegator).toEqual({
      root: 'root',
      timestamp: 'root',
      snapshot: 'root',
      targets: 'root',
      releases: 'targets',
      bins: 'targets',
    });
    expect(
      Object.fromEntries(Object.entries(repo.targets).map(([path, t]) => [path, t.role])),
    ).toEqual({
      'readme.txt': 'targets',
      'data/signatures.db': 'targets',
      'releases/v1.tar': 'releases',
      'bins/data.bin': 'bins',
    });
    expect(new Set(Object.values(repo.keyids).map((k) => `${k.keytype}/${k.scheme}`))).toEqual(
      new Set(KEY_KINDS),
    );
  });

  it(`parses every metadata file with Metadata.fromBytes (${tool})`, async () => {
    const repo = load();
    for (const role of ROLES) {
      const md = await parseRole(repo, role);
      expect(md.signed.type).toBe(typeOf(role));
      expect(md.signed.version).toBe(1);
      expect(md.signed.specVersion).toBe('1.0.31');
    }
    const root = (await parseRole(repo, 'root')).signed as Root;
    expect(root.consistentSnapshot).toBe(true);
    expect(root.roles.root.threshold).toBe(2);
    expect(root.roles.root.keyids.map((id) => repo.keyids[id]?.keytype).sort()).toEqual([
      'ecdsa',
      'ed25519',
    ]);
    const targets = (await parseRole(repo, 'targets')).signed as Targets;
    expect(
      targets.delegations?.roles?.map((r) => [r.name, r.paths, r.pathHashPrefixes?.length]),
    ).toEqual([
      ['releases', ['releases/*'], undefined],
      ['bins', undefined, 2],
    ]);
    for (const [path, listed] of Object.entries(repo.targets)) {
      const file = ((await parseRole(repo, listed.role)).signed as Targets).targets.get(path);
      expect(file?.length).toBe(listed.length);
      expect(file?.hashes).toEqual({ sha256: listed.sha256, sha512: listed.sha512 });
    }
  });

  it(`verifies every role against its delegator with verifyDelegate (${tool})`, async () => {
    const repo = load();
    for (const role of ROLES) {
      const md = await parseRole(repo, role);
      await expect(verifyDelegate(await delegatorOf(repo, role), role, md)).resolves.toBe(
        undefined,
      );
    }
  });

  it(`canonicalizes every signed part to exactly ${tool}'s canonical bytes`, async () => {
    const repo = load();
    for (const role of ROLES) {
      const md = await parseRole(repo, role);
      // Our model's own serialization, not the object as parsed: nothing may be lost or moved.
      expect({ role, hex: toHex(canonicalize(md.signed.toJSON())) }).toEqual({
        role,
        hex: repo.canonical[role],
      });
      expect({ role, hex: toHex(md.signedBytes()) }).toEqual({ role, hex: repo.canonical[role] });
      // And the signatures hold over the re-serialized model.
      const rebuilt = new Metadata(md.signed, md.signatures);
      await expect(verifyDelegate(await delegatorOf(repo, role), role, rebuilt)).resolves.toBe(
        undefined,
      );
    }
  });

  it(`computes the same keyid as ${tool} for every key`, async () => {
    const repo = load();
    const seen: Record<string, { keytype: string; scheme: string }> = {};
    for (const role of ROLES) {
      for (const [keyid, key] of allKeys(await parseRole(repo, role))) {
        expect(await computeKeyId(key)).toBe(keyid);
        seen[keyid] = { keytype: key.keytype, scheme: key.scheme };
      }
    }
    expect(seen).toEqual(repo.keyids);
  });

  it(`refuses every ${tool}-signed file with one signature byte flipped: THRESHOLD`, async () => {
    const repo = load();
    let flippedSignatures = 0;
    for (const role of ROLES) {
      const bytes = await readMetadata(repo, role);
      const delegator = await delegatorOf(repo, role);
      const { signatures } = await parseRole(repo, role);
      expect(signatures.length).toBe(role === 'root' ? 2 : 1);
      for (const { sig } of signatures) {
        const md = Metadata.fromBytes(flipSignatureByte(bytes, sig), typeOf(role), role);
        await expect(verifyDelegate(delegator, role, md)).rejects.toMatchObject({
          name: 'VerifyError',
          code: 'THRESHOLD',
        });
        flippedSignatures++;
      }
    }
    expect(flippedSignatures).toBe(7);
  });

  it(`refreshes and downloads every target, delegated ones included, with our Updater (${tool})`, async () => {
    const repo = load();
    const server = await serveDirectory(repo.dir);
    const client = await mkdtemp(join(tmpdir(), 'cairn-interop-client-'));
    try {
      const store = new FsMetadataStore(client);
      await store.persist('root', await readMetadata(repo, 'root'));
      const updater = new Updater({
        metadataBaseUrl: `${server.url}metadata/`,
        targetBaseUrl: `${server.url}targets/`,
        fetcher: new HttpFetcher(),
        store,
        hash: nodeHashPort,
      });
      await updater.refresh();
      const downloaded: Record<string, { length: number; sha256: string }> = {};
      for (const path of Object.keys(repo.targets)) {
        const info = await updater.getTargetInfo(path);
        if (info === undefined) throw new Error(`${path}: not found`);
        const bytes = await updater.downloadTarget(info);
        downloaded[path] = { length: bytes.length, sha256: sha256(bytes) };
      }
      expect(downloaded).toEqual(
        Object.fromEntries(
          Object.entries(repo.targets).map(([path, t]) => [
            path,
            { length: t.length, sha256: t.sha256 },
          ]),
        ),
      );
      const hashed = (path: string) => {
        const slash = path.lastIndexOf('/');
        return `targets/${path.slice(0, slash + 1)}${repo.targets[path]?.sha256}.${path.slice(slash + 1)}`;
      };
      // Each delegated role is fetched once, when the first of its targets is looked up: no
      // path here matches another role's delegation, so no other role is ever visited.
      const expected = [
        'metadata/2.root.json',
        'metadata/timestamp.json',
        'metadata/1.snapshot.json',
        'metadata/1.targets.json',
      ];
      for (const [path, { role }] of Object.entries(repo.targets)) {
        const file = `metadata/1.${role}.json`;
        if (role !== 'targets' && !expected.includes(file)) expected.push(file);
        expected.push(hashed(path));
      }
      expect(server.requests).toEqual(expected);
      // The store holds exactly the bytes the foreign tool wrote, one file per role.
      expect((await readdir(client)).sort()).toEqual(ROLES.map((r) => `${r}.json`).sort());
      for (const role of ROLES) {
        expect(await store.load(role)).toEqual(await readMetadata(repo, role));
      }
    } finally {
      await server.close();
      await rm(client, { recursive: true, force: true });
    }
  });

  it(`refuses a ${tool}-signed timestamp with a flipped signature byte in an update: THRESHOLD`, async () => {
    const repo = load();
    const server = await serveDirectory(repo.dir);
    const client = await mkdtemp(join(tmpdir(), 'cairn-interop-client-'));
    try {
      const timestamp = await readMetadata(repo, 'timestamp');
      const { signatures } = await parseRole(repo, 'timestamp');
      server.overrides.set(
        'metadata/timestamp.json',
        flipSignatureByte(timestamp, signatures[0]?.sig ?? ''),
      );
      const store = new FsMetadataStore(client);
      await store.persist('root', await readMetadata(repo, 'root'));
      const updater = new Updater({
        metadataBaseUrl: `${server.url}metadata/`,
        fetcher: new HttpFetcher(),
        store,
        hash: nodeHashPort,
      });
      await expect(updater.refresh()).rejects.toMatchObject({
        name: 'VerifyError',
        code: 'THRESHOLD',
      });
      expect(server.requests).toEqual(['metadata/2.root.json', 'metadata/timestamp.json']);
      expect(await readdir(client)).toEqual(['root.json']);
    } finally {
      await server.close();
      await rm(client, { recursive: true, force: true });
    }
  });
}
