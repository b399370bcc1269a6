/**
 * Scenario: atom ingestion throughput. N atoms with 384-dimension vectors from a local
 * OpenAI-compatible embeddings server (5 ms latency per request, started here on 127.0.0.1),
 * into the PostgreSQL server, each contender on a fresh schema per round:
 *
 * - the library's `ingest()` with `openAIEmbedder` (defaults: 256 per batch, 64 inputs per
 *   request, 2 batches at once);
 * - the raw write ceiling: binary `COPY atoms FROM STDIN` of the same rows with precomputed
 *   vectors (atoms only, no outbox, no dedupe);
 * - `persistAtoms` alone with precomputed vectors (the library's write path: atoms and outbox
 *   rows, 256 per statement, one statement at a time);
 * - a naive per-item loop: contentHash, one SELECT lookup, one embedding request of one input,
 *   one INSERT of the atom and its outbox row;
 * - `ingest()` into an embedded PGlite (pgvector), same items, same server.
 */
import {
  contentHash,
  type IngestionReport,
  ingest,
  openAIEmbedder,
  persistAtoms,
} from '@hartonomous/pipelines/atoms';
import { type Database, openDatabase } from '@hartonomous/pipelines/postgres';
import { type BenchContext, fmt, interleave, type ScenarioResult } from '../harness.js';
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
import { pairwise, rowsOf, samplesOf, timed } from '../support/measure.js';
import { openFresh, withRawClient } from '../support/postgres.js';

const DIMS = 384;
const LATENCY_MS = 5;
const MODEL = 'bench-embed-384';

export async function ingestion(ctx: BenchContext): Promise<ScenarioResult> {
  const n = ctx.full ? 20_000 : 5_000;
  // The naive loop is sequential and latency-bound (>= 5 ms per item), so its rate does not
  // depend on N; it runs on the first naiveN items to keep a round short.
  const naiveN = ctx.full ? 2_000 : 200;
  const { texts, vectors } = corpus(n, DIMS);
  const items = texts.map((content) => ({ content }));
  const hashes = texts.map((t) => Buffer.from(contentHash(t), 'hex'));
  // fail early, with a clear message, when the server is unreachable; see how it stores vectors
  const probe = await openFresh('ingestion', 'probe');
  const storage = probe.db.vectorStorage;
  await probe.dispose();
  const vectorField = storage === 'pgvector' ? pgvectorBinary : float32Bytes;
  const server = await startBenchEmbeddingServer(
    new Map(texts.map((t, i) => [t, vectors[i]!])),
    LATENCY_MS,
  );
  ctx.log(`ingestion: ${n.toLocaleString('en-US')} atoms (naive loop: ${naiveN}), opening PGlite…`);
  const opening = performance.now();
  const pglite = await openDatabase({ dataDir: 'memory://' }).catch(async (e: unknown) => {
    await server.close();
    throw e;
  });
  ctx.log(`  PGlite opened in ${fmt((performance.now() - opening) / 1000, 1)} s (not timed)`);
  const embedderOf = (encodingFormat: 'float' | 'base64' = 'float') =>
    openAIEmbedder({ baseUrl: server.baseUrl, model: MODEL, dimensions: DIMS, encodingFormat });
  const reports: IngestionReport[] = [];

  const checkReport = (where: string, report: IngestionReport): void => {
    if (report.added !== n || report.failed !== 0) {
      throw new Error(
        `${where}: expected ${n} added, got ${report.added} added, ${report.failed} failed (${report.failures[0]?.message ?? ''})`,
      );
    }
  };

  const serverIngest = async (encodingFormat: 'float' | 'base64'): Promise<number> => {
    const fresh = await openFresh('ingestion', 'pipe');
    const embedder = embedderOf(encodingFormat);
    try {
      let report: IngestionReport | undefined;
      const r = await timed(n, async () => {
        report = await ingest(items, { db: fresh.db, embedder });
      });
      checkReport(`ingest() → server (${encodingFormat})`, report!);
      if (encodingFormat === 'float') reports.push(report!);
      return r;
    } finally {
      embedder.close();
      await fresh.dispose();
    }
  };

  const contenders = [
    {
      name: 'ingest() → PostgreSQL server (library defaults)',
      note: 'hash, dedupe + claim, embed (64 inputs per request, JSON floats), persist atoms + outbox',
      run: () => serverIngest('float'),
    },
    {
      name: "same, openAIEmbedder({ encodingFormat: 'base64' })",
      note: 'vectors travel as base64 float32 instead of JSON numbers',
      run: () => serverIngest('base64'),
    },
    {
      name: 'raw write ceiling: binary COPY atoms FROM STDIN',
      note: 'same rows, vectors precomputed; atoms only (no outbox, no dedupe); encoding timed',
      run: async () => {
        const fresh = await openFresh('ingestion', 'copy');
        try {
          return await withRawClient(fresh.db, async (client) => {
            let copied = 0;
            const r = await timed(n, async () => {
              const rows: CopyField[][] = texts.map((t, i) => [
                hashes[i]!,
                t,
                'text/plain',
                { int4: Buffer.byteLength(t, 'utf8') },
                vectorField(vectors[i]!),
                MODEL,
                { int4: DIMS },
                jsonbBinary('{}'),
              ]);
              copied = await copyFrom(
                client,
                `COPY "${fresh.schema}".atoms (content_hash, content, content_type, byte_size, embedding, embedding_model, embedding_dims, metadata) FROM STDIN (FORMAT binary)`,
                binaryCopyChunks(rows),
              );
            });
            if (copied !== n) throw new Error(`COPY: expected ${n} rows, server copied ${copied}`);
            return r;
          });
        } finally {
          await fresh.dispose();
        }
      },
    },
    {
      name: 'persistAtoms() alone, 256 per call, sequential',
      note: 'the library write path (atoms + outbox, one statement), vectors precomputed',
      run: async () => {
        const fresh = await openFresh('ingestion', 'persist');
        try {
          const atoms = texts.map((content, i) => ({
            hash: hashes[i]!.toString('hex'),
            content,
            embedding: vectors[i]!,
            embeddingModel: MODEL,
          }));
          let inserted = 0;
          const r = await timed(n, async () => {
            for (let i = 0; i < n; i += 256) {
              inserted += (await persistAtoms(fresh.db, atoms.slice(i, i + 256))).inserted.length;
            }
          });
          if (inserted !== n) throw new Error(`persistAtoms: expected ${n}, inserted ${inserted}`);
          return r;
        } finally {
          await fresh.dispose();
        }
      },
    },
    {
      name: `naive per-item loop (first ${naiveN.toLocaleString('en-US')} items)`,
      note: 'hash, SELECT, 1 request of 1 input, INSERT atom + outbox; same HTTP client',
      run: async () => {
        const fresh = await openFresh('ingestion', 'naive');
        const embedder = embedderOf();
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
            const r = await timed(naiveN, async () => {
              for (let i = 0; i < naiveN; i++) {
                const text = texts[i]!;
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
            if (added !== naiveN) throw new Error(`naive: expected ${naiveN}, added ${added}`);
            return r;
          });
        } finally {
          embedder.close();
          await fresh.dispose();
        }
      },
    },
    {
      name: 'ingest() → embedded PGlite (pgvector), same items',
      note: 'in-process WASM database, one connection',
      run: async () => {
        await truncate(pglite);
        const embedder = embedderOf();
        try {
          let report: IngestionReport | undefined;
          const r = await timed(n, async () => {
            report = await ingest(items, { db: pglite, embedder });
          });
          checkReport('ingest() → PGlite', report!);
          return r;
        } finally {
          embedder.close();
        }
      },
    },
  ];

  let results: Awaited<ReturnType<typeof interleave>>;
  try {
    results = await interleave(contenders, {
      rounds: ctx.full ? 3 : 2,
      warmup: 1,
      log: ctx.log,
    });
  } finally {
    await pglite.close();
    await server.close();
  }
  const rows = rowsOf(contenders, results, 'items/s');
  const pipe = samplesOf(results, contenders[0]!.name);
  const b64 = samplesOf(results, contenders[1]!.name);
  const copy = samplesOf(results, contenders[2]!.name);
  const persist = samplesOf(results, contenders[3]!.name);
  const naive = samplesOf(results, contenders[4]!.name);
  const lite = samplesOf(results, contenders[5]!.name);
  const b64OverFloat = pairwise(b64, pipe, (a, b) => a / b);
  const ofCeiling = pairwise(pipe, copy, (a, b) => a / b);
  const persistOfCeiling = pairwise(persist, copy, (a, b) => a / b);
  const overNaive = pairwise(pipe, naive, (a, b) => a / b);
  const liteOfServer = pairwise(lite, pipe, (a, b) => a / b);
  const last = reports.at(-1);
  const steps = last
    ? Object.entries(last.stepMs)
        .map(([k, v]) => `${k} ${fmt(v / 1000, 1)} s`)
        .join(', ')
    : '';
  const naiveCeiling = 1000 / LATENCY_MS;
  return {
    title: '3. Atom ingestion: pipeline vs naive loop vs the raw write ceiling',
    description: `${n.toLocaleString('en-US')} distinct atoms (80-220 bytes) with ${DIMS}-dimension vectors from a local OpenAI-compatible embeddings server (127.0.0.1, ${LATENCY_MS} ms latency per request, precomputed vectors sent as JSON floats) into the PostgreSQL server (vectors stored as ${storage === 'pgvector' ? 'pgvector `vector(384)`' : 'float32 `bytea`: the server has no pgvector'}), each contender on a fresh schema per round. Ratios are to the first row. The raw ceiling is a binary-format \`COPY ... FROM STDIN\` driven through node-postgres' submittable API. Summed step time of the last server ingest() run (steps overlap): ${steps}.`,
    rows,
    findings: [
      `ingest() ran at ${fmt(rows[0]!.figure.median)} items/s against ${fmt(rows[4]!.figure.median)} items/s for the naive per-item loop: ${fmt(overNaive.median, 1)}x (min–max ${fmt(overNaive.min, 1)}–${fmt(overNaive.max, 1)}). The naive loop is bounded by one ${LATENCY_MS} ms request per item (at most ${naiveCeiling} items/s), so this multiple measures batching (64 inputs per request) and overlap against latency, not a faster library; with a slower embedding server it grows, with an in-process embedder it shrinks. The seed's "throughput +500%" (6x) ${overNaive.median >= 6 ? 'is exceeded here, for that reason' : 'does not hold here'}.`,
      `ingest() reached ${fmt(ofCeiling.median * 100, 0)}% (${fmt(ofCeiling.min * 100, 0)}–${fmt(ofCeiling.max * 100, 0)}%) of the raw write ceiling, binary COPY of the same precomputed rows (${fmt(rows[2]!.figure.median)} rows/s, atoms only). The library's write path alone (persistAtoms: atoms + outbox rows in one statement, precomputed vectors) ran at ${fmt(persistOfCeiling.median * 100, 0)}% of COPY; the rest of the gap is the other steps on the same 2 cores as the database, the largest being embed (fetching and parsing ${fmt((n * DIMS) / 1e6, 1)}M vector values over HTTP; summed step times in the description). Asking the server for base64 float32 instead of JSON numbers changed the pipeline's rate by ${fmt(b64OverFloat.median, 2)}x (${fmt(b64OverFloat.min, 2)}–${fmt(b64OverFloat.max, 2)}).`,
      `Embedded PGlite (pgvector, one in-process connection) ingested the same items at ${fmt(rows[5]!.figure.median)} items/s, ${fmt(liteOfServer.median, 2)}x the server rate.`,
    ],
  };
}

async function truncate(db: Database): Promise<void> {
  await db.orm.em.getConnection().execute('TRUNCATE atoms, outbox, atom_claims RESTART IDENTITY');
}
