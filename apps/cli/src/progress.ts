/**
 * The progress bar of `cairn push` and `cairn sign`: one line on standard error, redrawn in
 * place, per phase (hashing, uploading). Drawn only on a terminal: in a pipe or a log file
 * a bar is noise, so there it writes nothing at all. The bar and the redraw are shared with the
 * download bar of `cairn update` and the copy bar of `cairn mirror sync`.
 */
import { formatBytes, type Terminal } from './command-support.js';

export type ProgressPhase = 'hash' | 'upload';

const LABELS: Readonly<Record<ProgressPhase, string>> = {
  hash: 'hashing',
  upload: 'uploading',
};

/** Redraws at most this often: faster is invisible and costs terminal time on big pushes. */
export const REDRAW_MS = 100;
const BAR_WIDTH = 24;

/** `[######------------------]`: `fraction` (0 to 1) of the bar filled. */
export function progressBar(fraction: number): string {
  const filled = Math.round(fraction * BAR_WIDTH);
  return `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`;
}

/** Draws `text` over the terminal's current line, cut to fit its width. */
export function redrawLine(terminal: Terminal, text: string): void {
  const width = terminal.columns;
  const fitted =
    width !== undefined && width > 0 && text.length >= width ? text.slice(0, width - 1) : text;
  // \r back to the line's start, then erase what a longer earlier line left.
  terminal.write(`\r${fitted}\x1b[K`);
}

export interface ProgressLine {
  readonly phase: ProgressPhase;
  readonly done: number;
  readonly total: number;
  /** Since the phase began. */
  readonly elapsedMs: number;
}

/** `hashing    [######------------------]  25%  3.0 MiB / 12.0 MiB  1.5 MiB/s` */
export function renderProgress(line: ProgressLine): string {
  const fraction = line.total === 0 ? 1 : Math.min(1, line.done / line.total);
  const bar = progressBar(fraction);
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
  const rate =
    line.elapsedMs > 0 ? `  ${formatBytes(Math.round((line.done * 1000) / line.elapsedMs))}/s` : '';
  return `${LABELS[line.phase].padEnd(9)}  ${bar} ${percent}  ${formatBytes(line.done)} / ${formatBytes(line.total)}${rate}`;
}

export class ProgressBar {
  readonly #terminal: Terminal;
  readonly #now: () => number;
  #phase: ProgressPhase | undefined;
  #started = 0;
  #drawnAt = -Infinity;
  #last: ProgressLine | undefined;

  constructor(terminal: Terminal, now: () => number = () => performance.now()) {
    this.#terminal = terminal;
    this.#now = now;
  }

  /** The callback PublisherClient reports bytes to. */
  readonly update = (phase: ProgressPhase, _file: string, done: number, total: number): void => {
    if (!this.#terminal.isTTY) return;
    const now = this.#now();
    if (phase !== this.#phase) {
      this.finish();
      this.#phase = phase;
      this.#started = now;
      this.#drawnAt = -Infinity;
    }
    this.#last = { phase, done, total, elapsedMs: now - this.#started };
    if (done >= total || now - this.#drawnAt >= REDRAW_MS) this.#draw(now);
  };

  /** Draws the current phase's last state and ends its line. */
  finish(): void {
    if (this.#last === undefined) return;
    this.#draw(this.#now());
    this.#terminal.write('\n');
    this.#last = undefined;
    this.#phase = undefined;
  }

  #draw(now: number): void {
    if (this.#last === undefined) return;
    redrawLine(this.#terminal, renderProgress(this.#last));
    this.#drawnAt = now;
  }
}
