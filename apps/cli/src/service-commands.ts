/**
 * `cairn serve` runs the origin; `cairn gc` removes what no retained release needs.
 */
import { openStore } from '@cairn/origin/config';
import { createLogger } from '@cairn/origin/log';
import { OriginService } from '@cairn/origin/service';
import { startOrigin } from '@cairn/origin/start';
import type { CliIo } from './cli-io.js';
import {
  ENV,
  hinted,
  parseCommand,
  printJson,
  printUsage,
  processDeps,
  type CommandDeps,
  type Usage,
} from './command-support.js';
import {
  CONFIG_OPTION,
  JSON_OPTION,
  originConfig,
  passphrase,
  repositoryHint,
} from './operator-support.js';

// ---------------------------------------------------------------------------------------------
// cairn serve

const SERVE: Usage = {
  command: 'cairn serve',
  synopsis: 'cairn serve [--config FILE]',
  details: [
    'Runs the origin until SIGTERM or SIGINT, then stops cleanly (exit 0). Logs are JSON lines',
    'on standard error; the "listening" line gives the URL. The configuration may set',
    'listen.port 0 for any free port.',
    '',
    CONFIG_OPTION,
    '',
    `The online key files and the log key file (keys.snapshot, keys.timestamp, keys.log) are`,
    `opened with $${ENV.onlinePassphrase}. It refuses to start (CONFIG_INVALID) when the root`,
    'declares a transparency log and keys.log does not hold its key.',
  ],
};

export async function runServe(
  args: readonly string[],
  io: CliIo,
  deps: CommandDeps = processDeps(),
): Promise<number> {
  const { values } = parseCommand(SERVE, args, { config: { type: 'string' } }, 0);
  if (values.help === true) return printUsage(io, SERVE);
  const config = await originConfig(values.config, deps.env);
  // startOrigin reads it too; asking here first gives the failure its hint.
  await passphrase(ENV.onlinePassphrase, deps.env, 'the online and log key files');
  const running = await hinted(
    () => startOrigin(config, { env: deps.env }),
    (code) =>
      code === 'BAD_PASSPHRASE'
        ? `${ENV.onlinePassphrase} must be the passphrase the online and log key files were written with`
        : repositoryHint(code),
  );
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const stop = (received: NodeJS.Signals) => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve(received);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  running.service.logger.info('stopping', { signal });
  await running.close();
  running.service.logger.info('stopped');
  return 0;
}

// ---------------------------------------------------------------------------------------------
// cairn gc

const GC: Usage = {
  command: 'cairn gc',
  synopsis: 'cairn gc [--config FILE] [--json]',
  details: [
    'Removes files no retained release needs: blobs and deltas of targets versions older than',
    'policy.retention.releases, and the staging of published, superseded or abandoned releases.',
    'Nothing younger than policy.retention.graceSeconds is removed. Needs no keys.',
    '',
    CONFIG_OPTION,
    JSON_OPTION,
  ],
};

export async function runGc(
  args: readonly string[],
  io: CliIo,
  deps: CommandDeps = processDeps(),
): Promise<number> {
  const { values } = parseCommand(
    GC,
    args,
    { config: { type: 'string' }, json: { type: 'boolean' } },
    0,
  );
  if (values.help === true) return printUsage(io, GC);
  const config = await originConfig(values.config, deps.env);
  const service = new OriginService({
    store: openStore(config.storage),
    // Garbage collection signs nothing.
    online: { snapshot: [], timestamp: [] },
    policy: config.policy,
    authWindowMs: config.auth.windowSeconds * 1000,
    // The CLI reports the outcome itself; the audit log keeps the record.
    logger: createLogger({ write: () => undefined }),
    now: deps.now,
  });
  const report = await hinted(() => service.gc('operator'), repositoryHint);
  if (values.json === true) {
    printJson(io, report);
    return 0;
  }
  const versions = report.retainedVersions;
  io.stdout(
    `✔ kept targets version${versions.length === 1 ? '' : 's'} ${versions.length === 0 ? '(none yet)' : versions.join(', ')}; deleted ${report.deletedBlobs.length} blob(s) and the staging of ${report.deletedReleases.length} release(s)`,
  );
  if (report.keptYoung > 0) {
    io.stdout(
      `${report.keptYoung} unused object(s) are younger than the ${config.policy.retention.graceSeconds}s grace period: a later run removes them`,
    );
  }
  return 0;
}
