import { describe, expect, test } from 'vitest';
import { canonicalString } from './canonical-json.js';
import { utf8 } from './encoding.js';
import { webHashPort, sha256Hex } from './hash.js';
import {
  DelegatedRole,
  Delegations,
  Metadata,
  SuccinctRoles,
  checkSpecVersion,
  matchPathPattern,
} from './metadata.js';
import { T0 } from './testing/memory-repository.js';

const EXPIRES = '2030-01-01T00:00:00Z';

function doc(signed: Record<string, unknown>, signatures: unknown[] = []): Uint8Array {
  return utf8(JSON.stringify({ signatures, signed }));
}

const timestampSigned = {
  _type: 'timestamp',
  spec_version: '1.0.31',
  version: 3,
  expires: EXPIRES,
  meta: { 'snapshot.json': { version: 7 } },
};

describe('parsing', () => {
  test('a timestamp parses into typed fields', () => {
    const md = Metadata.fromBytes(doc(timestampSigned), 'timestamp');
    expect(md.signed.version).toBe(3);
    expect(md.signed.expires.toISOString()).toBe('2030-01-01T00:00:00.000Z');
    expect(md.signed.snapshotMeta.version).toBe(7);
  });

  test('unrecognized fields at every level survive re-serialization, so signatures still hold', () => {
    const signed = {
      ...timestampSigned,
      x_vendor: { a: [1, 2] },
      meta: { 'snapshot.json': { version: 7, x_meta: 'kept' } },
    };
    const md = Metadata.fromBytes(
      doc(signed, [{ keyid: 'k', sig: 'aa', x_sig: true }]),
      'timestamp',
    );
    expect(canonicalString(md.signed.toJSON())).toBe(canonicalString(signed));
    expect(new TextDecoder().decode(md.signedBytes())).toBe(canonicalString(signed));
    expect(md.toJSON().signatures).toEqual([{ keyid: 'k', sig: 'aa', x_sig: true }]);
  });

  test.each([
    ['_type of another role', { ...timestampSigned, _type: 'snapshot', meta: {} }, 'WRONG_TYPE'],
    ['version as a string', { ...timestampSigned, version: '3' }, 'MALFORMED'],
    ['version 0', { ...timestampSigned, version: 0 }, 'MALFORMED'],
    [
      'expires with fractional seconds',
      { ...timestampSigned, expires: '2030-01-01T00:00:00.5Z' },
      'MALFORMED',
    ],
    [
      'expires that is not a date',
      { ...timestampSigned, expires: '2030-13-01T00:00:00Z' },
      'MALFORMED',
    ],
    ['spec_version 2.0', { ...timestampSigned, spec_version: '2.0' }, 'UNSUPPORTED_SPEC_VERSION'],
    ['timestamp meta without snapshot.json', { ...timestampSigned, meta: {} }, 'MALFORMED'],
    [
      'negative length',
      { ...timestampSigned, meta: { 'snapshot.json': { version: 1, length: -1 } } },
      'MALFORMED',
    ],
    [
      'empty hashes',
      { ...timestampSigned, meta: { 'snapshot.json': { version: 1, hashes: {} } } },
      'MALFORMED',
    ],
  ])('%s is %s', (_name, signed, code) => {
    expect(() => Metadata.fromBytes(doc(signed), 'timestamp')).toThrow(
      expect.objectContaining({ code }),
    );
  });

  test('a float written as 1.0 is refused, though JSON.parse would read it as 1', () => {
    const text = JSON.stringify({ signatures: [], signed: timestampSigned }).replace(
      '"version":3',
      '"version":3.0',
    );
    expect(() => Metadata.fromBytes(utf8(text), 'timestamp')).toThrow(
      expect.objectContaining({ code: 'MALFORMED' }),
    );
  });

  test('invalid UTF-8 and truncated JSON are MALFORMED', () => {
    expect(() => Metadata.fromBytes(new Uint8Array([0x7b, 0xff, 0x7d]), 'timestamp')).toThrow(
      expect.objectContaining({ code: 'MALFORMED' }),
    );
    expect(() => Metadata.fromBytes(doc(timestampSigned).slice(0, 30), 'timestamp')).toThrow(
      expect.objectContaining({ code: 'MALFORMED' }),
    );
  });

  test('two signatures with the same keyid are DUPLICATE_SIGNATURE', () => {
    const sigs = [
      { keyid: 'k', sig: 'aa' },
      { keyid: 'k', sig: 'bb' },
    ];
    expect(() => Metadata.fromBytes(doc(timestampSigned, sigs), 'timestamp')).toThrow(
      expect.objectContaining({ code: 'DUPLICATE_SIGNATURE' }),
    );
  });

  test('spec_version 1.0 and 1.0.x are accepted; 1.1, 1.0.01 and 1 are not', () => {
    for (const ok of ['1.0', '1.0.0', '1.0.31'])
      expect(() => checkSpecVersion(ok, 'x')).not.toThrow();
    for (const bad of ['1.1', '1.0.01', '1', '1.0.x', '']) {
      expect(() => checkSpecVersion(bad, 'x')).toThrow(
        expect.objectContaining({ code: 'UNSUPPORTED_SPEC_VERSION' }),
      );
    }
  });

  test('isExpired is true from the expiry instant on', () => {
    const md = Metadata.fromBytes(doc(timestampSigned), 'timestamp');
    expect(md.signed.isExpired(new Date(T0.getTime() - 1))).toBe(false);
    expect(md.signed.isExpired(T0)).toBe(true);
  });
});

describe('delegations', () => {
  test.each([
    ['a.txt', '*.txt', true],
    ['dir/a.txt', '*.txt', false],
    ['dir/a.txt', '*/*.txt', true],
    ['dir/sub/a.txt', 'dir/*', false],
    ['a.tgz', 'a.t?z', true],
    ['b1', 'b[0-9]', true],
    ['bx', 'b[!0-9]', true],
    ['b1', 'b[!0-9]', false],
    ['a+b(c)', 'a+b(c)', true],
    ['.hidden', '*', true],
  ])('path %j against pattern %j: %j', (path, pattern, expected) => {
    expect(matchPathPattern(path, pattern)).toBe(expected);
  });

  test('path_hash_prefixes match the sha256 of the target path', async () => {
    const hex = await sha256Hex(webHashPort, utf8('file.txt'));
    const role = (prefix: string) =>
      new DelegatedRole({
        name: 'bin',
        keyids: ['k'],
        threshold: 1,
        terminating: false,
        pathHashPrefixes: [prefix],
      });
    expect(await role(hex.slice(0, 2)).isDelegatedPath('file.txt', webHashPort)).toBe(true);
    expect(
      await role(hex.slice(0, 2) === 'ff' ? '00' : 'ff').isDelegatedPath('file.txt', webHashPort),
    ).toBe(false);
  });

  test('a role needs exactly one of paths and path_hash_prefixes', () => {
    expect(
      () => new DelegatedRole({ name: 'r', keyids: [], threshold: 1, terminating: false }),
    ).toThrow(expect.objectContaining({ code: 'MALFORMED' }));
  });

  test.each(['root', 'timestamp', '../evil', 'a/../../b', '/abs', 'a\\b', ''])(
    'a delegated role named %j is BAD_NAME',
    (name) => {
      const json = {
        keys: {},
        roles: [{ name, keyids: [], threshold: 1, terminating: false, paths: ['*'] }],
      };
      expect(() => Delegations.fromJSON(json, 'delegations')).toThrow(
        expect.objectContaining({ code: 'BAD_NAME' }),
      );
    },
  );

  test('a role listed twice is MALFORMED', () => {
    const role = { name: 'a', keyids: [], threshold: 1, terminating: false, paths: ['*'] };
    expect(() => Delegations.fromJSON({ keys: {}, roles: [role, role] }, 'd')).toThrow(
      expect.objectContaining({ code: 'MALFORMED' }),
    );
  });

  describe('succinct hash bins (TAP 15)', () => {
    const bins = new SuccinctRoles({
      keyids: ['k'],
      threshold: 1,
      bitLength: 8,
      namePrefix: 'bin',
    });

    test('names a target bin from the first bit_length bits of sha256(path)', async () => {
      const hex = await sha256Hex(webHashPort, utf8('a/b.txt'));
      expect(await bins.roleForTarget('a/b.txt', webHashPort)).toBe(`bin-${hex.slice(0, 2)}`);
      const wide = new SuccinctRoles({ keyids: [], threshold: 1, bitLength: 12, namePrefix: 'p' });
      const first3 = (parseInt(hex.slice(0, 4), 16) >> 4).toString(16).padStart(3, '0');
      expect(await wide.roleForTarget('a/b.txt', webHashPort)).toBe(`p-${first3}`);
    });

    test('knows exactly which role names are its bins', () => {
      expect(bins.isDelegatedRole('bin-00')).toBe(true);
      expect(bins.isDelegatedRole('bin-ff')).toBe(true);
      expect(bins.isDelegatedRole('bin-100')).toBe(false);
      expect(bins.isDelegatedRole('bin-0')).toBe(false);
      expect(bins.isDelegatedRole('other-00')).toBe(false);
      const one = new SuccinctRoles({ keyids: [], threshold: 1, bitLength: 1, namePrefix: 'b' });
      expect([
        one.isDelegatedRole('b-0'),
        one.isDelegatedRole('b-1'),
        one.isDelegatedRole('b-2'),
      ]).toEqual([true, true, false]);
    });

    test.each(['../evil', '/abs', 'a/../../b'])(
      'a name_prefix %j that climbs is BAD_NAME',
      (prefix) => {
        const json = {
          keys: {},
          succinct_roles: { keyids: [], threshold: 1, bit_length: 4, name_prefix: prefix },
        };
        expect(() => Delegations.fromJSON(json, 'delegations')).toThrow(
          expect.objectContaining({ code: 'BAD_NAME' }),
        );
      },
    );

    test('bit_length outside 1..32 is MALFORMED', () => {
      expect(
        () => new SuccinctRoles({ keyids: [], threshold: 1, bitLength: 33, namePrefix: 'b' }),
      ).toThrow(expect.objectContaining({ code: 'MALFORMED' }));
    });
  });
});
