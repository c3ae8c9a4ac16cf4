import { describe, expect, it } from 'vitest';
import { VerifyError } from '@cairn/verify/errors';
import { failureCode, failureLine, UsageError } from './cli-io.js';

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
