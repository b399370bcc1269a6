/**
 * Scenario: the embedded default as a new user meets it. Each figure is a whole child process,
 * timed from outside (wall clock, and CPU time from `/usr/bin/time` where it exists, which on a
 * shared machine is the steadier figure):
 *
 * - `npm run demo` (tsx examples/demo.ts) into a new data folder with an empty tsx cache and no
 *   PGlite template (the first run after a clone), then again on the same folder with the cache warm;
 * - `hartonomous search` (the built bin, dist/cli/main.js) against a PGlite folder holding N
 *   atoms (20,000: about 200 bytes of text each, 384-float vectors), `npm run cli` (what a clone
 *   runs: scripts/cli.mjs, the built dist/ when current), the sources through tsx, and two
 *   floors: a bare `node -e 0`, and plain Node opening PGlite with pgvector on the folder for
 *   the same top-10 query (no library code);
 * - the folder's bytes after `close()` against the bytes of content plus vectors it holds.
 *
 * Contenders of one table run interleaved, order rotating each round. `BENCH_EMBEDDED_DEMO=0`
 * skips the demo runs (their rows are then left out).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

const root = fileURLToPath(new URL('../..', import.meta.url));
const child = fileURLToPath(new URL('./embedded-child.ts', import.meta.url));
const floor = fileURLToPath(new URL('./embedded-floor.mjs', import.meta.url));
const tsconfig = fileURLToPath(new URL('../tsconfig.json', import.meta.url));
const TIME = '/usr/bin/time';

/** Wall and CPU seconds of one child process. */
interface Timing {
  wall: number;
  cpu: number;
}

/** Runs a command to completion; its wall and (with /usr/bin/time) CPU seconds. */
function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Timing {
  const options = {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'] as ['ignore', 'ignore', 'pipe'],
    maxBuffer: 16 << 20,
  };
  const started = performance.now();
  if (!existsSync(TIME)) {
    execFileSync(command, args, options);
    return { wall: (performance.now() - started) / 1000, cpu: Number.NaN };
  }
  const out = join(mkdtempSync(join(tmpdir(), 'bench-time-')), 'time');
  try {
    execFileSync(TIME, ['-f', '%e %U %S', '-o', out, command, ...args], options);
    const [wall, user, sys] = readFileSync(out, 'utf8').trim().split(/\s+/).slice(-3).map(Number);
    return { wall: wall ?? Number.NaN, cpu: (user ?? 0) + (sys ?? 0) };
  } finally {
    rmSync(join(out, '..'), { recursive: true, force: true });
  }
}

/** Bytes of every file under `dir`. */
function folderBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += statSync(join(entry.parentPath, entry.name)).size;
  }
  return total;
}

/** Table rows of timed contenders: wall seconds with the CPU seconds in the note. */
function timingRows(
  contenders: ReadonlyArray<{ name: string; note?: string }>,
  wall: Map<string, { samples: number[]; ratios: number[] }>,
  cpu: Map<string, number[]>,
): Row[] {
  return contenders.map((c) => {
    const w = wall.get(c.name);
    if (!w) throw new Error(`no result for ${c.name}`);
    const cpuSamples = cpu.get(c.name) ?? [];
    const cpuNote = cpuSamples.every(Number.isFinite)
      ? `CPU ${fmt(summarize(cpuSamples).median, 2)} s`
      : '';
    return {
      name: c.name,
      figure: summarize(w.samples),
      unit: 's wall',
      ratio: summarize(w.ratios),
      note: [cpuNote, c.note].filter(Boolean).join('; '),
    };
  });
}

/** Runs the scenario. */
export async function embedded(ctx: BenchContext): Promise<ScenarioResult> {
  const atoms = 20_000;
  const rounds = ctx.full ? 5 : 3;
  const work = mkdtempSync(join(tmpdir(), 'bench-embedded-'));
  try {
    // 1. the folder: filled once through ingest(), measured after close
    const folder = join(work, 'atoms');
    ctx.log(`  filling ${folder} with ${fmt(atoms)} atoms`);
    const filled = JSON.parse(
      execFileSync(process.execPath, ['--import', 'tsx', child, 'fill', folder, String(atoms)], {
        cwd: root,
        encoding: 'utf8',
        env: { ...process.env, TSX_TSCONFIG_PATH: tsconfig },
      }),
    ) as { atoms: number; contentBytes: number; vectorBytes: number; ms: number };
    if (filled.atoms !== atoms) throw new Error(`the folder holds ${filled.atoms} atoms`);
    const bytes = folderBytes(folder);
    const wal = folderBytes(join(folder, 'pg_wal'));
    const payload = filled.contentBytes + filled.vectorBytes;

    // 2. search against that folder
    const query = ['search', '--data-dir', folder, '-k', '10', 'copper', 'river', 'anchor'];
    const searchers = [
      {
        name: `hartonomous search, built bin (node dist/cli/main.js), ${fmt(atoms)} atoms`,
        run: () => run(process.execPath, [join(root, 'dist/cli/main.js'), ...query]),
      },
      {
        name: 'npm run cli (from a clone: the built dist/ when current, via scripts/cli.mjs)',
        run: () => run('npm', ['run', '-s', 'cli', '--', ...query]),
      },
      {
        name: 'same sources through tsx (node --import tsx lib/cli/main.ts)',
        run: () =>
          run(process.execPath, ['--import', 'tsx', join(root, 'lib/cli/main.ts'), ...query]),
      },
      {
        name: 'floor: plain Node, PGlite + pgvector opened, the same top-10 query, closed',
        run: () => run(process.execPath, [floor, folder]),
      },
      { name: 'floor: node -e 0', run: () => run(process.execPath, ['-e', '0']) },
    ];
    const searchCpu = new Map<string, number[]>();
    const searchWall = await interleave(
      searchers.map((s) => ({
        name: s.name,
        run: async () => {
          const t = s.run();
          searchCpu.set(s.name, [...(searchCpu.get(s.name) ?? []), t.cpu]);
          return t.wall;
        },
      })),
      { rounds, warmup: 1, log: ctx.log },
    );
    for (const s of searchers) searchCpu.set(s.name, (searchCpu.get(s.name) ?? []).slice(1));

    // 3. the demo, first (new folder, empty tsx cache, no template) and second (same folder, warm cache)
    const demoCpu = new Map<string, number[]>();
    const demoWall = new Map<string, { samples: number[]; ratios: number[] }>();
    const first = 'npm run demo, first run (new data folder, empty tsx cache, no PGlite template)';
    const second = 'npm run demo, second run (same folder, warm cache)';
    const demoRounds = process.env.BENCH_EMBEDDED_DEMO === '0' ? 0 : rounds;
    for (let r = 0; r < demoRounds; r++) {
      const dir = mkdtempSync(join(work, 'demo-'));
      const cache = mkdtempSync(join(work, 'tmp-'));
      // a clone's first run: no tsx cache and no PGlite template yet (both are built by this run)
      const env = {
        DEMO_DATA_DIR: join(dir, 'data'),
        TMPDIR: cache,
        HARTONOMOUS_PGLITE_TEMPLATES: join(cache, 'templates'),
      };
      const a = run('npm', ['run', 'demo'], env);
      const b = run('npm', ['run', 'demo'], env);
      rmSync(dir, { recursive: true, force: true });
      rmSync(cache, { recursive: true, force: true });
      for (const [name, t] of [
        [first, a],
        [second, b],
      ] as const) {
        const w = demoWall.get(name) ?? { samples: [], ratios: [] };
        w.samples.push(t.wall);
        w.ratios.push(t.wall / a.wall);
        demoWall.set(name, w);
        demoCpu.set(name, [...(demoCpu.get(name) ?? []), t.cpu]);
      }
      ctx.log(`  demo round ${r + 1}/${rounds}: first ${fmt(a.wall)} s, second ${fmt(b.wall)} s`);
    }

    const searchRows = timingRows(searchers, searchWall, searchCpu);
    const demoRows =
      demoRounds > 0 ? timingRows([{ name: first }, { name: second }], demoWall, demoCpu) : [];
    const bin = searchers[0]?.name ?? '';
    const floorName = searchers[3]?.name ?? '';
    const overFloor = pairwise(
      samplesOf(searchWall, bin),
      samplesOf(searchWall, floorName),
      (x, y) => x / y,
    );
    const med = (name: string, m: Map<string, number[]>) => summarize(m.get(name) ?? [0]).median;
    const rows: Row[] = [
      ...demoRows,
      ...searchRows,
      {
        name: 'search (built bin) ÷ floor (PGlite alone)',
        figure: overFloor,
        unit: 'x',
        note: 'round by round, wall',
      },
      {
        name: `PGlite folder after close(), ${fmt(atoms)} atoms`,
        figure: summarize([bytes / 2 ** 20]),
        unit: 'MiB',
        note: `${fmt(wal / 2 ** 20, 1)} MiB of it WAL`,
      },
      {
        name: 'content + vectors stored in it',
        figure: summarize([payload / 2 ** 20]),
        unit: 'MiB',
        note: `${fmt(filled.contentBytes / 2 ** 20, 1)} MiB text, ${fmt(filled.vectorBytes / 2 ** 20, 1)} MiB float32 vectors`,
      },
      {
        name: 'folder ÷ (content + vectors)',
        figure: summarize([bytes / payload]),
        unit: 'x',
        note: 'goal <= 2',
      },
    ];
    const demoFirst = summarize(demoWall.get(first)?.samples ?? [0]).median;
    const demoSecond = summarize(demoWall.get(second)?.samples ?? [0]).median;
    const searchBin = summarize(searchWall.get(bin)?.samples ?? [0]).median;
    return {
      title: '10. The embedded default: demo, search, disk',
      description: `Whole child processes timed from outside, on a fresh temporary folder per run (see bench/scenarios/embedded.ts). ${rounds} rounds; the search contenders interleaved with rotating order after a warm-up round, the demo run first then second in each round. Wall seconds are what a user waits on THIS machine (shared, often loaded); the CPU seconds in the notes (user + system, all threads) are the steadier figure. The folder: ${fmt(atoms)} atoms of 170-230 bytes, 384-dimension vectors from the local embedder, through ingest() (atoms and their outbox rows; claims are in-process leases and write nothing), measured after close().`,
      rows,
      findings: [
        demoRounds > 0
          ? `Demo: first run ${fmt(demoFirst, 1)} s wall (CPU ${fmt(med(first, demoCpu), 1)} s; goal <= 10 s), second run ${fmt(demoSecond, 1)} s wall (CPU ${fmt(med(second, demoCpu), 1)} s; goal <= 5 s).`
          : 'Demo: not run this time (`BENCH_EMBEDDED_DEMO=0`).',
        `Search against ${fmt(atoms)} atoms with the built bin: ${fmt(searchBin, 2)} s wall (CPU ${fmt(med(bin, searchCpu), 2)} s; goal <= 1 s), ${fmt(overFloor.median, 2)}x the floor of opening PGlite and running the same query with no library code (CPU ${fmt(med(floorName, searchCpu), 2)} s).`,
        `Disk: ${fmt(bytes / 2 ** 20, 1)} MiB after close for ${fmt(payload / 2 ** 20, 1)} MiB of content and vectors: ${fmt(bytes / payload, 2)}x (goal <= 2x); WAL ${fmt(wal / 2 ** 20, 1)} MiB.`,
      ],
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
