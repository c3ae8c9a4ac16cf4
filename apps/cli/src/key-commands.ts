/**
 * `cairn keys`: key files (generate), the repository's keys (list), and key changes signed
 * with the offline root keys (add-publisher, revoke-publisher, rotate-online, rotate-root,
 * set-thresholds). A change becomes the pending root, which the origin publishes when the
 * current release satisfies it; `--publish-now` does that at once.
 */
import {
  proposeRootChange,
  publishPendingRoot,
  type PublicKeyRef,
  type RootChange,
} from '@cairn/origin/admin';
import { openStore, type OriginConfig } from '@cairn/origin/config';
import { OriginError } from '@cairn/origin/errors';
import { readPublicKey } from '@cairn/origin/key-file';
import { createLogger } from '@cairn/origin/log';
import { RootChain, readHead, readPendingRoot } from '@cairn/origin/repository';
import { OriginService } from '@cairn/origin/service';
import { declaredLog, logConfigFor, publisherName } from '@cairn/origin/transparency-log';
import { isVerifyError } from '@cairn/verify/errors';
import { verifyDelegate, type Metadata, type Root } from '@cairn/verify/metadata';
import type { Ed25519Signer } from '@cairn/verify/signer';
import type { CliIo } from './cli-io.js';
import { parsePublisherArgument, publisherNameHint } from './init-command.js';
import {
  ENV,
  columns,
  commonHint,
  hinted,
  integerFlag,
  parseCommand,
  printJson,
  printUsage,
  processDeps,
  requirePositional,
  usageError,
  type CommandDeps,
  type Usage,
} from './command-support.js';
import {
  CONFIG_OPTION,
  JSON_OPTION,
  audit,
  createKeyPair,
  exists,
  isPrivateKeyFile,
  openKey,
  openRootKeys,
  originConfig,
  passphrase,
  repositoryHint,
  type BlobStore,
} from './operator-support.js';

// ---------------------------------------------------------------------------------------------
// cairn keys generate

const ROLE_VARIABLES = {
  publisher: ENV.passphrase,
  root: ENV.rootPassphrase,
  online: ENV.onlinePassphrase,
} as const;

type KeyRole = keyof typeof ROLE_VARIABLES;

const KEYS_GENERATE: Usage = {
  command: 'cairn keys generate',
  synopsis: 'cairn keys generate --out FILE [--role publisher|root|online] [--json]',
  details: [
    'Creates an ed25519 key: FILE, the private key encrypted under a passphrase (mode 600),',
    'and FILE.pub, the public key to give to the operators. Prints the keyid.',
    'Never overwrites: it refuses when FILE or FILE.pub exists.',
    '',
    '  --out FILE      where to write the private key',
    `  --role ROLE     whose passphrase encrypts it: publisher ($${ENV.passphrase}, the default),`,
    `                  root ($${ENV.rootPassphrase}) or online ($${ENV.onlinePassphrase})`,
    JSON_OPTION,
  ],
};

async function runKeysGenerate(
  args: readonly string[],
  io: CliIo,
  deps: CommandDeps,
): Promise<number> {
  const { values } = parseCommand(
    KEYS_GENERATE,
    args,
    { out: { type: 'string' }, role: { type: 'string' }, json: { type: 'boolean' } },
    0,
  );
  if (values.help === true) return printUsage(io, KEYS_GENERATE);
  const out = values.out;
  if (out === undefined || out === '') throw usageError(KEYS_GENERATE, 'missing --out FILE');
  const role = values.role ?? 'publisher';
  if (!Object.hasOwn(ROLE_VARIABLES, role)) {
    throw usageError(
      KEYS_GENERATE,
      `--role: expected publisher, root or online, received ${JSON.stringify(role)}`,
    );
  }
  const variable = ROLE_VARIABLES[role as KeyRole];
  const secret = await passphrase(variable, deps.env, 'the new key file');
  const signer = await hinted(
    () => createKeyPair(out, secret),
    (code) =>
      code === 'KEY_FILE_INVALID'
        ? 'choose another --out, or move the existing file away first'
        : undefined,
  );
  if (values.json === true) {
    printJson(io, { keyid: signer.keyid, role, privateKey: out, publicKey: `${out}.pub` });
    return 0;
  }
  for (const line of columns([
    ['keyid', signer.keyid],
    ['private key', `${out} (encrypted under $${variable}; keep it to yourself)`],
    ['public key', `${out}.pub (give this to the operators)`],
  ])) {
    io.stdout(line);
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// cairn keys list

const KEYS_LIST: Usage = {
  command: 'cairn keys list',
  synopsis: 'cairn keys list [--config FILE] [--json]',
  details: [
    "Shows the newest root's keys (publishers with their names) and thresholds for each role,",
    'the transparency log it declares, the pending root if a key change waits to be published,',
    "and whether the configuration's online and log key files hold the keys root lists.",
    '',
    CONFIG_OPTION,
    JSON_OPTION,
  ],
};

type RoleName = 'root' | 'targets' | 'snapshot' | 'timestamp';
const ROLE_NAMES: readonly RoleName[] = ['root', 'targets', 'snapshot', 'timestamp'];

function rolesJson(root: Root) {
  return Object.fromEntries(
    ROLE_NAMES.map((name) => [
      name,
      { keyids: root.roles[name].keyids, threshold: root.roles[name].threshold },
    ]),
  ) as Record<RoleName, { keyids: readonly string[]; threshold: number }>;
}

/** Publishers' names (`x-cairn-name`) by keyid. */
function publisherNames(root: Root): Record<string, string> {
  const names: Record<string, string> = {};
  for (const keyid of root.roles.targets.keyids) {
    const key = root.keys.get(keyid);
    const name = key === undefined ? undefined : publisherName(key);
    if (name !== undefined) names[keyid] = name;
  }
  return names;
}

function rolesLines(root: Root, configured: Readonly<Record<string, string>>): string[] {
  const lines: string[] = [];
  const names = publisherNames(root);
  for (const name of ROLE_NAMES) {
    const role = root.roles[name];
    lines.push(
      `${name === 'targets' ? 'targets (publishers)' : name}: threshold ${role.threshold}`,
    );
    for (const keyid of role.keyids) {
      const notes = [names[keyid], configured[keyid]].filter((n) => n !== undefined);
      lines.push(`  ${keyid}${notes.length === 0 ? '' : `  ${notes.join('  ')}`}`);
    }
  }
  const log = declaredLog(root);
  lines.push(log === undefined ? 'transparency log: none' : `transparency log: ${log.key}`);
  return lines;
}

async function configuredOnlineKeys(config: OriginConfig) {
  const read = async (file: string) => ({
    file,
    keyid: await readPublicKey(file).then(
      (k) => k.keyid,
      () => null,
    ),
  });
  return {
    snapshot: await read(config.keys.snapshot),
    timestamp: await read(config.keys.timestamp),
  };
}

/** The log key file's verifier key under the name `root`'s log has; null when unreadable. */
async function configuredLogKey(config: OriginConfig, root: Root) {
  const log = declaredLog(root);
  const read = await readPublicKey(config.keys.log).then(
    (k) => k,
    () => undefined,
  );
  let key: string | null = null;
  if (read !== undefined && log !== undefined) {
    // The verifier key needs the key's public half only; a signer-shaped object gives it.
    key = (await logConfigFor({ keyid: read.keyid, publicKey: read.key }, log.origin)).key;
  }
  return { file: config.keys.log, keyid: read?.keyid ?? null, key };
}

async function runKeysList(args: readonly string[], io: CliIo, deps: CommandDeps): Promise<number> {
  const { values } = parseCommand(
    KEYS_LIST,
    args,
    { config: { type: 'string' }, json: { type: 'boolean' } },
    0,
  );
  if (values.help === true) return printUsage(io, KEYS_LIST);
  const config = await originConfig(values.config, deps.env);
  const store = openStore(config.storage);
  const newest = await hinted(() => new RootChain(store).newest(), repositoryHint);
  const pending = await readPendingRoot(store);
  const online = await configuredOnlineKeys(config);
  const effective = pending?.root.signed ?? newest.signed;
  const log = declaredLog(effective);
  const logKeyFile = await configuredLogKey(config, effective);
  if (values.json === true) {
    printJson(io, {
      root: {
        version: newest.signed.version,
        expires: newest.signed.expires.toISOString(),
        roles: rolesJson(newest.signed),
        publisherNames: publisherNames(newest.signed),
        log: declaredLog(newest.signed)?.key ?? null,
      },
      pending:
        pending === undefined
          ? null
          : {
              version: pending.root.signed.version,
              expires: pending.root.signed.expires.toISOString(),
              reason: pending.reason,
              roles: rolesJson(pending.root.signed),
              publisherNames: publisherNames(pending.root.signed),
              log: declaredLog(pending.root.signed)?.key ?? null,
            },
      onlineKeyFiles: online,
      logKeyFile,
    });
    return 0;
  }
  const configured: Record<string, string> = {};
  for (const role of ['snapshot', 'timestamp'] as const) {
    const { keyid, file } = online[role];
    if (keyid !== null)
      configured[keyid] =
        `${configured[keyid] === undefined ? '' : `${configured[keyid]}, `}keys.${role}: ${file}`;
  }
  io.stdout(
    `root version ${newest.signed.version}, expires ${newest.signed.expires.toISOString()}`,
  );
  for (const line of rolesLines(newest.signed, configured)) io.stdout(line);
  if (pending !== undefined) {
    io.stdout(
      `pending root version ${pending.root.signed.version} (${pending.reason}), expires ${pending.root.signed.expires.toISOString()}`,
    );
    for (const line of rolesLines(pending.root.signed, configured)) io.stdout(`  ${line}`);
  }
  for (const role of ['snapshot', 'timestamp'] as const) {
    const { keyid, file } = online[role];
    if (keyid === null) io.stdout(`⚠ keys.${role} (${file}) is not a readable key file`);
    else if (!effective.roles[role].keyids.includes(keyid)) {
      io.stdout(
        `⚠ keys.${role} (${file}) holds key ${keyid}, which root does not list for ${role}`,
      );
    }
  }
  if (log !== undefined && logKeyFile.key !== log.key) {
    io.stdout(
      logKeyFile.keyid === null
        ? `⚠ keys.log (${logKeyFile.file}) is not a readable key file: the origin cannot append to the log`
        : `⚠ keys.log (${logKeyFile.file}) holds key ${logKeyFile.keyid}, which is not the log key root declares`,
    );
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// cairn keys add-publisher | revoke-publisher | rotate-online | rotate-root | set-thresholds

const CHANGE_OPTIONS = {
  config: { type: 'string' },
  'root-key': { type: 'string', multiple: true },
  'publish-now': { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

const CHANGE_DETAILS = [
  '',
  CONFIG_OPTION,
  '  --root-key FILE   a current root key to sign with (repeat the flag: a threshold of the',
  "                    current root's keys and of the new root's must sign)",
  `  --publish-now     publish the new root at once when the current release allows it (opens the`,
  `                    online keys with $${ENV.onlinePassphrase}); otherwise the origin publishes it`,
  '                    on its next scheduled run, or with the next release when it must wait',
  JSON_OPTION,
  '',
  `Root key files are opened with $${ENV.rootPassphrase}.`,
];

const ADD_PUBLISHER: Usage = {
  command: 'cairn keys add-publisher',
  synopsis:
    'cairn keys add-publisher [NAME=]PUBFILE --root-key FILE ... [--config FILE] [--publish-now] [--json]',
  details: [
    'Adds the public key in PUBFILE to the publishers, named NAME in the root (1 to 64 of',
    'A-Z a-z 0-9 . _ -, unique; default: the file name without .pub and .key). The new publisher',
    'can push and sign at once: the origin counts the pending root for approvals.',
    ...CHANGE_DETAILS,
  ],
};

const REVOKE_PUBLISHER: Usage = {
  command: 'cairn keys revoke-publisher',
  synopsis:
    'cairn keys revoke-publisher KEYID|KEYFILE --root-key FILE ... [--config FILE] [--publish-now] [--json]',
  details: [
    'Removes a publisher (by keyid, or the key file holding it). Its requests are refused at',
    'once; when the current release needs its signature, the new root waits for the next release.',
    ...CHANGE_DETAILS,
  ],
};

const ROTATE_ONLINE: Usage = {
  command: 'cairn keys rotate-online',
  synopsis:
    'cairn keys rotate-online snapshot|timestamp NEWKEYFILE --root-key FILE ... [--config FILE] [--publish-now] [--json]',
  details: [
    'Makes the key in NEWKEYFILE (made with cairn keys generate --role online) the snapshot or',
    'timestamp key. With --publish-now and a private NEWKEYFILE, the new root is published',
    'signed by both the old and the new key; then point keys.snapshot or keys.timestamp in the',
    'configuration at NEWKEYFILE and restart the origin.',
    ...CHANGE_DETAILS,
  ],
};

const ROTATE_ROOT: Usage = {
  command: 'cairn keys rotate-root',
  synopsis:
    'cairn keys rotate-root --new-root-key FILE ... [--threshold N] --root-key FILE ... [--config FILE] [--publish-now] [--json]',
  details: [
    'Replaces the root keys with the --new-root-key files (repeat the flag). A new key given as',
    `a private key file also signs (opened with $${ENV.rootPassphrase}), as the new root needs a`,
    'threshold of its own keys too.',
    '',
    '  --new-root-key FILE  a key of the new root (private key file or .pub)',
    '  --threshold N        the new root threshold (default: policy.thresholds.root)',
    ...CHANGE_DETAILS,
  ],
};

const SET_THRESHOLDS: Usage = {
  command: 'cairn keys set-thresholds',
  synopsis:
    'cairn keys set-thresholds [--root N] [--targets N] --root-key FILE ... [--config FILE] [--publish-now] [--json]',
  details: [
    'Changes how many root keys must sign a new root (--root) and how many publishers must',
    'sign a release (--targets).',
    '',
    '  --root N      the root threshold',
    '  --targets N   the publishers threshold',
    ...CHANGE_DETAILS,
  ],
};

interface ChangeValues {
  readonly config?: string | undefined;
  readonly 'root-key'?: string[] | undefined;
  readonly 'publish-now'?: boolean | undefined;
  readonly json?: boolean | undefined;
}

interface PlannedChange {
  readonly change: RootChange;
  /** Private key files among the new keys, to sign with (root) or publish with (online). */
  readonly newPrivateKeys?: readonly string[];
}

/** Whether the current release satisfies `root`, so the origin can publish it right away. */
async function publishableNow(
  store: BlobStore,
  roots: RootChain,
  root: Metadata<Root>,
): Promise<boolean> {
  const head = await readHead(store, roots);
  if (head.published === undefined) return true;
  try {
    await verifyDelegate(root.signed, 'targets', head.published.targets);
    return true;
  } catch (error) {
    if (isVerifyError(error)) return false;
    throw error;
  }
}

async function proposeChange(
  usage: Usage,
  values: ChangeValues,
  io: CliIo,
  deps: CommandDeps,
  plan: (config: OriginConfig) => Promise<PlannedChange>,
): Promise<number> {
  const rootKeyFiles = values['root-key'] ?? [];
  if (rootKeyFiles.length === 0) throw usageError(usage, 'missing --root-key FILE');
  const config = await originConfig(values.config, deps.env);
  const { change, newPrivateKeys = [] } = await plan(config);
  const publishNow = values['publish-now'] === true;
  const rootSigners = await openRootKeys(rootKeyFiles, deps.env);
  if (change.kind === 'rotate-root') {
    for (const signer of await openRootKeys(newPrivateKeys, deps.env)) {
      if (!rootSigners.some((s) => s.keyid === signer.keyid)) rootSigners.push(signer);
    }
  }
  let online: { snapshot: Ed25519Signer[]; timestamp: Ed25519Signer[] } | undefined;
  let logKey: Ed25519Signer | undefined;
  if (publishNow) {
    // Opened before the change is made, so a missing passphrase changes nothing.
    const secret = await passphrase(ENV.onlinePassphrase, deps.env, 'the online key files');
    online = {
      snapshot: [await openKey(config.keys.snapshot, secret, ENV.onlinePassphrase)],
      timestamp: [await openKey(config.keys.timestamp, secret, ENV.onlinePassphrase)],
    };
    if (change.kind === 'rotate-online') {
      for (const file of newPrivateKeys)
        online[change.role].push(await openKey(file, secret, ENV.onlinePassphrase));
    }
    // The new root is logged before it is published, when the root declares a log.
    if (await exists(config.keys.log)) {
      logKey = await openKey(config.keys.log, secret, ENV.onlinePassphrase);
    }
  }
  const store = openStore(config.storage);
  const roots = new RootChain(store);
  const root = await hinted(
    () =>
      proposeRootChange(
        { store, roots, now: deps.now(), rootExpiry: config.policy.expiry.root },
        change,
        rootSigners,
      ),
    (code) =>
      code === 'CONFIG_INVALID'
        ? "check the change, and that the --root-key files reach the thresholds of both the current root's keys and the new root's"
        : (publisherNameHint(code) ?? repositoryHint(code)),
  );
  const version = root.signed.version;
  const reason = (await readPendingRoot(store))?.reason ?? '';
  const publishable = await publishableNow(store, roots, root);
  await audit(io, store, {
    action: 'key-change',
    outcome: 'ok',
    actor: 'operator',
    details: { pendingRoot: version, reason },
  });
  let published = false;
  if (online !== undefined && publishable) {
    const service = new OriginService({
      store,
      online,
      policy: config.policy,
      authWindowMs: config.auth.windowSeconds * 1000,
      logger: createLogger({ write: () => undefined }),
      now: deps.now,
      logKey,
    });
    published = (await hinted(() => publishPendingRoot(service.ctx), commonHint)) === version;
    if (published) {
      await audit(io, store, {
        action: 'key-change',
        outcome: 'ok',
        actor: 'operator',
        details: { publishedRoot: version },
      });
    }
  }
  if (values.json === true) {
    printJson(io, {
      rootVersion: version,
      reason,
      expires: root.signed.expires.toISOString(),
      publishable,
      published,
    });
    return 0;
  }
  if (published) {
    io.stdout(`✔ published root version ${version}: ${reason}`);
    if (change.kind === 'rotate-online') {
      io.stdout(
        `next: point keys.${change.role} in the configuration at the new key file and restart the origin`,
      );
    }
    return 0;
  }
  io.stdout(`✔ root version ${version} is signed and pending: ${reason}`);
  io.stdout(
    publishable
      ? `the origin publishes it on its next scheduled run (every ${config.schedule.intervalSeconds}s)${publishNow ? '' : '; --publish-now publishes it at once'}`
      : 'it waits for the next release: the current one lacks the signatures the new root requires; the next release the publishers sign publishes it',
  );
  return 0;
}

async function publicKeyOf(file: string): Promise<PublicKeyRef> {
  const { keyid, key } = await readPublicKey(file);
  return { keyid, key };
}

async function runAddPublisher(
  args: readonly string[],
  io: CliIo,
  deps: CommandDeps,
): Promise<number> {
  const { values, positionals } = parseCommand(ADD_PUBLISHER, args, CHANGE_OPTIONS, 1);
  if (values.help === true) return printUsage(io, ADD_PUBLISHER);
  const arg = requirePositional(ADD_PUBLISHER, positionals, 0, '[NAME=]PUBFILE');
  const { name, file } = await hinted(
    () => Promise.resolve(parsePublisherArgument(arg)),
    publisherNameHint,
  );
  return proposeChange(ADD_PUBLISHER, values, io, deps, async () => ({
    change: { kind: 'add-publisher', publisher: { ...(await publicKeyOf(file)), name } },
  }));
}

async function runRevokePublisher(
  args: readonly string[],
  io: CliIo,
  deps: CommandDeps,
): Promise<number> {
  const { values, positionals } = parseCommand(REVOKE_PUBLISHER, args, CHANGE_OPTIONS, 1);
  if (values.help === true) return printUsage(io, REVOKE_PUBLISHER);
  const which = requirePositional(REVOKE_PUBLISHER, positionals, 0, 'KEYID or KEYFILE');
  return proposeChange(REVOKE_PUBLISHER, values, io, deps, async () => ({
    change: {
      kind: 'revoke-publisher',
      keyid: /^[0-9a-f]{64}$/.test(which) ? which : (await readPublicKey(which)).keyid,
    },
  }));
}

async function runRotateOnline(
  args: readonly string[],
  io: CliIo,
  deps: CommandDeps,
): Promise<number> {
  const { values, positionals } = parseCommand(ROTATE_ONLINE, args, CHANGE_OPTIONS, 2);
  if (values.help === true) return printUsage(io, ROTATE_ONLINE);
  const role = requirePositional(ROTATE_ONLINE, positionals, 0, 'the role (snapshot or timestamp)');
  if (role !== 'snapshot' && role !== 'timestamp') {
    throw usageError(
      ROTATE_ONLINE,
      `expected the role snapshot or timestamp, received ${JSON.stringify(role)}`,
    );
  }
  const file = requirePositional(ROTATE_ONLINE, positionals, 1, 'NEWKEYFILE');
  return proposeChange(ROTATE_ONLINE, values, io, deps, async () => ({
    change: { kind: 'rotate-online', role, key: await publicKeyOf(file) },
    newPrivateKeys: (await isPrivateKeyFile(file)) ? [file] : [],
  }));
}

async function runRotateRoot(
  args: readonly string[],
  io: CliIo,
  deps: CommandDeps,
): Promise<number> {
  const { values } = parseCommand(
    ROTATE_ROOT,
    args,
    {
      ...CHANGE_OPTIONS,
      'new-root-key': { type: 'string', multiple: true },
      threshold: { type: 'string' },
    },
    0,
  );
  if (values.help === true) return printUsage(io, ROTATE_ROOT);
  const files = values['new-root-key'] ?? [];
  if (files.length === 0) throw usageError(ROTATE_ROOT, 'missing --new-root-key FILE');
  const threshold = integerFlag(ROTATE_ROOT, values.threshold, '--threshold', 1);
  return proposeChange(ROTATE_ROOT, values, io, deps, async (config) => {
    const keys: PublicKeyRef[] = [];
    const newPrivateKeys: string[] = [];
    for (const file of files) {
      const key = await publicKeyOf(file);
      if (keys.some((k) => k.keyid === key.keyid)) {
        throw new OriginError('CONFIG_INVALID', `${file}: the same new root key is given twice`);
      }
      keys.push(key);
      if (await isPrivateKeyFile(file)) newPrivateKeys.push(file);
    }
    return {
      change: { kind: 'rotate-root', keys, threshold: threshold ?? config.policy.thresholds.root },
      newPrivateKeys,
    };
  });
}

async function runSetThresholds(
  args: readonly string[],
  io: CliIo,
  deps: CommandDeps,
): Promise<number> {
  const { values } = parseCommand(
    SET_THRESHOLDS,
    args,
    { ...CHANGE_OPTIONS, root: { type: 'string' }, targets: { type: 'string' } },
    0,
  );
  if (values.help === true) return printUsage(io, SET_THRESHOLDS);
  const root = integerFlag(SET_THRESHOLDS, values.root, '--root', 1);
  const targets = integerFlag(SET_THRESHOLDS, values.targets, '--targets', 1);
  if (root === undefined && targets === undefined) {
    throw usageError(SET_THRESHOLDS, 'give --root N, --targets N or both');
  }
  return proposeChange(SET_THRESHOLDS, values, io, deps, () =>
    Promise.resolve({ change: { kind: 'thresholds', root, targets } }),
  );
}

// ---------------------------------------------------------------------------------------------
// cairn keys

const KEYS_SUBCOMMANDS: Readonly<
  Record<
    string,
    {
      usage: Usage;
      run: (args: readonly string[], io: CliIo, deps: CommandDeps) => Promise<number>;
    }
  >
> = {
  generate: { usage: KEYS_GENERATE, run: runKeysGenerate },
  list: { usage: KEYS_LIST, run: runKeysList },
  'add-publisher': { usage: ADD_PUBLISHER, run: runAddPublisher },
  'revoke-publisher': { usage: REVOKE_PUBLISHER, run: runRevokePublisher },
  'rotate-online': { usage: ROTATE_ONLINE, run: runRotateOnline },
  'rotate-root': { usage: ROTATE_ROOT, run: runRotateRoot },
  'set-thresholds': { usage: SET_THRESHOLDS, run: runSetThresholds },
};

const KEYS: Usage = {
  command: 'cairn keys',
  synopsis: `cairn keys ${Object.keys(KEYS_SUBCOMMANDS).join('|')} ...`,
  details: [
    'Key files and key changes. `cairn keys SUBCOMMAND --help` describes each.',
    '',
    ...Object.values(KEYS_SUBCOMMANDS).map(({ usage }) => `  ${usage.synopsis}`),
  ],
};

export async function runKeys(
  args: readonly string[],
  io: CliIo,
  deps: CommandDeps = processDeps(),
): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === '--help' || sub === '-h') return printUsage(io, KEYS);
  const subcommand =
    sub !== undefined && Object.hasOwn(KEYS_SUBCOMMANDS, sub) ? KEYS_SUBCOMMANDS[sub] : undefined;
  if (subcommand === undefined) {
    throw usageError(
      KEYS,
      sub === undefined ? 'missing a subcommand' : `unknown subcommand ${JSON.stringify(sub)}`,
    );
  }
  return subcommand.run(rest, io, deps);
}
