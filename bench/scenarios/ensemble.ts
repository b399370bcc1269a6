/**
 * Issue scenario: a 3-model ensemble invoked in parallel vs one model after another, with a
 * fixed per-model latency on local model servers (see bench/ensemble.ts).
 */
import { runEnsembleBench } from '../ensemble.js';
import type { BenchContext, ScenarioResult } from '../harness.js';

export async function ensembleScenario(ctx: BenchContext): Promise<ScenarioResult> {
  const { rows, ratio } = await runEnsembleBench({ quick: !ctx.full, log: ctx.log });
  const point = (v: number) => ({ median: v, min: v, max: v });
  return {
    title: '9. Ensemble inference: parallel vs sequential model calls',
    description:
      'Three local model servers with a fixed latency each; a stream of requests at concurrency 4 through the ensemble pipeline (load models, invoke, majority vote), models invoked all at once or one after another. Medians over interleaved rounds.',
    rows: rows.map((r) => ({ name: r.name, figure: point(r.value), unit: r.unit })),
    findings: [
      `Invoking the three models in parallel answers ${ratio.toFixed(2)}x as many requests per second as invoking them one after another (the ideal is 3x; the rest is aggregation, bookkeeping and HTTP).`,
    ],
  };
}
