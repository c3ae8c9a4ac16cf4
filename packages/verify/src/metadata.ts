/**
 * The TUF 1.0.x metadata model: root, timestamp, snapshot, targets and delegated targets.
 * Every object keeps the fields it does not interpret and writes them back, and metadata
 * parsed from bytes is verified over the canonical form of the exact object received, so
 * re-serialization can never break a signature.
 */
import { canonicalize } from './canonical-json.js';
import { utf8 } from './encoding.js';
import { VerifyError } from './errors.js';
import { digest, sha256Hex, type HashPort } from './hash.js';
import { Key } from './keys.js';
import {
  asArray,
  asBoolean,
  asInteger,
  asObject,
  asString,
  asStringArray,
  asStringRecord,
  extraFields,
  parseJson,
  type JsonObject,
} from './json.js';
import { MAX_SUCCINCT_BIT_LENGTH } from './limits.js';
import { checkRoleName } from './names.js';

export const TOP_LEVEL_ROLES = ['root', 'timestamp', 'snapshot', 'targets'] as const;
export type TopLevelRole = (typeof TOP_LEVEL_ROLES)[number];
export type RoleType = TopLevelRole;

export function isTopLevelRole(name: string): name is TopLevelRole {
  return (TOP_LEVEL_ROLES as readonly string[]).includes(name);
}

/** The spec_version this implementation writes. */
export const SPEC_VERSION = '1.0.31';

/** Accepts "1.0" and "1.0.x": the spec versions whose client workflow this code implements. */
export function checkSpecVersion(value: string, where: string): void {
  if (!/^1\.0(\.(0|[1-9][0-9]*))?$/.test(value)) {
    throw new VerifyError(
      'UNSUPPORTED_SPEC_VERSION',
      `${where}: spec_version ${JSON.stringify(value)} is not supported (expected 1.0 or 1.0.x)`,
    );
  }
}

const EXPIRES_FORMAT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;

export function parseExpires(value: string, where: string): Date {
  const m = EXPIRES_FORMAT.exec(value);
  const date = new Date(value);
  if (
    m === null ||
    Number.isNaN(date.getTime()) ||
    date.toISOString().slice(0, 19) !== value.slice(0, 19)
  ) {
    throw new VerifyError(
      'MALFORMED',
      `${where}: expected a date as YYYY-MM-DDTHH:MM:SSZ, received ${JSON.stringify(value)}`,
    );
  }
  return date;
}

export function formatExpires(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

/** A set of keys and a threshold: what a delegator says a role needs. */
export class Role {
  readonly keyids: readonly string[];
  readonly threshold: number;
  readonly extra: JsonObject;

  constructor(keyids: readonly string[], threshold: number, extra: JsonObject = {}) {
    if (!Number.isSafeInteger(threshold) || threshold < 1) {
      throw new VerifyError(
        'MALFORMED',
        `threshold: expected an integer >= 1, received ${threshold}`,
      );
    }
    if (new Set(keyids).size !== keyids.length) {
      throw new VerifyError('MALFORMED', `keyids: the same keyid is listed twice`);
    }
    this.keyids = keyids;
    this.threshold = threshold;
    this.extra = extra;
  }

  static fromJSON(value: unknown, where: string): Role {
    const obj = asObject(value, where);
    const keyids = asStringArray(obj.keyids, `${where}.keyids`);
    const threshold = asInteger(obj.threshold, `${where}.threshold`, 1);
    try {
      return new Role(keyids, threshold, extraFields(obj, ['keyids', 'threshold']));
    } catch (e) {
      throw new VerifyError('MALFORMED', `${where}: ${(e as Error).message}`, { cause: e });
    }
  }

  toJSON(): JsonObject {
    return { ...this.extra, keyids: [...this.keyids], threshold: this.threshold };
  }
}

/** What a delegator lends a role: its keys and the keys and threshold it requires. */
export interface Delegation {
  readonly keys: ReadonlyMap<string, Key>;
  readonly role: Role;
}

interface SignedCommon {
  readonly specVersion: string;
  readonly version: number;
  readonly expires: Date;
  readonly extra?: JsonObject;
}

abstract class SignedBase {
  abstract readonly type: RoleType;
  readonly specVersion: string;
  readonly version: number;
  readonly expires: Date;
  readonly extra: JsonObject;

  constructor(common: SignedCommon) {
    if (!Number.isSafeInteger(common.version) || common.version < 1) {
      throw new VerifyError(
        'MALFORMED',
        `version: expected an integer >= 1, received ${common.version}`,
      );
    }
    this.specVersion = common.specVersion;
    this.version = common.version;
    this.expires = common.expires;
    this.extra = common.extra ?? {};
  }

  /** Expired when the reference time has reached the expiry (python-tuf: `now >= expires`). */
  isExpired(referenceTime: Date): boolean {
    return referenceTime.getTime() >= this.expires.getTime();
  }

  protected commonJSON(): JsonObject {
    return {
      ...this.extra,
      _type: this.type,
      spec_version: this.specVersion,
      version: this.version,
      expires: formatExpires(this.expires),
    };
  }

  abstract toJSON(): JsonObject;
}

const COMMON_FIELDS = ['_type', 'spec_version', 'version', 'expires'] as const;

function parseCommon(obj: JsonObject, where: string, known: readonly string[]): SignedCommon {
  const specVersion = asString(obj.spec_version, `${where}.spec_version`);
  checkSpecVersion(specVersion, where);
  return {
    specVersion,
    version: asInteger(obj.version, `${where}.version`, 1),
    expires: parseExpires(asString(obj.expires, `${where}.expires`), `${where}.expires`),
    extra: extraFields(obj, [...COMMON_FIELDS, ...known]),
  };
}

function parseKeys(value: unknown, where: string): Map<string, Key> {
  const obj = asObject(value, where);
  const keys = new Map<string, Key>();
  for (const [keyid, key] of Object.entries(obj))
    keys.set(keyid, Key.fromJSON(key, `${where}.${keyid}`));
  return keys;
}

// Object.fromEntries, not assignment: a key named "__proto__" must stay an ordinary entry.
function keysJSON(keys: ReadonlyMap<string, Key>): JsonObject {
  return Object.fromEntries([...keys].map(([keyid, key]) => [keyid, key.toJSON()]));
}

export class Root extends SignedBase {
  readonly type = 'root' as const;
  readonly consistentSnapshot: boolean | undefined;
  readonly keys: ReadonlyMap<string, Key>;
  readonly roles: Readonly<Record<TopLevelRole, Role>>;

  constructor(
    fields: SignedCommon & {
      consistentSnapshot?: boolean | undefined;
      keys: ReadonlyMap<string, Key>;
      roles: Readonly<Record<TopLevelRole, Role>>;
    },
  ) {
    super(fields);
    this.consistentSnapshot = fields.consistentSnapshot;
    this.keys = fields.keys;
    this.roles = fields.roles;
  }

  static fromJSON(obj: JsonObject, where = 'root'): Root {
    const rolesObj = asObject(obj.roles, `${where}.roles`);
    const names = Object.keys(rolesObj).sort();
    if (names.join(',') !== [...TOP_LEVEL_ROLES].sort().join(',')) {
      throw new VerifyError(
        'MALFORMED',
        `${where}.roles: expected exactly root, snapshot, targets and timestamp, received ${names.join(', ') || 'none'}`,
      );
    }
    const roles = Object.fromEntries(
      TOP_LEVEL_ROLES.map((name) => [
        name,
        Role.fromJSON(rolesObj[name], `${where}.roles.${name}`),
      ]),
    ) as Record<TopLevelRole, Role>;
    return new Root({
      ...parseCommon(obj, where, ['consistent_snapshot', 'keys', 'roles']),
      consistentSnapshot:
        obj.consistent_snapshot === undefined
          ? undefined
          : asBoolean(obj.consistent_snapshot, `${where}.consistent_snapshot`),
      keys: parseKeys(obj.keys, `${where}.keys`),
      roles,
    });
  }

  toJSON(): JsonObject {
    const roles = Object.fromEntries(
      TOP_LEVEL_ROLES.map((name) => [name, this.roles[name].toJSON()]),
    );
    return {
      ...this.commonJSON(),
      ...(this.consistentSnapshot === undefined
        ? {}
        : { consistent_snapshot: this.consistentSnapshot }),
      keys: keysJSON(this.keys),
      roles,
    };
  }

  delegationFor(roleName: string): Delegation | undefined {
    return isTopLevelRole(roleName) ? { keys: this.keys, role: this.roles[roleName] } : undefined;
  }
}

/** What timestamp says of snapshot, and snapshot of each targets role. */
export class MetaFile {
  readonly version: number;
  readonly length: number | undefined;
  readonly hashes: Readonly<Record<string, string>> | undefined;
  readonly extra: JsonObject;

  constructor(fields: {
    version: number;
    length?: number | undefined;
    hashes?: Readonly<Record<string, string>> | undefined;
    extra?: JsonObject;
  }) {
    this.version = fields.version;
    this.length = fields.length;
    this.hashes = fields.hashes;
    this.extra = fields.extra ?? {};
  }

  static fromJSON(value: unknown, where: string): MetaFile {
    const obj = asObject(value, where);
    const hashes =
      obj.hashes === undefined ? undefined : asStringRecord(obj.hashes, `${where}.hashes`);
    if (hashes !== undefined && Object.keys(hashes).length === 0) {
      throw new VerifyError(
        'MALFORMED',
        `${where}.hashes: expected at least one hash, received none`,
      );
    }
    return new MetaFile({
      version: asInteger(obj.version, `${where}.version`, 1),
      length: obj.length === undefined ? undefined : asInteger(obj.length, `${where}.length`, 0),
      hashes,
      extra: extraFields(obj, ['version', 'length', 'hashes']),
    });
  }

  toJSON(): JsonObject {
    return {
      ...this.extra,
      version: this.version,
      ...(this.length === undefined ? {} : { length: this.length }),
      ...(this.hashes === undefined ? {} : { hashes: { ...this.hashes } }),
    };
  }
}

export class Timestamp extends SignedBase {
  readonly type = 'timestamp' as const;
  readonly snapshotMeta: MetaFile;

  constructor(fields: SignedCommon & { snapshotMeta: MetaFile }) {
    super(fields);
    this.snapshotMeta = fields.snapshotMeta;
  }

  static fromJSON(obj: JsonObject, where = 'timestamp'): Timestamp {
    const meta = asObject(obj.meta, `${where}.meta`);
    const names = Object.keys(meta);
    if (names.length !== 1 || names[0] !== 'snapshot.json') {
      throw new VerifyError(
        'MALFORMED',
        `${where}.meta: expected exactly one entry, snapshot.json, received ${names.join(', ') || 'none'}`,
      );
    }
    return new Timestamp({
      ...parseCommon(obj, where, ['meta']),
      snapshotMeta: MetaFile.fromJSON(meta['snapshot.json'], `${where}.meta.snapshot.json`),
    });
  }

  toJSON(): JsonObject {
    return { ...this.commonJSON(), meta: { 'snapshot.json': this.snapshotMeta.toJSON() } };
  }
}

export class Snapshot extends SignedBase {
  readonly type = 'snapshot' as const;
  /** Keyed by file name: "targets.json", "<role>.json". */
  readonly meta: ReadonlyMap<string, MetaFile>;

  constructor(fields: SignedCommon & { meta: ReadonlyMap<string, MetaFile> }) {
    super(fields);
    this.meta = fields.meta;
  }

  static fromJSON(obj: JsonObject, where = 'snapshot'): Snapshot {
    const metaObj = asObject(obj.meta, `${where}.meta`);
    const meta = new Map<string, MetaFile>();
    for (const [name, value] of Object.entries(metaObj)) {
      meta.set(name, MetaFile.fromJSON(value, `${where}.meta.${name}`));
    }
    return new Snapshot({ ...parseCommon(obj, where, ['meta']), meta });
  }

  toJSON(): JsonObject {
    const meta = Object.fromEntries([...this.meta].map(([name, file]) => [name, file.toJSON()]));
    return { ...this.commonJSON(), meta };
  }
}

export class TargetFile {
  readonly path: string;
  readonly length: number;
  readonly hashes: Readonly<Record<string, string>>;
  readonly custom: unknown;
  readonly extra: JsonObject;

  constructor(fields: {
    path: string;
    length: number;
    hashes: Readonly<Record<string, string>>;
    custom?: unknown;
    extra?: JsonObject;
  }) {
    this.path = fields.path;
    this.length = fields.length;
    this.hashes = fields.hashes;
    this.custom = fields.custom;
    this.extra = fields.extra ?? {};
  }

  static fromJSON(path: string, value: unknown, where: string): TargetFile {
    const obj = asObject(value, where);
    const hashes = asStringRecord(obj.hashes, `${where}.hashes`);
    if (Object.keys(hashes).length === 0) {
      throw new VerifyError(
        'MALFORMED',
        `${where}.hashes: expected at least one hash, received none`,
      );
    }
    return new TargetFile({
      path,
      length: asInteger(obj.length, `${where}.length`, 0),
      hashes,
      custom: obj.custom,
      extra: extraFields(obj, ['length', 'hashes', 'custom']),
    });
  }

  toJSON(): JsonObject {
    return {
      ...this.extra,
      length: this.length,
      hashes: { ...this.hashes },
      ...(this.custom === undefined ? {} : { custom: this.custom }),
    };
  }
}

/** Escapes one code point for use inside a RegExp character class (unicode mode). */
function classChar(c: string): string {
  return /[\\\][^-]/.test(c) ? `\\${c}` : c;
}

/**
 * The character set `[...]` of Python's `fnmatch.translate`, as a RegExp fragment: `]` first is
 * literal, `!` negates, `a-z` ranges (a reversed range matches nothing), `-` first or last is
 * literal. `body` is the text between the brackets.
 */
function translateSet(body: string): string {
  const negated = body.startsWith('!');
  const chars = Array.from(negated ? body.slice(1) : body);
  // Split on the hyphens that make ranges: never the first character, as CPython does.
  const chunks: string[][] = [];
  let current: string[] = [];
  for (let k = 0; k < chars.length; k++) {
    const c = chars[k] ?? '';
    if (c === '-' && current.length > 0 && k + 1 < chars.length) {
      chunks.push(current);
      current = [chars[++k] ?? ''];
    } else {
      current.push(c);
    }
  }
  chunks.push(current);
  // A range whose ends are reversed is empty: drop both ends, as CPython does.
  for (let m = chunks.length - 1; m > 0; m--) {
    const prev = chunks[m - 1] ?? [];
    const cur = chunks[m] ?? [];
    if ((prev[prev.length - 1]?.codePointAt(0) ?? 0) > (cur[0]?.codePointAt(0) ?? 0)) {
      chunks.splice(m - 1, 2, [...prev.slice(0, -1), ...cur.slice(1)]);
    }
  }
  const inner = chunks.map((chunk) => chunk.map(classChar).join('')).join('-');
  if (inner === '') return negated ? '.' : '(?!)';
  return negated ? `[^${inner}]` : `[${inner}]`;
}

/** Python's fnmatch for one path segment: `*`, `?`, `[seq]` and `[!seq]`. */
function fnmatchSegment(name: string, pattern: string): boolean {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] ?? '';
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      let j = i + 1;
      if (pattern[j] === '!') j++;
      if (pattern[j] === ']') j++;
      while (j < pattern.length && pattern[j] !== ']') j++;
      if (j >= pattern.length) {
        re += '\\[';
      } else {
        re += translateSet(pattern.slice(i + 1, j));
        i = j;
      }
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  try {
    return new RegExp(`^${re}$`, 'su').test(name);
  } catch {
    // A pattern we cannot translate matches nothing rather than breaking the search.
    return false;
  }
}

/**
 * Whether a target path matches a delegation's path pattern. As in python-tuf, patterns
 * match segment by segment, so `*` never crosses a `/`.
 */
export function matchPathPattern(targetPath: string, pattern: string): boolean {
  const targetParts = targetPath.split('/');
  const patternParts = pattern.split('/');
  if (targetParts.length !== patternParts.length) return false;
  return targetParts.every((part, i) => fnmatchSegment(part, patternParts[i] ?? ''));
}

export class DelegatedRole extends Role {
  readonly name: string;
  readonly terminating: boolean;
  readonly paths: readonly string[] | undefined;
  readonly pathHashPrefixes: readonly string[] | undefined;

  constructor(fields: {
    name: string;
    keyids: readonly string[];
    threshold: number;
    terminating: boolean;
    paths?: readonly string[] | undefined;
    pathHashPrefixes?: readonly string[] | undefined;
    extra?: JsonObject;
  }) {
    super(fields.keyids, fields.threshold, fields.extra ?? {});
    if ((fields.paths === undefined) === (fields.pathHashPrefixes === undefined)) {
      throw new VerifyError(
        'MALFORMED',
        `delegated role ${JSON.stringify(fields.name)}: exactly one of paths and path_hash_prefixes must be set`,
      );
    }
    this.name = fields.name;
    this.terminating = fields.terminating;
    this.paths = fields.paths;
    this.pathHashPrefixes = fields.pathHashPrefixes;
  }

  static fromJSONRole(value: unknown, where: string): DelegatedRole {
    const obj = asObject(value, where);
    const name = asString(obj.name, `${where}.name`);
    checkRoleName(name, `${where}.name`);
    return new DelegatedRole({
      name,
      keyids: asStringArray(obj.keyids, `${where}.keyids`),
      threshold: asInteger(obj.threshold, `${where}.threshold`, 1),
      terminating: asBoolean(obj.terminating, `${where}.terminating`),
      paths: obj.paths === undefined ? undefined : asStringArray(obj.paths, `${where}.paths`),
      pathHashPrefixes:
        obj.path_hash_prefixes === undefined
          ? undefined
          : asStringArray(obj.path_hash_prefixes, `${where}.path_hash_prefixes`),
      extra: extraFields(obj, [
        'name',
        'keyids',
        'threshold',
        'terminating',
        'paths',
        'path_hash_prefixes',
      ]),
    });
  }

  override toJSON(): JsonObject {
    return {
      ...super.toJSON(),
      name: this.name,
      terminating: this.terminating,
      ...(this.paths === undefined ? {} : { paths: [...this.paths] }),
      ...(this.pathHashPrefixes === undefined
        ? {}
        : { path_hash_prefixes: [...this.pathHashPrefixes] }),
    };
  }

  async isDelegatedPath(targetPath: string, hash: HashPort): Promise<boolean> {
    if (this.paths !== undefined) return this.paths.some((p) => matchPathPattern(targetPath, p));
    const prefixes = this.pathHashPrefixes ?? [];
    if (prefixes.length === 0) return false;
    const hex = await sha256Hex(hash, utf8(targetPath));
    return prefixes.some((prefix) => hex.startsWith(prefix));
  }
}

/** Succinct hash bin delegations (TAP 15): 2^bit_length terminating roles named by hash. */
export class SuccinctRoles extends Role {
  readonly bitLength: number;
  readonly namePrefix: string;

  constructor(fields: {
    keyids: readonly string[];
    threshold: number;
    bitLength: number;
    namePrefix: string;
    extra?: JsonObject;
  }) {
    super(fields.keyids, fields.threshold, fields.extra ?? {});
    if (
      !Number.isSafeInteger(fields.bitLength) ||
      fields.bitLength < 1 ||
      fields.bitLength > MAX_SUCCINCT_BIT_LENGTH
    ) {
      throw new VerifyError(
        'MALFORMED',
        `succinct_roles.bit_length: expected 1 to ${MAX_SUCCINCT_BIT_LENGTH}, received ${fields.bitLength}`,
      );
    }
    this.bitLength = fields.bitLength;
    this.namePrefix = fields.namePrefix;
  }

  static fromJSONSuccinct(value: unknown, where: string): SuccinctRoles {
    const obj = asObject(value, where);
    const roles = new SuccinctRoles({
      keyids: asStringArray(obj.keyids, `${where}.keyids`),
      threshold: asInteger(obj.threshold, `${where}.threshold`, 1),
      bitLength: asInteger(obj.bit_length, `${where}.bit_length`, 1),
      namePrefix: asString(obj.name_prefix, `${where}.name_prefix`),
      extra: extraFields(obj, ['keyids', 'threshold', 'bit_length', 'name_prefix']),
    });
    // Every bin name has the same path segments as the first: checking it checks them all.
    checkRoleName(roles.binName(0), `${where}.name_prefix`);
    return roles;
  }

  override toJSON(): JsonObject {
    return { ...super.toJSON(), bit_length: this.bitLength, name_prefix: this.namePrefix };
  }

  get numberOfBins(): number {
    return 2 ** this.bitLength;
  }

  get suffixLength(): number {
    return (this.numberOfBins - 1).toString(16).length;
  }

  binName(bin: number): string {
    return `${this.namePrefix}-${bin.toString(16).padStart(this.suffixLength, '0')}`;
  }

  /** The bin for a target: the first bit_length bits of sha256(path). */
  async roleForTarget(targetPath: string, hash: HashPort): Promise<string> {
    const h = await digest(hash, 'sha256', utf8(targetPath));
    const first32 =
      (((h[0] ?? 0) << 24) | ((h[1] ?? 0) << 16) | ((h[2] ?? 0) << 8) | (h[3] ?? 0)) >>> 0;
    return this.binName(Math.floor(first32 / 2 ** (32 - this.bitLength)));
  }

  isDelegatedRole(roleName: string): boolean {
    const prefix = `${this.namePrefix}-`;
    if (!roleName.startsWith(prefix)) return false;
    const suffix = roleName.slice(prefix.length);
    if (suffix.length !== this.suffixLength || !/^[0-9a-fA-F]+$/.test(suffix)) return false;
    return parseInt(suffix, 16) < this.numberOfBins;
  }
}

export class Delegations {
  readonly keys: ReadonlyMap<string, Key>;
  readonly roles: readonly DelegatedRole[] | undefined;
  readonly succinctRoles: SuccinctRoles | undefined;
  readonly extra: JsonObject;

  constructor(fields: {
    keys: ReadonlyMap<string, Key>;
    roles?: readonly DelegatedRole[] | undefined;
    succinctRoles?: SuccinctRoles | undefined;
    extra?: JsonObject;
  }) {
    if ((fields.roles === undefined) === (fields.succinctRoles === undefined)) {
      throw new VerifyError(
        'MALFORMED',
        'delegations: exactly one of roles and succinct_roles must be set',
      );
    }
    const seen = new Set<string>();
    for (const role of fields.roles ?? []) {
      if (seen.has(role.name)) {
        throw new VerifyError(
          'MALFORMED',
          `delegations: role ${JSON.stringify(role.name)} is listed twice`,
        );
      }
      seen.add(role.name);
    }
    this.keys = fields.keys;
    this.roles = fields.roles;
    this.succinctRoles = fields.succinctRoles;
    this.extra = fields.extra ?? {};
  }

  static fromJSON(value: unknown, where: string): Delegations {
    const obj = asObject(value, where);
    return new Delegations({
      keys: parseKeys(obj.keys, `${where}.keys`),
      roles:
        obj.roles === undefined
          ? undefined
          : asArray(obj.roles, `${where}.roles`).map((r, i) =>
              DelegatedRole.fromJSONRole(r, `${where}.roles[${i}]`),
            ),
      succinctRoles:
        obj.succinct_roles === undefined
          ? undefined
          : SuccinctRoles.fromJSONSuccinct(obj.succinct_roles, `${where}.succinct_roles`),
      extra: extraFields(obj, ['keys', 'roles', 'succinct_roles']),
    });
  }

  toJSON(): JsonObject {
    return {
      ...this.extra,
      keys: keysJSON(this.keys),
      ...(this.roles === undefined ? {} : { roles: this.roles.map((r) => r.toJSON()) }),
      ...(this.succinctRoles === undefined ? {} : { succinct_roles: this.succinctRoles.toJSON() }),
    };
  }

  /** The roles that may list `targetPath`, in order, each with whether it terminates the search. */
  async rolesForTarget(
    targetPath: string,
    hash: HashPort,
  ): Promise<{ name: string; terminating: boolean }[]> {
    if (this.succinctRoles !== undefined) {
      return [
        { name: await this.succinctRoles.roleForTarget(targetPath, hash), terminating: true },
      ];
    }
    const out: { name: string; terminating: boolean }[] = [];
    for (const role of this.roles ?? []) {
      if (await role.isDelegatedPath(targetPath, hash))
        out.push({ name: role.name, terminating: role.terminating });
    }
    return out;
  }
}

export class Targets extends SignedBase {
  readonly type = 'targets' as const;
  readonly targets: ReadonlyMap<string, TargetFile>;
  readonly delegations: Delegations | undefined;

  constructor(
    fields: SignedCommon & {
      targets: ReadonlyMap<string, TargetFile>;
      delegations?: Delegations | undefined;
    },
  ) {
    super(fields);
    this.targets = fields.targets;
    this.delegations = fields.delegations;
  }

  static fromJSON(obj: JsonObject, where = 'targets'): Targets {
    const targetsObj = asObject(obj.targets, `${where}.targets`);
    const targets = new Map<string, TargetFile>();
    for (const [path, value] of Object.entries(targetsObj)) {
      targets.set(path, TargetFile.fromJSON(path, value, `${where}.targets.${path}`));
    }
    return new Targets({
      ...parseCommon(obj, where, ['targets', 'delegations']),
      targets,
      delegations:
        obj.delegations === undefined
          ? undefined
          : Delegations.fromJSON(obj.delegations, `${where}.delegations`),
    });
  }

  toJSON(): JsonObject {
    const targets = Object.fromEntries(
      [...this.targets].map(([path, file]) => [path, file.toJSON()]),
    );
    return {
      ...this.commonJSON(),
      targets,
      ...(this.delegations === undefined ? {} : { delegations: this.delegations.toJSON() }),
    };
  }

  delegationFor(roleName: string): Delegation | undefined {
    const d = this.delegations;
    if (d === undefined) return undefined;
    const role =
      d.roles?.find((r) => r.name === roleName) ??
      (d.succinctRoles?.isDelegatedRole(roleName) === true ? d.succinctRoles : undefined);
    return role === undefined ? undefined : { keys: d.keys, role };
  }
}

export type Signed = Root | Timestamp | Snapshot | Targets;
export type SignedOf<T extends RoleType> = Extract<Signed, { type: T }>;

export interface Signature {
  readonly keyid: string;
  readonly sig: string;
  readonly extra?: JsonObject;
}

function parseSigned(obj: JsonObject, type: string, where: string): Signed {
  switch (type) {
    case 'root':
      return Root.fromJSON(obj, where);
    case 'timestamp':
      return Timestamp.fromJSON(obj, where);
    case 'snapshot':
      return Snapshot.fromJSON(obj, where);
    case 'targets':
      return Targets.fromJSON(obj, where);
    default:
      throw new VerifyError(
        'MALFORMED',
        `${where}._type: unknown role type ${JSON.stringify(type)}`,
      );
  }
}

/** A signed document: the signed part, its signatures, and the exact object they cover. */
export class Metadata<T extends Signed = Signed> {
  readonly signed: T;
  readonly signatures: readonly Signature[];
  readonly extra: JsonObject;
  readonly #signedJSON: JsonObject;
  #canonical: Uint8Array | undefined;

  constructor(
    signed: T,
    signatures: readonly Signature[] = [],
    options: { signedJSON?: JsonObject; extra?: JsonObject } = {},
  ) {
    const seen = new Set<string>();
    for (const s of signatures) {
      if (seen.has(s.keyid)) {
        throw new VerifyError(
          'DUPLICATE_SIGNATURE',
          `${signed.type}: more than one signature from keyid ${s.keyid}`,
        );
      }
      seen.add(s.keyid);
    }
    this.signed = signed;
    this.signatures = signatures;
    this.extra = options.extra ?? {};
    this.#signedJSON = options.signedJSON ?? signed.toJSON();
  }

  /**
   * Parses metadata bytes. With `expected`, anything but that role type is WRONG_TYPE: a
   * snapshot served as timestamp never gets as far as signature checks.
   */
  static fromBytes<R extends RoleType>(
    bytes: Uint8Array,
    expected: R,
    what?: string,
  ): Metadata<SignedOf<R>>;
  static fromBytes(bytes: Uint8Array, expected?: undefined, what?: string): Metadata;
  static fromBytes(bytes: Uint8Array, expected?: RoleType, what?: string): Metadata {
    const where = what ?? expected ?? 'metadata';
    const doc = asObject(parseJson(bytes, where), where);
    const signedObj = asObject(doc.signed, `${where}.signed`);
    const type = asString(signedObj._type, `${where}.signed._type`);
    if (expected !== undefined && type !== expected) {
      throw new VerifyError(
        'WRONG_TYPE',
        `${where}: expected _type ${expected}, received ${JSON.stringify(type)}`,
      );
    }
    const signatures = asArray(doc.signatures, `${where}.signatures`).map((value, i): Signature => {
      const s = asObject(value, `${where}.signatures[${i}]`);
      return {
        keyid: asString(s.keyid, `${where}.signatures[${i}].keyid`),
        sig: asString(s.sig, `${where}.signatures[${i}].sig`),
        extra: extraFields(s, ['keyid', 'sig']),
      };
    });
    const signed = parseSigned(signedObj, type, `${where}.signed`);
    return new Metadata(signed, signatures, {
      signedJSON: signedObj,
      extra: extraFields(doc, ['signed', 'signatures']),
    });
  }

  /** The canonical bytes the signatures are over. */
  signedBytes(): Uint8Array {
    this.#canonical ??= canonicalize(this.#signedJSON);
    return this.#canonical;
  }

  toJSON(): JsonObject {
    return {
      ...this.extra,
      signatures: this.signatures.map((s) => ({ ...s.extra, keyid: s.keyid, sig: s.sig })),
      signed: this.#signedJSON,
    };
  }

  /** Standard JSON (not canonical: canonical form may hold raw control characters). */
  toBytes(): Uint8Array {
    return utf8(JSON.stringify(this.toJSON(), null, 1));
  }

  withSignatures(signatures: readonly Signature[]): Metadata<T> {
    return new Metadata(this.signed, signatures, {
      signedJSON: this.#signedJSON,
      extra: this.extra,
    });
  }
}

/**
 * Verifies that `metadata` carries a threshold of valid signatures from the keys its
 * delegator names for `roleName`. Each key counts once, however many keyids list it.
 */
export async function verifyDelegate(
  delegator: Root | Targets,
  roleName: string,
  metadata: Metadata,
): Promise<void> {
  const delegation = delegator.delegationFor(roleName);
  if (delegation === undefined) {
    throw new VerifyError(
      'THRESHOLD',
      `${roleName}: the ${delegator.type} metadata does not delegate to this role`,
    );
  }
  const { keys, role } = delegation;
  const data = metadata.signedBytes();
  const byKeyId = new Map(metadata.signatures.map((s) => [s.keyid, s.sig]));
  const counted = new Set<string>();
  for (const keyid of role.keyids) {
    if (counted.size >= role.threshold) break;
    const key = keys.get(keyid);
    const sig = byKeyId.get(keyid);
    if (key === undefined || sig === undefined) continue;
    const identity = await key.identity();
    if (counted.has(identity)) continue;
    if (await key.verify(sig, data)) counted.add(identity);
  }
  if (counted.size < role.threshold) {
    throw new VerifyError(
      'THRESHOLD',
      `${roleName}: ${counted.size} valid signature(s), the threshold is ${role.threshold}`,
    );
  }
}
