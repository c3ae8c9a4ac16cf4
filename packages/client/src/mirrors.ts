/**
 * Which mirror to ask first. Mirrors are untrusted (the signatures carry the trust), so a
 * mirror's answers only decide the ORDER in which mirrors are tried, never what is accepted.
 *
 * Candidates are the configured base URLs (a LAN mirror, say) and those of the repository's
 * signed mirror list (`parseMirrorList`). `MirrorSelector` probes them all at once with one
 * small request each (`{base}metadata/timestamp.json`), ranks them — reachable before
 * unreachable, mirrors with the newest timestamp version before stale ones, then by round-trip
 * time — and remembers the ranking in a state file, so most runs start without probing.
 * Failures during a run demote a mirror to the end of the order for the rest of the run.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fromUtf8, utf8 } from '@cairn/verify/encoding';
import { asArray, asInteger, asObject, asString, parseJson } from '@cairn/verify/json';
import { DEFAULT_LIMITS } from '@cairn/verify/limits';
import { writeFileAtomic } from './atomic-file.js';
import { ClientError } from './errors.js';
import { HttpFetcher } from './http-fetcher.js';

export interface Mirror {
  /** Base URL of the repository on this mirror, http(s), ending in `/`: metadata is at
   * `{url}metadata/...`, targets at `{url}targets/...`. */
  readonly url: string;
  /** A label for messages and logs (the edge's `X-Cairn-Mirror`, say); never trusted. */
  readonly name?: string | undefined;
  /** Where the mirror came from: local configuration or the repository's signed list. */
  readonly source: 'configured' | 'repository';
}

/** What downloads and metadata fetches need from a mirror ranking. */
export interface RankedMirrors {
  /** The mirrors, best first. */
  ranked(): Promise<readonly Mirror[]>;
  /** Moves a mirror to the end of the order for the rest of this run. */
  demote(url: string, reason: string): void;
}

/** Longest mirror URL accepted: far beyond any real base URL, short enough for log lines. */
export const MAX_MIRROR_URL_LENGTH = 2048;
/** Most mirrors in a signed list: every one is probed at once, and a list of thousands is a
 * mistake (or a way to make every client open thousands of connections). */
export const MAX_MIRRORS = 64;
/** Largest mirror list: 64 entries of 2 KB URLs, with room for names. */
export const MAX_MIRROR_LIST_BYTES = 160_000;
/** Mirror names: the edge's CAIRN_MIRROR_NAME rule (1–64 printable ASCII, no spaces). */
const NAME_PATTERN = /^[\x21-\x7e]{1,64}$/;

/** How long one probe may take. A mirror that cannot send a few hundred bytes in 5 s is no
 * mirror to start a download from. */
export const DEFAULT_PROBE_TIMEOUT_MS = 5_000;
/** How long a remembered ranking is used before mirrors are probed again: network positions
 * and mirror health change over hours, and a probe costs every mirror one request. */
export const DEFAULT_REPROBE_AFTER_MS = 3_600_000;

function invalid(message: string, cause?: unknown): ClientError {
  return new ClientError('CONFIG_INVALID', message, { cause });
}

/**
 * A mirror base URL in canonical form: http or https, no credentials, query or fragment, and
 * a path ending in `/` (added when missing) so that relative paths append to it.
 */
export function normaliseMirrorUrl(text: string, where: string): string {
  if (text.length === 0 || text.length > MAX_MIRROR_URL_LENGTH) {
    throw invalid(
      `${where}: expected a URL of 1 to ${MAX_MIRROR_URL_LENGTH} characters, received ${text.length}`,
    );
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch (e) {
    throw invalid(`${where}: ${JSON.stringify(text)} is not a URL`, e);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw invalid(`${where}: expected an http or https URL, received ${JSON.stringify(text)}`);
  }
  // Credentials would be sent to whoever the list names and end up in logs; a base URL
  // with a query or fragment cannot have paths appended to it.
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw invalid(
      `${where}: a mirror URL has no credentials, query or fragment, received ${JSON.stringify(text)}`,
    );
  }
  if (!url.pathname.endsWith('/')) url.pathname = `${url.pathname}/`;
  return url.href;
}

function checkName(value: unknown, where: string): string {
  const name = asString(value, where);
  if (!NAME_PATTERN.test(name)) {
    throw invalid(`${where}: expected 1 to 64 printable ASCII characters without spaces`);
  }
  return name;
}

/** Mirrors from local configuration: base URLs, or `{ url, name }`. */
export function configuredMirrors(
  entries: readonly (string | { readonly url: string; readonly name?: string | undefined })[],
  where = 'mirrors',
): Mirror[] {
  return entries.map((entry, i) => {
    const url = normaliseMirrorUrl(typeof entry === 'string' ? entry : entry.url, `${where}[${i}]`);
    const name =
      typeof entry === 'string' || entry.name === undefined
        ? undefined
        : checkName(entry.name, `${where}[${i}].name`);
    return { url, name, source: 'configured' };
  });
}

/**
 * Parses the repository's mirror list, a signed target (conventionally `mirrors.json`) whose
 * bytes the caller has already verified against the targets metadata:
 *
 * ```json
 * { "mirrors": [{ "url": "https://eu-1.example.com/", "name": "eu-1" }] }
 * ```
 *
 * `url` (required) is an http(s) base URL as `normaliseMirrorUrl` accepts it; `name`
 * (optional) follows the edge's mirror-name rule. At most MAX_MIRRORS entries, no duplicate
 * URLs, and no fields other than these: a list this client does not fully understand is
 * refused whole (CONFIG_INVALID) rather than half-used, and the caller falls back to its
 * configured mirrors.
 */
export function parseMirrorList(bytes: Uint8Array): Mirror[] {
  const what = 'mirrors.json';
  if (bytes.length > MAX_MIRROR_LIST_BYTES) {
    throw invalid(
      `${what}: ${bytes.length} bytes is more than the ${MAX_MIRROR_LIST_BYTES} allowed`,
    );
  }
  try {
    const top = asObject(parseJson(bytes, what), what);
    refuseUnknown(top, ['mirrors'], what);
    const list = asArray(top.mirrors, `${what}.mirrors`);
    if (list.length > MAX_MIRRORS) {
      throw invalid(
        `${what}.mirrors: ${list.length} entries is more than the ${MAX_MIRRORS} allowed`,
      );
    }
    const seen = new Set<string>();
    return list.map((item, i): Mirror => {
      const where = `${what}.mirrors[${i}]`;
      const entry = asObject(item, where);
      refuseUnknown(entry, ['url', 'name'], where);
      const url = normaliseMirrorUrl(asString(entry.url, `${where}.url`), `${where}.url`);
      if (seen.has(url)) throw invalid(`${where}.url: ${url} is listed twice`);
      seen.add(url);
      const name = entry.name === undefined ? undefined : checkName(entry.name, `${where}.name`);
      return { url, name, source: 'repository' };
    });
  } catch (e) {
    if (e instanceof ClientError) throw e;
    // A VerifyError MALFORMED from the JSON readers: same meaning, this package's class.
    throw invalid((e as Error).message, e);
  }
}

function refuseUnknown(
  obj: Record<string, unknown>,
  known: readonly string[],
  where: string,
): void {
  for (const key of Object.keys(obj)) {
    if (!known.includes(key)) throw invalid(`${where}: unknown field ${JSON.stringify(key)}`);
  }
}

/**
 * Checks a path within a mirror: relative and percent-encoded (`metadata/3.root.json`,
 * `targets/ab….daily.cvd`). A path that could leave the base (absolute, with a scheme, `.`,
 * `..` or empty segments, a query or fragment) is a bug in the caller: RangeError.
 */
export function checkMirrorPath(path: string): void {
  if (
    path.length === 0 ||
    path.startsWith('/') ||
    /^[A-Za-z][A-Za-z0-9+.-]*:/.test(path) ||
    /[?#\\]/.test(path) ||
    path.split('/').some((part) => part === '.' || part === '..' || part === '')
  ) {
    throw new RangeError(
      `path: expected a relative path within the mirror, received ${JSON.stringify(path)}`,
    );
  }
}

/** The URL of `path` (see checkMirrorPath) on a mirror: its base URL with the path appended. */
export function mirrorUrl(mirror: Mirror | string, path: string): string {
  checkMirrorPath(path);
  return `${typeof mirror === 'string' ? mirror : mirror.url}${path}`;
}

/** Joins candidate lists, first occurrence of a URL winning: configured mirrors go first, so a
 * LAN mirror keeps its local name and probes it first when nothing is remembered. */
export function mergeMirrors(...lists: readonly (readonly Mirror[])[]): Mirror[] {
  const byUrl = new Map<string, Mirror>();
  for (const list of lists) for (const m of list) if (!byUrl.has(m.url)) byUrl.set(m.url, m);
  return [...byUrl.values()];
}

/** One mirror's answer to a probe. */
export interface MirrorProbe {
  readonly url: string;
  /** It answered 200 within the timeout and the length cap. */
  readonly reachable: boolean;
  /** Milliseconds from request to the last body byte. */
  readonly rttMs?: number | undefined;
  /** `signed.version` of the timestamp it served, read WITHOUT verification: good enough to
   * rank by (a mirror lying about it only moves itself up the order, and its data is verified
   * anyway), never to trust. */
  readonly timestampVersion?: number | undefined;
  /** Why it is unreachable, or why its timestamp could not be read. */
  readonly error?: string | undefined;
}

/**
 * Orders probes: reachable mirrors serving the newest timestamp version seen, fastest first;
 * then reachable but stale ones (an older version, or none that could be read), newest version
 * first, then fastest; then unreachable ones, in candidate order. Stable: ties keep the order
 * given.
 */
export function rankProbes(probes: readonly MirrorProbe[]): MirrorProbe[] {
  let newest = -1;
  for (const p of probes) {
    if (p.reachable && p.timestampVersion !== undefined)
      newest = Math.max(newest, p.timestampVersion);
  }
  const group = (p: MirrorProbe): number =>
    !p.reachable ? 2 : p.timestampVersion === newest ? 0 : 1;
  return [...probes].sort((a, b) => {
    const byGroup = group(a) - group(b);
    if (byGroup !== 0 || group(a) === 2) return byGroup;
    const byVersion = (b.timestampVersion ?? -1) - (a.timestampVersion ?? -1);
    if (byVersion !== 0) return byVersion;
    return (a.rttMs ?? Number.POSITIVE_INFINITY) - (b.rttMs ?? Number.POSITIVE_INFINITY);
  });
}

/** The state file: the last ranking and when it was made. */
export interface MirrorRanking {
  /** When the probes ran (wall clock, ms since the epoch). */
  readonly probedAt: number;
  /** The candidate URLs probed, sorted: a different set means probing again. */
  readonly candidates: readonly string[];
  /** Ranked, best first. */
  readonly probes: readonly MirrorProbe[];
}

/** Written as `format: 1`; any other value, or anything malformed, is ignored (probe again). */
const STATE_FORMAT = 1;

export interface MirrorSelectorOptions {
  /** The candidates, in preference order for ties (see mergeMirrors). */
  readonly candidates: readonly Mirror[];
  /** JSON file remembering the ranking between runs; without it, every run probes. */
  readonly statePath?: string | undefined;
  /** Default DEFAULT_PROBE_TIMEOUT_MS. */
  readonly probeTimeoutMs?: number | undefined;
  /** Default DEFAULT_REPROBE_AFTER_MS. */
  readonly reprobeAfterMs?: number | undefined;
  readonly userAgent?: string | undefined;
  /** Wall clock, ms since the epoch (probe time). Default Date.now. */
  readonly now?: (() => number) | undefined;
  /** Monotonic clock, ms (round-trip times). Default performance.now. */
  readonly monotonic?: (() => number) | undefined;
}

function sortedUrls(mirrors: readonly Mirror[]): string[] {
  return mirrors.map((m) => m.url).sort();
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function parseState(bytes: Uint8Array): MirrorRanking | undefined {
  try {
    const top = asObject(JSON.parse(fromUtf8(bytes)), 'state');
    if (top.format !== STATE_FORMAT) return undefined;
    const probedAt = Date.parse(asString(top.probedAt, 'probedAt'));
    if (Number.isNaN(probedAt)) return undefined;
    const candidates = asArray(top.candidates, 'candidates').map((c) => asString(c, 'candidate'));
    const probes = asArray(top.probes, 'probes').map((item): MirrorProbe => {
      const p = asObject(item, 'probe');
      const optionalNumber = (v: unknown): number | undefined =>
        typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined;
      return {
        url: asString(p.url, 'url'),
        reachable: p.reachable === true,
        rttMs: optionalNumber(p.rttMs),
        timestampVersion: optionalNumber(p.timestampVersion),
        error: typeof p.error === 'string' ? p.error : undefined,
      };
    });
    // Every candidate ranked exactly once, or the file is not one this code wrote.
    if (!sameList([...candidates].sort(), probes.map((p) => p.url).sort())) return undefined;
    return { probedAt, candidates, probes };
  } catch {
    return undefined;
  }
}

function serializeState(ranking: MirrorRanking): Uint8Array {
  return utf8(
    `${JSON.stringify(
      {
        format: STATE_FORMAT,
        probedAt: new Date(ranking.probedAt).toISOString(),
        candidates: ranking.candidates,
        probes: ranking.probes,
      },
      null,
      2,
    )}\n`,
  );
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Reads `signed.version` of a timestamp without verifying it (ranking only). */
function timestampVersionOf(bytes: Uint8Array): number {
  const top = asObject(parseJson(bytes, 'timestamp.json'), 'timestamp.json');
  const signed = asObject(top.signed, 'timestamp.json signed');
  return asInteger(signed.version, 'timestamp.json signed.version', 1);
}

export class MirrorSelector implements RankedMirrors {
  readonly #candidates: readonly Mirror[];
  readonly #byUrl: Map<string, Mirror>;
  readonly #statePath: string | undefined;
  readonly #probeTimeoutMs: number;
  readonly #reprobeAfterMs: number;
  readonly #prober: HttpFetcher;
  readonly #now: () => number;
  readonly #monotonic: () => number;
  #ranking: MirrorRanking | undefined;
  #pending: Promise<MirrorRanking> | undefined;
  readonly #demotions: { url: string; reason: string }[] = [];
  #stateError: unknown;

  constructor(options: MirrorSelectorOptions) {
    if (options.candidates.length === 0) throw invalid('candidates: expected at least one mirror');
    this.#candidates = mergeMirrors(options.candidates);
    this.#byUrl = new Map(this.#candidates.map((m) => [m.url, m]));
    this.#statePath = options.statePath;
    this.#probeTimeoutMs = options.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
    this.#reprobeAfterMs = options.reprobeAfterMs ?? DEFAULT_REPROBE_AFTER_MS;
    this.#prober = new HttpFetcher({
      timeoutMs: this.#probeTimeoutMs,
      ...(options.userAgent === undefined ? {} : { userAgent: options.userAgent }),
    });
    this.#now = options.now ?? Date.now;
    this.#monotonic = options.monotonic ?? (() => performance.now());
  }

  get candidates(): readonly Mirror[] {
    return this.#candidates;
  }

  /** The ranking behind the current order (before demotions); undefined until the first
   * `ranked()` or `probe()`. */
  get ranking(): MirrorRanking | undefined {
    return this.#ranking;
  }

  /** Demotions of this run, oldest first. */
  get demotions(): readonly { readonly url: string; readonly reason: string }[] {
    return this.#demotions;
  }

  /** Why the state file could not be written last time, if it could not: it is a cache, so
   * that costs one probe next run and does not fail the update. */
  get stateError(): unknown {
    return this.#stateError;
  }

  /**
   * The mirrors, best first: the remembered ranking while it is younger than reprobeAfterMs
   * and covers exactly the current candidates, else a fresh probe; demoted mirrors last, the
   * most recently demoted at the very end.
   */
  async ranked(): Promise<readonly Mirror[]> {
    const ranking = await this.#current();
    const demoted = new Set<string>();
    const tail: Mirror[] = [];
    for (let i = this.#demotions.length - 1; i >= 0; i--) {
      const url = this.#demotions[i]?.url ?? '';
      const mirror = this.#byUrl.get(url);
      if (mirror === undefined || demoted.has(url)) continue;
      demoted.add(url);
      tail.unshift(mirror);
    }
    const head = ranking.probes
      .map((p) => this.#byUrl.get(p.url))
      .filter((m): m is Mirror => m !== undefined && !demoted.has(m.url));
    return [...head, ...tail];
  }

  demote(url: string, reason: string): void {
    this.#demotions.push({ url, reason });
  }

  /** Probes every candidate now, ranks them and remembers the ranking. */
  async probe(): Promise<MirrorRanking> {
    // Concurrent callers share one round of probes.
    this.#pending ??= this.#probeAll().finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  async #current(): Promise<MirrorRanking> {
    if (this.#ranking === undefined && this.#pending === undefined) {
      const stored = await this.#load();
      if (stored !== undefined && this.#isFresh(stored)) this.#ranking ??= stored;
    }
    if (this.#ranking !== undefined && this.#isFresh(this.#ranking)) return this.#ranking;
    return this.probe();
  }

  #isFresh(ranking: MirrorRanking): boolean {
    const age = this.#now() - ranking.probedAt;
    // A clock that went backwards makes the age meaningless: probe.
    return (
      age >= 0 &&
      age < this.#reprobeAfterMs &&
      sameList(ranking.candidates, sortedUrls(this.#candidates))
    );
  }

  async #load(): Promise<MirrorRanking | undefined> {
    if (this.#statePath === undefined) return undefined;
    try {
      return parseState(new Uint8Array(await readFile(this.#statePath)));
    } catch {
      // Absent or unreadable: the same as never probed.
      return undefined;
    }
  }

  async #probeAll(): Promise<MirrorRanking> {
    const probedAt = this.#now();
    const probes = await Promise.all(this.#candidates.map((m) => this.#probeOne(m)));
    const ranking: MirrorRanking = {
      probedAt,
      candidates: sortedUrls(this.#candidates),
      probes: rankProbes(probes),
    };
    this.#ranking = ranking;
    if (this.#statePath !== undefined) {
      try {
        await mkdir(dirname(this.#statePath), { recursive: true });
        await writeFileAtomic(this.#statePath, serializeState(ranking));
        this.#stateError = undefined;
      } catch (e) {
        this.#stateError = e;
      }
    }
    return ranking;
  }

  async #probeOne(mirror: Mirror): Promise<MirrorProbe> {
    const started = this.#monotonic();
    let bytes: Uint8Array;
    try {
      bytes = await this.#prober.fetch(
        `${mirror.url}metadata/timestamp.json`,
        DEFAULT_LIMITS.timestampMaxLength,
      );
    } catch (e) {
      return { url: mirror.url, reachable: false, error: describeError(e) };
    }
    const rttMs = Math.max(0, this.#monotonic() - started);
    try {
      return {
        url: mirror.url,
        reachable: true,
        rttMs,
        timestampVersion: timestampVersionOf(bytes),
      };
    } catch (e) {
      // It answers, but with no readable timestamp: usable, ranked with the stale ones.
      return { url: mirror.url, reachable: true, rttMs, error: describeError(e) };
    }
  }
}
