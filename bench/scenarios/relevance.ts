/**
 * Scenario: search relevance on small labelled sets shipped in bench/relevance/ (48 short
 * documents about this library; 42 queries written beside them and 26 held-out paraphrases,
 * each naming the documents it should find). Each
 * document is one atom embedded by the local feature-hashing embedder, in an in-memory PGlite;
 * every query runs in vector, text and hybrid mode. Figures: recall@5 (share of a query's
 * relevant documents among its first 5 hits, averaged) and MRR@10 (1 / rank of the first
 * relevant hit, 0 when none is in the first 10, averaged). Deterministic: one run, no rounds.
 */
import { readFileSync } from 'node:fs';
import {
  contentHash,
  type Embedder,
  localEmbedder,
  persistAtoms,
  type SearchMode,
  searchSimilar,
} from '@hartonomous/pipelines/atoms';
import { openDatabase } from '@hartonomous/pipelines/postgres';
import { type BenchContext, fmt, type Row, type ScenarioResult } from '../harness.js';

interface Labelled {
  readonly query: string;
  readonly relevant: readonly string[];
}

const read = <T>(name: string): T =>
  JSON.parse(readFileSync(new URL(`../relevance/${name}`, import.meta.url), 'utf8')) as T;

/** recall@5 and MRR@10 of ranked document ids against the labels. */
export function score(
  ranked: readonly (readonly string[])[],
  labels: readonly Labelled[],
): { recall5: number; mrr: number; perQuery: { recall5: number; rr: number }[] } {
  const perQuery = labels.map((l, i) => {
    const hits = ranked[i] ?? [];
    const top5 = new Set(hits.slice(0, 5));
    const recall5 = l.relevant.filter((id) => top5.has(id)).length / l.relevant.length;
    const first = hits.slice(0, 10).findIndex((id) => l.relevant.includes(id));
    return { recall5, rr: first === -1 ? 0 : 1 / (first + 1) };
  });
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  return {
    recall5: mean(perQuery.map((q) => q.recall5)),
    mrr: mean(perQuery.map((q) => q.rr)),
    perQuery,
  };
}

/** English stop words (PostgreSQL's english list, abridged) for the not-shipped embedder variant. */
const STOP_WORDS = new Set(
  'a about above after again against all am an and any are as at be because been before being below between both but by can could did do does doing down during each few for from further had has have having he her here hers him his how i if in into is it its itself just me more most my no nor not now of off on once only or other our out over own same she should so some such than that the their them then there these they this those through to too under until up very was we were what when where which while who whom why will with would you your'.split(
    ' ',
  ),
);

/** The local embedder on the text with stop words dropped and a crude suffix stemmer (not shipped). */
function stopWordEmbedder(): Embedder {
  const base = localEmbedder();
  const prep = (t: string) =>
    (
      t
        .normalize('NFKC')
        .toLowerCase()
        .match(/[\p{L}\p{N}]+/gu) ?? []
    )
      .filter((w) => !STOP_WORDS.has(w))
      .map((w) => w.replace(/(ing|ed|es|s|ly)$/, '').replace(/(.)\1$/, '$1'))
      .join(' ');
  return {
    model: 'bench/feature-hash-stop-words',
    dimensions: base.dimensions,
    embed: (texts, signal) => base.embed(texts.map(prep), signal),
  };
}

type Scored = ReturnType<typeof score> & { ranked: string[][] };

export async function relevance(ctx: BenchContext): Promise<ScenarioResult> {
  const documents = read<{ id: string; text: string }[]>('documents.json');
  const shipped = read<Labelled[]>('queries.json');
  const heldOut = read<Labelled[]>('held-out.json');
  const all = [...shipped, ...heldOut];
  const sets = [
    ['first set', shipped],
    ['held-out set', heldOut],
    ['both sets', all],
  ] as const;
  /** Every query of `all` in one mode, on a database holding the documents embedded by `embedder`. */
  const runAll = async (
    embedder: Embedder,
    runs: readonly { mode: SearchMode; rrfK?: number }[],
  ): Promise<string[][][]> => {
    const db = await openDatabase({ dataDir: 'memory://' });
    try {
      const vectors = await embedder.embed(
        documents.map((d) => d.text),
        AbortSignal.timeout(30_000),
      );
      await persistAtoms(
        db,
        documents.map((d, i) => ({
          hash: contentHash(d.text),
          content: d.text,
          embedding: vectors[i]!,
          embeddingModel: embedder.model,
          metadata: { doc: d.id },
        })),
      );
      const out: string[][][] = [];
      for (const { mode, rrfK } of runs) {
        const ranked: string[][] = [];
        for (const l of all) {
          const hits = await searchSimilar(db, l.query, 10, {
            embedder,
            model: embedder.model,
            mode,
            ...(rrfK === undefined ? {} : { rrfK }),
          });
          ranked.push(hits.map((h) => String(h.metadata.doc)));
        }
        out.push(ranked);
      }
      if (runs.length === 4) {
        // the `simple` text-search configuration (no stemming, no stop words), for comparison
        const conn = db.orm.em.getConnection();
        const simpleRanked: string[][] = [];
        for (const l of all) {
          const words = (l.query.match(/[\p{L}\p{N}]+/gu) ?? []).join(' or ');
          const rows = (await conn.execute(
            `SELECT metadata->>'doc' AS doc FROM atoms, websearch_to_tsquery('simple', ?) q
             WHERE to_tsvector('simple', content) @@ q
             ORDER BY ts_rank(to_tsvector('simple', content), q) DESC, id LIMIT 10`,
            [words],
          )) as { doc: string }[];
          simpleRanked.push(rows.map((r) => r.doc));
        }
        out.push(simpleRanked);
      }
      return out;
    } finally {
      await db.close();
    }
  };
  const [vectorAll, textAll, hybridAll, sharpAll, simpleAll] = await runAll(localEmbedder(), [
    { mode: 'vector' },
    { mode: 'text' },
    { mode: 'hybrid' },
    { mode: 'hybrid', rrfK: 1 },
  ]);
  const [stopVectorAll, , stopHybridAll] = await runAll(stopWordEmbedder(), [
    { mode: 'vector' },
    { mode: 'text' },
    { mode: 'hybrid' },
  ]);
  /** The queries of one set out of the rankings of all queries. */
  const of = (rankedAll: string[][] | undefined, set: readonly Labelled[]): Scored => {
    const from = set === heldOut ? shipped.length : 0;
    const ranked = (rankedAll ?? []).slice(from, from + set.length);
    return { ranked, ...score(ranked, set) };
  };
  const rows: Row[] = [];
  const fixed = (v: number) => ({ median: v, min: v, max: v });
  const f3 = (r: Scored) => `${fmt(r.recall5, 3)} / ${fmt(r.mrr, 3)}`;
  const findings: string[] = [];
  for (const [name, set] of sets) {
    const vector = of(vectorAll, set);
    const text = of(textAll, set);
    const hybrid = of(hybridAll, set);
    for (const [mode, r] of [
      ['vector (local feature-hashing embedder, cosine)', vector],
      ['text (PostgreSQL full-text, english configuration)', text],
      ['hybrid (reciprocal rank fusion, k = 60, 50 candidates each)', hybrid],
    ] as const) {
      rows.push({
        name: `${name} (${set.length} queries), ${mode}: recall@5`,
        figure: fixed(r.recall5),
        unit: 'recall@5',
      });
      rows.push({ name: `${name}, ${mode}: MRR@10`, figure: fixed(r.mrr), unit: 'MRR' });
    }
    const wins = (a: Scored, b: Scored) =>
      a.perQuery.filter((q, i) => q.rr > b.perQuery[i]!.rr).length;
    const losses = (a: Scored, b: Scored) => wins(b, a);
    const beats =
      hybrid.recall5 > Math.max(vector.recall5, text.recall5) &&
      hybrid.mrr > Math.max(vector.mrr, text.mrr);
    ctx.log(`  ${name}: vector ${f3(vector)} text ${f3(text)} hybrid ${f3(hybrid)}`);
    findings.push(
      `${name[0]!.toUpperCase()}${name.slice(1)} (${set.length} queries): hybrid ${beats ? 'beats both of its parts' : 'does NOT beat both of its parts'}, recall@5 / MRR ${f3(hybrid)} vs vector ${f3(vector)} and text ${f3(text)}. Query by query (reciprocal rank), hybrid is better than vector on ${wins(hybrid, vector)} queries and worse on ${losses(hybrid, vector)}; better than text on ${wins(hybrid, text)} and worse on ${losses(hybrid, text)}.`,
    );
  }
  const demo = all.findIndex((l) => l.query.startsWith('what to do when a consumer'));
  const firstOf = (ranked: string[][] | undefined) => ranked?.[demo]?.[0] ?? '(none)';
  const per = (rankedAll: string[][] | undefined) =>
    sets
      .slice(0, 2)
      .map(([name, set]) => `${name} ${f3(of(rankedAll, set))}`)
      .join(', ');
  const limit = all.findIndex((l) => l.query.startsWith('limit the number'));
  const rankOf = (ranked: string[][] | undefined) => {
    const r = ranked?.[limit]?.indexOf('bulkhead') ?? -1;
    return r === -1
      ? 'beyond 10th'
      : `${r + 1}${r === 0 ? 'st' : r === 1 ? 'nd' : r === 2 ? 'rd' : 'th'}`;
  };
  findings.push(
    `Why hybrid loses on the first set: its queries were written beside the documents and share many of their words, so full-text search alone is near its ceiling there (MRR ${fmt(of(textAll, shipped).mrr, 3)}), and the feature-hashing embedder is lexical too (words and trigrams, stop words included), so where it errs it adds noise rather than a second opinion; equal-weight fusion then pulls a hit that text ranks first down when the vector ranking disagrees (e.g. "limit the number of concurrent calls and reject the overflow": text ${rankOf(textAll)}, vector ${rankOf(vectorAll)}, hybrid ${rankOf(hybridAll)}). The held-out queries, written afterwards as paraphrases with fewer of the documents' words, are where the two rankings err differently, and there fusion pays.`,
    `Tuning on the first set does not carry over: rrfK = 1 (top ranks weigh more) gives ${per(sharpAll)} (recall@5 / MRR), against the default k = 60's ${per(hybridAll)}. The defaults stay (k = 60, 50 candidates per part, equal weights), the usual values, not ones fitted to this set.`,
    `A better lexical embedder is not the fix either: the local embedder on text with stop words dropped and a crude suffix stemmer (not shipped; its vector search ${per(stopVectorAll)}) makes vector search better, but hybrid with it gives ${per(stopHybridAll)}: better on the first set, a lower MRR on the held-out one.`,
    `The demo query "${all[demo]?.query}" puts first: vector "${firstOf(vectorAll)}", text "${firstOf(textAll)}", hybrid "${firstOf(hybridAll)}" (labelled: ${all[demo]?.relevant.join(', ')}).`,
    `The english text-search configuration (stemming, stop words dropped) against simple, recall@5 / MRR: ${per(textAll)} vs ${per(simpleAll)}.`,
  );
  return {
    title: '12. Search relevance: vector, text and hybrid',
    description: `${documents.length} short documents about this library and two labelled query sets in bench/relevance/: the first ${shipped.length} queries (queries.json, written beside the documents) and ${heldOut.length} held-out queries (held-out.json, paraphrases written later, before any measurement, and never used to choose a parameter); 1–2 relevant documents per query. Each document is one atom embedded by the local feature-hashing embedder (384 dimensions) in an in-memory PGlite. recall@5: share of a query's relevant documents among its first 5 hits; MRR@10: mean of 1 / rank of the first relevant hit (0 when none in the first 10). Deterministic, so one run and no spread.`,
    rows,
    findings,
  };
}
