/**
 * Scenario: the library next to its peers on the same work.
 *
 * A. Concurrent mapping of N items with a trivial async function at concurrency 16: the
 *    library's `mapConcurrent` and `pipeline.stream`, p-map 7 (over an array and over an async
 *    iterable), and plain RxJS `mergeMap` (over a paced source, and the naive `from(array)`).
 * B. A retry + circuit breaker around a call: the library's
 *    `policy(retry, circuitBreaker)` against cockatiel 4's
 *    `wrap(retry(handleAll, ...), circuitBreaker(handleAll, ...))`, on a call that never fails
 *    (overhead per call, sequential calls) and on a call that fails 10% of its attempts with
 *    zero backoff (16 concurrent callers, retries counted).
 */
import { readFileSync } from 'node:fs';
import {
  circuitBreaker,
  createCircuitBreaker,
  fromWork,
  isBrokenCircuitError,
  mapConcurrent,
  pipeline,
  policy,
  retry,
  step,
} from '@hartonomous/pipelines';
import {
  BrokenCircuitError as CockatielBrokenCircuitError,
  ConsecutiveBreaker,
  ConstantBackoff,
  circuitBreaker as cockatielBreaker,
  retry as cockatielRetry,
  handleAll,
  wrap,
} from 'cockatiel';
import pMap from 'p-map';
import { count, from, lastValueFrom, mergeMap } from 'rxjs';
import {
  type BenchContext,
  type Figure,
  fmt,
  interleave,
  type Row,
  type ScenarioResult,
} from '../harness.js';
import { addedMicros, paced, pairwise, rowsOf, samplesOf, timed } from '../support/measure.js';

const work = async (x: number): Promise<number> => x + 1;
const CONCURRENCY = 16;
/** Retries after the first attempt, for both libraries (cockatiel's `maxAttempts` counts retries). */
const RETRIES = 3;

/** Whether attempt `attempt` of call `call` fails: a fixed 10% of (call, attempt) pairs. */
function fails(call: number, attempt: number): boolean {
  let h = Math.imul(call ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(attempt + 1, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  return (h >>> 0) % 10 === 0;
}

class FlakyError extends Error {
  override readonly name = 'FlakyError';
}

/** What one failing-call run saw. */
interface Tally {
  retries: number;
  failed: number;
  /** calls that failed with the breaker's rejection (library or cockatiel BrokenCircuitError) */
  brokenCircuit: number;
  /** times the breaker opened */
  opens: number;
}

const newTally = (): Tally => ({ retries: 0, failed: 0, brokenCircuit: 0, opens: 0 });

/** Runs `calls` calls through `call(i)` with `CONCURRENCY` callers. */
async function callers(calls: number, call: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const caller = async (): Promise<void> => {
    while (next < calls) {
      const i = next++;
      await call(i);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, caller));
}

function ourPolicy(onRetry: () => void, onOpen: () => void = () => undefined) {
  // one breaker: the one whose openings are counted is the one the policy uses
  const breaker = createCircuitBreaker({
    strategy: { type: 'consecutive', failures: 5 },
    breakDuration: 10_000,
  });
  breaker.state$.subscribe((t) => {
    if (t.to === 'open') onOpen();
  });
  return policy<number>(
    retry<number>({
      maxAttempts: RETRIES + 1,
      backoff: 'constant',
      baseDelayMs: 0,
      onEvent: (e) => {
        if (e.type === 'scheduled') onRetry();
      },
    }),
    circuitBreaker<number>(breaker),
  );
}

function cockatielParts(onRetry: () => void, onOpen: () => void = () => undefined) {
  const r = cockatielRetry(handleAll, {
    maxAttempts: RETRIES,
    backoff: new ConstantBackoff(0),
  });
  r.onRetry(onRetry);
  const b = cockatielBreaker(handleAll, {
    halfOpenAfter: 10_000,
    breaker: new ConsecutiveBreaker(5),
  });
  b.onBreak(onOpen);
  return { retry: r, breaker: b };
}

export async function peers(ctx: BenchContext): Promise<ScenarioResult> {
  const n = ctx.full ? 1_000_000 : 300_000;
  const naiveN = ctx.full ? 200_000 : 50_000;
  const calls = ctx.full ? 500_000 : 30_000;
  const flakyCalls = ctx.full ? 200_000 : 20_000;
  const items = Array.from({ length: n }, (_, i) => i);
  const naiveItems = items.slice(0, naiveN);
  const rounds = 5;
  const check = (where: string, got: number, want: number): void => {
    if (got !== want) throw new Error(`${where}: ${got} of ${want}`);
  };

  // A. concurrent mapping
  const single = pipeline('peers', step('work', work));
  const mapping = [
    {
      name: 'mapConcurrent(work, 16) over from(array)',
      run: () =>
        timed(n, async () =>
          check(
            'mapConcurrent',
            await lastValueFrom(from(items).pipe(mapConcurrent(work, CONCURRENCY), count())),
            n,
          ),
        ),
    },
    {
      name: 'pipeline.stream(array, { concurrency: 16 }), one step',
      note: 'per-item Outcome, metrics, cancellation',
      run: () =>
        timed(n, async () =>
          check(
            'pipeline.stream',
            await lastValueFrom(
              single.stream(items, { concurrency: CONCURRENCY }).pipe(count((o) => o.ok)),
            ),
            n,
          ),
        ),
    },
    {
      name: 'p-map 7 over the array, concurrency 16',
      note: 'returns the result array',
      run: () =>
        timed(n, async () =>
          check('p-map', (await pMap(items, work, { concurrency: CONCURRENCY })).length, n),
        ),
    },
    {
      name: 'p-map 7 over an async iterable, concurrency 16',
      note: 'returns the result array',
      run: () =>
        timed(n, async () =>
          check(
            'p-map iterable',
            (await pMap(paced(items), work, { concurrency: CONCURRENCY })).length,
            n,
          ),
        ),
    },
    {
      name: 'RxJS from(async generator) + mergeMap(work, 16)',
      note: 'paced source',
      run: () =>
        timed(n, async () =>
          check(
            'rx paced',
            await lastValueFrom(from(paced(items)).pipe(mergeMap(work, CONCURRENCY), count())),
            n,
          ),
        ),
    },
    {
      name: `RxJS from(array) + mergeMap(work, 16), naive, ${naiveN.toLocaleString('en-US')} items`,
      note: 'the whole input parks in mergeMap’s buffer',
      run: () =>
        timed(naiveN, async () =>
          check(
            'rx naive',
            await lastValueFrom(from(naiveItems).pipe(mergeMap(work, CONCURRENCY), count())),
            naiveN,
          ),
        ),
    },
  ];
  ctx.log(`peers A: mapping ${n.toLocaleString('en-US')} items at concurrency ${CONCURRENCY}`);
  const mapResults = await interleave(mapping, { rounds, warmup: 1, log: ctx.log });
  const mapRows = rowsOf(mapping, mapResults, 'items/s');

  // B1. a call that never fails, sequential calls
  const noop = async (): Promise<number> => 1;
  const withSignal = async (signal: AbortSignal): Promise<number> => (signal.aborted ? 0 : 1);
  const guarded = [
    {
      name: 'bare call (await fn())',
      run: () =>
        timed(calls, async () => {
          for (let i = 0; i < calls; i++) await noop();
        }),
    },
    {
      name: 'bare call given a fresh AbortSignal (new AbortController().signal)',
      note: 'what one signal per call costs on this Node',
      run: () =>
        timed(calls, async () => {
          for (let i = 0; i < calls; i++) await withSignal(new AbortController().signal);
        }),
    },
    {
      name: 'library: lastValueFrom(fromWork(fn)), no policy',
      note: 'an Observable per call; fn declares no signal, so none is made',
      run: () =>
        timed(calls, async () => {
          for (let i = 0; i < calls; i++) await lastValueFrom(fromWork(noop));
        }),
    },
    {
      name: 'library: fromWork(fn).pipe(policy(retry, circuitBreaker))',
      run: () => {
        const guard = ourPolicy(() => undefined);
        return timed(calls, async () => {
          for (let i = 0; i < calls; i++) await lastValueFrom(fromWork(noop).pipe(guard));
        });
      },
    },
    {
      name: 'cockatiel: wrap(circuitBreaker, retry).execute(fn), the library’s order',
      run: () => {
        const c = cockatielParts(() => undefined);
        const both = wrap(c.breaker, c.retry);
        return timed(calls, async () => {
          for (let i = 0; i < calls; i++) await both.execute(noop);
        });
      },
    },
    {
      name: 'cockatiel: wrap(retry, circuitBreaker).execute(fn)',
      note: 'breaker inside retry',
      run: () => {
        const c = cockatielParts(() => undefined);
        const both = wrap(c.retry, c.breaker);
        return timed(calls, async () => {
          for (let i = 0; i < calls; i++) await both.execute(noop);
        });
      },
    },
  ];
  ctx.log(`peers B: ${calls.toLocaleString('en-US')} sequential calls that never fail`);
  const guardResults = await interleave(guarded, { rounds, warmup: 1, log: ctx.log });
  const guardRows = rowsOf(guarded, guardResults, 'calls/s');
  const g = (i: number) => samplesOf(guardResults, guarded[i]!.name);
  const signalOverhead = pairwise(g(0), g(1), addedMicros);
  const fromWorkOverhead = pairwise(g(0), g(2), addedMicros);
  const oursOverhead = pairwise(g(0), g(3), addedMicros);
  const theirsOverhead = pairwise(g(0), g(4), addedMicros);
  const theirsOtherOverhead = pairwise(g(0), g(5), addedMicros);
  const oursVsTheirs = pairwise(g(3), g(4), (a, b) => a / b);

  // B2. a call failing 10% of its attempts, zero backoff, 16 callers
  const tallies = new Map<string, Tally>();
  const flakyCall = (i: number, attempt: number): Promise<number> =>
    fails(i, attempt) ? Promise.reject(new FlakyError(`call ${i}`)) : Promise.resolve(i);
  const settle = async (tally: Tally, p: Promise<unknown>): Promise<void> => {
    try {
      await p;
    } catch (e) {
      tally.failed++;
      if (isBrokenCircuitError(e) || e instanceof CockatielBrokenCircuitError)
        tally.brokenCircuit++;
    }
  };
  const flaky = [
    {
      name: 'library: policy(retry(3 retries, 0 ms), circuitBreaker(5 consecutive))',
      note: 'breaker outside retry: one outcome per call',
      run: async () => {
        const tally = newTally();
        const guard = ourPolicy(
          () => tally.retries++,
          () => tally.opens++,
        );
        const r = await timed(flakyCalls, () =>
          callers(flakyCalls, (i) => {
            let attempt = 0;
            return settle(
              tally,
              lastValueFrom(fromWork(() => flakyCall(i, attempt++)).pipe(guard)),
            );
          }),
        );
        tallies.set('library', tally);
        return r;
      },
    },
    {
      name: 'cockatiel: wrap(retry(3, 0 ms), circuitBreaker(ConsecutiveBreaker(5)))',
      note: 'breaker inside retry: it counts every attempt',
      run: async () => {
        const tally = newTally();
        const c = cockatielParts(
          () => tally.retries++,
          () => tally.opens++,
        );
        const both = wrap(c.retry, c.breaker);
        const r = await timed(flakyCalls, () =>
          callers(flakyCalls, (i) => {
            let attempt = 0;
            return settle(
              tally,
              both.execute(() => flakyCall(i, attempt++)),
            );
          }),
        );
        tallies.set('cockatiel', tally);
        return r;
      },
    },
    {
      name: 'cockatiel: wrap(circuitBreaker, retry), the library’s order',
      note: 'breaker outside retry',
      run: async () => {
        const tally = newTally();
        const c = cockatielParts(
          () => tally.retries++,
          () => tally.opens++,
        );
        const both = wrap(c.breaker, c.retry);
        const r = await timed(flakyCalls, () =>
          callers(flakyCalls, (i) => {
            let attempt = 0;
            return settle(
              tally,
              both.execute(() => flakyCall(i, attempt++)),
            );
          }),
        );
        tallies.set('cockatiel-outer', tally);
        return r;
      },
    },
  ];
  ctx.log(
    `peers C: ${flakyCalls.toLocaleString('en-US')} calls failing 10% of attempts, ${CONCURRENCY} callers`,
  );
  const flakyResults = await interleave(flaky, { rounds, warmup: 1, log: ctx.log });
  const expectedRetries = expectedRetryCount(flakyCalls);
  const tallyNote = (key: string): string => {
    const t = tallies.get(key);
    return t
      ? `last run: ${t.retries.toLocaleString('en-US')} retries, breaker opened ${t.opens} times, ${t.failed.toLocaleString('en-US')} calls failed (${t.brokenCircuit.toLocaleString('en-US')} rejected by the open breaker)`
      : '';
  };
  const flakyRows = rowsOf(
    flaky.map((c, i) => ({
      name: c.name,
      note: `${c.note}; ${tallyNote(['library', 'cockatiel', 'cockatiel-outer'][i] ?? '')}`,
    })),
    flakyResults,
    'calls/s',
  );
  const f = (i: number) => samplesOf(flakyResults, flaky[i]!.name);
  // the headline compares like with like: cockatiel in the library's order (breaker outside)
  const flakyOursVsTheirs = pairwise(f(0), f(2), (a, b) => a / b);

  const m = (i: number): Figure => mapRows[i]!.figure;
  const ms = (i: number) => samplesOf(mapResults, mapping[i]!.name);
  const streamVsPmap = pairwise(ms(1), ms(2), (a, b) => a / b);
  const streamVsRx = pairwise(ms(1), ms(4), (a, b) => a / b);
  const concurrentVsPmap = pairwise(ms(0), ms(2), (a, b) => a / b);
  const streamMicros = 1e6 / m(1).median;
  const rows: Row[] = [
    ...mapRows.map((r) => ({ ...r, name: `A. ${r.name}` })),
    ...guardRows.map((r) => ({ ...r, name: `B. ${r.name}` })),
    {
      name: 'B. added per call: a fresh AbortSignal',
      figure: signalOverhead,
      unit: 'µs/call',
      note: 'round by round vs the bare call',
    },
    {
      name: 'B. added per call: library fromWork alone',
      figure: fromWorkOverhead,
      unit: 'µs/call',
      note: 'round by round vs the bare call',
    },
    {
      name: 'B. added per call: library policy',
      figure: oursOverhead,
      unit: 'µs/call',
      note: 'round by round vs the bare call',
    },
    {
      name: 'B. added per call: cockatiel wrap(breaker, retry)',
      figure: theirsOverhead,
      unit: 'µs/call',
      note: 'round by round vs the bare call',
    },
    {
      name: 'B. added per call: cockatiel wrap(retry, breaker)',
      figure: theirsOtherOverhead,
      unit: 'µs/call',
      note: 'round by round vs the bare call',
    },
    ...flakyRows.map((r) => ({ ...r, name: `C. ${r.name}` })),
  ];
  return {
    title: '8. Peers on the same work: p-map, RxJS, cockatiel',
    description: `A: ${n.toLocaleString('en-US')} items mapped with \`async x => x + 1\` at concurrency ${CONCURRENCY} (ratios to the first row of A). B: ${calls.toLocaleString('en-US')} sequential calls of an async function that never fails, bare and through a retry (${RETRIES} retries) + consecutive-failures breaker (5) in each library (ratios to the bare call). C: ${flakyCalls.toLocaleString('en-US')} calls by ${CONCURRENCY} concurrent callers, each attempt failing with a fixed 10% chance (decided by call and attempt number, so every contender faces the same failures; about ${expectedRetries.toLocaleString('en-US')} retries expected), zero backoff in both libraries (a 0 ms timer per retry) (ratios to the library row). Each table part was measured in its own interleaved rounds. p-map ${versionOf('p-map')}, cockatiel ${versionOf('cockatiel')}, RxJS ${versionOf('rxjs')}.`,
    rows,
    findings: [
      `Mapping: mapConcurrent ran at ${fmt(m(0).median)} items/s, pipeline.stream at ${fmt(m(1).median)}, p-map at ${fmt(m(2).median)} over an array and ${fmt(m(3).median)} over an async iterable, RxJS mergeMap at ${fmt(m(4).median)} on a paced source and ${fmt(m(5).median)} on the naive \`from(array)\` (${naiveN.toLocaleString('en-US')} items; its per-item cost grows with the input). mapConcurrent ran at ${fmt(concurrentVsPmap.median, 2)}x p-map on the same array (it is fed by a synchronous \`from(array)\`, so its input waits in its buffer).`,
      `pipeline.stream ran at ${fmt(streamVsPmap.median, 2)}x p-map's rate and ${fmt(streamVsRx.median, 2)}x paced RxJS mergeMap's: about ${fmt(streamMicros, 2)} µs per item in all, with a per-item context, an Outcome object and cancellation (metrics and spans only when a provider is registered).`,
      `Retry + breaker on a call that never fails, outside a pipeline: the library's policy adds ${fmt(oursOverhead.median, 2)} µs per call (${fmt(oursOverhead.min, 2)}–${fmt(oursOverhead.max, 2)}), cockatiel's wrap in the same order ${fmt(theirsOverhead.median, 2)} µs (${fmt(theirsOverhead.min, 2)}–${fmt(theirsOverhead.max, 2)}) and in the other order ${fmt(theirsOtherOverhead.median, 2)} µs; the library runs at ${fmt(oursVsTheirs.median, 2)}x cockatiel's rate (same order). \`lastValueFrom(fromWork(fn))\` with no policy adds ${fmt(fromWorkOverhead.median, 2)} µs (${fmt(fromWorkOverhead.min, 2)}–${fmt(fromWorkOverhead.max, 2)}): an Observable per call; \`fn\` declares no signal, so none is made (a fresh AbortSignal alone adds ${fmt(signalOverhead.median, 2)} µs per call on this Node). Inside a pipeline step the policy costs less (section 7).`,
      flakyFinding(flakyOursVsTheirs, expectedRetries, tallies),
    ],
  };
}

/** The finding of part C, from what the last runs actually saw. */
function flakyFinding(
  ratio: Figure,
  expected: number,
  tallies: ReadonlyMap<string, Tally>,
): string {
  const lib = tallies.get('library');
  const ck = tallies.get('cockatiel');
  const outer = tallies.get('cockatiel-outer');
  if (!lib || !ck || !outer) return 'Part C did not complete.';
  const say = (t: Tally): string =>
    `${t.retries.toLocaleString('en-US')} retries, ${t.failed.toLocaleString('en-US')} failed calls, ${t.opens} breaker openings`;
  const lines = [
    `With 10% of attempts failing and zero backoff (last runs; ${expected.toLocaleString('en-US')} retries and the same few unlucky calls expected): library ${say(lib)}; cockatiel in the library's order, \`wrap(breaker, retry)\`, ${say(outer)}; cockatiel with the breaker inside, \`wrap(retry, breaker)\`, ${say(ck)}. The library ran at ${fmt(ratio.median, 2)}x (${fmt(ratio.min, 2)}–${fmt(ratio.max, 2)}) the rate of cockatiel in the same order.`,
  ];
  if (ck.opens > 0) {
    lines.push(
      `With the breaker inside the retry (cockatiel's \`wrap(retry, breaker)\`) the breaker counts every failed attempt, so 5 failed attempts in a row across the 16 callers (about 1 in 100,000 attempts at 10%) opened it, and for its 10 s break every attempt was rejected at once and retried at once: calls failed that would have succeeded. The library's \`policy(retry, circuitBreaker)\` puts the breaker outside the retry (one outcome per call), as its docs recommend.`,
    );
  } else {
    lines.push(
      `Orders: the library's \`policy(retry, circuitBreaker)\` puts the breaker outside the retry (one outcome per call), like cockatiel's \`wrap(breaker, retry)\`; \`wrap(retry, breaker)\` puts it inside (it counts every failed attempt, and 5 failed attempts in a row across callers, about 1 in 100,000 at 10%, would open it).`,
    );
  }
  lines.push(
    'Each retry waits for a 0 ms timer (about 1 ms in Node) in both libraries; with equal retries, the rest of the gap is the per-call cost seen in part B.',
  );
  return lines.join(' ');
}

/** The installed version of a package (read from node_modules). */
function versionOf(name: string): string {
  try {
    const url = new URL(`../../node_modules/${name}/package.json`, import.meta.url);
    return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
  } catch {
    return '(unknown version)';
  }
}

/** Retries the deterministic failure pattern asks for (same for every contender). */
function expectedRetryCount(calls: number): number {
  let retries = 0;
  for (let i = 0; i < calls; i++) {
    for (let attempt = 0; attempt < RETRIES && fails(i, attempt); attempt++) retries++;
  }
  return retries;
}
