// One `syncMirror` run in a process of its own, so a test can kill it with SIGKILL halfway —
// no finally blocks, no flushes, exactly what a crashed machine or an OOM-killed Worker leaves.
// Runs the built code (dist/), as `cairn mirror sync` does.
//
//   node mirror-sync-child.mjs UPSTREAM_URL MIRROR_DIR ROOT_FILE [KILL_AT]
//
// Prints each progress event and then the report as JSON lines. KILL_AT: a number N kills the
// process right after the N-th object was copied; `last` kills it right before the last one
// (timestamp.json) would be written.
import { readFile } from 'node:fs/promises';
import { nodeHashPort } from '@cairn/client/node-hash';
import { FsBlobStore } from '@cairn/storage/fs-store';
import { syncMirror } from '../../dist/sync.js';

const [upstreamUrl, mirrorDir, rootFile, killAt] = process.argv.slice(2);
if (upstreamUrl === undefined || mirrorDir === undefined || rootFile === undefined) {
  process.stderr.write(
    'usage: mirror-sync-child.mjs UPSTREAM_URL MIRROR_DIR ROOT_FILE [KILL_AT]\n',
  );
  process.exit(2);
}

const report = await syncMirror({
  store: new FsBlobStore(mirrorDir),
  upstreamUrl,
  trustedRoot: new Uint8Array(await readFile(rootFile)),
  hash: nodeHashPort,
  onProgress(event) {
    process.stdout.write(`${JSON.stringify(event)}\n`);
    if (event.kind !== 'copied') return;
    const kill = killAt === 'last' ? event.done === event.total - 1 : event.done === Number(killAt);
    if (kill) process.kill(process.pid, 'SIGKILL');
  },
});
process.stdout.write(`${JSON.stringify({ kind: 'report', ...report })}\n`);
