/**
 * The publisher's side of the origin API, for `cairn push`, `cairn release show`,
 * `cairn sign` and `cairn status`. Every request is signed with the publisher's own key
 * (request-auth.ts); files stream from disk, so releases larger than memory push fine.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { Readable } from 'node:stream';
import { fromUtf8, utf8 } from '@cairn/verify/encoding';
import type { Signer } from '@cairn/verify/signer';
import { OriginError, type OriginErrorCode } from './errors.js';
import { isDeltaPath } from './deltas.js';
import type { ReleaseSummary, SignatureResult } from './releases.js';
import { EMPTY_SHA256, contentSha256, signRequest } from './request-auth.js';
import type { OriginStatus } from './service.js';
import { sha256Hex } from './store-io.js';

export interface LocalFile {
  readonly path: string;
  readonly absolute: string;
  readonly length: number;
  readonly sha256: string;
}

export interface Progress {
  /** Called as bytes go out (or are hashed): what, how many so far, of how many. */
  (phase: 'hash' | 'upload', file: string, done: number, total: number): void;
}

async function hashFile(path: string, onBytes?: (n: number) => void): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    onBytes?.((chunk as Buffer).length);
  }
  return hash.digest('hex');
}

/** Every regular file under `dir`, by its `/`-separated relative name, hashed. Symbolic links
 * and other special files are refused: what is signed must be what is on disk. */
export async function scanDirectory(dir: string, progress?: Progress): Promise<LocalFile[]> {
  const found: { path: string; absolute: string; length: number }[] = [];
  const walk = async (at: string): Promise<void> => {
    const entries = await readdir(at, { withFileTypes: true });
    for (const entry of entries) {
      const absolute = join(at, entry.name);
      const path = relative(dir, absolute).split(sep).join('/');
      if (entry.isDirectory()) await walk(absolute);
      else if (entry.isFile()) found.push({ path, absolute, length: (await lstat(absolute)).size });
      else {
        throw new OriginError(
          'INVALID_NAME',
          `${path}: only regular files and directories can be released (symbolic links and devices cannot)`,
        );
      }
    }
  };
  await walk(dir);
  found.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const total = found.reduce((n, f) => n + f.length, 0);
  let done = 0;
  const files: LocalFile[] = [];
  for (const f of found) {
    const sha256 = await hashFile(f.absolute, (n) => {
      done += n;
      progress?.('hash', f.path, done, total);
    });
    files.push({ ...f, sha256 });
  }
  return files;
}

interface ErrorBody {
  readonly error?: string;
  readonly message?: string;
}

export class PublisherClient {
  readonly #origin: URL;
  readonly #signer: Signer;

  constructor(origin: string, signer: Signer) {
    try {
      this.#origin = new URL(origin);
    } catch (error) {
      throw new OriginError('CONFIG_INVALID', `origin: ${JSON.stringify(origin)} is not a URL`, {
        cause: error,
      });
    }
    this.#signer = signer;
  }

  get keyid(): string {
    return this.#signer.keyid;
  }

  async #send(
    method: string,
    path: string,
    body?:
      | { bytes: Uint8Array }
      | { stream: ReadableStream<Uint8Array>; sha256: string; length: number },
  ): Promise<unknown> {
    const url = new URL(path, this.#origin);
    const sha =
      body === undefined ? EMPTY_SHA256 : 'bytes' in body ? contentSha256(body.bytes) : body.sha256;
    const headers: Record<string, string> = await signRequest(this.#signer, {
      method,
      path: `${url.pathname}${url.search}`,
      contentSha256: sha,
    });
    let init: RequestInit & { duplex?: 'half' } = { method, headers };
    if (body !== undefined && 'bytes' in body) {
      headers['content-type'] = 'application/json';
      init = { ...init, body: body.bytes as Uint8Array<ArrayBuffer> };
    } else if (body !== undefined) {
      headers['content-type'] = 'application/octet-stream';
      headers['content-length'] = String(body.length);
      init = { ...init, body: body.stream, duplex: 'half' };
    }
    let response: Response;
    try {
      response = await fetch(url, init);
    } catch (error) {
      throw new OriginError(
        'UNREACHABLE',
        `cannot reach the origin at ${this.#origin.origin}: ${String((error as Error).cause ?? error)}`,
        {
          cause: error,
        },
      );
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : (JSON.parse(text) as unknown);
    } catch {
      parsed = undefined;
    }
    if (!response.ok) {
      const e = (parsed ?? {}) as ErrorBody;
      throw new OriginError(
        (e.error ?? 'INTERNAL') as OriginErrorCode,
        e.message ?? `the origin answered ${response.status} ${response.statusText}`,
      );
    }
    return parsed;
  }

  #json(method: string, path: string, value: unknown): Promise<unknown> {
    return this.#send(method, path, { bytes: utf8(JSON.stringify(value)) });
  }

  async status(): Promise<OriginStatus> {
    return (await this.#send('GET', '/v1/status')) as OriginStatus;
  }

  async show(id: string): Promise<ReleaseSummary> {
    return (await this.#send('GET', `/v1/releases/${encodeURIComponent(id)}`)) as ReleaseSummary;
  }

  /** Pushes the files under `dir` as a new release and completes it: returns the draft. */
  async push(
    dir: string,
    options: { note?: string; progress?: Progress } = {},
  ): Promise<ReleaseSummary> {
    const files = await scanDirectory(dir, options.progress);
    const created = (await this.#json('POST', '/v1/releases', {
      files: files.map((f) => ({ path: f.path, length: f.length, sha256: f.sha256 })),
      ...(options.note === undefined ? {} : { note: options.note }),
    })) as { id: string; files: { path: string; index: number; upload: string }[] };
    const total = files.reduce((n, f) => n + f.length, 0);
    let done = 0;
    for (const upload of created.files) {
      const file = files.find((f) => f.path === upload.path);
      if (file === undefined) throw new OriginError('INTERNAL', `the origin named ${upload.path}`);
      const source = createReadStream(file.absolute, { highWaterMark: 1 << 20 });
      source.on('data', (chunk) => {
        done += (chunk as Buffer).length;
        options.progress?.('upload', file.path, done, total);
      });
      await this.#send('PUT', upload.upload, {
        stream: Readable.toWeb(source) as ReadableStream<Uint8Array>,
        sha256: file.sha256,
        length: file.length,
      });
    }
    return (await this.#json('POST', `/v1/releases/${created.id}/complete`, {})) as ReleaseSummary;
  }

  /** Asks for a release whose content is that of targets version `version`. */
  async withdraw(version: number, note?: string): Promise<ReleaseSummary> {
    const created = (await this.#json('POST', '/v1/releases', {
      withdrawTo: version,
      ...(note === undefined ? {} : { note }),
    })) as { id: string };
    return this.show(created.id);
  }

  /**
   * Signs release `id` — only after checking that its draft lists exactly the files under
   * `dir`, by name, length and sha256 (deltas aside: clients check what they rebuild against
   * these same entries), and that the bytes to sign are the draft the origin names.
   */
  async sign(
    id: string,
    dir: string,
    progress?: Progress,
  ): Promise<SignatureResult & { draftSha256: string }> {
    const summary = await this.show(id);
    if (summary.signed === undefined || summary.draftSha256 === undefined) {
      throw new OriginError('RELEASE_STATE', `release ${id} has no draft to sign yet`);
    }
    const signedBytes = utf8(summary.signed);
    if (sha256Hex(signedBytes) !== summary.draftSha256) {
      throw new OriginError(
        'INTEGRITY',
        'the draft the origin sent does not hash to the draft it names',
      );
    }
    const signed = JSON.parse(fromUtf8(signedBytes)) as {
      _type?: unknown;
      targets?: Record<
        string,
        { length: number; hashes: Record<string, string>; custom?: unknown }
      >;
    };
    if (signed._type !== 'targets' || signed.targets === undefined) {
      throw new OriginError('INTEGRITY', 'the draft is not targets metadata');
    }
    const local = await scanDirectory(dir, progress);
    const listed = new Map(Object.entries(signed.targets).filter(([path]) => !isDeltaPath(path)));
    const problems: string[] = [];
    for (const file of local) {
      const entry = listed.get(file.path);
      if (entry === undefined) problems.push(`${file.path}: on disk, not in the draft`);
      else if (entry.length !== file.length || entry.hashes.sha256 !== file.sha256) {
        problems.push(
          `${file.path}: the draft has other content (length ${entry.length}, sha256 ${entry.hashes.sha256?.slice(0, 16)}...)`,
        );
      }
      listed.delete(file.path);
    }
    for (const path of listed.keys()) problems.push(`${path}: in the draft, not on disk`);
    for (const [path, entry] of Object.entries(signed.targets)) {
      if (!isDeltaPath(path)) continue;
      const result = (
        entry.custom as
          { cairn_delta?: { target?: string; result?: { sha256?: string } } } | undefined
      )?.cairn_delta;
      const target =
        result?.target === undefined ? undefined : local.find((f) => f.path === result.target);
      if (target === undefined || result?.result?.sha256 !== target.sha256) {
        problems.push(`${path}: a delta that does not rebuild a file of this release`);
      }
    }
    if (problems.length > 0) {
      throw new OriginError(
        'HASH_MISMATCH',
        `refusing to sign release ${id}: ${problems.length} difference(s) from ${dir}: ${problems.slice(0, 5).join('; ')}`,
      );
    }
    const sig = await this.#signer.sign(signedBytes);
    const result = (await this.#json('POST', `/v1/releases/${id}/signatures`, {
      keyid: this.#signer.keyid,
      sig,
      draftSha256: summary.draftSha256,
    })) as SignatureResult;
    return { ...result, draftSha256: summary.draftSha256 };
  }
}
