import type { IngestProgress } from '../atoms/ingest.js';
import type { CliStream } from './cli-io.js';
import { formatBytes, formatCount, formatDuration, formatRate } from './format.js';
import type { ReadTally } from './read-atoms.js';

/**
 * Shows the progress of an ingest on stderr.
 * @internal
 */
export interface ProgressReporter {
  /** Records the latest progress (cheap: drawing happens on a timer). */
  update(progress: IngestProgress): void;
  /** Stops the timer and clears the bar (a terminal) or prints nothing more (plain lines). */
  finish(): void;
}

/**
 * The time source of a {@link progressReporter}: the real one by default, a virtual one in
 * tests.
 * @internal
 */
export interface ProgressClock {
  /** Milliseconds since some fixed origin. */
  now(): number;
  /** Calls `tick` every `ms` until the returned function is called. */
  every(ms: number, tick: () => void): () => void;
}

/** `performance.now()` and an unref'd `setInterval`. @internal */
export const realClock: ProgressClock = {
  now: () => performance.now(),
  every: (ms, tick) => {
    const timer = setInterval(tick, ms);
    timer.unref();
    return () => clearInterval(timer);
  },
};

/** Redraw period of the bar on a terminal. @internal */
export const BAR_INTERVAL_MS = 100;
/** Period of the plain progress lines when stderr is not a terminal. @internal */
export const LINE_INTERVAL_MS = 3000;
/** A plain line is printed at least this often, even when nothing moved. @internal */
export const HEARTBEAT_MS = 30_000;

/** What one progress display shows. @internal */
export interface ProgressFigures {
  /** Fraction of the input bytes behind the items finished, 0 to 1. */
  readonly fraction: number;
  readonly processed: number;
  readonly added: number;
  readonly duplicates: number;
  readonly failed: number;
  /** e.g. `3,210/s`. */
  readonly rate: string;
  /** e.g. `4m05s`, or `-` while unknown. */
  readonly eta: string;
}

/**
 * The terminal progress line, at most `width` characters: the full line with a bar when it
 * fits; else the bar shrinks, then goes, then the counts shorten, so the percentage, items,
 * failures (when any), rate and ETA are the last to be dropped.
 *
 * @param f - the figures
 * @param width - the terminal's columns
 * @returns the line, without a newline
 * @internal
 */
export function barLine(f: ProgressFigures, width: number): string {
  const max = Math.max(1, width - 1); // the last column would wrap on some terminals
  const percent = `${(f.fraction * 100).toFixed(0).padStart(3)}%`;
  const items = `${formatCount(f.processed)} items`;
  const failed = `${formatCount(f.failed)} failed`;
  const tail = `${f.rate}, ETA ${f.eta}`;
  const full = `${percent} ${items}, +${formatCount(f.added)} new, ${formatCount(
    f.duplicates,
  )} dup, ${failed}, ${tail}`;
  const BAR_MAX = 20;
  const BAR_MIN = 6;
  const room = max - full.length - 3; // "[", "] "
  if (room >= BAR_MIN) {
    const barWidth = Math.min(BAR_MAX, room);
    const filled = Math.round(f.fraction * barWidth);
    return `[${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}] ${full}`;
  }
  const candidates = [
    full,
    `${percent} ${items}, +${formatCount(f.added)}/${formatCount(f.duplicates)}/${formatCount(
      f.failed,
    )}, ${tail}`,
    f.failed > 0 ? `${percent} ${items}, ${failed}, ${tail}` : `${percent} ${items}, ${tail}`,
    f.failed > 0 ? `${percent} ${failed}, ${tail}` : `${percent} ${tail}`,
    `${percent} ETA ${f.eta}`,
  ];
  const fits = candidates.find((c) => c.length <= max);
  return fits ?? (candidates.at(-1) as string).slice(0, max);
}

/**
 * Shows ingest progress: on a terminal a bar redrawn in place that fits the terminal's width
 * ({@link barLine}); otherwise a plain line every few seconds while items are finishing (and
 * at least every 30 s when stalled) with the rate and ETA, so logs stay readable. The
 * percentage follows the input bytes behind the items finished.
 *
 * @param stream - stderr
 * @param tally - the reader's tally (total bytes, bytes behind each item)
 * @param options - `clock`: the time source (default {@link realClock})
 * @returns the reporter; call `finish()` when the run ends
 * @internal
 */
export function progressReporter(
  stream: CliStream,
  tally: ReadTally,
  options: { readonly clock?: ProgressClock } = {},
): ProgressReporter {
  const clock = options.clock ?? realClock;
  const tty = stream.isTTY === true;
  const started = clock.now();
  let latest: IngestProgress = { processed: 0, added: 0, duplicates: 0, failed: 0, bytes: 0 };
  let printedProcessed = -1;
  let printedAt = started;
  let drawn = false;

  const figures = (): ProgressFigures => {
    const elapsed = clock.now() - started;
    const consumed = tally.consumedAt[latest.processed - 1] ?? 0;
    const fraction = tally.totalBytes === 0 ? 0 : Math.min(1, consumed / tally.totalBytes);
    return {
      fraction,
      processed: latest.processed,
      added: latest.added,
      duplicates: latest.duplicates,
      failed: latest.failed,
      rate: elapsed > 0 ? formatRate(latest.processed / (elapsed / 1000)) : '-',
      eta:
        fraction > 0.01 && fraction < 1
          ? formatDuration((elapsed / fraction) * (1 - fraction))
          : '-',
    };
  };

  const tick = (): void => {
    const now = clock.now();
    if (tty) {
      stream.write(`\r\x1b[K${barLine(figures(), stream.columns || 80)}`);
      drawn = true;
      return;
    }
    const moved = latest.processed !== printedProcessed;
    if (!moved && now - printedAt < HEARTBEAT_MS) return;
    const f = figures();
    stream.write(
      `progress: ${(f.fraction * 100).toFixed(0)}% of ${formatBytes(tally.totalBytes)}, ${formatCount(
        f.processed,
      )} items (added ${formatCount(f.added)}, duplicates ${formatCount(
        f.duplicates,
      )}, failed ${formatCount(f.failed)}), ${f.rate}, ETA ${f.eta}\n`,
    );
    printedProcessed = latest.processed;
    printedAt = now;
  };

  const stop = clock.every(tty ? BAR_INTERVAL_MS : LINE_INTERVAL_MS, tick);
  return {
    update(progress) {
      latest = progress;
    },
    finish() {
      stop();
      if (tty && drawn) stream.write('\r\x1b[K');
    },
  };
}
