/**
 * Ensemble fan-out: requests per second of a 3-model ensemble whose models are invoked in
 * parallel, against the same ensemble invoking them one after another (`modelConcurrency: 1`),
 * each model a local HTTP server with a fixed latency. Both stream the same requests with the
 * same concurrency; rounds are interleaved so machine drift cancels, and the ratio is computed
 * round by round. Expect a ratio near 3 (the per-request latency drops from 3x to 1x the model
 * latency) minus the fixed costs.
 *
 *   npx tsx bench/ensemble.ts          quick
 *   npx tsx bench/ensemble.ts --full   more requests, more rounds
 *
 * Runs against the built package (`npm run build` first), like the other benchmarks.
 */
import { pathToFileURL } from 'node:url';
import { ensemble } from '@hartonomous/pipelines/inference';
import { count, lastValueFrom } from 'rxjs';
import { startModelServer } from '../test/support/model-server.js';
import { fmt, interleave, summarize } from './harness.js';

/** One figure of the benchmark. */
export interface EnsembleBenchRow {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
}

/**
 * Measures parallel against sequential model invocation.
 * @param options - `quick`: fewer requests and rounds
 * @returns median requests/s of each contender, the latency setting, and the median of the
 * per-round ratios parallel / sequential
 */
export async function runEnsembleBench(options: {
  quick: boolean;
  log?: (line: string) => void;
}): Promise<{ rows: EnsembleBenchRow[]; ratio: number }> {
  const latencyMs = options.quick ? 10 : 20;
  const requests = options.quick ? 60 : 300;
  const rounds = options.quick ? 3 : 7;
  const concurrency = 4;
  const log = options.log ?? (() => undefined);
  const servers = await Promise.all(
    ['a', 'b', 'c'].map(() => startModelServer({ answer: () => 'yes', latencyMs })),
  );
  const models = servers.map((s, i) => ({ name: `model-${i}`, endpoint: s.url, timeoutMs: 5_000 }));
  const parallel = ensemble({ models, retry: false });
  const sequential = ensemble({ models, retry: false, modelConcurrency: 1 });
  const inputs = Array.from({ length: requests }, (_, i) => ({ input: i }));
  const run = (e: typeof parallel) => async () => {
    const t = performance.now();
    const answered = await lastValueFrom(
      e.stream(inputs, { concurrency }).pipe(count((o) => o.ok)),
    );
    const ms = performance.now() - t;
    if (answered !== requests) throw new Error(`only ${answered} of ${requests} requests answered`);
    return (requests / ms) * 1000;
  };
  try {
    log(
      `ensemble: 3 models at ${latencyMs} ms each, ${requests} requests streamed with concurrency ${concurrency}, ${rounds} rounds`,
    );
    const results = await interleave(
      [
        { name: 'parallel', run: run(parallel) },
        { name: 'sequential', run: run(sequential) },
      ],
      { rounds, warmup: 1, log },
    );
    const par = summarize(results.get('parallel')?.samples ?? [0]);
    const seq = summarize(results.get('sequential')?.samples ?? [0]);
    // per round: parallel / sequential (interleave gives ratios against the first contender)
    const ratio = summarize((results.get('sequential')?.ratios ?? [1]).map((r) => 1 / r)).median;
    return {
      rows: [
        { name: '3 models invoked in parallel', value: par.median, unit: 'requests/s' },
        { name: '3 models invoked one after another', value: seq.median, unit: 'requests/s' },
        { name: 'model latency (fixed, local server)', value: latencyMs, unit: 'ms' },
      ],
      ratio,
    };
  } finally {
    parallel.close();
    sequential.close();
    await Promise.all(servers.map((s) => s.close()));
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { rows, ratio } = await runEnsembleBench({
    quick: !process.argv.includes('--full'),
    log: (line) => console.log(line),
  });
  console.log('');
  for (const r of rows) console.log(`${r.name.padEnd(40)} ${fmt(r.value).padStart(10)} ${r.unit}`);
  console.log(`${'ratio parallel / sequential'.padEnd(40)} ${fmt(ratio, 2).padStart(10)}x`);
}
