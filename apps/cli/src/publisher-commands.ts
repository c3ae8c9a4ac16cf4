/**
 * The publisher's commands, over the origin's HTTP API: `cairn push`, `cairn release show`,
 * `cairn sign`, `cairn withdraw` (each signed with the publisher's own key) and
 * `cairn status` (unauthenticated).
 */
import { resolve } from 'node:path';
import { OriginError, type OriginErrorCode } from '@cairn/origin/errors';
import { passphraseFromEnv, readKeyFile } from '@cairn/origin/key-file';
import { PublisherClient } from '@cairn/origin/publisher-client';
import type { FileChange, ReleaseSummary } from '@cairn/origin/releases';
import type { OriginStatus, RoleStatus } from '@cairn/origin/service';
import type { CliIo } from './cli-io.js';
import {
  ENV,
  columns,
  commonHint,
  formatBytes,
  formatTimeLeft,
  hinted,
  integerFlag,
  parseCommand,
  printJson,
  printUsage,
  processDeps,
  requireFlagOrEnv,
  requirePositional,
  shortKeyid,
  usageError,
  type CommandDeps,
  type Environment,
  type Usage,
} from './command-support.js';
import { ProgressBar } from './progress.js';

const CONNECTION = [
  `  --origin URL  the origin's URL (default: $${ENV.origin})`,
  `  --key FILE    your private key file (default: $${ENV.key}); its passphrase comes from $${ENV.passphrase}`,
  '  --json        print one JSON document on standard output instead of text',
];

const ORIGIN_OPTIONS = {
  origin: { type: 'string' },
  key: { type: 'string' },
  json: { type: 'boolean' },
} as const;

async function publisherClient(
  usage: Usage,
  values: { readonly origin?: string | undefined; readonly key?: string | undefined },
  env: Environment,
): Promise<PublisherClient> {
  const origin = requireFlagOrEnv(usage, values.origin, env, '--origin URL', ENV.origin);
  const keyFile = requireFlagOrEnv(usage, values.key, env, '--key FILE', ENV.key);
  const signer = await hinted(
    () => readKeyFile(keyFile, passphraseFromEnv(ENV.passphrase, env)),
    (code) =>
      code === 'BAD_PASSPHRASE'
        ? `${ENV.passphrase} must be the passphrase ${keyFile} was written with`
        : code === 'CONFIG_INVALID'
          ? 'passphrases come only from the environment, never from flags (they would show in ps)'
          : undefined,
  );
  return new PublisherClient(origin, signer);
}

/** The summary as --json prints it: everything but the draft's text (draftSha256 names it). */
function summaryJson(summary: ReleaseSummary): Omit<ReleaseSummary, 'signed'> {
  const { signed: _signed, ...rest } = summary;
  return rest;
}

function fileRow(file: FileChange): string[] {
  const size = file.length === undefined ? '' : formatBytes(file.length);
  const notes: string[] = [];
  if (file.change === 'changed' || file.change === 'removed') {
    notes.push(`was ${formatBytes(file.previousLength ?? 0)}`);
  }
  if (file.deltas.length > 0) {
    const deltas = file.deltas.map((d) => `${formatBytes(d.length)} from v${d.baseVersion}`);
    notes.push(`delta${file.deltas.length > 1 ? 's' : ''} ${deltas.join(', ')}`);
  }
  return [`  ${file.change}`, file.path, size, notes.join('; ')];
}

function stateLine(summary: ReleaseSummary): string {
  const version =
    summary.targetsVersion === undefined ? '' : ` (targets version ${summary.targetsVersion})`;
  switch (summary.state) {
    case 'uploading':
      return 'uploading (files still to come; nothing to sign yet)';
    case 'draft':
      return `draft${version}: waiting for signatures`;
    case 'published':
      return `published${version}`;
    case 'superseded':
      return `superseded${version}: a newer release is the draft to sign`;
  }
}

/** What `release show` prints, and `push` and `withdraw` after their first line. */
function describeRelease(summary: ReleaseSummary): string[] {
  const counts = { added: 0, changed: 0, removed: 0, unchanged: 0 };
  for (const file of summary.files) counts[file.change]++;
  const signers = summary.signatures.map(shortKeyid).join(', ');
  return [
    ...columns([
      ['release', summary.id],
      ['state', stateLine(summary)],
      ...(summary.kind === 'withdraw'
        ? [['withdraws to', `targets version ${summary.fromVersion ?? '?'}`]]
        : []),
      ['pushed by', `${shortKeyid(summary.pushedBy)} at ${summary.created}`],
      ...(summary.note === undefined ? [] : [['note', summary.note]]),
      [
        'changes',
        `${counts.added} added, ${counts.changed} changed, ${counts.removed} removed, ${counts.unchanged} unchanged (against targets version ${summary.comparedTo})`,
      ],
      ['size', `${formatBytes(summary.totalBytes)}, deltas ${formatBytes(summary.deltaBytes)}`],
      [
        'signatures',
        `${summary.signatures.length} of ${summary.threshold}${signers === '' ? '' : `: ${signers}`}`,
      ],
      ...(summary.draftSha256 === undefined ? [] : [['draft', `sha256 ${summary.draftSha256}`]]),
    ]),
    'files',
    ...columns(summary.files.map(fileRow), [2]),
  ];
}

function nextStep(summary: ReleaseSummary): string | undefined {
  if (summary.state !== 'draft') return undefined;
  const needed = summary.threshold - summary.signatures.length;
  const dir =
    summary.kind === 'withdraw'
      ? ` (DIR: a copy of the files of targets version ${summary.fromVersion ?? '?'})`
      : '';
  return `next: ${needed} publisher${needed === 1 ? '' : 's'} sign${needed === 1 ? 's' : ''} it: cairn sign ${summary.id} --dir DIR${dir}`;
}

const PUSH: Usage = {
  command: 'cairn push',
  synopsis: 'cairn push DIR [--note TEXT] [--origin URL] [--key FILE] [--json]',
  details: [
    'Pushes every file under DIR as a new release and prints its id and what it changes.',
    'The release is the draft publishers sign (cairn sign); it is published at the threshold.',
    '',
    '  --note TEXT   a note kept with the release (at most 1000 characters)',
    ...CONNECTION,
    '',
    'On a terminal, a progress bar for hashing and uploading goes to standard error.',
  ],
};

export async function runPush(
  args: readonly string[],
  io: CliIo,
  deps: CommandDeps = processDeps(),
): Promise<number> {
  const { values, positionals } = parseCommand(
    PUSH,
    args,
    { ...ORIGIN_OPTIONS, note: { type: 'string' } },
    1,
  );
  if (values.help === true) return printUsage(io, PUSH);
  const dir = requirePositional(PUSH, positionals, 0, 'DIR');
  const client = await publisherClient(PUSH, values, deps.env);
  const progress = new ProgressBar(deps.terminal);
  const summary = await hinted(
    () =>
      client.push(
        dir,
        values.note === undefined
          ? { progress: progress.update }
          : { note: values.note, progress: progress.update },
      ),
    commonHint,
  ).finally(() => progress.finish());
  if (values.json === true) {
    printJson(io, summaryJson(summary));
    return 0;
  }
  io.stdout(`✔ pushed release ${summary.id}`);
  for (const line of describeRelease(summary)) io.stdout(line);
  const next = nextStep(summary);
  if (next !== undefined) io.stdout(next);
  return 0;
}

const RELEASE_SHOW: Usage = {
  command: 'cairn release show',
  synopsis: 'cairn release show ID [--origin URL] [--key FILE] [--json]',
  details: [
    'Shows a release: its state, the files it adds, changes and removes with their sizes and',
    'delta sizes, and the signatures it has of the threshold it needs.',
    '',
    ...CONNECTION,
  ],
};

const RELEASE: Usage = {
  command: 'cairn release',
  synopsis: 'cairn release show ID [--origin URL] [--key FILE] [--json]',
  details: RELEASE_SHOW.details,
};

export async function runRelease(
  args: readonly string[],
  io: CliIo,
  deps: CommandDeps = processDeps(),
): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === '--help' || sub === '-h') return printUsage(io, RELEASE);
  if (sub !== 'show') {
    throw usageError(
      RELEASE,
      sub === undefined
        ? 'missing a subcommand (show)'
        : `unknown subcommand ${JSON.stringify(sub)}`,
    );
  }
  const { values, positionals } = parseCommand(RELEASE_SHOW, rest, ORIGIN_OPTIONS, 1);
  if (values.help === true) return printUsage(io, RELEASE_SHOW);
  const id = requirePositional(RELEASE_SHOW, positionals, 0, 'ID');
  const client = await publisherClient(RELEASE_SHOW, values, deps.env);
  const summary = await hinted(() => client.show(id), commonHint);
  if (values.json === true) {
    printJson(io, summaryJson(summary));
    return 0;
  }
  for (const line of describeRelease(summary)) io.stdout(line);
  return 0;
}

const SIGN: Usage = {
  command: 'cairn sign',
  synopsis: 'cairn sign ID [--dir DIR] [--origin URL] [--key FILE] [--json]',
  details: [
    'Signs release ID, after checking that its draft lists exactly the files under DIR',
    '(by name, length and sha256). At the threshold of signatures the origin publishes it.',
    '',
    '  --dir DIR     your copy of the release (default: the current directory)',
    ...CONNECTION,
  ],
};

export async function runSign(
  args: readonly string[],
  io: CliIo,
  deps: CommandDeps = processDeps(),
): Promise<number> {
  const { values, positionals } = parseCommand(
    SIGN,
    args,
    { ...ORIGIN_OPTIONS, dir: { type: 'string' } },
    1,
  );
  if (values.help === true) return printUsage(io, SIGN);
  const id = requirePositional(SIGN, positionals, 0, 'ID');
  const dir = resolve(values.dir ?? '.');
  const client = await publisherClient(SIGN, values, deps.env);
  const progress = new ProgressBar(deps.terminal);
  const result = await hinted(
    () => client.sign(id, dir, progress.update),
    (code) =>
      code === 'HASH_MISMATCH'
        ? `--dir must hold exactly the release's files (now ${dir}); \`cairn release show ${id}\` lists them`
        : commonHint(code),
  ).finally(() => progress.finish());
  if (values.json === true) {
    printJson(io, { id, keyid: client.keyid, ...result });
    return 0;
  }
  const count = `${result.signatures} of ${result.threshold} signatures`;
  if (result.published !== undefined) {
    const where = `targets version ${result.published.targetsVersion} (snapshot version ${result.published.snapshotVersion})`;
    io.stdout(
      result.counted
        ? `✔ signed release ${id}: ${count}; published as ${where}`
        : `✔ release ${id} is already published as ${where}`,
    );
    return 0;
  }
  const more = result.threshold - result.signatures;
  io.stdout(
    `✔ ${result.counted ? 'signed' : 'already signed'} release ${id}: ${count}; ${more} more needed`,
  );
  return 0;
}

const WITHDRAW: Usage = {
  command: 'cairn withdraw',
  synopsis: 'cairn withdraw --to VERSION [--note TEXT] [--origin URL] [--key FILE] [--json]',
  details: [
    'Drafts a release whose files are those of targets version VERSION, to take back a bad',
    'release. Publishers sign it like any other (cairn sign ID --dir DIR, DIR holding',
    "that version's files); the versions only move forward, so clients accept it.",
    '',
    '  --to VERSION  the targets version whose files to publish again',
    '  --note TEXT   a note kept with the release',
    ...CONNECTION,
  ],
};

export async function runWithdraw(
  args: readonly string[],
  io: CliIo,
  deps: CommandDeps = processDeps(),
): Promise<number> {
  const { values } = parseCommand(
    WITHDRAW,
    args,
    { ...ORIGIN_OPTIONS, to: { type: 'string' }, note: { type: 'string' } },
    0,
  );
  if (values.help === true) return printUsage(io, WITHDRAW);
  const version = integerFlag(WITHDRAW, values.to, '--to', 1);
  if (version === undefined) throw usageError(WITHDRAW, 'missing --to VERSION');
  const client = await publisherClient(WITHDRAW, values, deps.env);
  const summary = await hinted(() => client.withdraw(version, values.note), commonHint);
  if (values.json === true) {
    printJson(io, summaryJson(summary));
    return 0;
  }
  io.stdout(`✔ drafted release ${summary.id}, withdrawing to targets version ${version}`);
  for (const line of describeRelease(summary)) io.stdout(line);
  const next = nextStep(summary);
  if (next !== undefined) io.stdout(next);
  return 0;
}

const STATUS: Usage = {
  command: 'cairn status',
  synopsis: 'cairn status [--origin URL] [--json]',
  details: [
    "Shows the repository's published versions and when they expire, a warning when targets",
    'metadata needs a new release soon, the draft waiting for signatures and any pending root.',
    'Needs no key.',
    '',
    `  --origin URL  the origin's URL (default: $${ENV.origin})`,
    '  --json        print one JSON document on standard output instead of text',
  ],
};

/** GET /v1/status: unauthenticated, so no key (and no PublisherClient) is needed. */
async function fetchStatus(origin: string): Promise<OriginStatus> {
  let url: URL;
  try {
    url = new URL('/v1/status', origin);
  } catch (error) {
    throw new OriginError('CONFIG_INVALID', `origin: ${JSON.stringify(origin)} is not a URL`, {
      cause: error,
    });
  }
  let response: Response;
  try {
    response = await fetch(url);
  } catch (error) {
    const cause = (error as { cause?: unknown }).cause ?? error;
    throw new OriginError(
      'UNREACHABLE',
      `cannot reach the origin at ${url.origin}: ${String(cause)}`,
      { cause: error },
    );
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text) as unknown;
  } catch {
    body = undefined;
  }
  if (!response.ok) {
    const { error, message } = (body ?? {}) as { error?: unknown; message?: unknown };
    throw new OriginError(
      (typeof error === 'string' ? error : 'INTERNAL') as OriginErrorCode,
      typeof message === 'string' ? message : `the origin answered ${response.status}`,
    );
  }
  if (typeof body !== 'object' || body === null || !('root' in body)) {
    throw new OriginError('INTERNAL', `${url.href} did not answer with the origin's status`);
  }
  return body as OriginStatus;
}

function roleRow(name: string, role: RoleStatus | undefined): string[] {
  if (role === undefined) return [name, 'none yet (no release published)'];
  return [
    name,
    `version ${role.version}, expires ${role.expires} (${formatTimeLeft(role.expiresInSeconds)})`,
  ];
}

export async function runStatus(
  args: readonly string[],
  io: CliIo,
  deps: CommandDeps = processDeps(),
): Promise<number> {
  const { values } = parseCommand(
    STATUS,
    args,
    { origin: { type: 'string' }, json: { type: 'boolean' } },
    0,
  );
  if (values.help === true) return printUsage(io, STATUS);
  const origin = requireFlagOrEnv(STATUS, values.origin, deps.env, '--origin URL', ENV.origin);
  const status = await hinted(() => fetchStatus(origin), commonHint);
  if (values.json === true) {
    printJson(io, status);
    return 0;
  }
  const rows = [
    ['origin', origin],
    ...(['root', 'targets', 'snapshot', 'timestamp'] as const).map((role) =>
      roleRow(role, status[role]),
    ),
    ['publishers', `${status.publishers.keyids.length}, threshold ${status.publishers.threshold}`],
    [
      'draft',
      status.draft === undefined
        ? 'none'
        : `${status.draft.id}, ${status.draft.signatures} of ${status.draft.threshold} signatures`,
    ],
    ...(status.pendingRoot === undefined
      ? []
      : [['pending', `root version ${status.pendingRoot.version}: ${status.pendingRoot.reason}`]]),
    ...(status.pendingPublications === 0
      ? []
      : [
          [
            'unfinished',
            `${status.pendingPublications} publication(s); the origin finishes them on its next run`,
          ],
        ]),
  ];
  for (const line of columns(rows)) io.stdout(line);
  if (status.targetsExpiringSoon && status.targets !== undefined) {
    io.stdout(
      `⚠ targets metadata expires ${formatTimeLeft(status.targets.expiresInSeconds)}: publishers must push and sign a release before then`,
    );
  }
  return 0;
}
