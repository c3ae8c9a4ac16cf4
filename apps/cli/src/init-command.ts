/**
 * `cairn init`: the repository's root version 1, its root keys, its online keys and its
 * transparency log's key. Every check runs before the first key file is written, so a refusal
 * leaves nothing behind.
 */
import { basename, join } from 'node:path';
import {
  checkPublisherName,
  initRepository,
  type PublicKeyRef,
  type PublisherRef,
} from '@cairn/origin/admin';
import { defaultLogName, openStore } from '@cairn/origin/config';
import { OriginError, isOriginError } from '@cairn/origin/errors';
import { readPublicKey } from '@cairn/origin/key-file';
import { RootChain } from '@cairn/origin/repository';
import { logConfigFor } from '@cairn/origin/transparency-log';
import { witnessVerifier } from '@cairn/tlog/witness';
import type { Ed25519Signer } from '@cairn/verify/signer';
import { withHint, type CliIo } from './cli-io.js';
import {
  ENV,
  hinted,
  parseCommand,
  printJson,
  integerFlag,
  printUsage,
  processDeps,
  usageError,
  type CommandDeps,
  type Usage,
} from './command-support.js';
import {
  CONFIG_OPTION,
  JSON_OPTION,
  audit,
  checkFree,
  createKeyPair,
  describeStorage,
  exists,
  openKey,
  openRootKeys,
  originConfig,
  passphrase,
} from './operator-support.js';

// ---------------------------------------------------------------------------------------------
// cairn init

const INIT: Usage = {
  command: 'cairn init',
  synopsis:
    'cairn init [--config FILE] (--root-keys DIR | --root-key FILE ...) --publisher [NAME=]PUBFILE ... [--witness VKEY ... [--witness-threshold N]] [--json]',
  details: [
    "Creates the repository in the configured store: root version 1 with the configuration's",
    'thresholds and expiry, the publishers given, new snapshot and timestamp keys at the',
    "configuration's keys.snapshot and keys.timestamp, and the transparency log: its key at",
    'keys.log, its name log.name (default: cairn/<16 hex of the log keyid>/log), declared in root',
    'version 1, which is its first entry. An existing key file is used, never replaced. Refuses a',
    'store that already holds a repository, and then creates nothing.',
    '',
    CONFIG_OPTION,
    '  --root-keys DIR         create policy.thresholds.root new root keys in DIR (root-1.key, ...)',
    '  --root-key FILE         or sign with these existing root keys (repeat the flag)',
    "  --publisher [NAME=]PUBFILE  a publisher's public key file and name (repeat the flag; at",
    '                          least policy.thresholds.targets of them). NAME is 1 to 64 of',
    '                          A-Z a-z 0-9 . _ -, unique; default: the file name without .pub and .key',
    "  --witness VKEY          a log witness's verifier key (cairn witness keygen printed it), declared",
    '                          in root version 1 (repeat the flag)',
    '  --witness-threshold N   how many of them must cosign a checkpoint for clients to accept it',
    '                          (default 0); the origin needs their URLs in log.witnesses',
    JSON_OPTION,
    '',
    `Root key files are encrypted under $${ENV.rootPassphrase}, online and log ones under $${ENV.onlinePassphrase}.`,
  ],
};

interface KeyFileRef {
  readonly keyid: string;
  readonly file: string;
  /** True when this run created the file. */
  readonly created: boolean;
}

async function onlineKey(
  path: string,
  secret: string,
): Promise<{ ref: KeyFileRef; key: PublicKeyRef; signer: Ed25519Signer }> {
  const created = !(await exists(path));
  const signer = created
    ? await createKeyPair(path, secret)
    : await openKey(path, secret, ENV.onlinePassphrase);
  return {
    ref: { keyid: signer.keyid, file: path, created },
    key: { keyid: signer.keyid, key: signer.publicKey },
    signer,
  };
}

/**
 * `[NAME=]FILE`: a publisher's public key file and the name the root gives it. Without a name,
 * the file's base name without `.pub` and then `.key` (`keys/alice.key.pub` is alice).
 */
export function parsePublisherArgument(arg: string): { name: string; file: string } {
  const equals = arg.indexOf('=');
  if (equals >= 0) {
    const name = arg.slice(0, equals);
    checkPublisherName(name);
    return { name, file: arg.slice(equals + 1) };
  }
  const name = basename(arg)
    .replace(/\.pub$/, '')
    .replace(/\.key$/, '');
  checkPublisherName(name);
  return { name, file: arg };
}

/** Publisher names reach a root only through checkPublisherName; this says how to fix one. */
export function publisherNameHint(code: string): string | undefined {
  return code === 'INVALID_PUBLISHER_NAME'
    ? 'name the publisher explicitly: --publisher NAME=PUBFILE, NAME being 1 to 64 of A-Z a-z 0-9 . _ - and unique'
    : undefined;
}

export async function runInit(
  args: readonly string[],
  io: CliIo,
  deps: CommandDeps = processDeps(),
): Promise<number> {
  const { values } = parseCommand(
    INIT,
    args,
    {
      config: { type: 'string' },
      'root-keys': { type: 'string' },
      'root-key': { type: 'string', multiple: true },
      publisher: { type: 'string', multiple: true },
      witness: { type: 'string', multiple: true },
      'witness-threshold': { type: 'string' },
      json: { type: 'boolean' },
    },
    0,
  );
  if (values.help === true) return printUsage(io, INIT);
  const witnesses = await witnessKeys(values.witness ?? []);
  const witnessThreshold =
    integerFlag(INIT, values['witness-threshold'], '--witness-threshold', 0) ?? 0;
  if (witnessThreshold > witnesses.length) {
    throw usageError(
      INIT,
      `--witness-threshold ${String(witnessThreshold)} is more than the ${String(witnesses.length)} --witness keys given`,
    );
  }
  const rootKeyFiles = values['root-key'] ?? [];
  const rootKeysDir = values['root-keys'];
  if ((rootKeysDir === undefined) === (rootKeyFiles.length === 0)) {
    throw usageError(
      INIT,
      'give either --root-keys DIR (new keys) or --root-key FILE (existing ones)',
    );
  }
  const publisherFiles = values.publisher ?? [];
  if (publisherFiles.length === 0) throw usageError(INIT, 'missing --publisher PUBFILE');

  const config = await originConfig(values.config, deps.env);
  const { policy } = config;
  const store = openStore(config.storage);
  const refuseInitialised = (version: number) =>
    withInitHint(
      new OriginError(
        'REPOSITORY_STATE',
        `${describeStorage(config.storage)} already holds a repository (root version ${version}); nothing was changed`,
      ),
    );
  // Before any key file is made: a second init must leave everything as it was.
  const existing = await new RootChain(store).newest().catch((error: unknown) => {
    if (isOriginError(error, 'REPOSITORY_STATE')) return undefined;
    throw error;
  });
  if (existing !== undefined) throw refuseInitialised(existing.signed.version);

  const publishers: (PublisherRef & { name: string; file: string })[] = [];
  for (const arg of publisherFiles) {
    const { name, file } = await hinted(
      () => Promise.resolve(parsePublisherArgument(arg)),
      publisherNameHint,
    );
    const { keyid, key } = await readPublicKey(file);
    if (publishers.some((p) => p.keyid === keyid)) {
      throw new OriginError('CONFIG_INVALID', `${file}: the same publisher key is given twice`);
    }
    if (publishers.some((p) => p.name === name)) {
      throw withHint(
        new OriginError(
          'INVALID_PUBLISHER_NAME',
          `${arg}: the publisher name ${JSON.stringify(name)} is given twice`,
        ),
        publisherNameHint('INVALID_PUBLISHER_NAME') ?? '',
      );
    }
    publishers.push({ keyid, key, name, file });
  }
  if (publishers.length < policy.thresholds.targets) {
    throw withHint(
      new OriginError(
        'CONFIG_INVALID',
        `policy.thresholds.targets is ${policy.thresholds.targets}, but only ${publishers.length} --publisher key(s) were given: no release could ever be published`,
      ),
      'give more --publisher files, or lower policy.thresholds.targets in the configuration',
    );
  }
  const rootSecret = await passphrase(ENV.rootPassphrase, deps.env, 'the root key files');
  const onlineSecret = await passphrase(ENV.onlinePassphrase, deps.env, 'the online key files');

  const newRootFiles =
    rootKeysDir === undefined
      ? []
      : Array.from({ length: policy.thresholds.root }, (_, i) =>
          join(rootKeysDir, `root-${i + 1}.key`),
        );
  // Every check before the first key is made, so a refusal leaves no new files behind. An
  // existing online key file is used as it is; a new one needs its `.pub` name free too.
  const toCreate = [...newRootFiles];
  for (const file of [config.keys.snapshot, config.keys.timestamp, config.keys.log]) {
    if (!(await exists(file))) toCreate.push(file);
  }
  for (const file of toCreate) {
    await hinted(
      () => checkFree(file),
      () =>
        rootKeysDir !== undefined && newRootFiles.includes(file)
          ? 'choose an empty --root-keys directory, or sign with existing keys: --root-key FILE'
          : undefined,
    );
  }
  let rootSigners: Ed25519Signer[];
  let rootRefs: KeyFileRef[];
  if (rootKeysDir === undefined) {
    if (rootKeyFiles.length < policy.thresholds.root) {
      throw withHint(
        new OriginError(
          'CONFIG_INVALID',
          `policy.thresholds.root is ${policy.thresholds.root}, but only ${rootKeyFiles.length} --root-key file(s) were given`,
        ),
        'give more --root-key files, or lower policy.thresholds.root in the configuration',
      );
    }
    rootSigners = await openRootKeys(rootKeyFiles, deps.env);
    rootRefs = rootSigners.map((s, i) => ({
      keyid: s.keyid,
      file: rootKeyFiles[i] ?? '',
      created: false,
    }));
  } else {
    rootSigners = [];
    for (const file of newRootFiles) rootSigners.push(await createKeyPair(file, rootSecret));
    rootRefs = rootSigners.map((s, i) => ({
      keyid: s.keyid,
      file: newRootFiles[i] ?? '',
      created: true,
    }));
  }
  const snapshot = await onlineKey(config.keys.snapshot, onlineSecret);
  const timestamp = await onlineKey(config.keys.timestamp, onlineSecret);
  const logKey = await onlineKey(config.keys.log, onlineSecret);
  const logName = config.log.name ?? defaultLogName(logKey.ref.keyid);
  const log = { ...(await logConfigFor(logKey.signer, logName)), witnesses, witnessThreshold };

  const root = await initRepository(store, {
    rootSigners,
    rootThreshold: policy.thresholds.root,
    publishers,
    targetsThreshold: policy.thresholds.targets,
    snapshotKey: snapshot.key,
    timestampKey: timestamp.key,
    rootExpiry: policy.expiry.root,
    now: deps.now(),
    log: { name: logName, key: logKey.signer, witnesses, witnessThreshold },
  }).catch((error: unknown) => {
    throw isOriginError(error, 'REPOSITORY_STATE') ? withInitHint(error) : error;
  });
  await audit(io, store, {
    action: 'init',
    outcome: 'ok',
    actor: 'operator',
    details: {
      rootVersion: root.signed.version,
      root: rootRefs.map((r) => r.keyid),
      publishers: publishers.map((p) => ({ keyid: p.keyid, name: p.name })),
      snapshot: snapshot.ref.keyid,
      timestamp: timestamp.ref.keyid,
      log: { name: logName, key: log.key, witnesses, witnessThreshold },
    },
  });

  const report = {
    storage: describeStorage(config.storage),
    rootVersion: root.signed.version,
    expires: root.signed.expires.toISOString(),
    root: { threshold: policy.thresholds.root, keys: rootRefs },
    publishers: {
      threshold: policy.thresholds.targets,
      keys: publishers.map((p) => ({ keyid: p.keyid, name: p.name, file: p.file })),
    },
    snapshot: snapshot.ref,
    timestamp: timestamp.ref,
    log: { name: logName, key: log.key, ...logKey.ref },
    ...(witnesses.length > 0
      ? { witnesses: { threshold: witnessThreshold, keys: witnesses } }
      : {}),
  };
  if (values.json === true) {
    printJson(io, report);
    return 0;
  }
  const keyLine = (k: { keyid: string; file: string; name?: string; created?: boolean }) =>
    `  ${k.keyid}  ${k.name === undefined ? '' : `${k.name}  `}${k.file}${k.created === true ? ' (new)' : ''}`;
  io.stdout(
    `✔ initialised the repository in ${report.storage}: root version ${report.rootVersion}, expires ${report.expires}`,
  );
  io.stdout(`root keys (threshold ${report.root.threshold}):`);
  for (const k of report.root.keys) io.stdout(keyLine(k));
  io.stdout(`publishers (threshold ${report.publishers.threshold}):`);
  for (const k of report.publishers.keys) io.stdout(keyLine(k));
  io.stdout('snapshot key:');
  io.stdout(keyLine(report.snapshot));
  io.stdout('timestamp key:');
  io.stdout(keyLine(report.timestamp));
  io.stdout(`transparency log ${report.log.name} (root version 1 is its first entry), key:`);
  io.stdout(keyLine(report.log));
  if (witnesses.length > 0) {
    io.stdout(`log witnesses (threshold ${String(witnessThreshold)}):`);
    for (const w of witnesses) io.stdout(`  ${w}`);
  }
  io.stdout(
    `next: keep the root key files offline, then start the origin: cairn serve${values.config === undefined ? '' : ` --config ${values.config}`}`,
  );
  return 0;
}

/** The --witness keys, each a cosignature/v1 verifier key, none twice. */
async function witnessKeys(keys: readonly string[]): Promise<string[]> {
  for (const key of keys) {
    try {
      await witnessVerifier(key);
    } catch (error) {
      throw usageError(
        INIT,
        `--witness: ${error instanceof Error ? error.message : String(error)}: ${JSON.stringify(key)}`,
      );
    }
  }
  if (new Set(keys).size !== keys.length) throw usageError(INIT, '--witness: a key is given twice');
  return [...keys];
}

function withInitHint(error: OriginError): OriginError {
  return withHint(
    error,
    '`cairn keys` changes the keys of an existing repository; `cairn keys list` shows them',
  );
}
