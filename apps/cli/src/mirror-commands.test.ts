import { describe, expect, it } from 'vitest';
import type { Terminal } from './command-support.js';
import { renderSyncProgress, SyncProgressLine, syncSummary } from './mirror-commands.js';

function terminal(isTTY: boolean, columns?: number): Terminal & { written: string[] } {
  const written: string[] = [];
  return { isTTY, columns, written, write: (text) => void written.push(text) };
}

const copied = (done: number, total: number, bytes: number) =>
  ({ kind: 'copied', key: `targets/${done}`, bytes, done, total }) as const;

describe('syncSummary', () => {
  it('names the versions before and after, and what was copied', () => {
    expect(
      syncSummary({
        timestampVersion: 42,
        previousVersion: 41,
        objectsCopied: 7,
        bytesCopied: 2.1 * 2 ** 20,
        upToDate: false,
      }),
    ).toBe('✔ timestamp version 41 → 42: copied 7 objects, 2.1 MiB');
  });

  it('says "none" for an empty mirror, and "object" for one', () => {
    expect(
      syncSummary({
        timestampVersion: 1,
        previousVersion: undefined,
        objectsCopied: 1,
        bytesCopied: 700,
        upToDate: false,
      }),
    ).toBe('✔ timestamp version none → 1: copied 1 object, 700 B');
  });

  it('says up to date when nothing was copied', () => {
    expect(
      syncSummary({
        timestampVersion: 42,
        previousVersion: 42,
        objectsCopied: 0,
        bytesCopied: 0,
        upToDate: true,
      }),
    ).toBe('✔ up to date: timestamp version 42');
  });
});

describe('SyncProgressLine', () => {
  it('renders objects done of all, and the bytes so far', () => {
    expect(renderSyncProgress(12, 48, 13.7 * 2 ** 20)).toBe(
      'copying  [######------------------]  12/48 objects  13.7 MiB',
    );
    expect(renderSyncProgress(0, 0, 0)).toBe(
      'copying  [########################]  0/0 objects  0 B',
    );
  });

  it('writes nothing when standard error is not a terminal', () => {
    const tty = terminal(false);
    const line = new SyncProgressLine(tty, () => 0);
    line.update({ kind: 'checked', upstreamVersion: 2, mirrorVersion: 1 });
    line.update(copied(1, 2, 10));
    line.update(copied(2, 2, 10));
    line.finish();
    expect(tty.written).toEqual([]);
  });

  it('redraws in place at most every 100 ms, always the last object, then ends the line', () => {
    const tty = terminal(true);
    let now = 0;
    const line = new SyncProgressLine(tty, () => now);
    line.update({ kind: 'skipped', key: 'metadata/1.root.json' });
    line.update(copied(1, 3, 1024));
    now = 50;
    line.update(copied(2, 3, 1024));
    now = 60;
    line.update(copied(3, 3, 1024));
    line.finish();
    expect(tty.written).toEqual([
      '\rcopying  [########----------------]  1/3 objects  1.0 KiB\x1b[K',
      '\rcopying  [########################]  3/3 objects  3.0 KiB\x1b[K',
      '\n',
    ]);
  });

  it('cuts the line to the terminal width, and ends no line it never drew', () => {
    const tty = terminal(true, 20);
    const line = new SyncProgressLine(tty, () => 0);
    line.update(copied(1, 1, 5));
    line.finish();
    line.finish();
    expect(tty.written).toEqual(['\rcopying  [#########\x1b[K', '\n']);
  });
});
