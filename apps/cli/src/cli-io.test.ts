import { describe, expect, it } from 'vitest';
import { OriginError } from '@cairn/origin/errors';
import { VerifyError } from '@cairn/verify/errors';
import { failureCode, failureHint, failureLine, UsageError, withHint } from './cli-io.js';

function systemError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code, errno: -2, syscall: 'open' });
}

describe('failureLine', () => {
  it('uses the VerifyError code', () => {
    expect(failureLine(new VerifyError('ROLLBACK', 'timestamp: version 1 is older than 2'))).toBe(
      '✘ ROLLBACK: timestamp: version 1 is older than 2',
    );
  });

  it('says USAGE for bad arguments', () => {
    expect(failureLine(new UsageError('missing --metadata-dir'))).toBe(
      '✘ USAGE: missing --metadata-dir',
    );
  });

  it('says IO for file system errors', () => {
    const e = systemError('EACCES', "EACCES: permission denied, open '/md/root.json'");
    expect(failureCode(e)).toBe('IO');
    expect(failureLine(e)).toBe("✘ IO: EACCES: permission denied, open '/md/root.json'");
  });

  it("prints an OriginError's own code", () => {
    expect(
      failureLine(new OriginError('UNKNOWN_KEY', 'ab12 is not the key of any publisher')),
    ).toBe('✘ UNKNOWN_KEY: ab12 is not the key of any publisher');
  });

  it("prints the code of storage and delta errors, matched by the class's name", () => {
    // Stand-ins with the real classes' names and shape: the CLI does not depend on those packages.
    class StorageError extends Error {
      override readonly name = 'StorageError';
      readonly code = 'UNAVAILABLE';
    }
    class DeltaError extends Error {
      override readonly name = 'DeltaError';
      readonly code = 'BASE_MISMATCH';
    }
    expect(failureLine(new StorageError('s3 did not answer'))).toBe(
      '✘ UNAVAILABLE: s3 did not answer',
    );
    expect(failureLine(new DeltaError('wrong base'))).toBe('✘ BASE_MISMATCH: wrong base');
    const other = Object.assign(new Error('x'), { code: 'SOMETHING' });
    expect(failureCode(other)).toBe('INTERNAL');
  });

  it('says INTERNAL for anything else, and for non-errors', () => {
    expect(failureLine(new TypeError('x is undefined'))).toBe('✘ INTERNAL: x is undefined');
    expect(failureLine('thrown string')).toBe('✘ INTERNAL: thrown string');
  });

  it('keeps a multi-line message on one line', () => {
    expect(failureLine(new UsageError('first\n  second\r\nthird'))).toBe(
      '✘ USAGE: first second third',
    );
  });
});

describe('failureHint', () => {
  it('is the first hint attached, on one line', () => {
    const error = withHint(new UsageError('x'), 'first\n line');
    withHint(error, 'second');
    expect(failureHint(error)).toBe('  hint: first line');
  });

  it('is undefined without a hint, and for non-objects', () => {
    expect(failureHint(new Error('x'))).toBeUndefined();
    expect(withHint('text', 'ignored')).toBe('text');
    expect(failureHint('text')).toBeUndefined();
  });
});
