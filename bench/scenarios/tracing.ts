/**
 * Scenario 6: tracing cost. A real tracer provider with a batching span processor (exporting to
 * a sink that discards) against no tracing, same pipeline.
 */

import { pipeline, step } from '@hartonomous/pipelines';
import type { ExportResult } from '@opentelemetry/core';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { count, lastValueFrom } from 'rxjs';
import {
  type BenchContext,
  fmt,
  interleave,
  rate,
  type ScenarioResult,
  summarize,
} from '../harness.js';

class DiscardExporter implements SpanExporter {
  exported = 0;
  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    this.exported += spans.length;
    done({ code: 0 });
  }
  async shutdown(): Promise<void> {}
}

export async function tracing(ctx: BenchContext): Promise<ScenarioResult> {
  const n = ctx.full ? 500_000 : 100_000;
  const items = Array.from({ length: n }, (_, i) => i);
  const exporter = new DiscardExporter();
  const provider = new BasicTracerProvider({
    spanProcessors: [
      new BatchSpanProcessor(exporter, {
        maxQueueSize: 65_536,
        maxExportBatchSize: 2_048,
        scheduledDelayMillis: 50,
      }),
    ],
  });
  const tracer = provider.getTracer('bench');
  const steps = [
    step('a', async (x: number) => x + 1),
    step('b', async (x: number) => x * 2),
    step('c', async (x: number) => x - 1),
  ] as const;
  const traced = pipeline({ name: 'traced', tracer }, ...steps);
  const plain = pipeline({ name: 'plain' }, ...steps);
  const run = async (p: typeof plain) => {
    const t = performance.now();
    await lastValueFrom(p.stream(items, { concurrency: 16 }).pipe(count()));
    return rate(n, performance.now() - t);
  };
  ctx.log(`tracing: ${n.toLocaleString('en-US')} items`);
  const results = await interleave(
    [
      { name: 'no tracer provider (API no-op)', run: () => run(plain) },
      {
        name: 'BasicTracerProvider + BatchSpanProcessor, 4 spans per item',
        run: () => run(traced),
      },
    ],
    { rounds: ctx.full ? 5 : 3, warmup: 1, log: ctx.log },
  );
  await provider.forceFlush();
  await provider.shutdown();
  const rows = [...results.entries()].map(([name, r]) => ({
    name,
    figure: summarize(r.samples),
    unit: 'items/s',
    ratio: summarize(r.ratios),
  }));
  const off = rows[0]?.figure.median ?? 1;
  const on = rows[1]?.figure.median ?? 1;
  return {
    title: '6. Tracing: a real provider with a batching processor',
    description: `${n.toLocaleString('en-US')} items through three async steps; with tracing each item makes a run span and three step spans (${fmt(exporter.exported)} spans exported, queue overflow drops counted as not exported).`,
    rows,
    findings: [
      `Recording four spans per item costs about ${fmt((1 / on - 1 / off) * 1e6, 2)} µs per item (${fmt(on / off, 2)}x the untraced throughput). Without a provider the engine allocates no span context at all.`,
    ],
  };
}
