/**
 * Scenario 2: memory stays flat however long the stream. Peak RSS (the kernel's high-water
 * mark) of a fresh child process that streams N items from an async generator through three
 * trivial async steps, with no warm-up: the pipeline at 100k, 1M and 5M items (1M and 100k in
 * quick mode), and hand-written RxJS on the same work at 1M. Diagnostic rows run the same
 * pipeline children under `node --optimize-for-size`, to show how much of the growth is V8's
 * heap sizing (the headline rows use Node's defaults).
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  type BenchContext,
  fmt,
  interleave,
  type Row,
  type ScenarioResult,
  summarize,
} from '../harness.js';
import { pairwise, samplesOf } from '../support/measure.js';

const child = fileURLToPath(new URL('./memory-child.ts', import.meta.url));
const tsconfig = fileURLToPath(new URL('../tsconfig.json', import.meta.url));

interface Run {
  done: number;
  ms: number;
  startMiB: number;
  peakMiB: number;
}

type Mode = 'pipeline' | 'rxjs' | 'loop';

/** V8 flags of the diagnostic rows: V8 favours memory size over speed. */
const SIZE_FLAGS = ['--optimize-for-size'];

function measure(mode: Mode, n: number, flags: readonly string[] = []): Run {
  const args = [...flags, '--import', 'tsx', child, mode, String(n)];
  const out = execFileSync(process.execPath, args, {
    encoding: 'utf8',
    env: { ...process.env, TSX_TSCONFIG_PATH: tsconfig },
    maxBuffer: 1 << 20,
  });
  const r = JSON.parse(out) as Run;
  if (r.done !== n) throw new Error(`memory child (${mode}) finished ${r.done} of ${n} items`);
  return r;
}

export async function memory(ctx: BenchContext): Promise<ScenarioResult> {
  const sizes = ctx.full ? [100_000, 1_000_000, 5_000_000] : [100_000, 1_000_000];
  const largest = sizes[sizes.length - 1] as number;
  const runs = new Map<string, Run[]>();
  const label: Record<Mode, string> = {
    pipeline: 'pipeline.stream',
    rxjs: 'hand-written RxJS',
    loop: 'floor: sequential for await loop, no framework',
  };
  const contender = (mode: Mode, n: number, flags: readonly string[] = []) => {
    const name = `${flags.length ? 'diagnostic: ' : ''}${label[mode]}, ${n.toLocaleString('en-US')} items${flags.length ? `, node ${flags.join(' ')}` : ''}`;
    runs.set(name, []);
    return {
      name,
      run: async () => {
        const r = measure(mode, n, flags);
        runs.get(name)?.push(r);
        return r.peakMiB;
      },
    };
  };
  const contenders = [
    ...sizes.map((n) => contender('pipeline', n)),
    contender('rxjs', 1_000_000),
    contender('loop', 100_000),
    contender('loop', largest),
    contender('pipeline', 100_000, SIZE_FLAGS),
    contender('pipeline', largest, SIZE_FLAGS),
  ];
  const rxIndex = sizes.length;
  ctx.log(`memory: ${contenders.map((c) => c.name).join('; ')}`);
  const results = await interleave(contenders, { rounds: 5, warmup: 0, log: ctx.log });
  const s = (i: number) => samplesOf(results, contenders[i]?.name ?? '');
  const rows: Row[] = contenders.map((c, i) => {
    const r = runs.get(c.name) ?? [];
    const rate = summarize(r.map((x) => (x.done / x.ms) * 1000)).median;
    return {
      name: c.name,
      figure: summarize(s(i)),
      unit: 'MiB peak RSS',
      ratio: summarize(results.get(c.name)?.ratios ?? []),
      note: `${fmt(summarize(r.map((x) => x.startMiB)).median)} MiB at start; ${fmt(rate)} items/s`,
    };
  });
  const growth = pairwise(s(sizes.length - 1), s(0), (a, b) => a / b);
  const oneM = sizes.indexOf(1_000_000);
  const vsRx = pairwise(s(oneM), s(rxIndex), (a, b) => a / b);
  const floor = pairwise(s(rxIndex + 2), s(rxIndex + 1), (a, b) => a / b);
  const sized = pairwise(s(rxIndex + 4), s(rxIndex + 3), (a, b) => a / b);
  rows.push(
    {
      name: `pipeline ${largest.toLocaleString('en-US')} ÷ pipeline 100,000`,
      figure: growth,
      unit: 'x',
      note: 'round by round',
    },
    {
      name: 'pipeline 1,000,000 ÷ RxJS 1,000,000',
      figure: vsRx,
      unit: 'x',
      note: 'round by round',
    },
    {
      name: `floor: loop ${largest.toLocaleString('en-US')} ÷ loop 100,000`,
      figure: floor,
      unit: 'x',
      note: 'round by round: what V8 does with this garbage, no framework at all',
    },
    {
      name: `diagnostic: pipeline ${largest.toLocaleString('en-US')} ÷ pipeline 100,000, node ${SIZE_FLAGS.join(' ')}`,
      figure: sized,
      unit: 'x',
      note: 'round by round: the same children, V8 sizing its heap for memory',
    },
  );
  const verdict = (f: { median: number }, goal: number) =>
    `${fmt(f.median, 2)}x (goal <= ${goal.toFixed(1)}x: ${f.median <= goal ? 'met' : 'NOT met'})`;
  return {
    title: '2. Memory: peak RSS as the stream grows',
    description:
      'A fresh child process (tsx, built package) per run, with no warm-up: N items (each a small object with a 64-byte string) from an async generator through three trivial async steps at concurrency 16, the pipeline against hand-written RxJS (`from(generator)` + `mergeMap(step, 16)` x3) on the same work. Figure: the process’s peak RSS as the kernel counts it (`process.resourceUsage().maxRSS`, startup included). The contenders’ order rotates every round.',
    rows,
    findings: [
      `Peak RSS at ${largest.toLocaleString('en-US')} items is ${verdict(growth, 1.2)} that at 100,000 items; at 1,000,000 items it is ${verdict(vsRx, 1.3)} hand-written RxJS's. A sequential \`for await\` loop doing the same three awaits with no framework grows by ${fmt(floor.median, 2)}x over the same lengths: that is the floor on Node ${process.versions.node} with default GC settings.`,
      `What the growth is: V8's heap sizing, not the library. Run under \`node ${SIZE_FLAGS.join(' ')}\` (V8 favours memory over speed: a smaller young generation, a smaller factor for growing the old one), the same pipeline children grow ${fmt(sized.median, 2)}x from 100,000 to ${largest.toLocaleString('en-US')} items (goal <= 1.2x: ${sized.median <= 1.2 ? 'met' : 'NOT met'} under those flags). With Node's defaults the young generation grows with the run (V8's new space, by \`v8.getHeapSpaceStatistics()\` at exit: 16 MiB after 100,000 items, 32 MiB after 5,000,000), and after each mark-compact the old generation may fill with promoted garbage to several times the live data before the next one; peak RSS follows the committed heap (a \`--trace-gc\` of the 5,000,000-item floor loop: 30 MB committed at most for 100,000 items, 82 MB for 5,000,000, the same 52 MB as the RSS difference). Either half alone leaves growth: \`--max-semi-space-size=1\` about 1.3x, \`--heap-growing-percent=10\` about 1.4x; both together 1.04-1.10x (two runs each: \`TSX_TSCONFIG_PATH=bench/tsconfig.json node <flags> --import tsx bench/scenarios/memory-child.ts pipeline 5000000\`, after \`npm run build\`). A library cannot choose V8 flags for the application that runs it; an application that wants flat memory over speed can (\`NODE_OPTIONS=--optimize-for-size\`).`,
      'Why RSS grows with the length of the run although nothing is retained (a GC trace, `--trace-gc-nvp`, of 1M items): each scavenge (every ~8 MB allocated) promotes the data alive at that moment (the items in flight, ~85 KB) to the old generation, where it dies; V8 lets the old generation grow to a limit it raises after each mark-compact before collecting it, and RSS follows that high-water mark. Per item, the pipeline allocates ~2.3 KB and promotes ~28 bytes (the async generator alone ~0.9 KB and ~16 bytes; hand-written RxJS ~4.9 KB and ~29 bytes). A run long enough to reach the old generation’s limit shows the growth; 100,000 items does not. The pipeline holds at most concurrency + buffer items (32 here) whatever the length.',
    ],
  };
}
