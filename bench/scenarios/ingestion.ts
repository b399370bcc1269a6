/**
 * Scenario: atom ingestion throughput (issue 13). The same N distinct paragraphs (80-220
 * bytes) with 384-dimension vectors, each contender on a fresh schema (or emptied tables) per
 * round, rounds interleaved with the order rotated:
 *
 * - `ingest()` into the PostgreSQL server, vectors from a local OpenAI-compatible server
 *   (127.0.0.1, 5 ms latency per request, started here) and from a zero-cost in-process
 *   embedder (precomputed vectors handed back as they are);
 * - the raw write ceiling: binary `COPY atoms FROM STDIN` of the same rows (content, hash,
 *   vector; atoms only: no outbox, no dedupe, no claims), encoding timed;
 * - the same three on the embedded PGlite (pgvector, in this process; its COPY goes through
 *   PGlite's `/dev/blob`, as COPY FROM STDIN is not supported there);
 * - `persistAtoms` alone (the library's write path) and a naive per-item loop, for reference;
 * - LangChain.js `index()` (PostgresRecordManager + PGVectorStore + OpenAIEmbeddings at the
 *   same embeddings server), first pass and re-run, against pgvector served by
 *   `@electric-sql/pglite-socket` (the server here has no pgvector), next to `ingest()` on
 *   the very same socket database, first pass and re-run.
 *
 * `--full`: 20,000 rows, 7 rounds; quick: 2,000 rows, 5 rounds. `BENCH_INGESTION_N` and
 * `BENCH_INGESTION_ROUNDS` override both (for a profile or a quick check).
 */
import {
  contentHash,
  type Embedder,
  type IngestionReport,
  ingest,
  openAIEmbedder,
  persistAtoms,
} from '@hartonomous/pipelines/atoms';
import { type Database, openDatabase } from '@hartonomous/pipelines/postgres';
import { type BenchContext, fmt, interleave, type ScenarioResult, summarize } from '../harness.js';
import {
  binaryCopyChunks,
  type CopyField,
  copyFrom,
  float32Bytes,
  jsonbBinary,
  pgvectorBinary,
} from '../support/copy-in.js';
import { corpus } from '../support/corpus.js';
import { startBenchEmbeddingServer } from '../support/embedding-server.js';
import { type LangChainFactory, loadLangChain } from '../support/langchain.js';
import { pairwise, rowsOf, samplesOf, timed } from '../support/measure.js';
import { openOnSocket, startPgliteServer } from '../support/pglite-server.js';
import { openFresh, withRawClient } from '../support/postgres.js';

const DIMS = 384;
const LATENCY_MS = 5;
const MODEL = 'bench-embed-384';
const WARMUP_N = 1_000;

type Contender = { name: string; note: string; run: () => Promise<number> };

export async function ingestion(ctx: BenchContext): Promise<ScenarioResult> {
  // LangChain.js indexes a few hundred items/s here: 20k rows x 5 rounds would take far
  // longer than quick mode's budget, so quick mode runs the same contenders on fewer rows
  const n = Number(process.env.BENCH_INGESTION_N ?? (ctx.full ? 20_000 : 2_000));
  const rounds0 = process.env.BENCH_INGESTION_ROUNDS;
  const rounds = rounds0 ? Number(rounds0) : ctx.full ? 7 : 5;
  const naiveN = 200;
  const { texts, vectors } = corpus(n, DIMS);
  const byText = new Map(texts.map((t, i) => [t, vectors[i]!]));
  const hashes = texts.map((t) => Buffer.from(contentHash(t), 'hex'));
  // every contender reads `size` items: a small warm-up pass first, then n
  let size = n;
  const itemsOf = () => texts.slice(0, size).map((content) => ({ content }));

  const probe = await openFresh('ingestion', 'probe');
  const storage = probe.db.vectorStorage;
  await probe.dispose();
  const server = await startBenchEmbeddingServer(byText, LATENCY_MS);
  const closers: (() => Promise<void>)[] = [() => server.close()];
  const closeAll = async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
  };
  let contenders: Contender[];
  let langChain: LangChainFactory | string;
  const reruns = new Map<string, number[]>();
  const rerun = (name: string, v: number) => {
    if (size !== n) return;
    const list = reruns.get(name) ?? [];
    list.push(v);
    reruns.set(name, list);
  };
  const reports: IngestionReport[] = [];
  try {
    ctx.log(`ingestion: ${n.toLocaleString('en-US')} atoms, opening PGlite (x2) and its socket…`);
    const opening = performance.now();
    const pglite = await openDatabase({ dataDir: 'memory://' });
    closers.push(() => pglite.close());
    const socket = await startPgliteServer();
    closers.push(() => socket.close());
    langChain = await loadLangChain();
    if (typeof langChain === 'string') ctx.log(`  skipping LangChain.js: ${langChain}`);
    ctx.log(`  opened in ${fmt((performance.now() - opening) / 1000, 1)} s (not timed)`);

    const httpEmbedder = () =>
      openAIEmbedder({ baseUrl: server.baseUrl, model: MODEL, dimensions: DIMS });
    const inProcess: Embedder = {
      model: MODEL,
      dimensions: DIMS,
      embed: async (batch) => batch.map((t) => byText.get(t)!),
    };
    const check = (where: string, report: IngestionReport, added: number): void => {
      if (report.added !== added || report.failed !== 0 || report.processed !== size) {
        throw new Error(
          `${where}: expected ${added} added of ${size}, got ${report.added} added, ${report.duplicates} duplicates, ${report.failed} failed (${report.failures[0]?.message ?? ''})`,
        );
      }
    };
    /** ingest() into `db`, with an HTTP or the in-process embedder; optionally a timed re-run. */
    const runIngest = async (
      db: Database,
      where: string,
      http: boolean,
      rerunName?: string,
    ): Promise<number> => {
      const embedder = http ? httpEmbedder() : inProcess;
      const items = itemsOf();
      try {
        let report: IngestionReport | undefined;
        const r = await timed(size, async () => {
          report = await ingest(items, { db, embedder });
        });
        check(where, report!, size);
        if (where === 'server' && http && size === n) reports.push(report!);
        if (rerunName) {
          let again: IngestionReport | undefined;
          const r2 = await timed(size, async () => {
            again = await ingest(items, { db, embedder });
          });
          check(`${where} re-run`, again!, 0);
          rerun(rerunName, r2);
        }
        return r;
      } finally {
        if ('close' in embedder) (embedder as { close(): void }).close();
      }
    };
    const onServer = async (http: boolean): Promise<number> => {
      const fresh = await openFresh('ingestion', 'pipe');
      try {
        return await runIngest(fresh.db, 'server', http, http ? RERUN.server : undefined);
      } finally {
        await fresh.dispose();
      }
    };
    const onPglite = async (http: boolean): Promise<number> => {
      await pglite.orm.em
        .getConnection()
        .execute('TRUNCATE atoms, outbox, atom_claims RESTART IDENTITY CASCADE');
      return runIngest(pglite, 'PGlite', http);
    };
    const copyRows = (pgvector: boolean): CopyField[][] =>
      texts
        .slice(0, size)
        .map((t, i) => [
          hashes[i]!,
          t,
          'text/plain',
          { int4: Buffer.byteLength(t, 'utf8') },
          pgvector ? pgvectorBinary(vectors[i]!) : float32Bytes(vectors[i]!),
          MODEL,
          { int4: DIMS },
          jsonbBinary('{}'),
        ]);
    const COLUMNS =
      'content_hash, content, content_type, byte_size, embedding, embedding_model, embedding_dims, metadata';
    /** a fresh schema of the socket's PGlite, migrated by the library */

    contenders = [
      {
        name: 'ingest() → PostgreSQL server, 5 ms embedding server',
        note: 'library defaults: hash, dedupe + claim, embed over HTTP, persist atoms + outbox',
        run: () => onServer(true),
      },
      {
        name: 'ingest() → PostgreSQL server, zero-cost in-process embedder',
        note: 'same, the embedder hands back precomputed vectors',
        run: () => onServer(false),
      },
      {
        name: 'binary COPY → PostgreSQL server',
        note: 'same rows (hash, content, vector), atoms only; encoding timed',
        run: async () => {
          const fresh = await openFresh('ingestion', 'copy');
          try {
            return await withRawClient(fresh.db, async (client) => {
              let copied = 0;
              const r = await timed(size, async () => {
                copied = await copyFrom(
                  client,
                  `COPY "${fresh.schema}".atoms (${COLUMNS}) FROM STDIN (FORMAT binary)`,
                  binaryCopyChunks(copyRows(storage === 'pgvector')),
                );
              });
              if (copied !== size) throw new Error(`COPY: expected ${size}, copied ${copied}`);
              return r;
            });
          } finally {
            await fresh.dispose();
          }
        },
      },
      {
        name: 'ingest() → embedded PGlite, 5 ms embedding server',
        note: 'in-process WASM PostgreSQL with pgvector, one connection',
        run: () => onPglite(true),
      },
      {
        name: 'ingest() → embedded PGlite, zero-cost in-process embedder',
        note: '',
        run: () => onPglite(false),
      },
      {
        name: 'binary COPY → embedded PGlite',
        note: "same rows into a library-migrated atoms table, `COPY ... FROM '/dev/blob'`; encoding timed",
        run: async () => {
          const fresh = await openOnSocket(socket, 'copy');
          try {
            let copied = 0;
            const r = await timed(size, async () => {
              const res = await socket.pglite.query(
                `COPY "${fresh.schema}".atoms (${COLUMNS}) FROM '/dev/blob' (FORMAT binary)`,
                [],
                { blob: new Blob(binaryCopyChunks(copyRows(true))) },
              );
              copied = res.affectedRows ?? 0;
            });
            if (copied !== size) throw new Error(`PGlite COPY: expected ${size}, got ${copied}`);
            return r;
          } finally {
            await fresh.dispose();
          }
        },
      },
      {
        name: 'persistAtoms() alone → PostgreSQL server, 256 per call',
        note: 'the library write path (atoms + outbox, one statement), vectors precomputed',
        run: async () => {
          const fresh = await openFresh('ingestion', 'persist');
          try {
            const atoms = texts.slice(0, size).map((content, i) => ({
              hash: hashes[i]!.toString('hex'),
              content,
              embedding: vectors[i]!,
              embeddingModel: MODEL,
            }));
            let inserted = 0;
            const r = await timed(size, async () => {
              for (let i = 0; i < size; i += 256) {
                inserted += (await persistAtoms(fresh.db, atoms.slice(i, i + 256))).inserted.length;
              }
            });
            if (inserted !== size) throw new Error(`persistAtoms: expected ${size}, ${inserted}`);
            return r;
          } finally {
            await fresh.dispose();
          }
        },
      },
      {
        name: `naive per-item loop → PostgreSQL server (first ${naiveN} items)`,
        note: 'hash, SELECT, 1 request of 1 input, INSERT atom + outbox; same HTTP client',
        run: () => naiveLoop(naiveN, httpEmbedder(), storage),
      },
      {
        name: 'ingest() → pgvector on PGlite over pglite-socket, 5 ms embedding server',
        note: 'the database LangChain writes to below, through the same wire',
        run: async () => {
          const fresh = await openOnSocket(socket, 'pipe');
          try {
            return await runIngest(fresh.db, 'socket', true, RERUN.socket);
          } finally {
            await fresh.dispose();
          }
        },
      },
    ];
    if (typeof langChain !== 'string') {
      const factory = langChain;
      contenders.push({
        name: 'LangChain.js index() → pgvector on PGlite over pglite-socket, first pass',
        note: 'PostgresRecordManager + PGVectorStore + OpenAIEmbeddings (defaults), same server',
        run: async () => {
          const indexer = await factory({
            connection: socket.connection,
            baseUrl: server.baseUrl,
            model: MODEL,
            dimensions: DIMS,
            tag: `${process.pid}_${Math.floor(Math.random() * 1e6)}`,
          });
          try {
            const slice = texts.slice(0, size);
            let first = { added: 0, skipped: 0 };
            const r = await timed(size, async () => {
              first = await indexer.index(slice);
            });
            if (first.added !== size) throw new Error(`LangChain: added ${first.added} of ${size}`);
            let again = { added: 0, skipped: 0 };
            const r2 = await timed(size, async () => {
              again = await indexer.index(slice);
            });
            if (again.skipped !== size)
              throw new Error(`LangChain re-run: skipped ${again.skipped} of ${size}`);
            rerun(RERUN.langChain, r2);
            return r;
          } finally {
            await indexer.dispose();
          }
        },
      });
    }

    ctx.log(`  warm-up: every contender once on ${WARMUP_N.toLocaleString('en-US')} items`);
    size = WARMUP_N;
    for (const c of contenders) {
      const started = performance.now();
      await c.run();
      ctx.log(`    ${c.name}: ${fmt((performance.now() - started) / 1000, 1)} s`);
    }
    size = n;
  } catch (e) {
    await closeAll();
    throw e;
  }

  let results: Awaited<ReturnType<typeof interleave>>;
  try {
    results = await interleave(contenders, { rounds, warmup: 0, log: ctx.log });
  } finally {
    await closeAll();
  }
  const rows = rowsOf(contenders, results, 'items/s');
  const s = (i: number) => samplesOf(results, contenders[i]!.name);
  const ratio = (a: number[], b: number[]) => pairwise(a, b, (x, y) => x / y);
  const [httpS, zeroS, copyS, httpL, zeroL, copyL, persistS, naive, sockS] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8,
  ].map(s) as [
    number[],
    number[],
    number[],
    number[],
    number[],
    number[],
    number[],
    number[],
    number[],
  ];
  const rerunS = reruns.get(RERUN.server) ?? [];
  const rerunSock = reruns.get(RERUN.socket) ?? [];
  rows.splice(1, 0, {
    name: 'ingest() → PostgreSQL server, re-run (all stored)',
    figure: summarize(rerunS),
    unit: 'items/s',
    ratio: ratio(rerunS, httpS),
    note: 'the same items again right after the first pass: every item a duplicate',
  });
  rows.push({
    name: 'ingest() → pgvector on PGlite over pglite-socket, re-run',
    figure: summarize(rerunSock),
    unit: 'items/s',
    ratio: ratio(rerunSock, httpS),
    note: '',
  });
  const findings: string[] = [];
  const pct = (f: { median: number; min: number; max: number }) =>
    `${fmt(f.median, 2)}x (${fmt(f.min, 2)}–${fmt(f.max, 2)})`;
  findings.push(
    `Against the binary COPY of the same rows on the server: ingest() with the 5 ms embedding server ${pct(ratio(httpS, copyS))}, with the zero-cost embedder ${pct(ratio(zeroS, copyS))} (target >= 0.5x); persistAtoms() alone ${pct(ratio(persistS, copyS))}.`,
    `On the embedded PGlite against its own binary COPY: ingest() with the 5 ms embedding server ${pct(ratio(httpL, copyL))}, zero-cost embedder ${pct(ratio(zeroL, copyL))} (target >= 0.5x). PGlite against the server, same embedder: 5 ms server ${pct(ratio(httpL, httpS))}, zero-cost ${pct(ratio(zeroL, zeroS))} (target >= 0.8x).`,
    `The naive per-item loop (one request of one input and one INSERT per item) is bound by the ${LATENCY_MS} ms latency (at most ${1000 / LATENCY_MS} items/s): ingest() ran at ${pct(ratio(httpS, naive))} its rate; that multiple measures batching against latency, not a faster library.`,
  );
  if (typeof langChain === 'string') {
    findings.push(`LangChain.js was skipped: ${langChain}.`);
  } else {
    const lc = samplesOf(results, contenders[9]!.name);
    const lcRerun = reruns.get(RERUN.langChain) ?? [];
    rows.push({
      name: 'LangChain.js index() → pgvector on PGlite over pglite-socket, re-run',
      figure: summarize(lcRerun),
      unit: 'items/s',
      ratio: ratio(lcRerun, httpS),
      note: 'the same documents again: the record manager skips them all',
    });
    findings.push(
      `Against LangChain.js index() on the same pgvector database (PGlite over pglite-socket), same rows, same embedding server: ingest() first pass ${pct(ratio(sockS, lc))} (target >= 3x), re-run ${pct(ratio(rerunSock, lcRerun))} (target >= 10x). (ingest() into the embedded PGlite in this process, no socket, against LangChain's first pass: ${pct(ratio(httpL, lc))}.)`,
    );
  }
  const last = reports.at(-1);
  const steps = last
    ? Object.entries(last.stepMs)
        .map(([k, v]) => `${k} ${fmt(v / 1000, 1)} s`)
        .join(', ')
    : '';
  return {
    title: '3. Atom ingestion: the library against COPY, LangChain.js and a naive loop',
    description: `${n.toLocaleString('en-US')} distinct paragraphs (80-220 bytes) with ${DIMS}-dimension vectors, ${rounds} interleaved rounds after a warm-up pass of every contender on ${WARMUP_N.toLocaleString('en-US')} items; each contender on a fresh schema (the in-process PGlite: emptied tables) every round. Embeddings from a local OpenAI-compatible server on 127.0.0.1 with ${LATENCY_MS} ms latency per request (precomputed vectors, base64 or JSON as asked), or from a zero-cost in-process embedder. The PostgreSQL server stores vectors as ${storage === 'pgvector' ? 'pgvector `vector(384)`' : 'float32 `bytea` (it has no pgvector)'}; PGlite as pgvector. Ratios are to the first row, round by round. Summed step times of the last server ingest() with the embedding server (steps overlap): ${steps}.`,
    rows,
    findings,
  };
}

const RERUN = {
  server: 'server re-run',
  socket: 'socket re-run',
  langChain: 'LangChain re-run',
} as const;

/** hash, SELECT, one embedding request of one input, one INSERT of atom + outbox, per item */
async function naiveLoop(
  count: number,
  embedder: ReturnType<typeof openAIEmbedder>,
  storage: 'pgvector' | 'bytea',
): Promise<number> {
  const { texts } = corpus(count, DIMS);
  const fresh = await openFresh('ingestion', 'naive');
  const signal = new AbortController().signal;
  try {
    return await withRawClient(fresh.db, async (client) => {
      const q = `"${fresh.schema}"`;
      const lookup = `SELECT 1 FROM ${q}.atoms WHERE content_hash = $1`;
      const insert = `WITH a AS (
  INSERT INTO ${q}.atoms (content_hash, content, byte_size, embedding, embedding_model, embedding_dims)
  VALUES ($1, $2, $3, $4${storage === 'pgvector' ? '::vector' : ''}, $5, ${DIMS})
  ON CONFLICT (content_hash) DO NOTHING
  RETURNING id, content_hash, content_type, byte_size, created_at
)
INSERT INTO ${q}.outbox (event_type, aggregate_key, payload, message_id)
SELECT 'atom.created', encode(content_hash, 'hex'),
       jsonb_build_object('atomId', id::text, 'contentHash', encode(content_hash, 'hex'),
                          'contentType', content_type, 'byteSize', byte_size,
                          'embeddingModel', $5::text, 'embeddingDims', ${DIMS}, 'createdAt', created_at),
       'atom.created:' || encode(content_hash, 'hex')
FROM a`;
      let added = 0;
      const r = await timed(count, async () => {
        for (const text of texts) {
          const hash = Buffer.from(contentHash(text), 'hex');
          const found = await client.query(lookup, [hash]);
          if ((found.rowCount ?? 0) > 0) continue;
          const [vector] = await embedder.embed([text], signal);
          const res = await client.query(insert, [
            hash,
            text,
            Buffer.byteLength(text, 'utf8'),
            storage === 'pgvector' ? `[${vector!.join(',')}]` : float32Bytes(vector!),
            MODEL,
          ]);
          added += res.rowCount ?? 0;
        }
      });
      if (added !== count) throw new Error(`naive: expected ${count}, added ${added}`);
      return r;
    });
  } finally {
    embedder.close();
    await fresh.dispose();
  }
}
