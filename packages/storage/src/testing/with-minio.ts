/**
 * Runs a command with one MinIO for all of it: `node dist/testing/with-minio.js <command...>`.
 * The command sees CAIRN_MINIO_* in its environment, so every vitest globalSetup it starts (in
 * any package) reuses this server instead of starting its own. Exits with the command's status,
 * after stopping the server.
 */
import { spawn } from 'node:child_process';
import { minioEnv, startMinio } from './minio.js';

const [command, ...args] = process.argv.slice(2);
if (command === undefined) {
  process.stderr.write('usage: with-minio <command> [args...]\n');
  process.exit(2);
}
const server = await startMinio();
process.stderr.write(`[minio] ${server.endpoint} shared through CAIRN_MINIO_* for: ${command}\n`);
const child = spawn(command, args, {
  stdio: 'inherit',
  env: { ...process.env, ...minioEnv(server.connection) },
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => child.kill(signal));
}
const status = await new Promise<number>((resolve) => {
  child.on('error', (e) => {
    process.stderr.write(`with-minio: ${e.message}\n`);
    resolve(127);
  });
  child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
});
await server.stop();
process.exit(status);
