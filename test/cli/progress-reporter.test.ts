/**
 * The ingest progress display on a fake terminal of a given width and on a plain stream, in
 * virtual time: the bar always fits the width with the rate and ETA in it, and a non-terminal
 * gets one line every few seconds with the rate and ETA.
 */

import test from 'ava';
import fc from 'fast-check';
import type { CliStream } from '../../lib/cli/cli-io.js';
import {
  BAR_INTERVAL_MS,
  barLine,
  HEARTBEAT_MS,
  LINE_INTERVAL_MS,
  type ProgressClock,
  progressReporter,
} from '../../lib/cli/progress-reporter.js';
import type { ReadTally } from '../../lib/cli/read-atoms.js';

/** A clock that moves only when told; `every` timers fire as time passes. */
function virtualClock(): ProgressClock & { advance(ms: number): void; timers(): number } {
  let now = 0;
  const timers = new Set<{ ms: number; next: number; tick: () => void }>();
  return {
    now: () => now,
    every(ms, tick) {
      const timer = { ms, next: now + ms, tick };
      timers.add(timer);
      return () => timers.delete(timer);
    },
    advance(ms) {
      const end = now + ms;
      for (;;) {
        const due = [...timers].filter((x) => x.next <= end).sort((a, b) => a.next - b.next)[0];
        if (!due) break;
        now = due.next;
        due.next += due.ms;
        due.tick();
      }
      now = end;
    },
    timers: () => timers.size,
  };
}

function fakeStream(isTTY: boolean, columns?: number): CliStream & { text: string } {
  const s = {
    text: '',
    isTTY,
    ...(columns !== undefined ? { columns } : {}),
    write(chunk: string) {
      s.text += chunk;
      return true;
    },
  };
  return s;
}

/** 1,000 items of 1,000 bytes each. */
function tally(): ReadTally {
  return {
    files: 1,
    skipped: [],
    totalBytes: 1_000_000,
    consumedAt: Array.from({ length: 1000 }, (_, i) => (i + 1) * 1000),
  };
}

const progress = (processed: number, failed = 0) => ({
  processed,
  added: processed - failed - Math.floor(processed / 10),
  duplicates: Math.floor(processed / 10),
  failed,
  bytes: processed * 1000,
});

/** The lines drawn on the terminal, without the carriage return and clear-line codes. */
const drawn = (text: string): string[] => text.split('\r\x1b[K').filter((l) => l !== '');

test('on an 80-column terminal the bar fits, with the rate and ETA in it', (t) => {
  const clock = virtualClock();
  const stream = fakeStream(true, 80);
  const reporter = progressReporter(stream, tally(), { clock });
  clock.advance(2_000);
  reporter.update(progress(400, 3));
  clock.advance(BAR_INTERVAL_MS);
  const lines = drawn(stream.text);
  const last = lines.at(-1) ?? '';
  t.true(last.length <= 79, last);
  t.regex(last, /\b40% 400 items/);
  t.regex(last, /3 failed/);
  t.regex(last, /\d[\d.,]*\/s, ETA \d/, last);
  reporter.finish();
  t.true(stream.text.endsWith('\r\x1b[K'), 'cleared at the end');
  t.is(clock.timers(), 0, 'no timer left');
});

test('a wide terminal shows the bar and every count', (t) => {
  const clock = virtualClock();
  const stream = fakeStream(true, 160);
  const reporter = progressReporter(stream, tally(), { clock });
  clock.advance(1_000);
  reporter.update(progress(500));
  clock.advance(BAR_INTERVAL_MS);
  const last = drawn(stream.text).at(-1) ?? '';
  t.regex(
    last,
    /^\[#{10}\.{10}\] {2}50% 500 items, \+450 new, 50 dup, 0 failed, 455\/s, ETA 1\.1 s$/,
  );
  reporter.finish();
});

test('property: at any width and any figures the line fits and keeps the percentage', (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 10, max: 300 }),
      fc.integer({ min: 0, max: 10_000_000 }),
      fc.integer({ min: 0, max: 10_000_000 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      (width, processed, failed, fraction) => {
        const line = barLine(
          {
            fraction,
            processed,
            added: processed,
            duplicates: processed,
            failed,
            rate: '12,345/s',
            eta: '1h02m03s',
          },
          width,
        );
        if (line.length > width - 1) throw new Error(`${line.length} > ${width - 1}: ${line}`);
        if (width >= 40 && !line.includes('ETA 1h02m03s')) throw new Error(`no ETA: ${line}`);
        if (width >= 60 && !line.includes('12,345/s')) throw new Error(`no rate: ${line}`);
        if (width >= 60 && failed > 0 && !line.includes('failed') && !line.includes('/'))
          throw new Error(`failures hidden: ${line}`);
      },
    ),
  );
  t.pass();
});

test('a non-terminal gets one line every few seconds with the rate and ETA', (t) => {
  const clock = virtualClock();
  const stream = fakeStream(false);
  const reporter = progressReporter(stream, tally(), { clock });
  for (let i = 1; i <= 10; i++) {
    reporter.update(progress(i * 50));
    clock.advance(1_000);
  }
  const lines = stream.text.split('\n').filter(Boolean);
  t.is(lines.length, Math.floor(10_000 / LINE_INTERVAL_MS));
  t.regex(
    lines[0] ?? '',
    /^progress: 15% of 977 KiB, 150 items \(added 135, duplicates 15, failed 0\), 50\.0\/s, ETA 17\.0 s$/,
  );
  // the last move is printed at the next tick; then, stalled, nothing until the heartbeat
  clock.advance(LINE_INTERVAL_MS - (10_000 % LINE_INTERVAL_MS));
  t.regex(stream.text, /500 items .*\n$/);
  stream.text = '';
  clock.advance(HEARTBEAT_MS - LINE_INTERVAL_MS);
  t.is(stream.text, '');
  clock.advance(LINE_INTERVAL_MS * 2);
  t.is(stream.text.split('\n').filter(Boolean).length, 1);
  reporter.finish();
  t.is(clock.timers(), 0);
});
