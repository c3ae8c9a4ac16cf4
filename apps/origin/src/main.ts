#!/usr/bin/env node
/**
 * `cairn-origin [--config FILE]`: runs the origin until SIGTERM or SIGINT. Logs are JSON
 * lines on standard error; the first says where it listens. Exit status 1 when it cannot
 * start (the line before says why, with its code).
 */
import { isOriginError } from './errors.js';
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
try {
  const running = await startOriginFromFile(config);
  const stop = () => {
    void running.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
} catch (error) {
  const code = isOriginError(error) ? error.code : 'INTERNAL';
  process.stderr.write(`✘ ${code}: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
