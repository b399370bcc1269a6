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

/** Redraw period of the bar on a terminal. @internal */
export const BAR_INTERVAL_MS = 100;
/** Period of the plain progress lines when stderr is not a terminal. @internal */
export const LINE_INTERVAL_MS = 1000;
/** A plain line is printed at least this often, even when nothing moved. @internal */
export const HEARTBEAT_MS = 10_000;

/**
 * Shows ingest progress: on a terminal a bar redrawn in place (percent of input bytes read,
 * items, added / duplicates / failed, rate, ETA); otherwise a plain line every second while
 * items are finishing (and every 10 s when stalled), so logs stay readable. The percentage
 * follows the input bytes behind the items finished.
 *
 * @param stream - stderr
 * @param tally - the reader's tally (total bytes, bytes behind each item)
 * @returns the reporter; call `finish()` when the run ends
 * @internal
 */
export function progressReporter(stream: CliStream, tally: ReadTally): ProgressReporter {
  const tty = stream.isTTY === true;
  const started = performance.now();
  let latest: IngestProgress = { processed: 0, added: 0, duplicates: 0, failed: 0, bytes: 0 };
  let printedProcessed = -1;
  let printedAt = started;
  let drawn = false;

  const fraction = (): number => {
    if (tally.totalBytes === 0) return 0;
    const consumed = tally.consumedAt[latest.processed - 1] ?? 0;
    return Math.min(1, consumed / tally.totalBytes);
  };
  const describe = (): { percent: string; rate: string; eta: string } => {
    const elapsed = performance.now() - started;
    const f = fraction();
    const rate = formatRate(latest.processed / (elapsed / 1000));
    const eta = f > 0.01 && f < 1 ? formatDuration((elapsed / f) * (1 - f)) : '-';
    return { percent: `${(f * 100).toFixed(0).padStart(3)}%`, rate, eta };
  };

  const tick = (): void => {
    const now = performance.now();
    if (tty) {
      const { percent, rate, eta } = describe();
      const width = Math.max(20, (stream.columns || 80) - 1);
      const barWidth = 20;
      const filled = Math.round(fraction() * barWidth);
      const line = `[${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}] ${percent} ${formatCount(
        latest.processed,
      )} items, +${formatCount(latest.added)} new, ${formatCount(latest.duplicates)} dup, ${formatCount(
        latest.failed,
      )} failed, ${rate}, ETA ${eta}`;
      stream.write(`\r\x1b[K${line.slice(0, width)}`);
      drawn = true;
      return;
    }
    const moved = latest.processed !== printedProcessed;
    if (!moved && now - printedAt < HEARTBEAT_MS) return;
    const { percent, rate } = describe();
    stream.write(
      `progress: ${percent.trim()} of ${formatBytes(tally.totalBytes)}, ${formatCount(
        latest.processed,
      )} items (added ${formatCount(latest.added)}, duplicates ${formatCount(
        latest.duplicates,
      )}, failed ${formatCount(latest.failed)}), ${rate}\n`,
    );
    printedProcessed = latest.processed;
    printedAt = now;
  };

  const timer = setInterval(tick, tty ? BAR_INTERVAL_MS : LINE_INTERVAL_MS);
  timer.unref();
  return {
    update(progress) {
      latest = progress;
    },
    finish() {
      clearInterval(timer);
      if (tty && drawn) stream.write('\r\x1b[K');
    },
  };
}
