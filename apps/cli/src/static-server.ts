/**
 * A minimal read-only HTTP server for a repository directory on 127.0.0.1: GET and HEAD of
 * files, 404 for anything missing, no listing, nothing outside the directory. The embedded
 * default until the edge (apps/edge) serves repositories.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve, sep } from 'node:path';

export interface StaticServer {
  readonly url: string;
  close(): Promise<void>;
}

export async function serveDirectory(root: string, host = '127.0.0.1'): Promise<StaticServer> {
  const base = resolve(root);
  const server: Server = createServer((req, res) => {
    void (async () => {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      let path: string;
      try {
        path = resolve(
          base,
          `.${decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)}`,
        );
      } catch {
        res.writeHead(400).end();
        return;
      }
      if (!path.startsWith(base + sep)) {
        res.writeHead(404).end();
        return;
      }
      try {
        const info = await stat(path);
        if (!info.isFile()) throw new Error('not a file');
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          'content-length': info.size,
        });
        if (req.method === 'HEAD') res.end();
        else createReadStream(path).pipe(res);
      } catch {
        res.writeHead(404).end();
      }
    })();
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, host, ok);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}/`,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
