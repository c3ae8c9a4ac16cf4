/**
 * Serving the origin on Node: the Hono app on @hono/node-server, plus the schedule that keeps
 * timestamp and snapshot fresh and finishes whatever a crash left half-done.
 */
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { createOriginApp } from './app.js';
import type { OriginService } from './service.js';

export interface RunningOrigin {
  /** e.g. http://127.0.0.1:8700 */
  readonly url: string;
  close(): Promise<void>;
}

export async function serveOrigin(
  service: OriginService,
  options: {
    readonly host: string;
    readonly port: number;
    readonly scheduleMs?: number | undefined;
  },
): Promise<RunningOrigin> {
  const app = createOriginApp(service);
  const server = await new Promise<ServerType>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: options.host, port: options.port }, () =>
      resolve(s),
    );
    s.once('error', reject);
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  service.logger.info('listening', { url });

  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let closing = false;
  // One round at a time: a round that outlasts the interval delays the next one; rounds never
  // pile up to run side by side, and none starts after close() has waited for the last.
  const tick = () => {
    if (running !== undefined || closing) return;
    running = service
      .tick()
      .then((report) => {
        if (report.errors.length > 0)
          service.logger.warn('scheduled work failed', { errors: report.errors });
      })
      .finally(() => {
        running = undefined;
      });
  };
  if (options.scheduleMs !== undefined && options.scheduleMs > 0) {
    // At once on start: a restarted origin finishes a half-done publication straight away.
    tick();
    timer = setInterval(tick, options.scheduleMs);
    timer.unref();
  }
  return {
    url,
    close: async () => {
      closing = true;
      if (timer !== undefined) clearInterval(timer);
      await running?.catch(() => undefined);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
    },
  };
}
