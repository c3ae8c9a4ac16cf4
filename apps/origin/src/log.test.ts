import { describe, expect, it } from 'vitest';
import { OriginError } from './errors.js';
import { createLogger, isLogLevel, type LoggerOptions } from './log.js';

const NOW = new Date('2025-03-04T05:06:07.089Z');

function capture(options: Omit<LoggerOptions, 'write' | 'now'> = {}) {
  const lines: string[] = [];
  const logger = createLogger({ ...options, write: (line) => lines.push(line), now: () => NOW });
  return { logger, lines };
}

describe('createLogger', () => {
  it('writes one JSON object per line: time, level, msg, then the fields', () => {
    const { logger, lines } = capture();
    logger.info('release published', { release: 'r1', version: 7 });
    logger.warn('targets expire soon');
    expect(lines).toEqual([
      '{"time":"2025-03-04T05:06:07.089Z","level":"info","msg":"release published","release":"r1","version":7}',
      '{"time":"2025-03-04T05:06:07.089Z","level":"warn","msg":"targets expire soon"}',
    ]);
  });

  it('drops lines below the level, info by default', () => {
    const quiet = capture();
    quiet.logger.debug('noise');
    quiet.logger.error('boom');
    expect(quiet.lines).toEqual([
      '{"time":"2025-03-04T05:06:07.089Z","level":"error","msg":"boom"}',
    ]);

    const chatty = capture({ level: 'debug' });
    chatty.logger.debug('noise');
    expect(chatty.lines).toEqual([
      '{"time":"2025-03-04T05:06:07.089Z","level":"debug","msg":"noise"}',
    ]);

    const strict = capture({ level: 'warn' });
    strict.logger.info('skipped');
    strict.logger.warn('kept');
    expect(strict.lines).toEqual([
      '{"time":"2025-03-04T05:06:07.089Z","level":"warn","msg":"kept"}',
    ]);
  });

  it('adds the logger fields and child fields to every line, call fields last', () => {
    const { logger, lines } = capture({ fields: { service: 'origin' } });
    const request = logger.child({ requestId: 'q1', route: '/push' });
    request.info('accepted', { route: '/push/r1' });
    logger.info('idle');
    expect(lines).toEqual([
      '{"time":"2025-03-04T05:06:07.089Z","level":"info","msg":"accepted","service":"origin","requestId":"q1","route":"/push/r1"}',
      '{"time":"2025-03-04T05:06:07.089Z","level":"info","msg":"idle","service":"origin"}',
    ]);
  });

  it('renders errors as name, code and message (and cause), never the stack', () => {
    const { logger, lines } = capture();
    const storage = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9000'), {
      code: 'ECONNREFUSED',
      request: { headers: { authorization: 'AWS4-HMAC-SHA256 secret' } },
    });
    const error = new OriginError('STORAGE_UNAVAILABLE', 'storage did not answer', {
      cause: storage,
    });
    logger.error('publish failed', { error, attempts: [new TypeError('bad')] });
    expect(lines).toEqual([
      '{"time":"2025-03-04T05:06:07.089Z","level":"error","msg":"publish failed",' +
        '"error":{"name":"OriginError","code":"STORAGE_UNAVAILABLE","message":"storage did not answer",' +
        '"cause":{"name":"Error","code":"ECONNREFUSED","message":"connect ECONNREFUSED 127.0.0.1:9000"}},' +
        '"attempts":[{"name":"TypeError","message":"bad"}]}',
    ]);
    expect(lines[0]).not.toContain('stack');
    expect(lines[0]).not.toContain('secret');
  });

  it('stops following a cyclic cause chain', () => {
    const { logger, lines } = capture();
    const error = new Error('loop');
    (error as { cause?: unknown }).cause = error;
    logger.error('cycle', { error });
    const loop = '{"name":"Error","message":"loop"';
    expect(lines).toEqual([
      `{"time":"2025-03-04T05:06:07.089Z","level":"error","msg":"cycle","error":${loop},"cause":${loop},"cause":${loop},"cause":${loop}}}}}}`,
    ]);
  });

  it('keeps time, level and msg its own: a field of the same name is renamed', () => {
    const { logger, lines } = capture();
    logger.info('renamed', { time: 'yesterday', level: 'loud', msg: 'other' });
    expect(lines).toEqual([
      '{"time":"2025-03-04T05:06:07.089Z","level":"info","msg":"renamed","field.time":"yesterday","field.level":"loud","field.msg":"other"}',
    ]);
  });

  it('never throws at the caller: unrenderable fields leave a line that says so', () => {
    const { logger, lines } = capture();
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    expect(() => logger.info('odd fields', { cyclic, size: 10n })).not.toThrow();
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
    expect(Object.keys(line)).toEqual(['time', 'level', 'msg', 'logFailure']);
    expect(line['msg']).toBe('odd fields');
    expect(line['logFailure']).toMatch(/^fields could not be rendered: .*circular/i);

    logger.info('big', { size: 10n });
    expect(lines[1]).toBe(
      '{"time":"2025-03-04T05:06:07.089Z","level":"info","msg":"big","size":"10"}',
    );
  });

  it('writes to standard error by default, with a newline', () => {
    const written: string[] = [];
    const original = process.stderr.write.bind(process.stderr);
    process.stderr.write = (chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    };
    try {
      createLogger({ now: () => NOW }).info('to stderr');
    } finally {
      process.stderr.write = original;
    }
    expect(written).toEqual([
      '{"time":"2025-03-04T05:06:07.089Z","level":"info","msg":"to stderr"}\n',
    ]);
  });
});

describe('isLogLevel', () => {
  it('accepts the four levels only', () => {
    expect(['debug', 'info', 'warn', 'error', 'trace', 'toString', 1].map(isLogLevel)).toEqual([
      true,
      true,
      true,
      true,
      false,
      false,
      false,
    ]);
  });
});
