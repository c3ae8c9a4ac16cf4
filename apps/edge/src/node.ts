/**
 * The edge on Node: the same Hono app as the Worker, served by @hono/node-server, for
 * self-hosted and LAN mirrors and for the embedded default (`cairn mirror serve`).
 */
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { BlobStore } from '@cairn/storage/blob-store';
import { nodeHashPort } from '@cairn/client/node-hash';
import { createEdgeApp, type EdgeLog } from './app.js';
import type { EdgeConfig } from './config.js';
import { EdgeMetrics } from './metrics.js';
import { createSource } from './mode.js';

export interface EdgeServerOptions {
  readonly config: EdgeConfig;
  readonly store: BlobStore;
  /** Default 127.0.0.1. */
  readonly host?: string | undefined;
  /** Default 0: any free port. */
  readonly port?: number | undefined;
  readonly log?: EdgeLog | undefined;
  readonly now?: (() => Date) | undefined;
  /** How upstream is reached (pull-through); default the global fetch. */
  readonly fetch?: typeof fetch | undefined;
}

export interface RunningEdge {
  /** `http://host:port`, without a trailing slash. */
  readonly url: string;
  readonly metrics: EdgeMetrics;
  close(): Promise<void>;
}

export async function startEdge(options: EdgeServerOptions): Promise<RunningEdge> {
  const metrics = new EdgeMetrics();
  const source = createSource({
    config: options.config,
    store: options.store,
    hash: nodeHashPort,
    fetch: options.fetch,
    now: options.now,
    log: options.log,
    metrics,
  });
  const app = createEdgeApp({
    config: options.config,
    source,
    metrics,
    now: options.now,
    log: options.log,
    clientAddress: (c) => getConnInfo(c).remote.address,
  });
  const host = options.host ?? '127.0.0.1';
  const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: host, port: options.port ?? 0 }, () => {
      resolve(s);
    });
    s.once('error', reject);
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost}:${address.port}`,
    metrics,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => {
          if (error === undefined) resolve();
          else reject(error);
        });
        // Keep-alive connections would hold close() open until they time out.
        if ('closeAllConnections' in server) server.closeAllConnections();
      }),
  };
}
