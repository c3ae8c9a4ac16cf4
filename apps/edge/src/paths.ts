/**
 * Which request paths the edge serves: the repository layout and nothing else. Anything not
 * matched here (the origin's private `_origin/` prefix, a listing, `..`) is a 404 without a
 * storage request.
 *
 *   metadata/timestamp.json          mutable: short max-age
 *   metadata/root.json               mutable convenience copy of the newest root
 *   metadata/{N}.root.json           immutable
 *   metadata/{V}.{role}.json         immutable (targets, snapshot, delegated targets roles)
 *   targets/{dir/}{sha256}.{name}    immutable, hash-named (TUF consistent snapshots)
 *   targets/_delta/...               the same, for the origin's delta files
 *   log/checkpoint                   the transparency log's signed checkpoint: mutable
 *   log/tile/{L}/{N}[.p/{W}]         C2SP tlog-tiles hash tiles: immutable
 *   log/tile/entries/{N}[.p/{W}]     C2SP tlog-tiles entry bundles: immutable
 */
import { isTlogError } from '@cairn/tlog/errors';
import { parseTilePath } from '@cairn/tlog/tiles';

export type RepoPathKind =
  'timestamp' | 'root-copy' | 'root' | 'metadata' | 'target' | 'delta' | 'checkpoint' | 'tile';

/** A log tile: a hash tile at `level`, or (`level: 'entries'`) the entry bundle beside level-0 tile `index`. */
export interface LogTile {
  readonly level: number | 'entries';
  readonly index: number;
  /** 256 for a full tile, 1..255 for a partial one. */
  readonly width: number;
}

export interface RepoPath {
  /** The storage key: the decoded path without the leading `/`. */
  readonly key: string;
  readonly kind: RepoPathKind;
  /** Everything but timestamp.json and root.json never changes once written. */
  readonly immutable: boolean;
  /** The version in a versioned metadata file name. */
  readonly version?: number | undefined;
  /** The role of a metadata file. */
  readonly role?: string | undefined;
  /** The sha256 in a target's name (lower-case hex). */
  readonly sha256?: string | undefined;
  /** The TUF target path a target file stands for: `{dir/}{name}`, without the hash. */
  readonly targetPath?: string | undefined;
  /** The tile a `log/tile/...` path names. */
  readonly tile?: LogTile | undefined;
}

const VERSION = /^[1-9][0-9]{0,15}$/;
const ROLE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;
const HASHED = /^([0-9a-f]{64})\.(.+)$/;
export const DELTA_DIRECTORY = '_delta';
/** The log's public prefix in storage and in URLs (DESIGN.md, "Storage layout"). */
export const LOG_PREFIX = 'log/';
export const CHECKPOINT_KEY = `${LOG_PREFIX}checkpoint`;
/** C2SP tlog-tiles: "L ... MUST be a decimal ASCII integer between 0 and 63". */
const MAX_TILE_LEVEL = 63;

/** The log path `rest` (after `log/`) names, or undefined. */
function classifyLogPath(rest: string): RepoPath | undefined {
  if (rest === 'checkpoint') return { key: CHECKPOINT_KEY, kind: 'checkpoint', immutable: false };
  let tile: LogTile;
  try {
    // Strictly C2SP: N as x001/x234/067 groups (canonical), W 1..255, no encoded characters.
    tile = parseTilePath(rest);
  } catch (error) {
    if (isTlogError(error)) return undefined;
    throw error;
  }
  if (tile.level !== 'entries' && tile.level > MAX_TILE_LEVEL) return undefined;
  return { key: `${LOG_PREFIX}${rest}`, kind: 'tile', immutable: true, tile };
}

function decodeSegments(rest: string): string[] | undefined {
  const segments: string[] = [];
  for (const raw of rest.split('/')) {
    let segment: string;
    try {
      segment = decodeURIComponent(raw);
    } catch {
      return undefined;
    }
    // An encoded slash or backslash would make one segment two in storage.
    if (segment === '' || segment === '.' || segment === '..') return undefined;
    if (segment.includes('/') || segment.includes('\\')) return undefined;
    // eslint-disable-next-line no-control-regex -- control characters are what is refused
    if (/[\u0000-\u001f\u007f]/.test(segment)) return undefined;
    segments.push(segment);
  }
  return segments;
}

/** The repository path a request's (still percent-encoded) URL path names, or undefined. */
export function classifyPath(pathname: string): RepoPath | undefined {
  if (pathname.startsWith('/metadata/')) {
    const name = pathname.slice('/metadata/'.length);
    if (name === 'timestamp.json') {
      return {
        key: 'metadata/timestamp.json',
        kind: 'timestamp',
        immutable: false,
        role: 'timestamp',
      };
    }
    if (name === 'root.json') {
      return { key: 'metadata/root.json', kind: 'root-copy', immutable: false, role: 'root' };
    }
    const parts = name.split('.');
    if (parts.length !== 3 || parts[2] !== 'json') return undefined;
    const [versionText = '', role = ''] = parts;
    if (!VERSION.test(versionText) || !ROLE.test(role) || role === 'timestamp') return undefined;
    const version = Number(versionText);
    // Past 2^53 the number is not the name's: no origin writes such a version.
    if (!Number.isSafeInteger(version)) return undefined;
    return {
      key: `metadata/${name}`,
      kind: role === 'root' ? 'root' : 'metadata',
      immutable: true,
      version,
      role,
    };
  }
  if (pathname.startsWith('/targets/')) {
    const segments = decodeSegments(pathname.slice('/targets/'.length));
    if (segments === undefined || segments.length === 0 || segments.length > 32) return undefined;
    const last = segments[segments.length - 1] ?? '';
    const match = HASHED.exec(last);
    if (match === null) return undefined;
    const [, sha256 = '', name = ''] = match;
    const directory = segments.slice(0, -1);
    const targetPath = [...directory, name].join('/');
    return {
      key: `targets/${segments.join('/')}`,
      kind: directory[0] === DELTA_DIRECTORY ? 'delta' : 'target',
      immutable: true,
      sha256,
      targetPath,
    };
  }
  if (pathname.startsWith(`/${LOG_PREFIX}`)) {
    return classifyLogPath(pathname.slice(LOG_PREFIX.length + 1));
  }
  return undefined;
}
