/**
 * A small benchmark harness: interleaved A/B rounds (so machine drift cancels), medians with
 * spread, ratios computed pair by pair, and a markdown table writer.
 */
import { cpus, totalmem } from 'node:os';

/** One measured figure of one contender. */
export interface Figure {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

/** A row of a scenario's table. */
export interface Row {
  readonly name: string;
  readonly figure: Figure;
  readonly unit: string;
  /** median over rounds of (this / baseline), when the row has a baseline */
  readonly ratio?: Figure;
  readonly note?: string;
}

/** The result of one scenario. */
export interface ScenarioResult {
  readonly title: string;
  readonly description: string;
  readonly rows: Row[];
  /** one-line verdicts quoted in RESULTS.md */
  readonly findings: string[];
}

/** Options every scenario receives. */
export interface BenchContext {
  readonly full: boolean;
  readonly log: (line: string) => void;
}

/** A scenario: measures something and returns its table. */
export type Scenario = (ctx: BenchContext) => Promise<ScenarioResult>;

/**
 * Median, min and max of a list of numbers.
 * @param values - samples (at least one)
 */
export function summarize(values: readonly number[]): Figure {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median =
    sorted.length % 2 === 1
      ? (sorted[mid] as number)
      : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { median, min: sorted[0] as number, max: sorted[sorted.length - 1] as number };
}

/**
 * Runs each contender once per round, after `warmup` unmeasured rounds. The order rotates every
 * round (A B C, B C A, C A B, ...), so no contender always runs first (on a cold heap) or last
 * (after the others' garbage). Each contender returns its own figure for that run (e.g.
 * items/s); ratios are taken within each round against the first contender.
 * @returns per contender: all samples, and per round ratios against the first contender
 */
export async function interleave(
  contenders: ReadonlyArray<{ name: string; run: () => Promise<number> }>,
  options: { rounds: number; warmup: number; log?: (line: string) => void },
): Promise<Map<string, { samples: number[]; ratios: number[] }>> {
  const out = new Map(
    contenders.map((c) => [c.name, { samples: [] as number[], ratios: [] as number[] }]),
  );
  const n = contenders.length;
  for (let r = 0; r < options.warmup + options.rounds; r++) {
    const round: number[] = new Array<number>(n);
    for (let j = 0; j < n; j++) {
      const i = (r + j) % n;
      const c = contenders[i] as { name: string; run: () => Promise<number> };
      global.gc?.();
      const v = await c.run();
      round[i] = v;
      if (r >= options.warmup) out.get(c.name)?.samples.push(v);
    }
    if (r >= options.warmup) {
      const base = round[0] as number;
      for (const [i, c] of contenders.entries())
        out.get(c.name)?.ratios.push((round[i] as number) / base);
    }
    options.log?.(
      `  round ${r + 1}/${options.warmup + options.rounds}${r < options.warmup ? ' (warm-up)' : ''}, first ${contenders[r % n]?.name}: ${round.map((v) => fmt(v)).join(' | ')}`,
    );
  }
  return out;
}

/** Items per second of `items` processed in `ms`. */
export function rate(items: number, ms: number): number {
  return (items / ms) * 1000;
}

/** A number with thousands separators and sensible precision. */
export function fmt(v: number, digits?: number): string {
  const d = digits ?? (Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2);
  return v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

/** A figure as `median (min–max)`. */
export function fmtFigure(f: Figure, digits?: number): string {
  return `${fmt(f.median, digits)} (${fmt(f.min, digits)}–${fmt(f.max, digits)})`;
}

/** One line describing the machine. */
export function machine(): string {
  const cpu = cpus();
  return `${cpu[0]?.model ?? 'unknown CPU'}, ${cpu.length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${process.platform}-${process.arch}`;
}

/** A scenario's table as markdown. */
export function toMarkdown(result: ScenarioResult): string {
  const lines = [`## ${result.title}`, '', result.description, ''];
  lines.push('| contender | median (min–max) | unit | ratio to first, median (min–max) | note |');
  lines.push('|---|---|---|---|---|');
  for (const row of result.rows) {
    lines.push(
      `| ${row.name} | ${fmtFigure(row.figure)} | ${row.unit} | ${row.ratio ? fmtFigure(row.ratio, 2) : ''} | ${row.note ?? ''} |`,
    );
  }
  if (result.findings.length > 0) {
    lines.push('');
    for (const f of result.findings) lines.push(`- ${f}`);
  }
  lines.push('');
  return lines.join('\n');
}
