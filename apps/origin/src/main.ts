#!/usr/bin/env node
/**
 * `cairn-origin [--config FILE]`: runs the origin until SIGTERM or SIGINT. Logs are JSON
 * lines on standard error; the first says where it listens. Exit status 1 when it cannot
 * start (the line before says why, with its code).
 */
import { isOriginError } from './errors.js';
import type { RunningOrigin } from './server.js';
import { startOriginFromFile } from './start.js';

const args = process.argv.slice(2);
let config: string | undefined;
for (let i = 0; i < args.length; i++) {
  const arg = args[i];
  if (arg === '--config' && args[i + 1] !== undefined) config = args[++i];
  else if (arg?.startsWith('--config=') === true) config = arg.slice('--config='.length);
  else {
    process.stderr.write(
      `✘ USAGE: unknown argument ${JSON.stringify(arg)}; usage: cairn-origin [--config FILE]\n`,
    );
    process.exit(2);
  }
}
// The handlers go in before start-up: "listening" is logged (and a supervisor may stop us) a
// moment before startOriginFromFile returns, and that stop must still wait for the round of
// scheduled work in progress, not kill it. A second signal during start-up kills at once.
let running: RunningOrigin | undefined;
let stopRequested = false;
const stop = () => {
  if (running === undefined) stopRequested = true;
  else void running.close().then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
try {
  running = await startOriginFromFile(config);
  if (stopRequested) stop();
} catch (error) {
  const code = isOriginError(error) ? error.code : 'INTERNAL';
  process.stderr.write(`✘ ${code}: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
