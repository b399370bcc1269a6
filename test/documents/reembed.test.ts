/**
 * Embedding model changes on every backend: several models side by side, search per model
 * (against a brute-force cosine), the default switch refused then allowed, dropModel, resume
 * after a cancel (requests to the embedding server counted), bad vectors, retries.
 */
import { randomBytes } from 'node:crypto';
import { getEventListeners } from 'node:events';
import type { ExecutionContext } from 'ava';
import type { Embedder } from '../../lib/atoms/embedder.js';
import { isInvalidEmbeddingError } from '../../lib/atoms/errors.js';
import { localEmbedder } from '../../lib/atoms/local-embedder.js';
import { searchSimilar } from '../../lib/atoms/search-similar.js';
import { deleteDocuments } from '../../lib/documents/delete-documents.js';
import { dropModel } from '../../lib/documents/drop-model.js';
import { ingestDocuments } from '../../lib/documents/ingest-documents.js';
import {
  DefaultModelNotGivenError,
  isDefaultModelNotGivenError,
  isModelDimensionsError,
  isModelInUseError,
  isModelNotEmbeddedError,
} from '../../lib/documents/model-errors.js';
import { type ReembedProgress, reembed } from '../../lib/documents/reembed.js';
import { defaultModelOf, setDefaultModel } from '../../lib/documents/set-default-model.js';
import { streamAtoms } from '../../lib/documents/stream-atoms.js';
import { openAIEmbedder } from '../../lib/http/openai-embedder.js';
import type { Database } from '../../lib/postgres/database.js';
import { databaseSuite } from '../support/databases.js';
import { startEmbeddingServer } from '../support/embedding-server.js';
import { sql } from '../support/outbox-helpers.js';
import { memoryMeter } from '../support/telemetry.js';

const suite = await databaseSuite('reembed');

/** The sums of `hartonomous.reembed.atoms` for one model, by state. */
async function reembedCounts(
  collect: ReturnType<typeof memoryMeter>['collect'],
  model: string,
): Promise<Record<'scanned' | 'embedded' | 'skipped' | 'failed', number>> {
  const sums = { scanned: 0, embedded: 0, skipped: 0, failed: 0 };
  const metric = (await collect()).find((m) => m.descriptor.name === 'hartonomous.reembed.atoms');
  for (const point of metric?.dataPoints ?? []) {
    if (point.attributes['gen_ai.request.model'] !== model) continue;
    sums[point.attributes.state as keyof typeof sums] += point.value as number;
  }
  return sums;
}

const WORDS = ['cat', 'dog', 'queue', 'retry', 'saga', 'vector', 'index', 'chunk', 'outbox', 'bus'];

/** The local feature-hashing embedder at `dims`, under another model name. */
const named = (model: string, dims: number): Embedder => ({ ...localEmbedder(dims), model });

/** `count` documents of three paragraphs each (some paragraphs shared between documents). */
function corpus(p: string, count: number) {
  const para = (i: number) => `${p} ${WORDS[i % 10]} ${WORDS[(i * 7) % 10]} note ${i}`;
  return Array.from({ length: count }, (_, d) => ({
    id: `d${d}`,
    content: [d, d + 1, 2 * d + 5].map(para).join('\n\n'),
  }));
}

async function count(db: Database, text: string, values: unknown[] = []): Promise<number> {
  const [row] = await sql<{ n: string }>(db, text, values);
  return Number(row?.n ?? 0);
}

const q = (db: Database) => `"${db.schema}"`;

/** Distinct atoms the documents of a collection are made of. */
const atomsOf = (db: Database, collection: string) =>
  count(
    db,
    `SELECT count(DISTINCT c.atom_id) AS n FROM ${q(db)}.document_chunks c
     JOIN ${q(db)}.documents d ON d.id = c.document WHERE d.collection = $1`,
    [collection],
  );

const addedVectors = (db: Database, model: string) =>
  count(db, `SELECT count(*) AS n FROM ${q(db)}.atom_embeddings WHERE model = $1`, [model]);

const primaryVectors = (db: Database, model: string) =>
  count(
    db,
    `SELECT count(*) AS n FROM ${q(db)}.atoms WHERE embedding_model = $1 AND embedding IS NOT NULL`,
    [model],
  );

/** The best `k` cosine similarities over the vectors of `model` of a collection (brute force). */
async function bruteForce(
  db: Database,
  collection: string,
  model: string,
  query: Float32Array,
  k: number,
): Promise<number[]> {
  const scores: number[] = [];
  for await (const a of streamAtoms(db, { collection, model, embeddings: true, batchSize: 7 })) {
    const v = a.embedding!;
    let dot = 0;
    for (let i = 0; i < v.length; i++) dot += v[i]! * query[i]!;
    scores.push(dot / (Math.hypot(...v) * Math.hypot(...query)));
  }
  return scores.sort((a, b) => b - a).slice(0, k);
}

function sameScores(t: ExecutionContext, got: number[], want: number[], where: string): void {
  t.is(got.length, want.length, where);
  for (const [i, s] of got.entries()) {
    t.true(Math.abs(s - want[i]!) < 1e-5, `${where}: ${s} vs ${want[i]}`);
  }
}

suite.test(
  'two models side by side: each search ranks by its own vectors; counts equal the rows',
  async (t, db) => {
    t.timeout(300_000);
    const p = randomBytes(4).toString('hex');
    const collection = `side-${p}`;
    const first = named(`first-${p}`, db.embeddingDimensions);
    const second = named(`second-${p}`, 48);
    await ingestDocuments(corpus(p, 12), { db, collection, embedder: first });
    const atoms = await atomsOf(db, collection);
    t.true(atoms > 12);

    const events: ReembedProgress[] = [];
    const report = await reembed(db, {
      to: second,
      collection,
      batchSize: 5,
      onProgress: (e) => events.push(e),
    });
    t.like(report, { model: second.model, dimensions: 48, scanned: atoms, embedded: atoms });
    t.is(report.failed, 0);
    t.is(report.skipped, 0);
    t.is(await addedVectors(db, second.model), atoms);
    t.is(report.batches, Math.ceil(atoms / 5));
    t.is(events.length, report.batches);
    t.deepEqual(
      events.map((e) => e.embedded),
      events.map((_, i) => Math.min(atoms, 5 * (i + 1))),
    );
    // the primary vectors are untouched
    t.is(await primaryVectors(db, first.model), atoms);

    // the stored vectors are the new model's
    for await (const a of streamAtoms(db, { collection, model: second.model, embeddings: true })) {
      t.is(a.embeddingModel, second.model);
      const [want] = await second.embed([a.content], AbortSignal.timeout(5_000));
      t.deepEqual(a.embedding, want);
    }

    for (const words of ['cat dog', 'queue retry saga', 'outbox']) {
      const text = `${words} ${p}`;
      for (const model of [first, second]) {
        const [v] = await model.embed([text], AbortSignal.timeout(5_000));
        const hits = await searchSimilar(db, text, 6, {
          embedder: model,
          model: model.model,
          collection,
        });
        const where = `${model.model} '${words}'`;
        sameScores(
          t,
          hits.map((h) => h.similarity),
          await bruteForce(db, collection, model.model, v!, 6),
          where,
        );
        t.true(
          hits.every((h) => h.embeddingModel === model.model),
          where,
        );
        // without the collection filter too (this test's atoms are the only ones of these models)
        const all = await searchSimilar(db, v!, 6, { model: model.model, chunkSize: 4 });
        sameScores(
          t,
          all.map((h) => h.similarity),
          hits.map((h) => h.similarity),
          `${where} all`,
        );
        // hybrid: every hit carries its similarity under this model
        const hybrid = await searchSimilar(db, text, 4, {
          embedder: model,
          model: model.model,
          collection,
          mode: 'hybrid',
        });
        t.true(hybrid.length > 0, where);
        const truth = await bruteForce(db, collection, model.model, v!, 1_000);
        for (const h of hybrid) {
          t.true(
            truth.some((s) => Math.abs(s - h.similarity) < 1e-5),
            `${where} hybrid ${h.similarity}`,
          );
        }
      }
    }
    // a query of the wrong model's dimensions is refused
    const err = await t.throwsAsync(
      searchSimilar(db, 'cat', 3, { embedder: first, model: second.model }),
    );
    t.true(isInvalidEmbeddingError(err));

    // a second run has nothing left to do
    const again = await reembed(db, { to: second, collection, batchSize: 5 });
    t.like(again, { scanned: 0, embedded: 0, batches: 0 });
    // the same model name at other dimensions is refused
    const wrong = await t.throwsAsync(reembed(db, { to: named(second.model, 16), collection }));
    t.true(isModelDimensionsError(wrong));
  },
);

suite.test(
  'the default switch is refused until every atom has the model, then searches use it; dropModel',
  async (t, db) => {
    t.timeout(300_000);
    const p = randomBytes(4).toString('hex');
    const collection = `switch-${p}`;
    const old = named(`old-${p}`, db.embeddingDimensions);
    const next = named(`next-${p}`, 32);
    const docs = corpus(p, 8);
    await ingestDocuments(docs, { db, collection, embedder: old });
    const atoms = await atomsOf(db, collection);
    t.is(await defaultModelOf(db, collection), undefined);

    const refused = await t.throwsAsync(setDefaultModel(db, collection, next.model));
    t.true(isModelNotEmbeddedError(refused));
    t.like(refused, { collection, model: next.model, missing: atoms });

    // half the documents: still refused, with the rest counted
    const part = await reembed(db, { to: next, collection, documentIds: ['d0', 'd1', 'd2'] });
    t.true(part.embedded > 0 && part.embedded < atoms);
    // text mode with the model: only the atoms that have its vector
    const partial = await searchSimilar(db, p, 1_000, { mode: 'text', model: next.model });
    t.is(partial.length, part.embedded);
    t.true(partial.every((h) => h.embeddingModel === next.model && h.similarity === null));
    t.is((await searchSimilar(db, p, 1_000, { mode: 'text', collection })).length, atoms);
    const still = await t.throwsAsync(setDefaultModel(db, collection, next.model));
    t.like(still, { missing: atoms - part.embedded });
    t.is(await defaultModelOf(db, collection), undefined);

    const rest = await reembed(db, { to: next, collection });
    t.is(rest.embedded, atoms - part.embedded);
    t.is(await addedVectors(db, next.model), atoms);
    await setDefaultModel(db, collection, next.model);
    t.is(await defaultModelOf(db, collection), next.model);

    // a search of the collection without a model now ranks by the new model's vectors
    const [v] = await next.embed([`cat queue ${p}`], AbortSignal.timeout(5_000));
    const hits = await searchSimilar(db, v!, 5, { collection });
    t.true(hits.length === 5 && hits.every((h) => h.embeddingModel === next.model));
    sameScores(
      t,
      hits.map((h) => h.similarity),
      await bruteForce(db, collection, next.model, v!, 5),
      'default model',
    );
    const viaText = await searchSimilar(db, `cat queue ${p}`, 5, { collection, embedder: next });
    t.deepEqual(
      viaText.map((h) => h.id),
      hits.map((h) => h.id),
    );

    // the default cannot be dropped; the old model can, and only its vectors go
    const inUse = await t.throwsAsync(dropModel(db, next.model));
    t.true(isModelInUseError(inUse));
    t.like(inUse, { model: next.model, collections: [collection] });
    const oldPrimary = await primaryVectors(db, old.model);
    t.is(oldPrimary, atoms);
    const dropped = await dropModel(db, old.model);
    t.deepEqual(dropped, { model: old.model, vectors: atoms, added: 0, primary: atoms });
    t.is(await primaryVectors(db, old.model), 0);
    const [ov] = await old.embed([`cat ${p}`], AbortSignal.timeout(5_000));
    t.deepEqual(await searchSimilar(db, ov!, 5, { model: old.model }), []);
    t.is(await addedVectors(db, next.model), atoms);
    t.is((await searchSimilar(db, v!, 5, { collection })).length, 5);

    // back to a model with no vectors: refused; a collection's default can move to another model
    const third = named(`third-${p}`, 8);
    await reembed(db, { to: third, from: next.model, collection });
    await setDefaultModel(db, collection, third.model);
    const d = await dropModel(db, next.model);
    t.deepEqual(d, { model: next.model, vectors: atoms, added: atoms, primary: 0 });
    t.is(await addedVectors(db, next.model), 0);
    t.is(
      await count(db, `SELECT count(*) AS n FROM ${q(db)}.embedding_models WHERE model = $1`, [
        next.model,
      ]),
      0,
    );
  },
);

suite.test('from: only the atoms with a vector of that model are re-embedded', async (t, db) => {
  t.timeout(120_000);
  const p = randomBytes(4).toString('hex');
  const a = named(`a-${p}`, db.embeddingDimensions);
  const b = named(`b-${p}`, db.embeddingDimensions);
  await ingestDocuments(corpus(`${p}x`, 4), { db, collection: `a-${p}`, embedder: a });
  await ingestDocuments(corpus(`${p}y`, 5), { db, collection: `b-${p}`, embedder: b });
  const to = named(`to-${p}`, 24);
  const report = await reembed(db, { to, from: a.model });
  t.is(report.embedded, await primaryVectors(db, a.model));
  t.is(await addedVectors(db, to.model), report.embedded);
  t.is(await atomsOf(db, `a-${p}`), report.embedded);
});

suite.test('a bad vector fails only its atom; a transient failure is retried', async (t, db) => {
  t.timeout(120_000);
  const p = randomBytes(4).toString('hex');
  const collection = `bad-${p}`;
  await ingestDocuments(corpus(p, 6), {
    db,
    collection,
    embedder: named(`p-${p}`, db.embeddingDimensions),
  });
  const atoms = await atomsOf(db, collection);
  const inner = localEmbedder(16);
  let calls = 0;
  const flaky: Embedder = {
    model: `flaky-${p}`,
    dimensions: 16,
    async embed(texts, signal) {
      calls++;
      if (calls === 2) throw new Error('connection reset (scripted)');
      const out = await inner.embed(texts, signal);
      // the paragraph 'note 5' gets a NaN
      return out.map((v, i) =>
        texts[i]!.endsWith(' note 5') ? new Float32Array(16).fill(Number.NaN) : v,
      );
    },
  };
  const report = await reembed(db, {
    to: flaky,
    collection,
    batchSize: 4,
    retry: { maxAttempts: 3, baseDelayMs: 1 },
  });
  t.is(report.failed, 1);
  t.is(report.failures[0]?.error, 'InvalidEmbeddingError');
  t.is(report.embedded, atoms - 1);
  t.is(await addedVectors(db, flaky.model), atoms - 1);
  t.is(calls, Math.ceil(atoms / 4) + 1);
  // the next run tries only that atom again
  calls = 10;
  const again = await reembed(db, { to: flaky, collection });
  t.like(again, { scanned: 1, embedded: 0, failed: 1 });
});

suite.test(
  'cancelled by its signal: rejects with the reason, leaves no listener; the next run embeds only what is missing (requests counted)',
  async (t, db) => {
    t.timeout(300_000);
    const p = randomBytes(4).toString('hex');
    const collection = `cancel-${p}`;
    await ingestDocuments(corpus(p, 20), {
      db,
      collection,
      embedder: named(`p-${p}`, db.embeddingDimensions),
    });
    const atoms = await atomsOf(db, collection);
    const server = await startEmbeddingServer({ dimensions: 12 });
    t.teardown(() => server.close());
    const embedder = openAIEmbedder({
      baseUrl: server.baseUrl,
      model: `served-${p}`,
      dimensions: 12,
      apiKey: '',
    });
    t.teardown(() => embedder.close());
    const controller = new AbortController();
    const reason = new Error('stop (test)');
    const stopped = await t.throwsAsync(
      reembed(db, {
        to: embedder,
        collection,
        batchSize: 4,
        signal: controller.signal,
        onProgress: (e) => {
          if (e.batches === 3) controller.abort(reason);
        },
      }),
    );
    t.is(stopped, reason);
    t.is(getEventListeners(controller.signal, 'abort').length, 0);
    const stored = await addedVectors(db, embedder.model);
    t.is(stored, 12);
    const before = server.requests.reduce((s, r) => s + r.inputs.length, 0);
    t.is(before, 12);

    const rest = await reembed(db, { to: embedder, collection, batchSize: 4 });
    const inputs = server.requests.slice(3).flatMap((r) => r.inputs);
    t.is(inputs.length, atoms - stored);
    t.is(new Set(inputs).size, inputs.length);
    t.is(rest.embedded, atoms - stored);
    t.is(await addedVectors(db, embedder.model), atoms);
    // vectors as the server computed them
    for await (const a of streamAtoms(db, {
      collection,
      model: embedder.model,
      embeddings: true,
    })) {
      t.deepEqual(a.embedding, server.vectorOf(a.content));
    }
  },
);

suite.test(
  'two runs at once store each vector once; cleanup deleting an atom deletes its vectors',
  async (t, db) => {
    t.timeout(300_000);
    const p = randomBytes(4).toString('hex');
    const collection = `twice-${p}`;
    await ingestDocuments(corpus(p, 10), {
      db,
      collection,
      embedder: named(`p-${p}`, db.embeddingDimensions),
    });
    const atoms = await atomsOf(db, collection);
    const to = named(`twice-${p}`, 20);
    const meters = [memoryMeter(), memoryMeter()] as const;
    const [a, b] = await Promise.all([
      reembed(db, { to, collection, batchSize: 3, meter: meters[0].meter }),
      reembed(db, { to, collection, batchSize: 4, meter: meters[1].meter }),
    ]);
    t.is(a.embedded + b.embedded, atoms, JSON.stringify([a, b]));
    t.is(await addedVectors(db, to.model), atoms);
    for (const [i, r] of [a, b].entries()) {
      t.is(r.embedded + r.skipped, r.scanned);
      // the counter hartonomous.reembed.atoms says what the report says
      const counted = await reembedCounts(meters[i]!.collect, to.model);
      t.deepEqual(
        counted,
        { scanned: r.scanned, embedded: r.embedded, skipped: r.skipped, failed: r.failed },
        `run ${i}`,
      );
    }

    // delete every document: cleanup deletes their atoms, and the cascade their vectors
    await deleteDocuments(db, {
      collection,
      ids: Array.from({ length: 10 }, (_, d) => `d${d}`),
    });
    t.is(await atomsOf(db, collection), 0);
    t.is(await addedVectors(db, to.model), 0);
  },
);

suite.test(
  "a sync into a collection with another default model: refused per document without that model's embedder, filled with it (searches find every atom)",
  async (t, db) => {
    t.timeout(300_000);
    const p = randomBytes(4).toString('hex');
    const collection = `switched-${p}`;
    const other = `plain-${p}`;
    const v1 = named(`p-${p}`, db.embeddingDimensions);
    const v2 = named(`v2-${p}`, 24);
    await ingestDocuments(corpus(p, 6), { db, collection, embedder: v1 });
    await reembed(db, { to: v2, collection });
    await setDefaultModel(db, collection, v2.model);

    // new documents (new paragraphs: 'fresh ...') in the switched collection and one elsewhere
    const fresh = (d: number) => ({
      id: `n${d}`,
      content: `${p} fresh ${WORDS[d]} alpha ${d}\n\n${p} fresh ${WORDS[d + 1]} beta ${d}`,
    });
    const news = [0, 1, 2, 3].map(fresh);
    const refused = await ingestDocuments(
      [...news, { id: 'x', collection: other, content: `${p} elsewhere` }],
      { db, collection, embedder: v1 },
    );
    t.is(refused.failed, 4, JSON.stringify(refused.failures));
    t.is(refused.added, 1);
    t.true(refused.failures.every((f) => f.error === 'DefaultModelNotGivenError'));
    t.true(refused.failures.every((f) => f.step === 'validate'));
    t.true(isDefaultModelNotGivenError(new DefaultModelNotGivenError(collection, v2.model)));

    const missingBefore = await atomsOf(db, collection);
    const filled = await ingestDocuments(news, { db, collection, embedder: v1, models: [v2] });
    t.is(filled.failed, 0, JSON.stringify(filled.failures));
    t.is(filled.added, 4);
    const atoms = await atomsOf(db, collection);
    // every atom of the collection has a v2 vector: exactly the new atoms were added
    t.is(filled.modelVectorsAdded, atoms - missingBefore);
    t.is(filled.modelVectorsFailed, 0);
    t.is(filled.atomsAdded, 8);
    await setDefaultModel(db, collection, v2.model); // refused if any atom lacked the vector
    const query = (
      await v2.embed([`${p} fresh ${WORDS[2]} alpha 2`], AbortSignal.timeout(5_000))
    )[0]!;
    const hits = await searchSimilar(db, query, 3, { collection });
    t.is(hits[0]?.content, `${p} fresh ${WORDS[2]} alpha 2`);
    sameScores(
      t,
      hits.map((h) => h.similarity),
      await bruteForce(db, collection, v2.model, query, 3),
      'after the fill',
    );

    // an unchanged re-sync writes nothing and finds nothing to fill
    const again = await ingestDocuments(news, { db, collection, embedder: v1, models: [v2] });
    t.like(again, { unchanged: 4, atomsAdded: 0, modelVectorsAdded: 0, modelVectorsFailed: 0 });
  },
);

suite.test(
  'a default model set while a sync runs applies from its next batch of documents',
  async (t, db) => {
    t.timeout(300_000);
    const p = randomBytes(4).toString('hex');
    const collection = `midrun-${p}`;
    const v1 = named(`p-${p}`, db.embeddingDimensions);
    const v2 = named(`v2-${p}`, 16);
    const docs = corpus(p, 4);
    async function* source() {
      yield docs[0]!;
      yield docs[1]!;
      // the first batch (documentBatchSize 2) is written when the generator resumes here
      await reembed(db, { to: v2, collection });
      await setDefaultModel(db, collection, v2.model);
      yield docs[2]!;
      yield docs[3]!;
    }
    const without = await ingestDocuments(source(), {
      db,
      collection,
      embedder: v1,
      documentBatchSize: 2,
    });
    t.is(without.added, 2);
    t.deepEqual(
      without.failures.map((f) => [f.documentId, f.error]),
      [
        ['d2', 'DefaultModelNotGivenError'],
        ['d3', 'DefaultModelNotGivenError'],
      ],
    );
    const filled = await ingestDocuments(docs, { db, collection, embedder: v1, models: [v2] });
    t.like(filled, { unchanged: 2, added: 2, failed: 0, modelVectorsFailed: 0 });
    t.true(filled.modelVectorsAdded > 0);
    await setDefaultModel(db, collection, v2.model); // refused if an atom lacked a v2 vector
  },
);
