/**
 * Scenario: keeping a corpus in sync. `ingestDocuments` (cleanup `'incremental'`) against
 * LangChain.js `index()` (cleanup `'incremental'`, `PostgresRecordManager` + `PGVectorStore` +
 * `OpenAIEmbeddings`) on the same documents, the same embedding server and the same pgvector
 * database (PGlite served by `@electric-sql/pglite-socket`: the server here has no pgvector).
 *
 * The corpus: D documents of 10 paragraphs (80-220 bytes each), 6 distinct paragraphs per
 * 10 chunks overall (documents share paragraphs, as real corpora share boilerplate). Full mode:
 * 2,000 documents = 20,000 chunks. Both contenders cut the documents with the same paragraph
 * chunker (LangChain's run includes the cutting too: `index()` takes chunks, a document loader
 * and splitter run before it). Every round each contender gets fresh tables, syncs the corpus
 * once (the first sync) and then again unchanged (the re-sync); both are timed as documents/s
 * and their counts checked (all added, then all unchanged / skipped).
 *
 * After the rounds, untimed: two syncs of the same documents at once into fresh tables, 3 times
 * for each library, counting the runs that ended with an error.
 */

import { openAIEmbedder } from '@hartonomous/pipelines/atoms';
import {
  type DocumentInput,
  ingestDocuments,
  paragraphChunker,
} from '@hartonomous/pipelines/documents';
import { openDatabase } from '@hartonomous/pipelines/postgres';
import {
  type BenchContext,
  fmt,
  interleave,
  type Row,
  type ScenarioResult,
  summarize,
} from '../harness.js';
import { corpus } from '../support/corpus.js';
import { startBenchEmbeddingServer } from '../support/embedding-server.js';
import { type LangChainFactory, loadLangChain } from '../support/langchain.js';
import { pairwise, rowsOf, samplesOf, timed } from '../support/measure.js';
import { openOnSocket, type PgliteServer, startPgliteServer } from '../support/pglite-server.js';
import { openFresh, SERVER_URL } from '../support/postgres.js';

const DIMS = 384;
const LATENCY_MS = 5;
const MODEL = 'bench-embed-384';
const PARAGRAPHS = 10;

type Contender = { name: string; note: string; run: () => Promise<number> };

export async function resync(ctx: BenchContext): Promise<ScenarioResult> {
  const docCount = Number(process.env.BENCH_RESYNC_DOCS ?? (ctx.full ? 2_000 : 60));
  const rounds = Number(process.env.BENCH_RESYNC_ROUNDS ?? 5);
  const distinct = Math.round((docCount * PARAGRAPHS * 6) / 10);
  const { texts, vectors } = corpus(distinct, DIMS, 14);
  const docs: DocumentInput[] = Array.from({ length: docCount }, (_, d) => ({
    id: `doc-${d}.md`,
    content: Array.from(
      { length: PARAGRAPHS },
      (_, p) => texts[(d * PARAGRAPHS + p) % distinct]!,
    ).join('\n\n'),
  }));
  const chunkCount = docCount * PARAGRAPHS;
  const server = await startBenchEmbeddingServer(
    new Map(texts.map((t, i) => [t, vectors[i]!])),
    LATENCY_MS,
  );
  let socket: PgliteServer | undefined;
  const firsts = new Map<string, number[]>();
  const first = (name: string, v: number) => firsts.set(name, [...(firsts.get(name) ?? []), v]);
  let results: Awaited<ReturnType<typeof interleave>>;
  let contenders: Contender[];
  let race: { ours: RaceTally; langChain: RaceTally | string };
  try {
    ctx.log(
      `resync: ${docCount.toLocaleString('en-US')} documents, ${chunkCount.toLocaleString('en-US')} chunks (${distinct.toLocaleString('en-US')} distinct), opening PGlite and its socket…`,
    );
    socket = await startPgliteServer();
    const pg = socket;
    const langChain = await loadLangChain();
    if (typeof langChain === 'string') ctx.log(`  skipping LangChain.js: ${langChain}`);

    const ours = async (): Promise<number> => {
      const fresh = await openOnSocket(pg, 'resync');
      const embedder = openAIEmbedder({ baseUrl: server.baseUrl, model: MODEL, dimensions: DIMS });
      try {
        const options = {
          db: fresh.db,
          collection: 'bench',
          cleanup: 'incremental' as const,
          chunker: paragraphChunker,
          embedder,
        };
        let report: Awaited<ReturnType<typeof ingestDocuments>> | undefined;
        const r1 = await timed(docCount, async () => {
          report = await ingestDocuments(docs, options);
        });
        if (report?.added !== docCount || report.failed !== 0 || report.atomsAdded !== distinct) {
          throw new Error(`ingestDocuments first sync: ${JSON.stringify(report)}`);
        }
        first(OURS, r1);
        const r2 = await timed(docCount, async () => {
          report = await ingestDocuments(docs, options);
        });
        if (report?.unchanged !== docCount || report.failed !== 0 || report.atomsAdded !== 0) {
          throw new Error(`ingestDocuments re-sync: ${JSON.stringify(report)}`);
        }
        return r2;
      } finally {
        embedder.close();
        await fresh.dispose();
      }
    };
    contenders = [
      {
        name: OURS,
        note: 'one document-hash lookup per 256 documents, nothing else when unchanged',
        run: ours,
      },
    ];
    if (typeof langChain !== 'string') {
      contenders.push({
        name: THEIRS,
        note: 'PostgresRecordManager + PGVectorStore + OpenAIEmbeddings (defaults), same server',
        run: () =>
          langChainRun(langChain, pg, server.baseUrl, docs, chunkCount, (v) => first(THEIRS, v)),
      });
    }
    results = await interleave(contenders, { rounds, warmup: 1, log: ctx.log });

    ctx.log('  two syncs of the same documents at once, 3 times each (untimed)');
    const raceDocs = docs.slice(0, Math.min(docCount, 50));
    race = {
      ours: await raceOurs(server.baseUrl, raceDocs),
      langChain:
        typeof langChain === 'string'
          ? langChain
          : await raceLangChain(langChain, pg, server.baseUrl, raceDocs),
    };
  } finally {
    await socket?.close().catch(() => undefined);
    await server.close();
  }

  const rows: Row[] = rowsOf(contenders, results, 'documents/s');
  const ratio = (a: number[], b: number[]) => pairwise(a, b, (x, y) => x / y);
  const oursFirst = firsts.get(OURS)?.slice(1) ?? []; // the warm-up round's is dropped
  const ourResync = samplesOf(results, OURS);
  rows.push({
    name: OURS_FIRST,
    figure: summarize(oursFirst),
    unit: 'documents/s',
    note: 'empty tables: each distinct chunk embedded and stored once',
  });
  const pct = (f: { median: number; min: number; max: number }) =>
    `${fmt(f.median, 1)}x (${fmt(f.min, 1)}–${fmt(f.max, 1)})`;
  const findings: string[] = [];
  if (contenders.length > 1) {
    const theirFirst = firsts.get(THEIRS)?.slice(1) ?? [];
    const theirResync = samplesOf(results, THEIRS);
    rows.push({
      name: THEIRS_FIRST,
      figure: summarize(theirFirst),
      unit: 'documents/s',
      note: 'empty tables: every chunk embedded and stored',
    });
    findings.push(
      `Unchanged re-sync: ingestDocuments ${pct(ratio(ourResync, theirResync))} the documents/s of LangChain.js index() (round by round, median (min–max)). ingestDocuments looks up one hash per document; index() hashes every chunk and asks the record manager about each, then updates every record's timestamp and runs the incremental cleanup.`,
      `First sync of the same corpus: ingestDocuments ${pct(ratio(oursFirst, theirFirst))} the documents/s of index() (it embeds and stores ${distinct.toLocaleString('en-US')} distinct chunks once; index() embeds and stores all ${chunkCount.toLocaleString('en-US')}, since a chunk's id there hashes its source too).`,
    );
  } else {
    findings.push(`LangChain.js was skipped: ${race.langChain as string}.`);
  }
  findings.push(raceFinding('ingestDocuments', race.ours));
  if (typeof race.langChain !== 'string')
    findings.push(raceFinding('LangChain.js index()', race.langChain));
  return {
    title: '14. Re-syncing an unchanged corpus: ingestDocuments vs LangChain.js index()',
    description: `${docCount.toLocaleString('en-US')} markdown documents of ${PARAGRAPHS} paragraphs (80-220 bytes) = ${chunkCount.toLocaleString('en-US')} chunks, ${distinct.toLocaleString('en-US')} of them distinct, ${DIMS}-dimension vectors from a local OpenAI-compatible server with ${LATENCY_MS} ms latency per request (precomputed vectors). Both libraries write to the same pgvector database, PGlite served over the PostgreSQL wire by pglite-socket (the server here has no pgvector), with cleanup 'incremental' and the same paragraph chunker. Every round each contender gets fresh tables, syncs the corpus once (first sync), then again unchanged (re-sync); ${rounds} interleaved rounds after a warm-up round, the order rotating. Figures are documents/s; ratios are to the first row (ingestDocuments' re-sync), round by round.`,
    rows,
    findings,
  };
}

const WHERE = '→ pgvector on PGlite over pglite-socket';
const OURS = `ingestDocuments() ${WHERE}: unchanged re-sync`;
const THEIRS = `LangChain.js index() ${WHERE}: unchanged re-sync`;
const OURS_FIRST = `ingestDocuments() ${WHERE}: first sync`;
const THEIRS_FIRST = `LangChain.js index() ${WHERE}: first sync`;

/** The documents as LangChain chunks: the same paragraph chunker, `source` = document id. */
function chunksOf(docs: readonly DocumentInput[]): { content: string; source: string }[] {
  return docs.flatMap((d) => paragraphChunker(d).map((content) => ({ content, source: d.id })));
}

async function langChainRun(
  factory: LangChainFactory,
  socket: PgliteServer,
  baseUrl: string,
  docs: readonly DocumentInput[],
  chunkCount: number,
  onFirst: (v: number) => void,
): Promise<number> {
  const indexer = await factory({
    connection: socket.connection,
    baseUrl,
    model: MODEL,
    dimensions: DIMS,
    tag: `${process.pid}_${Math.floor(Math.random() * 1e6)}`,
  });
  try {
    let r = { added: 0, skipped: 0, deleted: 0 };
    const r1 = await timed(docs.length, async () => {
      r = await indexer.indexDocuments(chunksOf(docs), 'incremental');
    });
    if (r.added !== chunkCount || r.deleted !== 0) {
      throw new Error(`LangChain first sync: ${JSON.stringify(r)} of ${chunkCount}`);
    }
    onFirst(r1);
    const r2 = await timed(docs.length, async () => {
      r = await indexer.indexDocuments(chunksOf(docs), 'incremental');
    });
    if (r.skipped !== chunkCount || r.added !== 0 || r.deleted !== 0) {
      throw new Error(`LangChain re-sync: ${JSON.stringify(r)} of ${chunkCount}`);
    }
    return r2;
  } finally {
    await indexer.dispose();
    await socket.pglite.exec('DEALLOCATE ALL');
  }
}

interface RaceTally {
  readonly where: string;
  readonly documents: number;
  readonly runs: number;
  /** runs where at least one of the two calls threw */
  readonly failedRuns: number;
  /** runs where one failed on a duplicate key (the check-then-insert race) */
  readonly duplicateKeyRuns: number;
  readonly errors: string[];
  /** runs whose stored rows were not one per chunk (LangChain) / per distinct chunk (ours) */
  readonly wrongCounts: number;
}

async function raceOurs(baseUrl: string, docs: readonly DocumentInput[]): Promise<RaceTally> {
  const tally = {
    where: 'the PostgreSQL server',
    documents: docs.length,
    runs: 0,
    failedRuns: 0,
    duplicateKeyRuns: 0,
    errors: [] as string[],
    wrongCounts: 0,
  };
  const distinct = new Set(docs.flatMap((d) => paragraphChunker(d))).size;
  for (let run = 0; run < 3; run++) {
    // on the server: pglite-socket runs all its connections in ONE session, so two
    // transactions there are not isolated from each other (LangChain's calls never open one)
    const a = await openFresh('resync', 'race');
    const b = await openDatabase({ url: SERVER_URL, schema: a.schema });
    const embedders = [0, 1].map(() => openAIEmbedder({ baseUrl, model: MODEL, dimensions: DIMS }));
    try {
      const settled = await Promise.allSettled(
        [a.db, b].map((db, i) =>
          ingestDocuments(docs, {
            db,
            collection: 'bench',
            cleanup: 'incremental',
            chunker: paragraphChunker,
            embedder: embedders[i]!,
            owner: `race-${i}`,
          }),
        ),
      );
      tally.runs++;
      const errors = settled.flatMap((s) =>
        s.status === 'rejected'
          ? [String((s.reason as Error)?.message ?? s.reason)]
          : s.value.failed > 0
            ? s.value.failures.map((f) => f.message)
            : [],
      );
      if (errors.length > 0) {
        tally.failedRuns++;
        tally.errors.push(...errors.slice(0, 2));
      }
      if (errors.some((e) => e.includes('duplicate key'))) tally.duplicateKeyRuns++;
      const rows = (await a.db.orm.em
        .getConnection()
        .execute(
          `SELECT (SELECT count(*) FROM "${a.db.schema}".atoms)::int AS atoms, (SELECT count(*) FROM "${a.db.schema}".documents)::int AS documents`,
        )) as { atoms: number; documents: number }[];
      if (rows[0]?.atoms !== distinct || rows[0]?.documents !== docs.length) tally.wrongCounts++;
    } finally {
      for (const e of embedders) e.close();
      await b.close();
      await a.dispose();
    }
  }
  return tally;
}

async function raceLangChain(
  factory: LangChainFactory,
  socket: PgliteServer,
  baseUrl: string,
  docs: readonly DocumentInput[],
): Promise<RaceTally> {
  const tally = {
    where: 'pgvector on PGlite over pglite-socket',
    documents: docs.length,
    runs: 0,
    failedRuns: 0,
    duplicateKeyRuns: 0,
    errors: [] as string[],
    wrongCounts: 0,
  };
  const chunks = chunksOf(docs);
  for (let run = 0; run < 3; run++) {
    const tag = `${process.pid}_race_${Math.floor(Math.random() * 1e6)}`;
    const options = { connection: socket.connection, baseUrl, model: MODEL, dimensions: DIMS, tag };
    const a = await factory(options);
    const b = await factory(options);
    try {
      const settled = await Promise.allSettled([
        a.indexDocuments(chunks, 'incremental'),
        b.indexDocuments(chunks, 'incremental'),
      ]);
      tally.runs++;
      const errors = settled.flatMap((s) =>
        s.status === 'rejected' ? [String((s.reason as Error)?.message ?? s.reason)] : [],
      );
      if (errors.length > 0) {
        tally.failedRuns++;
        tally.errors.push(...errors.slice(0, 2));
      }
      if (errors.some((e) => e.includes('duplicate key'))) tally.duplicateKeyRuns++;
      if ((await a.count()) !== chunks.length) tally.wrongCounts++;
    } finally {
      await b.close();
      await a.dispose();
      await socket.pglite.exec('DEALLOCATE ALL');
    }
  }
  return tally;
}

function raceFinding(name: string, t: RaceTally): string {
  // table names carry a random tag: one message per kind of error
  const distinctErrors = [
    ...new Set(t.errors.map((e) => e.replace(/_\d+_race_\d+/g, '_…').slice(0, 120))),
  ];
  return `Two ${name} calls on the same ${t.documents} documents at once, into fresh tables of ${t.where}: ${t.failedRuns} of ${t.runs} runs ended with an error, ${t.duplicateKeyRuns} of them on a duplicate key${distinctErrors.length > 0 ? ` (${distinctErrors.map((e) => `"${e}"`).join('; ')})` : ''}; ${t.wrongCounts} of ${t.runs} left a row count other than one per ${name.startsWith('LangChain') ? 'chunk' : 'distinct chunk'}.${t.where.includes('pglite-socket') ? ' (pglite-socket runs all its connections in one PGlite session, so an error other than the duplicate key, such as a lost prepared statement, is an artefact of the socket, not of the library.)' : ''}`;
}
