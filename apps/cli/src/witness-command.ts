/**
 * `cairn witness`: a transparency-log witness (C2SP tlog-witness) on this machine.
 *
 * - `keygen` writes a witness key (a 32-byte ed25519 seed, mode 0600) and prints its
 *   cosignature/v1 verifier key, the string logs and roots name the witness by;
 * - `serve` answers `POST /add-checkpoint` for the logs it is given: it cosigns a checkpoint
 *   only when it is signed by the log's key and extends the last checkpoint it cosigned for
 *   that log (a consistency proof), so it never cosigns two branches of a fork.
 *
 * State is one JSON file per log in --state, replaced atomically (a temporary file and a
 * rename); one process serves one state directory, and requests for a log are taken one at
 * a time, so the check of `old` and the write of the new size are one step.
 */
import { createHash, createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createCosigner } from '@cairn/tlog/checkpoint';
import { TlogError } from '@cairn/tlog/errors';
import { ALGORITHM_COSIGNATURE_V1, checkKeyName, formatVerifierKey } from '@cairn/tlog/note';
import {
  formatTreeSize,
  MAX_ADD_CHECKPOINT_BYTES,
  TREE_SIZE_CONTENT_TYPE,
  Witness,
  witnessedLog,
  witnessHttpStatus,
  type WitnessedState,
  type WitnessStateStore,
} from '@cairn/tlog/witness';
import type { CliIo } from './cli-io.js';
import {
  integerFlag,
  parseCommand,
  printUsage,
  usageError,
  type Usage,
  untilSignal,
} from './command-support.js';

export const USAGE: Usage = {
  command: 'cairn witness',
  synopsis: 'cairn witness keygen|serve [options]',
  details: [
    'A transparency-log witness (C2SP tlog-witness): it cosigns a log’s checkpoint only when',
    'the log signed it and it extends the last checkpoint the witness cosigned for that log.',
    '',
    '  keygen  --out FILE --name NAME    write a witness key (mode 0600); print its verifier key',
    '  serve   --key FILE --name NAME --log VKEY [--log VKEY ...] --state DIR',
    '          [--host HOST] [--port PORT]',
    '          answer POST /add-checkpoint until SIGTERM or SIGINT (exit 0)',
    '',
    'Options:',
    '  --out FILE     keygen: where the key goes (refuses to overwrite)',
    '  --name NAME    the witness name, e.g. witness.example.com/w1 (serve: the one keygen used)',
    '  --key FILE     serve: the key file keygen wrote',
    '  --log VKEY     serve: a log to witness, by its note verifier key; repeat for each',
    '  --state DIR    serve: the last cosigned size and root of each log, one JSON file each',
    '  --host HOST    serve: default 127.0.0.1',
    '  --port PORT    serve: default 0 (any free port)',
    '',
    'Give the printed verifier key to `cairn init --witness`, and the URL and key to the',
    'origin’s log.witnesses configuration.',
  ],
};

const KEYGEN_OPTIONS = { out: { type: 'string' }, name: { type: 'string' } } as const;
const SERVE_OPTIONS = {
  key: { type: 'string' },
  name: { type: 'string' },
  log: { type: 'string', multiple: true },
  state: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
} as const;

/** PKCS #8 DER prefix of a raw ed25519 seed (RFC 8410). */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** The ed25519 public key of a 32-byte seed. */
function publicKeyOf(seed: Uint8Array): Uint8Array {
  const key = createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  const jwk = createPublicKey(key).export({ format: 'jwk' });
  return new Uint8Array(Buffer.from(jwk.x ?? '', 'base64url'));
}

/** The witness's cosignature/v1 verifier key for `seed` under `name`. */
export function witnessVerifierKey(name: string, seed: Uint8Array): Promise<string> {
  return formatVerifierKey(name, ALGORITHM_COSIGNATURE_V1, publicKeyOf(seed));
}

function checkName(name: string | undefined): string {
  if (name === undefined || name === '') throw usageError(USAGE, 'missing --name');
  try {
    checkKeyName(name);
  } catch {
    throw usageError(
      USAGE,
      `--name: expected a name without spaces or "+", received ${JSON.stringify(name)}`,
    );
  }
  return name;
}

async function readSeed(path: string): Promise<Uint8Array> {
  const bytes = new Uint8Array(await readFile(path));
  if (bytes.length !== 32) {
    throw new TlogError(
      'MALFORMED_KEY',
      `${path}: a witness key file holds a 32-byte seed, this one has ${String(bytes.length)} bytes`,
    );
  }
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// State: one JSON file per log

interface StateFile {
  readonly origin: string;
  readonly size: number;
  readonly rootHash: string;
}

/**
 * A WitnessStateStore over a directory. Version tags are the SHA-256 of the file's bytes; the
 * compare and the rename are not atomic across processes, so one process serves a directory.
 */
export class DirectoryWitnessState implements WitnessStateStore {
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = resolve(dir);
  }

  #path(origin: string): string {
    return join(this.#dir, `${encodeURIComponent(origin)}.json`);
  }

  async #read(origin: string): Promise<{ bytes: Buffer; etag: string } | undefined> {
    try {
      const bytes = await readFile(this.#path(origin));
      return { bytes, etag: createHash('sha256').update(bytes).digest('hex') };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async get(origin: string): Promise<(WitnessedState & { etag: string }) | undefined> {
    const found = await this.#read(origin);
    if (found === undefined) return undefined;
    const parsed = JSON.parse(found.bytes.toString('utf8')) as Partial<StateFile>;
    const rootHash = Buffer.from(parsed.rootHash ?? '', 'base64');
    if (
      parsed.origin !== origin ||
      typeof parsed.size !== 'number' ||
      !Number.isSafeInteger(parsed.size) ||
      parsed.size < 0 ||
      rootHash.length !== 32
    ) {
      // A damaged state must stop the witness: starting over at size 0 could cosign a fork.
      throw new TlogError(
        'MALFORMED_CHECKPOINT',
        `${this.#path(origin)}: not a witness state file`,
      );
    }
    return { size: parsed.size, rootHash: new Uint8Array(rootHash), etag: found.etag };
  }

  async put(origin: string, state: WitnessedState, expected: string | undefined): Promise<boolean> {
    const current = await this.#read(origin);
    if (current?.etag !== expected) return false;
    const file: StateFile = {
      origin,
      size: state.size,
      rootHash: Buffer.from(state.rootHash).toString('base64'),
    };
    await mkdir(this.#dir, { recursive: true });
    const path = this.#path(origin);
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(tmp, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
    await rename(tmp, path);
    return true;
  }
}

// ---------------------------------------------------------------------------------------------
// The HTTP server

export interface WitnessServer {
  readonly url: string;
  close(): Promise<void>;
}

function send(
  response: ServerResponse,
  status: number,
  body: string,
  type = 'text/plain; charset=utf-8',
): void {
  response.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  response.end(body);
}

async function readBody(request: IncomingMessage, limit: number): Promise<Uint8Array | undefined> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > limit) return undefined;
    chunks.push(chunk);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

/** Serves `witness` on host:port (0: any free port) until close(). */
export async function startWitnessServer(
  witness: Witness,
  options: { host?: string; port?: number; onError?: (error: unknown) => void } = {},
): Promise<WitnessServer> {
  // Requests are taken one at a time: the witness's compare-and-swap then never loses.
  let queue: Promise<unknown> = Promise.resolve();
  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const path = new URL(request.url ?? '/', 'http://witness').pathname;
    if (path !== '/add-checkpoint') {
      send(response, 404, 'not found\n');
      return;
    }
    if (request.method !== 'POST') {
      response.setHeader('allow', 'POST');
      send(response, 405, 'add-checkpoint takes POST\n');
      return;
    }
    const body = await readBody(request, MAX_ADD_CHECKPOINT_BYTES);
    if (body === undefined) {
      send(response, 413, 'request too large\n');
      return;
    }
    const run = queue.then(() => witness.addCheckpoint(body));
    queue = run.catch(() => undefined);
    try {
      const result = await run;
      if (result.kind === 'conflict') {
        send(response, 409, formatTreeSize(result.size), TREE_SIZE_CONTENT_TYPE);
        return;
      }
      send(response, 200, result.body);
    } catch (error) {
      const status = witnessHttpStatus(error);
      if (status === 500) {
        options.onError?.(error);
        send(response, 500, 'internal error\n');
        return;
      }
      const message = error instanceof Error ? error.message : String(error);
      send(response, status, `${message.replace(/\s*\n\s*/g, ' ')}\n`);
    }
  };
  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      options.onError?.(error);
      if (!response.headersSent) send(response, 500, 'internal error\n');
    });
  });
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', fail);
      done();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${String(address.port)}`,
    close: () =>
      new Promise<void>((done, fail) => {
        server.close((error) => (error === undefined ? done() : fail(error)));
        server.closeAllConnections();
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// The command

export interface WitnessCommandDeps {
  /** Resolves when `serve` should stop. Default: SIGTERM or SIGINT. */
  readonly stop?: () => Promise<unknown>;
}

export async function runWitness(
  args: readonly string[],
  io: CliIo,
  deps: WitnessCommandDeps = {},
): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    return printUsage(io, USAGE);
  }
  if (sub === 'keygen') return keygen(rest, io);
  if (sub === 'serve') return serve(rest, io, deps);
  throw usageError(USAGE, `unknown subcommand ${JSON.stringify(sub)} (keygen or serve)`);
}

async function keygen(args: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseCommand(USAGE, args, KEYGEN_OPTIONS, 0);
  if (values.help === true) return printUsage(io, USAGE);
  const name = checkName(values.name);
  if (values.out === undefined || values.out === '') throw usageError(USAGE, 'missing --out');
  const seed = new Uint8Array(randomBytes(32));
  const vkey = await witnessVerifierKey(name, seed);
  // 'wx': an existing key is never overwritten; a lost witness key cannot be replaced silently.
  await writeFile(values.out, seed, { mode: 0o600, flag: 'wx' });
  seed.fill(0);
  io.stdout(`witness key written to ${values.out}; verifier key:`);
  io.stdout(vkey);
  return 0;
}

async function serve(
  args: readonly string[],
  io: CliIo,
  deps: WitnessCommandDeps,
): Promise<number> {
  const { values } = parseCommand(USAGE, args, SERVE_OPTIONS, 0);
  if (values.help === true) return printUsage(io, USAGE);
  const name = checkName(values.name);
  if (values.key === undefined || values.key === '') throw usageError(USAGE, 'missing --key');
  if (values.state === undefined || values.state === '') throw usageError(USAGE, 'missing --state');
  const logVkeys = values.log ?? [];
  if (logVkeys.length === 0) throw usageError(USAGE, 'missing --log');
  const port = integerFlag(USAGE, values.port, '--port', 0) ?? 0;
  if (port > 65535)
    throw usageError(USAGE, `--port: expected 0 to 65535, received ${String(port)}`);
  const logs = [];
  for (const vkey of logVkeys) {
    try {
      logs.push(await witnessedLog(vkey));
    } catch (error) {
      throw usageError(
        USAGE,
        `--log: ${error instanceof Error ? error.message : String(error)}: ${JSON.stringify(vkey)}`,
      );
    }
  }
  const seed = await readSeed(values.key);
  const vkey = await witnessVerifierKey(name, seed);
  const cosigner = await createCosigner(name, seed);
  seed.fill(0);
  const witness = new Witness({ logs, state: new DirectoryWitnessState(values.state), cosigner });
  const server = await startWitnessServer(witness, {
    host: values.host ?? '127.0.0.1',
    port,
    onError: (error) =>
      io.stderr(
        JSON.stringify({
          level: 'error',
          msg: 'add-checkpoint failed',
          error: error instanceof Error ? error.message : String(error),
        }),
      ),
  });
  io.stdout(`witness ${name} on ${server.url} for ${logs.map((l) => l.name).join(', ')}`);
  io.stdout(vkey);
  try {
    await (deps.stop ?? untilSignal)();
  } finally {
    await server.close();
  }
  return 0;
}
