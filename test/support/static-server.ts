// Serves a directory written by someone else's repository tooling (python-tuf, @tufjs/models)
// on 127.0.0.1, exactly as the files are on disk, so a client reads the bytes the foreign
// library signed. Tests can answer any path differently (a tampered file) and see every
// request that was made.
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve, sep } from 'node:path';

export interface StaticServer {
  /** `http://127.0.0.1:PORT/`, with the trailing slash. */
  readonly url: string;
  /** Every path requested, decoded and without the leading `/`, in order. */
  readonly requests: string[];
  /** Bodies served instead of the file at a path (decoded, no leading `/`). */
  readonly overrides: Map<string, Uint8Array>;
  close(): Promise<void>;
}

export async function serveDirectory(root: string): Promise<StaticServer> {
  const base = resolve(root);
  const requests: string[] = [];
  const overrides = new Map<string, Uint8Array>();
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname.slice(1));
    requests.push(path);
    const override = overrides.get(path);
    const file = join(base, path);
    const body =
      override !== undefined
        ? Promise.resolve(override)
        : // Never serve outside the directory, whatever the request path says.
          file.startsWith(base + sep)
          ? readFile(file)
          : Promise.reject(new Error('outside the served directory'));
    body.then(
      (bytes) => {
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          'content-length': bytes.length,
        });
        res.end(bytes);
      },
      () => {
        res.writeHead(404).end();
      },
    );
  });
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    requests,
    overrides,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((done) => server.close(() => done()));
    },
  };
}
