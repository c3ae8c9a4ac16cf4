/**
 * `cairn demo`: the main job on the embedded default, narrated for a newcomer. It creates a
 * TUF repository whose targets need two publishers' signatures, serves it on 127.0.0.1,
 * and has a client verify and download a signature database through it; then it shows the
 * client refusing a tampered file and a release signed by one publisher alone.
 */
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createTufClient, downloadTargetTo, initTrustedRoot } from '@cairn/client/tuf-client';
import { nodeHashPort } from '@cairn/client/node-hash';
import { isVerifyError } from '@cairn/verify/errors';
import { Metadata, verifyDelegate, type Targets } from '@cairn/verify/metadata';
import {
  buildRoot,
  buildSnapshot,
  buildTargets,
  buildTimestamp,
  describeMetadata,
  describeTarget,
} from '@cairn/verify/repository';
import {
  EcdsaP256Signer,
  Ed25519Signer,
  mergeSignatures,
  signMetadata,
  type Signer,
} from '@cairn/verify/signer';
import { UsageError, type CliIo } from './cli-io.js';
import { serveDirectory } from './static-server.js';

const DAY = 86_400_000;
const MARKER = '.cairn-demo';

function short(keyid: string): string {
  return keyid.slice(0, 8);
}

function keyRef(s: Signer) {
  return { keyid: s.keyid, publicKey: s.publicKey };
}

/** A synthetic signature database: sorted records of `sha256:size:name`, like a .hdb file. */
function signatureDatabase(records: number, seed: number): Uint8Array {
  const lines: string[] = [];
  let x = seed >>> 0;
  const next = () => {
    x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return x;
  };
  for (let i = 0; i < records; i++) {
    let hash = '';
    for (let j = 0; j < 8; j++) hash += next().toString(16).padStart(8, '0');
    lines.push(`${hash}:${1000 + (next() % 900_000)}:Win.Trojan.Agent-${next() % 1_000_000}`);
  }
  lines.sort();
  return new TextEncoder().encode(`${lines.join('\n')}\n`);
}

function parseDemoArgs(args: readonly string[]) {
  try {
    return parseArgs({ args: [...args], options: { dir: { type: 'string' } }, strict: true });
  } catch (e) {
    throw new UsageError(`cairn demo: ${(e as Error).message} (usage: cairn demo [--dir DIR])`);
  }
}

async function prepareDir(dir: string): Promise<void> {
  try {
    await stat(dir);
    try {
      await stat(join(dir, MARKER));
    } catch {
      throw new UsageError(`${dir} exists and was not made by cairn demo; choose another --dir`);
    }
    await rm(dir, { recursive: true, force: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, MARKER), 'made by cairn demo; safe to delete\n');
}

async function write(dir: string, path: string, bytes: Uint8Array): Promise<void> {
  const full = join(dir, path);
  await mkdir(join(full, '..'), { recursive: true });
  await writeFile(full, bytes);
}

function targetName(path: string, hash: string): string {
  const slash = path.lastIndexOf('/');
  return `${path.slice(0, slash + 1)}${hash}.${path.slice(slash + 1)}`;
}

export async function runDemo(args: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseDemoArgs(args);
  const dir = resolve(values.dir ?? '.cairn-demo');
  const repoDir = join(dir, 'repository');
  const clientDir = join(dir, 'client');
  const now = new Date();
  const expires = (days: number) => new Date(now.getTime() + days * DAY);

  await prepareDir(dir);
  io.stdout(`Cairn demo — everything below happens in ${dir}\n`);

  io.stdout('1. Keys. Each role of the repository gets its own keys:');
  const rootKeys = [await Ed25519Signer.generate(), await Ed25519Signer.generate()];
  const alice = await Ed25519Signer.generate();
  const bob = await EcdsaP256Signer.generate();
  const snapshotKey = await Ed25519Signer.generate();
  const timestampKey = await Ed25519Signer.generate();
  io.stdout(
    `   root       2 offline keys, both must sign (${rootKeys.map((k) => short(k.keyid)).join(', ')})`,
  );
  io.stdout(
    `   targets    publishers alice (ed25519, ${short(alice.keyid)}) and bob (ECDSA P-256, ${short(bob.keyid)}): both must sign`,
  );
  io.stdout(
    `   snapshot   online key ${short(snapshotKey.keyid)}; timestamp online key ${short(timestampKey.keyid)}\n`,
  );

  const root = await signMetadata(
    new Metadata(
      buildRoot({
        expires: expires(365),
        roles: {
          root: { keys: rootKeys.map(keyRef), threshold: 2 },
          targets: { keys: [alice, bob].map(keyRef), threshold: 2 },
          snapshot: { keys: [keyRef(snapshotKey)], threshold: 1 },
          timestamp: { keys: [keyRef(timestampKey)], threshold: 1 },
        },
      }),
    ),
    rootKeys,
  );
  const rootBytes = root.toBytes();
  await write(repoDir, 'metadata/1.root.json', rootBytes);
  await write(repoDir, 'metadata/root.json', rootBytes);

  io.stdout('2. A release: two signature databases, generated for the demo.');
  const files = new Map<string, Uint8Array>([
    ['main.cvd', signatureDatabase(20_000, 1)],
    ['daily.cvd', signatureDatabase(2_000, 2)],
  ]);
  const targetInfos = [];
  for (const [path, bytes] of files) {
    const info = await describeTarget(nodeHashPort, path, bytes, {
      algorithms: ['sha256', 'sha512'],
    });
    targetInfos.push(info);
    await write(repoDir, `targets/${targetName(path, info.hashes.sha256 ?? '')}`, bytes);
    io.stdout(
      `   ${path.padEnd(10)} ${String(bytes.length).padStart(9)} bytes  sha256 ${info.hashes.sha256?.slice(0, 16) ?? ''}…`,
    );
  }

  io.stdout('\n3. The two-person rule: the release is a draft until both publishers sign it.');
  const draft = new Metadata(buildTargets({ expires: expires(30), targets: targetInfos }));
  const byAlice = await signMetadata(draft, [alice]);
  try {
    await verifyDelegate(root.signed, 'targets', byAlice);
  } catch (e) {
    if (!isVerifyError(e, 'THRESHOLD')) throw e;
    io.stdout(`   alice signed: ${e.message} — not enough, nothing can be published yet`);
  }
  const targets: Metadata<Targets> = mergeSignatures(byAlice, await signMetadata(draft, [bob]));
  await verifyDelegate(root.signed, 'targets', targets);
  io.stdout('   bob signed too: 2 of 2 signatures verify — the release is approved');
  const targetsBytes = targets.toBytes();
  await write(repoDir, 'metadata/1.targets.json', targetsBytes);

  const snapshot = await signMetadata(
    new Metadata(
      buildSnapshot({
        expires: expires(7),
        meta: { 'targets.json': await describeMetadata(nodeHashPort, 1, targetsBytes) },
      }),
    ),
    [snapshotKey],
  );
  const snapshotBytes = snapshot.toBytes();
  await write(repoDir, 'metadata/1.snapshot.json', snapshotBytes);
  const timestamp = await signMetadata(
    new Metadata(
      buildTimestamp({
        expires: expires(1),
        snapshot: await describeMetadata(nodeHashPort, 1, snapshotBytes, {
          length: true,
          hashes: true,
        }),
      }),
    ),
    [timestampKey],
  );
  await write(repoDir, 'metadata/timestamp.json', timestamp.toBytes());
  io.stdout(
    "   the origin's online keys signed snapshot v1 and timestamp v1; published in consistent-snapshot layout\n",
  );

  const server = await serveDirectory(repoDir);
  try {
    io.stdout(`4. A client fetches through the repository served at ${server.url}`);
    const metadataDir = join(clientDir, 'metadata');
    const targetDir = join(clientDir, 'targets');
    await initTrustedRoot(metadataDir, rootBytes);
    io.stdout('   it trusts root v1, shipped with it out of band');
    const client = createTufClient({
      metadataDir,
      metadataUrl: `${server.url}metadata/`,
      targetBaseUrl: `${server.url}targets/`,
    });
    await client.refresh();
    const trusted = client.trusted;
    io.stdout(
      `   ✔ root v${trusted?.root.signed.version ?? '?'}: no newer root; signed by 2 of 2 root keys, not expired`,
    );
    io.stdout(
      `   ✔ timestamp v${trusted?.timestamp?.signed.version ?? '?'}: signed by the timestamp key, fresh until ${timestamp.signed.expires.toISOString()}`,
    );
    io.stdout(
      `   ✔ snapshot v${trusted?.snapshot?.signed.version ?? '?'}: hash and length match the timestamp, signed by the snapshot key`,
    );
    io.stdout(
      `   ✔ targets v${trusted?.targets?.signed.version ?? '?'}: signed by alice and bob, version matches the snapshot`,
    );
    for (const path of files.keys()) {
      const info = await client.getTargetInfo(path);
      if (info === undefined) throw new Error(`${path} is not in the verified targets`);
      const stored = await downloadTargetTo(client, info, targetDir);
      io.stdout(
        `   ✔ ${path}: ${info.length} bytes, sha256 and sha512 verified, installed at ${stored.path}`,
      );
    }

    io.stdout('\n5. Attack: someone with write access to the storage replaces daily.cvd.');
    const daily = files.get('daily.cvd') ?? new Uint8Array();
    const dailyInfo = targetInfos.find((t) => t.path === 'daily.cvd');
    const evil = new TextEncoder().encode(
      new TextDecoder().decode(daily).replace('Win.Trojan', 'Win.Clean!'),
    );
    await write(
      repoDir,
      `targets/${targetName('daily.cvd', dailyInfo?.hashes.sha256 ?? '')}`,
      evil,
    );
    const installedBefore = await readFile(join(targetDir, 'daily.cvd'));
    try {
      await client.downloadTarget(dailyInfo ?? targetInfos[0]!);
      io.stderr('   ✘ the tampered file was accepted — this is a bug');
      return 1;
    } catch (e) {
      if (!isVerifyError(e)) throw e;
      io.stdout(`   ✔ refused: ${e.code} — ${e.message}`);
    }
    const installedAfter = await readFile(join(targetDir, 'daily.cvd'));
    io.stdout(
      `   ✔ the installed daily.cvd is unchanged (${Buffer.compare(installedBefore, installedAfter) === 0 ? 'byte for byte' : 'CHANGED'})`,
    );

    io.stdout('\n6. Attack: one insider publishes a release signed by alice alone.');
    const rogue = await signMetadata(
      new Metadata(
        buildTargets({ version: 2, expires: expires(30), targets: [dailyInfo ?? targetInfos[0]!] }),
      ),
      [alice],
    );
    const rogueBytes = rogue.toBytes();
    await write(repoDir, 'metadata/2.targets.json', rogueBytes);
    const snapshot2 = await signMetadata(
      new Metadata(
        buildSnapshot({
          version: 2,
          expires: expires(7),
          meta: { 'targets.json': await describeMetadata(nodeHashPort, 2, rogueBytes) },
        }),
      ),
      [snapshotKey],
    );
    await write(repoDir, 'metadata/2.snapshot.json', snapshot2.toBytes());
    const timestamp2 = await signMetadata(
      new Metadata(
        buildTimestamp({
          version: 2,
          expires: expires(1),
          snapshot: await describeMetadata(nodeHashPort, 2, snapshot2.toBytes(), {
            length: true,
            hashes: true,
          }),
        }),
      ),
      [timestampKey],
    );
    await write(repoDir, 'metadata/timestamp.json', timestamp2.toBytes());
    const trustedTargetsBefore = await readFile(join(metadataDir, 'targets.json'));
    try {
      await createTufClient({ metadataDir, metadataUrl: `${server.url}metadata/` }).refresh();
      io.stderr('   ✘ a release with one publisher signature was accepted — this is a bug');
      return 1;
    } catch (e) {
      if (!isVerifyError(e)) throw e;
      io.stdout(`   ✔ refused: ${e.code} — ${e.message}`);
    }
    const trustedTargetsAfter = await readFile(join(metadataDir, 'targets.json'));
    io.stdout(
      `   ✔ the client still trusts targets v1 (${Buffer.compare(trustedTargetsBefore, trustedTargetsAfter) === 0 ? 'unchanged on disk' : 'CHANGED'})`,
    );

    io.stdout('\nDone. What to look at next:');
    io.stdout(`   ls ${repoDir}/metadata`);
    io.stdout('      the signed metadata, as any TUF client reads it');
    io.stdout(`   ls ${clientDir}/metadata`);
    io.stdout('      what the client trusts now');
    io.stdout('   npm test');
    io.stdout('      every check: vectors, attacks, interop with python-tuf and tuf-js');
    return 0;
  } finally {
    await server.close();
  }
}
