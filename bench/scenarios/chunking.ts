/**
 * Scenario: chunking throughput on the same markdown text (the repository's README.md and
 * CHANGELOG.md repeated to about 1 MB, code fences and lists included), the library's chunkers
 * against LangChain's text splitters (`@langchain/textsplitters`) with the same size budget
 * and overlap in characters (1,000 and 100). The contenders' order rotates every round.
 */
import { readFileSync } from 'node:fs';
import { markdownChunker, paragraphChunker } from '@hartonomous/pipelines/chunking';
import { MarkdownTextSplitter, RecursiveCharacterTextSplitter } from '@langchain/textsplitters';
import { type BenchContext, fmt, interleave, type ScenarioResult } from '../harness.js';
import { rowsOf } from '../support/measure.js';

export async function chunking(ctx: BenchContext): Promise<ScenarioResult> {
  const read = (name: string) => readFileSync(new URL(`../../${name}`, import.meta.url), 'utf8');
  const base = `${read('README.md')}\n\n${read('CHANGELOG.md')}`;
  const target = ctx.full ? 4_000_000 : 1_000_000;
  const text = base.repeat(Math.ceil(target / base.length));
  const doc = { id: 'bench.md', content: text };
  const budget = { max: 1_000, overlap: 100 };
  const md = markdownChunker({ budget });
  const para = paragraphChunker({ budget });
  const lcRecursive = new RecursiveCharacterTextSplitter({ chunkSize: 1_000, chunkOverlap: 100 });
  const lcMarkdown = new MarkdownTextSplitter({ chunkSize: 1_000, chunkOverlap: 100 });
  const counts = new Map<string, number>();
  const mbPerS = (name: string, fn: () => Promise<unknown[]> | unknown[]) => async () => {
    const t = performance.now();
    const chunks = await fn();
    const ms = performance.now() - t;
    counts.set(name, chunks.length);
    return text.length / 1e6 / (ms / 1000);
  };
  const contenders = [
    {
      name: 'markdownChunker (sections, fences whole, lists together)',
      run: mbPerS('md', () => md(doc)),
    },
    {
      name: 'paragraphChunker (paragraphs, then sentences, words)',
      run: mbPerS('para', () => para(doc)),
    },
    {
      name: 'LangChain MarkdownTextSplitter',
      run: mbPerS('lcmd', () => lcMarkdown.splitText(text)),
    },
    {
      name: 'LangChain RecursiveCharacterTextSplitter',
      run: mbPerS('lcrec', () => lcRecursive.splitText(text)),
    },
  ];
  const results = await interleave(contenders, {
    rounds: ctx.full ? 9 : 5,
    warmup: 1,
    log: ctx.log,
  });
  const notes = ['md', 'para', 'lcmd', 'lcrec'].map((k) => `${fmt(counts.get(k) ?? 0)} chunks`);
  const rows = rowsOf(
    contenders.map((c, i) => ({ name: c.name, note: notes[i]! })),
    results,
    'MB/s',
  );
  const ratio = (i: number) => rows[i]!.ratio!.median;
  return {
    title: '13. Chunking throughput: the library vs LangChain text splitters',
    description: `${fmt(text.length / 1e6, 1)} MB of markdown (README.md and CHANGELOG.md repeated), cut with a budget of 1,000 characters and an overlap of 100 by each contender, in the same process. MB/s of input (UTF-16 code units / 1e6). LangChain's splitters return strings; ours return chunks with offsets and heading paths. The contenders' order rotates every round.`,
    rows,
    findings: [
      `markdownChunker ran at ${fmt(1 / ratio(2), 2)}x the rate of LangChain's MarkdownTextSplitter and ${fmt(1 / ratio(3), 2)}x its RecursiveCharacterTextSplitter; paragraphChunker at ${fmt(ratio(1) / ratio(3), 2)}x RecursiveCharacterTextSplitter (from the medians of the round-by-round ratios to markdownChunker).`,
    ],
  };
}
