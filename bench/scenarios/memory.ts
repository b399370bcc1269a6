/**
 * Scenario 2: memory stays flat however long the stream. Peak RSS of a child process that
 * streams 100k, 1M (and 5M in full mode) items from an async generator through a slow step.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type BenchContext, fmt, type ScenarioResult, summarize } from '../harness.js';

const child = fileURLToPath(new URL('./memory-child.ts', import.meta.url));
const tsconfig = fileURLToPath(new URL('../tsconfig.json', import.meta.url));

function peak(n: number): { rssMiB: number; ms: number; heapMiB: number; baselineMiB: number } {
  const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', child, String(n)], {
    encoding: 'utf8',
    env: { ...process.env, TSX_TSCONFIG_PATH: tsconfig },
    maxBuffer: 1 << 20,
  });
  const r = JSON.parse(out) as {
    done: number;
    ms: number;
    peakMiB: number;
    heapAfterGcMiB: number;
    baselineMiB: number;
  };
  if (r.done !== n) throw new Error(`memory child finished ${r.done} of ${n} items`);
  return { rssMiB: r.peakMiB, ms: r.ms, heapMiB: r.heapAfterGcMiB, baselineMiB: r.baselineMiB };
}

export async function memory(ctx: BenchContext): Promise<ScenarioResult> {
  const sizes = ctx.full ? [100_000, 1_000_000, 5_000_000] : [100_000, 1_000_000];
  const rounds = ctx.full ? 3 : 2;
  const samples = new Map<number, number[]>(sizes.map((s) => [s, []]));
  const times = new Map<number, number[]>(sizes.map((s) => [s, []]));
  const heaps = new Map<number, number[]>(sizes.map((s) => [s, []]));
  for (let r = 0; r < rounds; r++) {
    for (const n of sizes) {
      const p = peak(n);
      samples.get(n)?.push(p.rssMiB);
      times.get(n)?.push(p.ms);
      heaps.get(n)?.push(p.heapMiB);
      ctx.log(
        `  round ${r + 1}/${rounds}: ${n.toLocaleString('en-US')} items -> peak RSS ${fmt(p.rssMiB)} MiB (${fmt(p.baselineMiB)} after warm-up), heap after GC ${fmt(p.heapMiB)} MiB, ${fmt(p.ms / 1000)} s`,
      );
    }
  }
  const base = summarize(samples.get(sizes[0] as number) ?? []).median;
  const heapOf = (n: number): number => summarize(heaps.get(n) ?? []).median;
  const rows = sizes.map((n) => {
    const f = summarize(samples.get(n) ?? []);
    return {
      name: `${n.toLocaleString('en-US')} items`,
      figure: f,
      unit: 'MiB peak RSS',
      ratio: { median: f.median / base, min: f.min / base, max: f.max / base },
      note: `heap after GC ${fmt(summarize(heaps.get(n) ?? []).median)} MiB; ${fmt(n / (summarize(times.get(n) ?? []).median / 1000))} items/s`,
    };
  });
  const largest = rows[rows.length - 1];
  const growth = largest ? (largest.figure.median / base - 1) * 100 : 0;
  return {
    title: '2. Memory: peak RSS as the stream grows',
    description:
      'A child process (tsx, built package) first streams 300,000 items as a warm-up, since V8 sizes its heap during the first second of allocation, then streams N items (each a small object with a 64-byte string) from an async generator through a step that awaits a macrotask, concurrency 16. Peak RSS is sampled every 20 ms during the measured stream; the heap is read after a full GC at the end.',
    rows,
    findings: [
      `Peak RSS for ${largest?.name} is ${growth >= 0 ? '+' : ''}${growth.toFixed(1)}% of the 100,000-item run (goal: within 20%). The heap left after a full GC is ${fmt(heapOf(sizes[0] as number))} MiB after 100,000 items and ${fmt(heapOf(sizes[sizes.length - 1] as number))} MiB after ${largest?.name}: nothing is retained per item; what RSS gains in a longer run is garbage V8 lets pile up between major collections.`,
    ],
  };
}
