/** node:http servers on 127.0.0.1 for tests that stand fake mirrors up, and close them after. */
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TestServer {
  readonly server: Server;
  /** `http://127.0.0.1:{port}/`. */
  readonly url: string;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** The servers a test file started: call closeAll() in afterEach. */
export class TestServers {
  readonly #servers: Server[] = [];

  /** Starts a server on a free port. */
  async start(listener: RequestListener): Promise<TestServer> {
    const server = createServer(listener);
    this.#servers.push(server);
    return { server, url: await listen(server) };
  }

  /** Closes one server early (its connections too). */
  async stop(server: Server): Promise<void> {
    await close(server);
    this.#servers.splice(this.#servers.indexOf(server), 1);
  }

  async closeAll(): Promise<void> {
    for (const server of this.#servers.splice(0)) await close(server);
  }
}

/** A base URL where nothing listens: connections are refused. */
export async function deadServerUrl(): Promise<string> {
  const server = createServer();
  const url = await listen(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return url;
}
