/**
 * Small helpers shared by the scenarios: time a run as items/s, turn `interleave` results into
 * table rows, and derive per-item figures round by round.
 */
import { type Figure, type Row, rate, summarize } from '../harness.js';

/** Runs `fn` once and returns `n / elapsed` in items per second. */
export async function timed(n: number, fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return rate(n, performance.now() - t);
}

/** Samples and per-round ratios of each contender, as `interleave` returns them. */
export type Results = Map<string, { samples: number[]; ratios: number[] }>;

/** One row per contender, in contender order, with the ratio to the first contender. */
export function rowsOf(
  contenders: ReadonlyArray<{ name: string; note?: string }>,
  results: Results,
  unit: string,
): Row[] {
  return contenders.map((c) => {
    const r = results.get(c.name);
    if (!r) throw new Error(`no result for ${c.name}`);
    return {
      name: c.name,
      figure: summarize(r.samples),
      unit,
      ratio: summarize(r.ratios),
      ...(c.note !== undefined ? { note: c.note } : {}),
    };
  });
}

/** The samples of one contender (throws if missing). */
export function samplesOf(results: Results, name: string): number[] {
  const r = results.get(name);
  if (!r) throw new Error(`no result for ${name}`);
  return r.samples;
}

/**
 * Round by round, `f(a[i], b[i])` of two contenders' samples (same round = same conditions),
 * summarised.
 */
export function pairwise(
  a: readonly number[],
  b: readonly number[],
  f: (x: number, y: number) => number,
): Figure {
  return summarize(a.map((x, i) => f(x, b[i] as number)));
}

/** Microseconds added per item by going from rate `base` to rate `other` (items/s). */
export function addedMicros(base: number, other: number): number {
  return (1 / other - 1 / base) * 1e6;
}

/** Yields the items one by one: a paced (pull) source. */
export async function* paced<T>(items: readonly T[]): AsyncGenerator<T> {
  for (const x of items) yield x;
}
