import { describe, expect, it } from 'vitest';
import { isOriginError } from '@cairn/origin/errors';
import { parsePublisherArgument } from './init-command.js';

describe('parsePublisherArgument', () => {
  it('takes NAME= before the file, or names the publisher after the file', () => {
    expect(parsePublisherArgument('bob=keys/laptop.key.pub')).toEqual({
      name: 'bob',
      file: 'keys/laptop.key.pub',
    });
    expect(parsePublisherArgument('keys/alice.key.pub')).toEqual({
      name: 'alice',
      file: 'keys/alice.key.pub',
    });
    expect(parsePublisherArgument('carol.pub')).toEqual({ name: 'carol', file: 'carol.pub' });
    expect(parsePublisherArgument('release-bot_2.key')).toEqual({
      name: 'release-bot_2',
      file: 'release-bot_2.key',
    });
    // Only the first = splits: the rest is the file's.
    expect(parsePublisherArgument('dave=a=b.pub')).toEqual({ name: 'dave', file: 'a=b.pub' });
  });

  it('refuses a name that is not 1 to 64 of A-Z a-z 0-9 . _ -', () => {
    for (const arg of [
      '=alice.pub',
      'a b=alice.pub',
      'é=alice.pub',
      `${'x'.repeat(65)}=a.pub`,
      'keys/my key.pub',
    ]) {
      let refused: unknown;
      try {
        parsePublisherArgument(arg);
      } catch (error) {
        refused = error;
      }
      expect({ arg, refused: isOriginError(refused, 'INVALID_PUBLISHER_NAME') }).toEqual({
        arg,
        refused: true,
      });
    }
  });
});
