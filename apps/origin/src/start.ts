/**
 * Starting the origin from its configuration: the one function `cairn serve` and the
 * `cairn-origin` binary both call.
 *
 * Online key files are encrypted; their passphrase comes from CAIRN_ONLINE_PASSPHRASE. The
 * log key file (keys.log) has the same passphrase; it is read when it exists, and the origin
 * refuses to start when the root declares a log and the file is missing or holds another key.
 * CAIRN_TEST_CRASH_AT=<step>[:<snapshot version>] kills the process with SIGKILL right after
 * that publication step — a fault-injection hook for the crash-safety tests, inert unless set.
 */
import { access } from 'node:fs/promises';
import { loadConfig, openStore, describeConfig, type OriginConfig } from './config.js';
import { PUBLICATION_STEPS, type PublicationStep } from './context.js';
import { OriginError } from './errors.js';
import { passphraseFromEnv, readKeyFile } from './key-file.js';
import { createLogger, type Logger } from './log.js';
import { serveOrigin, type RunningOrigin } from './server.js';
import { OriginService } from './service.js';

export const ONLINE_PASSPHRASE_VARIABLE = 'CAIRN_ONLINE_PASSPHRASE';
export const CRASH_HOOK_VARIABLE = 'CAIRN_TEST_CRASH_AT';

type Environment = Readonly<Record<string, string | undefined>>;

function crashHook(
  env: Environment,
): ((step: PublicationStep, snapshotVersion: number) => void) | undefined {
  const spec = env[CRASH_HOOK_VARIABLE];
  if (spec === undefined || spec === '') return undefined;
  const [step, version] = spec.split(':');
  if (!PUBLICATION_STEPS.includes(step as PublicationStep)) {
    throw new OriginError(
      'CONFIG_INVALID',
      `${CRASH_HOOK_VARIABLE}: ${JSON.stringify(step)} is not one of ${PUBLICATION_STEPS.join(', ')}`,
    );
  }
  return (at, snapshotVersion) => {
    if (at === step && (version === undefined || Number(version) === snapshotVersion)) {
      process.kill(process.pid, 'SIGKILL');
    }
  };
}

/** False only when nothing is there: any other failure is readKeyFile's to report. */
async function fileExists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException | undefined)?.code !== 'ENOENT';
  }
}

export async function startOrigin(
  config: OriginConfig,
  options: { env?: Environment; logger?: Logger } = {},
): Promise<RunningOrigin & { service: OriginService }> {
  const env = options.env ?? process.env;
  const logger = options.logger ?? createLogger();
  const passphrase = passphraseFromEnv(ONLINE_PASSPHRASE_VARIABLE, env);
  const snapshot = await readKeyFile(config.keys.snapshot, passphrase);
  const timestamp = await readKeyFile(config.keys.timestamp, passphrase);
  const logKey = (await fileExists(config.keys.log))
    ? await readKeyFile(config.keys.log, passphrase)
    : undefined;
  const service = new OriginService({
    store: openStore(config.storage),
    online: { snapshot: [snapshot], timestamp: [timestamp] },
    policy: config.policy,
    authWindowMs: config.auth.windowSeconds * 1000,
    logger,
    logKey,
    witnesses: {
      witnesses: config.log.witnesses ?? [],
      threshold: config.log.witnessThreshold ?? 0,
    },
    onStep: crashHook(env),
  });
  logger.info('starting', { config: describeConfig(config) });
  // Fail fast on a store without a repository rather than answer every request with it, and
  // on a log key that cannot sign for the log the root declares.
  await service.status();
  await service.checkLogKey();
  const running = await serveOrigin(service, {
    host: config.listen.host,
    port: config.listen.port,
    scheduleMs: config.schedule.intervalSeconds * 1000,
  });
  return { ...running, service };
}

export async function startOriginFromFile(
  path: string | undefined,
  options: { env?: Environment; logger?: Logger } = {},
): Promise<RunningOrigin & { service: OriginService }> {
  return startOrigin(await loadConfig(path, options.env ?? process.env), options);
}
