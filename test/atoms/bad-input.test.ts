import { randomBytes } from 'node:crypto';
import test from 'ava';
import fc from 'fast-check';
import {
  isEmptyContentError,
  isInvalidEmbeddingError,
  isInvalidUtf8Error,
} from '../../lib/atoms/errors.js';
import { contentHash } from '../../lib/atoms/hash.js';
import { type IngestionReport, ingest } from '../../lib/atoms/ingest.js';
import type { AtomInput } from '../../lib/atoms/ingest-steps.js';
import {
  isAtomRejectedError,
  isInvalidContentError,
  isInvalidContentTypeError,
  isInvalidMetadataError,
  isInvalidSourceIdError,
} from '../../lib/atoms/item-errors.js';
import { localEmbedder } from '../../lib/atoms/local-embedder.js';
import { persistWithFallback } from '../../lib/atoms/persist-with-fallback.js';
import { searchSimilar } from '../../lib/atoms/search-similar.js';
import { openAIEmbedder } from '../../lib/http/openai-embedder.js';
import type { Database } from '../../lib/postgres/database.js';
import { databaseSuite } from '../support/databases.js';
import { type EmbeddingServer, startEmbeddingServer } from '../support/embedding-server.js';

// Random mixes of good items and every kind of bad field, through the whole ingestion with a
// real embeddings server on 127.0.0.1 that answers bad vectors for marked inputs. Every good
// item must be stored, every bad one failed alone with the right named error at the right
// step, and a re-run of the same input adds nothing and fails the same items the same way.

const suite = await databaseSuite('badinput');

/** Each kind of bad item: how to make it, which error it must fail with, at which step. */
const BAD = {
  'content-number': { step: 'hash', error: 'InvalidContentError', guard: isInvalidContentError },
  'content-null': { step: 'hash', error: 'InvalidContentError', guard: isInvalidContentError },
  'content-object': { step: 'hash', error: 'InvalidContentError', guard: isInvalidContentError },
  'input-not-object': { step: 'hash', error: 'InvalidContentError', guard: isInvalidContentError },
  'content-nul': { step: 'hash', error: 'InvalidUtf8Error', guard: isInvalidUtf8Error },
  'content-lone-surrogate': { step: 'hash', error: 'InvalidUtf8Error', guard: isInvalidUtf8Error },
  'content-bad-bytes': { step: 'hash', error: 'InvalidUtf8Error', guard: isInvalidUtf8Error },
  'content-empty': { step: 'hash', error: 'EmptyContentError', guard: isEmptyContentError },
  'source-id-number': {
    step: 'hash',
    error: 'InvalidSourceIdError',
    guard: isInvalidSourceIdError,
  },
  'source-id-nul': { step: 'hash', error: 'InvalidSourceIdError', guard: isInvalidSourceIdError },
  'source-id-lone-surrogate': {
    step: 'hash',
    error: 'InvalidSourceIdError',
    guard: isInvalidSourceIdError,
  },
  'content-type-number': {
    step: 'hash',
    error: 'InvalidContentTypeError',
    guard: isInvalidContentTypeError,
  },
  'content-type-nul': {
    step: 'hash',
    error: 'InvalidContentTypeError',
    guard: isInvalidContentTypeError,
  },
  'metadata-circular': {
    step: 'hash',
    error: 'InvalidMetadataError',
    guard: isInvalidMetadataError,
  },
  'metadata-bigint': { step: 'hash', error: 'InvalidMetadataError', guard: isInvalidMetadataError },
  'metadata-nul': { step: 'hash', error: 'InvalidMetadataError', guard: isInvalidMetadataError },
  'metadata-lone-surrogate': {
    step: 'hash',
    error: 'InvalidMetadataError',
    guard: isInvalidMetadataError,
  },
  'metadata-array': { step: 'hash', error: 'InvalidMetadataError', guard: isInvalidMetadataError },
  'vector-short': {
    step: 'embed',
    error: 'InvalidEmbeddingError',
    guard: isInvalidEmbeddingError,
  },
  'vector-nan': { step: 'embed', error: 'InvalidEmbeddingError', guard: isInvalidEmbeddingError },
  'vector-huge': { step: 'embed', error: 'InvalidEmbeddingError', guard: isInvalidEmbeddingError },
  // passes validation, refused by the database (a source id too large for its btree index)
  'source-id-too-long-for-index': {
    step: 'persist',
    error: 'AtomRejectedError',
    guard: isAtomRejectedError,
  },
} as const;
type BadKind = keyof typeof BAD;
const KINDS = Object.keys(BAD) as BadKind[];

/** Marks content whose vector the test server answers badly. */
const VECTOR_MARK = {
  'vector-short': 'short',
  'vector-nan': 'nan',
  'vector-huge': 'huge',
} as const;

let servers: EmbeddingServer[] = [];
async function embedderFor(db: Database) {
  const server = await startEmbeddingServer({
    dimensions: db.embeddingDimensions,
    badVectorFor: (text) => {
      const m = /^BADVEC-(short|nan|huge) /.exec(text);
      return m ? (m[1] as 'short' | 'nan' | 'huge') : undefined;
    },
  });
  servers.push(server);
  const embedder = openAIEmbedder({
    baseUrl: server.baseUrl,
    model: 'bad-input-test',
    dimensions: db.embeddingDimensions,
    batchSize: 16,
    retry: false,
    breaker: false,
  });
  return { server, embedder };
}

/** One item of a given kind, with content unique to `tag` and `i`. */
function makeItem(kind: BadKind | 'good', tag: string, i: number): unknown {
  const content = `${tag} item ${i}: ${kind}`;
  const good: AtomInput = {
    content,
    sourceId: `${tag}#${i}`,
    contentType: 'text/plain',
    metadata: { i, tag, nested: { list: [1, 'two', null] } },
  };
  switch (kind) {
    case 'good':
      return good;
    case 'content-number':
      return { ...good, content: i };
    case 'content-null':
      return { ...good, content: null };
    case 'content-object':
      return { ...good, content: { text: content } };
    case 'input-not-object':
      return content;
    case 'content-nul':
      return { ...good, content: `${content}\u0000` };
    case 'content-lone-surrogate':
      return { ...good, content: `${content}\ud800` };
    case 'content-bad-bytes':
      return { ...good, content: Uint8Array.from([...Buffer.from(content), 0xff, 0xfe]) };
    case 'content-empty':
      return { ...good, content: ' \n ' };
    case 'source-id-number':
      return { ...good, sourceId: i };
    case 'source-id-nul':
      return { ...good, sourceId: `${tag}\u0000${i}` };
    case 'source-id-lone-surrogate':
      return { ...good, sourceId: `${tag}\udc00${i}` };
    case 'content-type-number':
      return { ...good, contentType: 7 };
    case 'content-type-nul':
      return { ...good, contentType: 'text/\u0000plain' };
    case 'metadata-circular': {
      const metadata: Record<string, unknown> = { i };
      metadata.self = { back: metadata };
      return { ...good, metadata };
    }
    case 'metadata-bigint':
      return { ...good, metadata: { i, big: BigInt(i) } };
    case 'metadata-nul':
      return { ...good, metadata: { i, note: 'a\u0000b' } };
    case 'metadata-lone-surrogate':
      return { ...good, metadata: { [`k\ud800${i}`]: 1 } };
    case 'metadata-array':
      return { ...good, metadata: [i] };
    case 'vector-short':
    case 'vector-nan':
    case 'vector-huge':
      return { ...good, content: `BADVEC-${VECTOR_MARK[kind]} ${content}` };
    case 'source-id-too-long-for-index':
      // random hex does not compress: larger than a btree index row may be (2704 bytes)
      return { ...good, sourceId: `${tag}#${i}:${randomBytes(3_000).toString('hex')}` };
  }
}

function goodContent(tag: string, i: number): string {
  return `${tag} item ${i}: good`;
}

async function storedCounts(db: Database, tag: string): Promise<{ atoms: number; outbox: number }> {
  const conn = db.orm.em.fork().getConnection();
  const [row] = await conn.execute<{ atoms: string; outbox: string }[]>(
    `SELECT (SELECT count(*) FROM "${db.schema}".atoms a WHERE a.content LIKE ? OR a.content LIKE ?) AS atoms,
            (SELECT count(*) FROM "${db.schema}".outbox o JOIN "${db.schema}".atoms a
               ON o.aggregate_key = encode(a.content_hash, 'hex')
             WHERE a.content LIKE ? OR a.content LIKE ?) AS outbox`,
    [`${tag} %`, `BADVEC-% ${tag} %`, `${tag} %`, `BADVEC-% ${tag} %`],
  );
  return { atoms: Number(row?.atoms), outbox: Number(row?.outbox) };
}

async function storedGood(db: Database, tag: string, indexes: number[]): Promise<number> {
  const hashes = indexes.map((i) => contentHash(goodContent(tag, i))).join(',');
  const [row] = await db.orm.em
    .fork()
    .getConnection()
    .execute<{ n: string }[]>(
      `SELECT count(*) AS n FROM "${db.schema}".atoms WHERE encode(content_hash, 'hex') = ANY(string_to_array(?, ','))`,
      [hashes],
    );
  return Number(row?.n);
}

function checkReport(
  t: import('ava').ExecutionContext,
  report: IngestionReport,
  kinds: readonly (BadKind | 'good')[],
  label: string,
): void {
  const bad = kinds.flatMap((k, index) => (k === 'good' ? [] : [{ index, kind: k }]));
  t.is(report.processed, kinds.length, `${label}: processed`);
  t.is(report.failed, bad.length, `${label}: failed`);
  t.is(report.failures.length, bad.length, `${label}: failures listed`);
  const byIndex = new Map(report.failures.map((f) => [f.index, f]));
  for (const { index, kind } of bad) {
    const f = byIndex.get(index);
    t.is(f?.error, BAD[kind].error, `${label}: item ${index} (${kind}) error: ${f?.message}`);
    t.is(f?.step, BAD[kind].step, `${label}: item ${index} (${kind}) step`);
  }
}

let run = 0;
suite.serial(
  'property: in random mixes of good and bad items, every good item is stored and every bad one fails alone, also on a re-run',
  async (t, db) => {
    const { server, embedder } = await embedderFor(db);
    t.teardown(() => {
      embedder.close();
      return server.close();
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            { weight: 3, arbitrary: fc.constant('good' as const) },
            fc.constantFrom(...KINDS),
          ),
          {
            minLength: 1,
            maxLength: 64,
            size: 'max',
          },
        ),
        fc.integer({ min: 1, max: 24 }),
        async (kinds, batchSize) => {
          const tag = `bi${process.pid}r${run++}${randomBytes(2).toString('hex')}`;
          const items = kinds.map((k, i) => makeItem(k, tag, i)) as AtomInput[];
          const good = kinds.flatMap((k, i) => (k === 'good' ? [i] : []));
          const options = { db, embedder, batchSize, batchTimeMs: 5, claimedWaitMs: 5_000 };
          const first = await ingest(items, options);
          checkReport(t, first, kinds, 'run 1');
          t.is(first.added, good.length, 'run 1: every good item added');
          t.deepEqual(await storedCounts(db, tag), { atoms: good.length, outbox: good.length });
          t.is(await storedGood(db, tag, good), good.length, 'the stored atoms are the good ones');

          const second = await ingest(items, options);
          checkReport(t, second, kinds, 'run 2');
          t.is(second.added, 0, 'run 2 (same input) adds nothing');
          t.is(second.duplicates, good.length);
          t.deepEqual(await storedCounts(db, tag), { atoms: good.length, outbox: good.length });
        },
      ),
      { numRuns: 8 },
    );
  },
);

suite.serial(
  'a batch with every kind of bad item: each fails alone, the good ones are stored',
  async (t, db) => {
    const { server, embedder } = await embedderFor(db);
    t.teardown(() => {
      embedder.close();
      return server.close();
    });
    const tag = `all${process.pid}${randomBytes(2).toString('hex')}`;
    const kinds: (BadKind | 'good')[] = KINDS.flatMap((k) => ['good', k, 'good'] as const);
    const items = kinds.map((k, i) => makeItem(k, tag, i)) as AtomInput[];
    const report = await ingest(items, { db, embedder, batchSize: 256, batchTimeMs: 20 });
    checkReport(t, report, kinds, 'one batch');
    t.is(report.added, KINDS.length * 2);
    t.deepEqual(await storedCounts(db, tag), { atoms: KINDS.length * 2, outbox: KINDS.length * 2 });
  },
);

suite.serial(
  'a good item whose content an earlier item of the run failed to store is stored, not reported a duplicate',
  async (t, db) => {
    const tag = `tw${process.pid}${randomBytes(2).toString('hex')}`;
    const base = localEmbedder(db.embeddingDimensions);
    // the first embed call fails (a transient outage); the second is slow, so the next batch
    // meets its contents still in flight
    let calls = 0;
    const embedder = {
      model: base.model,
      dimensions: base.dimensions,
      embed: async (texts: readonly string[], signal: AbortSignal) => {
        calls++;
        if (calls === 1) throw new Error('embedding server briefly down');
        if (calls === 2) await new Promise((r) => setTimeout(r, 400));
        return base.embed(texts, signal);
      },
    };
    const content = (i: number) => `${tag} twin ${i}`;
    const items: AtomInput[] = [
      // batch 1: the only embed call that fails
      { content: content(0), sourceId: 'first' },
      // batch 2: a row the database refuses (its source id is too large for the index), then
      // the same content with a good source id, in the same batch and in the next one
      { content: content(1), sourceId: `${tag}:${randomBytes(3_000).toString('hex')}` },
      { content: content(1), sourceId: 'twin in the same batch' },
      { content: content(2), sourceId: `${tag}:${randomBytes(3_000).toString('hex')}` },
      // batch 3: the contents of batches 1 and 2 again, with good fields
      { content: content(0), sourceId: 'again' },
      { content: content(2), sourceId: 'twin in a later batch' },
    ];
    const batches = [[0], [1, 2, 3], [4, 5]].map((ix) => ix.map((i) => items[i]!));
    const report = await ingest(
      (async function* () {
        for (const batch of batches) {
          yield* batch;
          // each group its own dedupe batch
          await new Promise((r) => setTimeout(r, 100));
        }
      })(),
      { db, embedder, batchSize: 3, batchTimeMs: 20 },
    );
    t.deepEqual(report.failures.map((f) => [f.index, f.error]).sort(), [
      [0, 'Error'],
      [1, 'AtomRejectedError'],
      [3, 'AtomRejectedError'],
    ]);
    t.is(report.added, 3, 'the good twins stored the three contents');
    t.is(report.processed, items.length);
    t.deepEqual(await storedCounts(db, tag), { atoms: 3, outbox: 3 });
  },
);

suite.test(
  'persistWithFallback: refused rows fail alone with AtomRejectedError wrapping the database error',
  async (t, db) => {
    const tag = `pf${process.pid}${randomBytes(2).toString('hex')}`;
    const atoms = Array.from({ length: 23 }, (_, i) => {
      const content = `${tag} row ${i}`;
      return {
        hash: contentHash(content),
        content,
        sourceId: i % 7 === 3 ? `${tag}:${randomBytes(3_000).toString('hex')}` : `${tag}#${i}`,
      };
    });
    const refused = atoms.filter((_, i) => i % 7 === 3).map((a) => a.hash);
    const result = await persistWithFallback(db, atoms);
    t.is(result.inserted.length, atoms.length - refused.length);
    t.deepEqual([...result.rejected.keys()].sort(), [...refused].sort());
    for (const e of result.rejected.values()) {
      t.true(isAtomRejectedError(e));
      t.is((e as { sqlState?: string }).sqlState, '54000');
      t.true(e.cause instanceof Error, 'the database error is the cause');
    }
    const again = await persistWithFallback(db, atoms);
    t.is(again.inserted.length, 0);
    t.is(again.duplicates.length, atoms.length - refused.length);
    t.is(again.rejected.size, refused.length);
  },
);

suite.test(
  'persistWithFallback: an error that is not about a row still fails the call',
  async (t, db) => {
    const content = `nf${process.pid} row`;
    const aborted = AbortSignal.abort(new Error('stop'));
    await t.throwsAsync(
      persistWithFallback(db, [{ hash: contentHash(content), content }], { signal: aborted }),
      {
        message: 'stop',
      },
    );
  },
);

suite.test(
  'searchSimilar with a bad vector for its query fails with that InvalidEmbeddingError',
  async (t, db) => {
    const { server, embedder } = await embedderFor(db);
    t.teardown(() => {
      embedder.close();
      return server.close();
    });
    const e = await t.throwsAsync(searchSimilar(db, 'BADVEC-nan what is stored', 3, { embedder }));
    t.true(isInvalidEmbeddingError(e), String(e));
    t.is((e as { reason?: string }).reason, 'not-finite');
    t.true(Array.isArray(await searchSimilar(db, 'what is stored', 3, { embedder })));
  },
);

test.after.always(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});
