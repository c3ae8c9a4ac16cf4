import { describe, expect, it } from 'vitest';
import type { Terminal } from './command-support.js';
import { ProgressBar, renderProgress } from './progress.js';

function terminal(isTTY: boolean, columns?: number): Terminal & { written: string[] } {
  const written: string[] = [];
  return { isTTY, columns, written, write: (text) => void written.push(text) };
}

describe('renderProgress', () => {
  it('shows the phase, a bar, the percentage, bytes and the rate', () => {
    expect(
      renderProgress({
        phase: 'upload',
        done: 3 * 1024 ** 2,
        total: 12 * 1024 ** 2,
        elapsedMs: 2000,
      }),
    ).toBe('uploading  [######------------------]  25%  3.0 MiB / 12.0 MiB  1.5 MiB/s');
  });

  it('is full for an empty total, and shows no rate before time has passed', () => {
    expect(renderProgress({ phase: 'hash', done: 0, total: 0, elapsedMs: 0 })).toBe(
      'hashing    [########################] 100%  0 B / 0 B',
    );
  });
});

describe('ProgressBar', () => {
  it('writes nothing when standard error is not a terminal', () => {
    const tty = terminal(false);
    const bar = new ProgressBar(tty, () => 0);
    bar.update('hash', 'a', 5, 10);
    bar.update('hash', 'a', 10, 10);
    bar.finish();
    expect(tty.written).toEqual([]);
  });

  it('redraws in place at most every 100 ms, and ends each phase on its own line', () => {
    const tty = terminal(true);
    let now = 0;
    const bar = new ProgressBar(tty, () => now);
    bar.update('hash', 'a', 10, 100); // drawn: the first update
    now = 50;
    bar.update('hash', 'a', 20, 100); // skipped: too soon
    now = 150;
    bar.update('hash', 'a', 30, 100); // drawn
    now = 160;
    bar.update('hash', 'a', 100, 100); // drawn: done
    now = 200;
    bar.update('upload', 'a', 100, 100); // a new phase: the old line ends first
    bar.finish();
    const text = tty.written.join('');
    expect(text).toBe(
      [
        '\rhashing    [##----------------------]  10%  10 B / 100 B\x1b[K',
        '\rhashing    [#######-----------------]  30%  30 B / 100 B  200 B/s\x1b[K',
        '\rhashing    [########################] 100%  100 B / 100 B  625 B/s\x1b[K',
        '\rhashing    [########################] 100%  100 B / 100 B  625 B/s\x1b[K\n',
        '\ruploading  [########################] 100%  100 B / 100 B\x1b[K',
        '\ruploading  [########################] 100%  100 B / 100 B\x1b[K\n',
      ].join(''),
    );
  });

  it('cuts the line to the terminal width', () => {
    const tty = terminal(true, 20);
    const bar = new ProgressBar(tty, () => 0);
    bar.update('upload', 'a', 1, 2);
    expect(tty.written).toEqual(['\ruploading  [#######\x1b[K']);
  });
});
