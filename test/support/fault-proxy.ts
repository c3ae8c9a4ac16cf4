// An HTTP proxy on 127.0.0.1 in front of one mirror, with faults a test switches on and off:
// the network between a client and its mirrors, and a mirror turned hostile. It counts every
// request and every body byte it hands to the client, so a test can prove what the client did
// (resumed with `Range: bytes=N-` rather than starting again, stopped reading an endless body
// at the cap, waited out a Retry-After).
//
// Imported by bench/ too (Node type stripping): erasable syntax only, `.ts` relative imports.
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export type Fault =
  /** Forward the request and the answer unchanged. */
  | { readonly kind: 'pass' }
  /**
   * The mirror dies: the answer is cut (socket destroyed) after `afterBytes` body bytes, and from
   * then on the proxy destroys every connection, open or new, until `revive()` or `reset()`.
   */
  | { readonly kind: 'die'; readonly afterBytes: number }
  /** The mirror is down: every connection is destroyed as soon as it is made. */
  | { readonly kind: 'down' }
  /** Headers and `afterBytes` body bytes, then silence with the connection held open. */
  | { readonly kind: 'stall'; readonly afterBytes: number }
  /** The body at `bytesPerSecond` (after `afterBytes` sent at full speed). */
  | { readonly kind: 'trickle'; readonly bytesPerSecond: number; readonly afterBytes?: number }
  /** 200 and a body of spaces that never ends, whatever was asked (a Range too). */
  | { readonly kind: 'endless' }
  /** The real answer with the body byte at `at` (default: the middle of the body) inverted. */
  | { readonly kind: 'tamper'; readonly at?: number }
  /** This status (429, 503...) with `Retry-After: retryAfter` seconds, and no body. */
  | { readonly kind: 'status'; readonly status: number; readonly retryAfter?: number }
  /** These bytes with this status (default 200) instead of the mirror's answer: a rollback. */
  | { readonly kind: 'serve'; readonly body: Uint8Array; readonly status?: number };

export type FaultKind = Fault['kind'];

/** Which requests a rule applies to: a path prefix (`/targets/`), a pattern, or a predicate. */
export type PathMatch = string | RegExp | ((path: string) => boolean);

export interface ProxiedRequest {
  readonly method: string;
  /** The request path as sent, e.g. `/targets/ab12….main.cvd`. */
  readonly path: string;
  /** The Range header, if any. */
  readonly range: string | undefined;
  /** What the client was answered with; 0 if the connection was destroyed before headers. */
  status: number;
  /** Body bytes handed to the client's socket. */
  bodyBytes: number;
  readonly fault: FaultKind;
  /** `performance.now()` when the request arrived (before any added latency). */
  readonly at: number;
  /** The answer was sent in full (the body ended normally). */
  completed: boolean;
}

interface Rule {
  readonly match: (path: string) => boolean;
  readonly fault: Fault;
  /** Requests left that this rule applies to; Infinity when unlimited. */
  remaining: number;
}

function matcher(match: PathMatch): (path: string) => boolean {
  if (typeof match === 'string') return (path) => path.startsWith(match);
  if (match instanceof RegExp) return (path) => match.test(path);
  return match;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
]);

const ENDLESS_CHUNK = new Uint8Array(64 * 1024).fill(0x20);

export class FaultProxy {
  /** `http://127.0.0.1:PORT/`: the mirror's base URL as the client should be given it. */
  readonly url: string;
  /** Every request, oldest first (cleared by `reset()` and `clearLog()`). */
  readonly requests: ProxiedRequest[] = [];
  /** Added before every answer, milliseconds: decides which mirror a probe finds "nearest". */
  latencyMs = 0;
  readonly #upstream: URL;
  readonly #server: ReturnType<typeof createServer>;
  readonly #agent = new Agent({ keepAlive: true });
  readonly #sockets = new Set<Socket>();
  #rules: Rule[] = [];
  #down = false;

  private constructor(upstream: URL, server: ReturnType<typeof createServer>, url: string) {
    this.#upstream = upstream;
    this.#server = server;
    this.url = url;
  }

  /** A proxy in front of `upstream` (a mirror's base URL, e.g. `http://127.0.0.1:8080`). */
  static async start(upstream: string, options: { latencyMs?: number } = {}): Promise<FaultProxy> {
    // The handlers need the proxy, which needs the port: they find it here once it exists.
    const holder: { proxy?: FaultProxy } = {};
    const server = createServer((req, res) => {
      if (holder.proxy === undefined) {
        res.destroy();
        return;
      }
      void holder.proxy.#handle(req, res);
    });
    server.on('connection', (socket) => {
      const proxy = holder.proxy;
      if (proxy === undefined || proxy.#down) {
        socket.destroy();
        return;
      }
      const sockets = proxy.#sockets;
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
    const { port } = server.address() as AddressInfo;
    const proxy = new FaultProxy(new URL(upstream), server, `http://127.0.0.1:${port}/`);
    holder.proxy = proxy;
    proxy.latencyMs = options.latencyMs ?? 0;
    return proxy;
  }

  /** Applies `fault` to requests whose path matches, the next `times` of them (default all). */
  inject(match: PathMatch, fault: Fault, options: { times?: number } = {}): void {
    this.#rules.push({ match: matcher(match), fault, remaining: options.times ?? Infinity });
    if (fault.kind === 'down') this.#goDown();
  }

  /** Whether the mirror is down (after a `die` fault fired, or a `down` fault). */
  get down(): boolean {
    return this.#down;
  }

  /** The mirror is back: faults removed, connections accepted again. The log is kept. */
  revive(): void {
    this.#rules = [];
    this.#down = false;
  }

  /** No faults, no latency, an empty log. */
  reset(): void {
    this.revive();
    this.latencyMs = 0;
    this.clearLog();
  }

  clearLog(): void {
    this.requests.length = 0;
  }

  /** The logged requests whose path matches. */
  requestsTo(match: PathMatch): ProxiedRequest[] {
    const test = matcher(match);
    return this.requests.filter((r) => test(r.path));
  }

  /** Body bytes handed to the client for requests whose path matches (default: all). */
  bodyBytes(match: PathMatch = () => true): number {
    return this.requestsTo(match).reduce((sum, r) => sum + r.bodyBytes, 0);
  }

  /** How many requests were answered with `kind` (`die`, `endless`, ...). */
  faulted(kind: FaultKind): number {
    return this.requests.filter((r) => r.fault === kind).length;
  }

  async close(): Promise<void> {
    this.#down = true;
    for (const socket of this.#sockets) socket.destroy();
    this.#agent.destroy();
    await new Promise<void>((done) => this.#server.close(() => done()));
  }

  #goDown(): void {
    this.#down = true;
    for (const socket of this.#sockets) socket.destroy();
  }

  #ruleFor(path: string): Fault {
    for (const rule of this.#rules) {
      if (rule.remaining <= 0 || !rule.match(path)) continue;
      rule.remaining -= 1;
      return rule.fault;
    }
    return { kind: 'pass' };
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = req.url ?? '/';
    const fault = this.#ruleFor(path);
    const entry: ProxiedRequest = {
      method: req.method ?? 'GET',
      path,
      range: req.headers.range,
      status: 0,
      bodyBytes: 0,
      fault: fault.kind,
      at: performance.now(),
      completed: false,
    };
    this.requests.push(entry);
    if (this.#down) {
      res.socket?.destroy();
      return;
    }
    if (this.latencyMs > 0) await sleep(this.latencyMs);
    if (this.#down || res.destroyed) {
      res.socket?.destroy();
      return;
    }
    switch (fault.kind) {
      case 'down':
        this.#goDown();
        res.socket?.destroy();
        return;
      case 'endless':
        await this.#endless(res, entry);
        return;
      case 'status': {
        const headers: Record<string, string> = { 'content-length': '0' };
        if (fault.retryAfter !== undefined) headers['retry-after'] = String(fault.retryAfter);
        entry.status = fault.status;
        res.writeHead(fault.status, headers).end(() => {
          entry.completed = true;
        });
        return;
      }
      case 'serve':
        entry.status = fault.status ?? 200;
        res.writeHead(entry.status, {
          'content-type': 'application/octet-stream',
          'content-length': String(fault.body.length),
        });
        entry.bodyBytes = req.method === 'HEAD' ? 0 : fault.body.length;
        res.end(req.method === 'HEAD' ? undefined : fault.body, () => {
          entry.completed = true;
        });
        return;
      case 'pass':
      case 'die':
      case 'stall':
      case 'trickle':
      case 'tamper':
        await this.#forward(req, res, entry, fault);
        return;
    }
  }

  async #endless(res: ServerResponse, entry: ProxiedRequest): Promise<void> {
    entry.status = 200;
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    while (!res.destroyed && !this.#down) {
      entry.bodyBytes += ENDLESS_CHUNK.length;
      if (!res.write(ENDLESS_CHUNK)) {
        await new Promise<void>((drained) => {
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            drained();
          };
          res.on('drain', done);
          res.on('close', done);
        });
      }
    }
  }

  async #forward(
    req: IncomingMessage,
    res: ServerResponse,
    entry: ProxiedRequest,
    fault: Fault,
  ): Promise<void> {
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name) && name !== 'host') headers[name] = value;
    }
    const target = new URL(req.url ?? '/', this.#upstream);
    let upstream: IncomingMessage;
    const outgoing = request(target, { method: req.method, headers, agent: this.#agent });
    try {
      upstream = await new Promise<IncomingMessage>((resolve, reject) => {
        outgoing.once('response', resolve);
        outgoing.once('error', reject);
        outgoing.end();
      });
    } catch {
      if (!res.headersSent && !res.destroyed) res.writeHead(502).end();
      return;
    }
    // The client left (or the proxy cut it off): stop reading the mirror too.
    res.once('close', () => upstream.destroy());
    const responseHeaders: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(upstream.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name)) responseHeaders[name] = value;
    }
    entry.status = upstream.statusCode ?? 502;
    res.writeHead(entry.status, responseHeaders);
    const length = Number(upstream.headers['content-length'] ?? Number.NaN);
    const tamperAt =
      fault.kind === 'tamper'
        ? (fault.at ?? (Number.isFinite(length) ? Math.floor(length / 2) : 0))
        : -1;
    let offset = 0;
    try {
      for await (const data of upstream) {
        let chunk = new Uint8Array(data as Buffer);
        if (tamperAt >= offset && tamperAt < offset + chunk.length) {
          chunk = Uint8Array.from(chunk);
          chunk[tamperAt - offset] = (chunk[tamperAt - offset] ?? 0) ^ 0xff;
        }
        if (fault.kind === 'die' || fault.kind === 'stall') {
          const room = fault.afterBytes - offset;
          if (room < chunk.length) {
            if (room > 0) await this.#write(res, entry, chunk.subarray(0, room));
            if (fault.kind === 'die') {
              // Let the bytes leave before the connection goes.
              await sleep(20);
              this.#goDown();
              res.socket?.destroy();
            }
            // stall: hold the connection open, send nothing more.
            upstream.destroy();
            return;
          }
        }
        if (fault.kind === 'trickle' && offset + chunk.length > (fault.afterBytes ?? 0)) {
          // Full speed up to afterBytes, then slow.
          const fast = Math.max(0, (fault.afterBytes ?? 0) - offset);
          if (fast > 0) await this.#write(res, entry, chunk.subarray(0, fast));
          await this.#trickle(res, entry, chunk.subarray(fast), fault.bytesPerSecond);
        } else {
          await this.#write(res, entry, chunk);
        }
        offset += chunk.length;
        if (res.destroyed) return;
      }
    } catch {
      res.destroy();
      return;
    }
    if (!res.destroyed) {
      res.end(() => {
        entry.completed = true;
      });
    }
  }

  /** Writes a chunk, waiting for the socket to drain; false if the client is gone. */
  async #write(res: ServerResponse, entry: ProxiedRequest, chunk: Uint8Array): Promise<boolean> {
    if (res.destroyed) return false;
    entry.bodyBytes += chunk.length;
    if (res.write(chunk)) return true;
    await new Promise<void>((drained) => {
      const done = () => {
        res.off('drain', done);
        res.off('close', done);
        drained();
      };
      res.on('drain', done);
      res.on('close', done);
    });
    return !res.destroyed;
  }

  async #trickle(
    res: ServerResponse,
    entry: ProxiedRequest,
    chunk: Uint8Array,
    bytesPerSecond: number,
  ): Promise<void> {
    // Ten sends a second.
    const step = Math.max(1, Math.floor(bytesPerSecond / 10));
    for (let at = 0; at < chunk.length; at += step) {
      if (!(await this.#write(res, entry, chunk.subarray(at, at + step)))) return;
      await sleep(100);
      if (res.destroyed || this.#down) return;
    }
  }
}
