/**
 * Child process of the memory scenario: after a warm-up stream (V8 sizes its heap during the
 * first second of allocation), streams N items from an async generator through a slow step,
 * sampling RSS every 20 ms, and prints the peak RSS during that stream and the heap left after
 * a full GC, as JSON. Run by bench/scenarios/memory.ts with --expose-gc.
 */
import { setImmediate as tick } from 'node:timers/promises';
import { pipeline, step } from '@hartonomous/pipelines';
import { count, lastValueFrom } from 'rxjs';

const n = Number(process.argv[2]);
const warmup = Number(process.argv[3] ?? 300_000);

async function* source(count: number): AsyncGenerator<{ id: number; payload: string }> {
  for (let i = 0; i < count; i++) yield { id: i, payload: `item-${i}-${'x'.repeat(64)}` };
}
const slow = step('slow', async (item: { id: number; payload: string }) => {
  await tick();
  return item.payload.length + item.id;
});
const p = pipeline('memory', slow);
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

await lastValueFrom(p.stream(source(warmup), { concurrency: 16 }).pipe(count()));
gc();
const baseline = process.memoryUsage.rss();
let peak = baseline;
const sampler = setInterval(() => {
  peak = Math.max(peak, process.memoryUsage.rss());
}, 20);
const t = performance.now();
const done = await lastValueFrom(p.stream(source(n), { concurrency: 16 }).pipe(count()));
const ms = performance.now() - t;
clearInterval(sampler);
peak = Math.max(peak, process.memoryUsage.rss());
gc();
process.stdout.write(
  JSON.stringify({
    n,
    done,
    ms,
    baselineMiB: baseline / 2 ** 20,
    peakMiB: peak / 2 ** 20,
    heapAfterGcMiB: process.memoryUsage().heapUsed / 2 ** 20,
  }),
);
