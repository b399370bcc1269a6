import { randomBytes } from 'node:crypto';
import { getEventListeners } from 'node:events';
import fc from 'fast-check';
import { contentHash } from '../../lib/atoms/hash.js';
import { ingest } from '../../lib/atoms/ingest.js';
import { deleteDocuments } from '../../lib/documents/delete-documents.js';
import type { DocumentInput } from '../../lib/documents/document.js';
import { ingestDocuments } from '../../lib/documents/ingest-documents.js';
import { streamAtoms } from '../../lib/documents/stream-atoms.js';
import { streamDocuments } from '../../lib/documents/stream-documents.js';
import { openAIEmbedder } from '../../lib/http/openai-embedder.js';
import type { Database } from '../../lib/postgres/database.js';
import { databaseSuite } from '../support/databases.js';
import { startEmbeddingServer } from '../support/embedding-server.js';

const suite = await databaseSuite('documents');
const tag = () => randomBytes(4).toString('hex');

async function sql<R>(db: Database, text: string, values: unknown[] = []): Promise<R[]> {
  return db.orm.em.getConnection().execute<R[]>(text.replaceAll('S.', `"${db.schema}".`), values);
}

/** Which of these contents are stored as atoms. */
async function storedContents(db: Database, contents: readonly string[]): Promise<string[]> {
  const hashes = contents.map((c) => contentHash(c));
  const rows = await sql<{ hash: string }>(
    db,
    `SELECT encode(content_hash, 'hex') AS hash FROM S.atoms WHERE encode(content_hash, 'hex') IN (${hashes.map(() => '?').join(',') || "''"})`,
    hashes,
  );
  const found = new Set(rows.map((r) => r.hash));
  return contents.filter((c) => found.has(contentHash(c))).sort();
}

/** Chunk lists of a collection: id -> chunk contents' hashes. */
async function chunkLists(db: Database, collection: string): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for await (const d of streamDocuments(db, { collection, chunks: true, batchSize: 3 })) {
    out[d.id] = [...(d.chunkHashes ?? [])];
  }
  return out;
}

async function events(db: Database, type: string, keyPrefix: string): Promise<number> {
  const [row] = await sql<{ n: string }>(
    db,
    'SELECT count(*) AS n FROM S.outbox WHERE event_type = ? AND aggregate_key LIKE ?',
    [type, `${keyPrefix}%`],
  );
  return Number(row?.n ?? 0);
}

const hashes = (...contents: string[]) => contents.map((c) => contentHash(c));

suite.test(
  'a changed document: its old chunks go with incremental, shared atoms stay',
  async (t, db) => {
    const p = tag();
    const c = `col-${p}`;
    const [one, shared, two, oneX] = [`${p} one`, `${p} shared`, `${p} two`, `${p} one changed`];
    const first = await ingestDocuments(
      [
        { id: 'a', content: `${one}\n\n${shared}` },
        { id: 'b', content: `${shared}\n\n${two}` },
      ],
      { db, collection: c, cleanup: 'incremental' },
    );
    t.like(first, {
      added: 2,
      changed: 0,
      unchanged: 0,
      failed: 0,
      atomsAdded: 3,
      atomsDeleted: 0,
    });
    const second = await ingestDocuments(
      [
        { id: 'a', content: `${oneX}\n\n${shared}` },
        { id: 'b', content: `${shared}\n\n${two}` },
      ],
      { db, collection: c, cleanup: 'incremental' },
    );
    t.like(second, {
      added: 0,
      changed: 1,
      unchanged: 1,
      failed: 0,
      atomsAdded: 1,
      atomsDeleted: 1,
    });
    t.deepEqual(await storedContents(db, [one, shared, two, oneX]), [shared, two, oneX].sort());
    t.deepEqual(await chunkLists(db, c), { a: hashes(oneX, shared), b: hashes(shared, two) });
    t.is(await events(db, 'document.upserted', `document:${c}/`), 3);
    t.is(await events(db, 'atom.deleted', contentHash(one)), 1);
  },
);

suite.test('cleanup none keeps the old atoms; the chunk list is still replaced', async (t, db) => {
  const p = tag();
  const c = `col-${p}`;
  await ingestDocuments([{ id: 'a', content: `${p} old` }], { db, collection: c });
  const r = await ingestDocuments([{ id: 'a', content: `${p} new` }], { db, collection: c });
  t.like(r, { changed: 1, atomsAdded: 1, atomsDeleted: 0 });
  t.deepEqual(await storedContents(db, [`${p} old`, `${p} new`]), [`${p} old`, `${p} new`].sort());
  t.deepEqual(await chunkLists(db, c), { a: hashes(`${p} new`) });
});

suite.test(
  'a removed document with full: deleted with its own atoms and events; shared atoms and other collections stay',
  async (t, db) => {
    const p = tag();
    const c = `col-${p}`;
    const other = `other-${p}`;
    const docs: DocumentInput[] = [
      { id: 'a', content: `${p} a\n\n${p} shared` },
      { id: 'b', content: `${p} b\n\n${p} shared\n\n${p} also in other` },
    ];
    await ingestDocuments(docs, { db, collection: c, cleanup: 'full' });
    await ingestDocuments([{ id: 'x', content: `${p} also in other` }], { db, collection: other });
    const r = await ingestDocuments([docs[0]!], { db, collection: c, cleanup: 'full' });
    t.like(r, { unchanged: 1, deleted: 1, atomsDeleted: 1, failed: 0 });
    t.deepEqual(
      await storedContents(db, [`${p} a`, `${p} b`, `${p} shared`, `${p} also in other`]),
      [`${p} a`, `${p} shared`, `${p} also in other`].sort(),
    );
    t.deepEqual(Object.keys(await chunkLists(db, c)), ['a']);
    t.deepEqual(Object.keys(await chunkLists(db, other)), ['x']);
    t.is(await events(db, 'document.deleted', `document:${c}/b`), 1);
    t.is(await events(db, 'atom.deleted', contentHash(`${p} b`)), 1);
  },
);

suite.test('an unchanged re-sync makes no embedding request and no write', async (t, db) => {
  const server = await startEmbeddingServer({ dimensions: db.embeddingDimensions });
  const embedder = openAIEmbedder({
    baseUrl: server.baseUrl,
    model: 'test-model',
    dimensions: db.embeddingDimensions,
    apiKey: '',
  });
  try {
    const p = tag();
    const c = `col-${p}`;
    const docs = Array.from({ length: 40 }, (_, i) => ({
      id: `doc-${i}`,
      content: `${p} paragraph ${i}\n\n${p} common paragraph ${i % 7}`,
      metadata: { n: i },
    }));
    const first = await ingestDocuments(docs, {
      db,
      collection: c,
      embedder,
      cleanup: 'full',
      documentBatchSize: 16,
    });
    t.like(first, { added: 40, atomsAdded: 47, failed: 0 });
    const requests = server.requests.length;
    t.true(requests > 0);
    const counts = async () =>
      sql<{ atoms: string; documents: string; chunks: string; outbox: string; xmin: string }>(
        db,
        // only this test's rows: other tests write to the same schema at the same time
        `WITH mine AS (SELECT content_hash FROM S.atoms WHERE content LIKE ?)
         SELECT (SELECT count(*) FROM mine) AS atoms,
             (SELECT count(*) FROM S.documents WHERE collection = ?) AS documents,
             (SELECT count(*) FROM S.document_chunks dc JOIN S.documents d ON d.id = dc.document
               WHERE d.collection = ?) AS chunks,
             (SELECT count(*) FROM S.outbox WHERE aggregate_key LIKE ?
               OR aggregate_key IN (SELECT encode(content_hash, 'hex') FROM mine)) AS outbox,
             (SELECT max(updated_at)::text FROM S.documents WHERE collection = ?) AS xmin`,
        [`${p} %`, c, c, `document:${c}/%`, c],
      );
    const before = await counts();
    for (const cleanup of ['none', 'incremental', 'full'] as const) {
      const again = await ingestDocuments(docs, {
        db,
        collection: c,
        embedder,
        cleanup,
        documentBatchSize: 16,
      });
      t.like(again, {
        processed: 40,
        unchanged: 40,
        added: 0,
        changed: 0,
        deleted: 0,
        atomsAdded: 0,
        atomsDeleted: 0,
      });
    }
    t.is(server.requests.length, requests, 'no embedding request');
    t.deepEqual(await counts(), before, 'no row written');
    // metadata is part of the document hash
    const edited = await ingestDocuments(
      docs.map((d, i) => (i === 3 ? { ...d, metadata: { n: 3, lang: 'en' } } : d)),
      { db, collection: c, embedder, cleanup: 'incremental' },
    );
    t.like(edited, { changed: 1, unchanged: 39, atomsAdded: 0, atomsDeleted: 0 });
    t.is(server.requests.length, requests, 'same chunks: nothing to embed');
  } finally {
    embedder.close();
    await server.close();
  }
});

suite.test('atoms stored with ingest are never deleted by cleanup', async (t, db) => {
  const p = tag();
  const c = `col-${p}`;
  await ingest([{ content: `${p} pinned` }], { db });
  await ingestDocuments([{ id: 'a', content: `${p} pinned\n\n${p} own` }], { db, collection: c });
  const r = await deleteDocuments(db, { collection: c, ids: ['a', 'not-there'] });
  t.deepEqual(r, { deleted: ['a'], atomsDeleted: 1 });
  t.deepEqual(await storedContents(db, [`${p} pinned`, `${p} own`]), [`${p} pinned`].sort());
  t.is(await events(db, 'document.deleted', `document:${c}/a`), 1);
});

suite.test(
  'an atom deleted by cleanup can be created again (new atom.created message id)',
  async (t, db) => {
    const p = tag();
    const c = `col-${p}`;
    const doc = { id: 'a', content: `${p} comes back` };
    await ingestDocuments([doc], { db, collection: c });
    t.like(await deleteDocuments(db, { collection: c, ids: ['a'] }), { atomsDeleted: 1 });
    const again = await ingestDocuments([doc], { db, collection: c });
    t.like(again, { added: 1, atomsAdded: 1, failed: 0 });
    const rows = await sql<{ message_id: string }>(
      db,
      "SELECT message_id FROM S.outbox WHERE event_type = 'atom.created' AND aggregate_key = ? ORDER BY id",
      [contentHash(doc.content)],
    );
    t.is(rows.length, 2);
    t.is(rows[0]!.message_id, `atom.created:${contentHash(doc.content)}`);
    t.not(rows[1]!.message_id, rows[0]!.message_id);
  },
);

suite.test('bad documents fail alone with named errors; the rest are written', async (t, db) => {
  const p = tag();
  const c = `col-${p}`;
  const docs = [
    { id: 'ok', content: `${p} fine` },
    { id: '', content: 'x' },
    { id: 'no-content' },
    { id: 'ok', content: `${p} repeat` },
    { id: 'big', content: `${p} small\n\n${'y'.repeat(300)}` },
    { id: 'chunker-throws', content: 'THROW' },
  ] as unknown as DocumentInput[];
  const r = await ingestDocuments(docs, {
    db,
    collection: c,
    maxContentBytes: 200,
    chunker: (d) => {
      if (d.content === 'THROW') throw new Error('boom');
      return d.content.split('\n\n');
    },
  });
  t.like(r, { processed: 6, added: 1, failed: 5 });
  t.deepEqual(
    r.failures.map((f) => [f.index, f.step, f.error]).sort((a, b) => Number(a[0]) - Number(b[0])),
    [
      [1, 'validate', 'InvalidDocumentError'],
      [2, 'validate', 'InvalidDocumentError'],
      [3, 'validate', 'DuplicateDocumentError'],
      [4, 'store', 'ChunkFailedError'],
      [5, 'chunk', 'ChunkerError'],
    ].sort((a, b) => Number(a[0]) - Number(b[0])),
  );
  t.regex(r.failures.find((f) => f.index === 4)!.message, /ContentTooLargeError/);
  t.deepEqual(Object.keys(await chunkLists(db, c)), ['ok']);
  // the too-large document's other chunk was stored (counted in atomsAdded, kept)
  t.is(r.atomsAdded, 2);
});

suite.test(
  'streamAtoms and streamDocuments page by keyset, filter, stop and cancel',
  async (t, db) => {
    const p = tag();
    const c = `col-${p}`;
    const docs = Array.from({ length: 9 }, (_, i) => ({
      id: `d${i}`,
      content: `${p} only ${i}\n\n${p} even ${i % 2}`,
    }));
    await ingestDocuments(docs, { db, collection: c });
    const all = [];
    for await (const a of streamAtoms(db, { collection: c, batchSize: 2, embeddings: true }))
      all.push(a);
    t.is(all.length, 11);
    t.deepEqual(
      all.map((a) => BigInt(a.id)),
      all.map((a) => BigInt(a.id)).sort((x, y) => (x < y ? -1 : 1)),
    );
    t.true(
      all.every(
        (a) => a.embedding instanceof Float32Array && a.embedding.length === db.embeddingDimensions,
      ),
    );
    const some = [];
    for await (const a of streamAtoms(db, {
      collection: c,
      documentIds: ['d1', 'd2'],
      batchSize: 1,
    }))
      some.push(a.content);
    t.deepEqual(some.sort(), [`${p} even 0`, `${p} even 1`, `${p} only 1`, `${p} only 2`]);
    const ids = [];
    for await (const d of streamDocuments(db, { collection: c, batchSize: 4 })) ids.push(d.id);
    t.deepEqual(ids.sort(), docs.map((d) => d.id).sort());
    // early break ends the reads; abort rejects with the reason and leaves no listener
    let n = 0;
    for await (const _ of streamDocuments(db, { collection: c, batchSize: 2 }))
      if (++n === 3) break;
    t.is(n, 3);
    const ac = new AbortController();
    const reason = new Error('stop');
    await t.throwsAsync(
      (async () => {
        for await (const _ of streamAtoms(db, { collection: c, batchSize: 2, signal: ac.signal }))
          ac.abort(reason);
      })(),
      { is: reason },
    );
    t.is(getEventListeners(ac.signal, 'abort').length, 0);
  },
);

/** The brute-force model of the store, for the property test. */
interface Model {
  docs: Map<string, Map<string, { hash: string; chunks: string[] }>>;
  atoms: Set<string>;
  owned: Set<string>;
  pinned: Set<string>;
}

suite.serial(
  'every report count equals the database (random document sets and edits vs a brute-force model)',
  async (t, db) => {
    t.timeout(600_000); // slow on a loaded machine; no timing is asserted
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            op: fc.constantFrom('sync', 'sync', 'sync', 'delete'),
            collection: fc.integer({ min: 0, max: 1 }),
            cleanup: fc.constantFrom('none', 'incremental', 'full'),
            docs: fc.uniqueArray(
              fc.record({
                id: fc.integer({ min: 0, max: 5 }),
                paras: fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 4 }),
                meta: fc.integer({ min: 0, max: 1 }),
              }),
              { selector: (d) => d.id, maxLength: 6 },
            ),
          }),
          { minLength: 1, maxLength: 6 },
        ),
        fc.uniqueArray(fc.integer({ min: 0, max: 9 }), { maxLength: 2 }),
        async (ops, pinnedParas) => {
          const p = `${tag()}-${run++}`;
          const para = (i: number) => (i === 9 ? `${p} ${'z'.repeat(300)}` : `${p} paragraph ${i}`);
          const vocabulary = Array.from({ length: 10 }, (_, i) => para(i));
          const model: Model = {
            docs: new Map(),
            atoms: new Set(),
            owned: new Set(),
            pinned: new Set(),
          };
          const cols = [`a-${p}`, `b-${p}`];
          for (const c of cols) model.docs.set(c, new Map());
          const pinned = pinnedParas.filter((i) => i !== 9).map(para);
          await ingest(
            pinned.map((content) => ({ content })),
            { db },
          );
          for (const c of pinned) {
            model.atoms.add(c);
            model.pinned.add(c);
          }
          const referenced = () => {
            const s = new Set<string>();
            for (const m of model.docs.values())
              for (const d of m.values()) for (const c of d.chunks) s.add(c);
            return s;
          };
          const collect = (candidates: Iterable<string>): number => {
            const refs = referenced();
            let n = 0;
            for (const c of new Set(candidates)) {
              if (model.atoms.has(c) && model.owned.has(c) && !refs.has(c)) {
                model.atoms.delete(c);
                model.owned.delete(c);
                n++;
              }
            }
            return n;
          };
          for (const op of ops) {
            const c = cols[op.collection]!;
            const stored = model.docs.get(c)!;
            if (op.op === 'delete') {
              const ids = op.docs.map((d) => `d${d.id}`);
              const candidates: string[] = [];
              let deleted = 0;
              for (const id of ids) {
                const d = stored.get(id);
                if (d) {
                  candidates.push(...d.chunks);
                  stored.delete(id);
                  deleted++;
                }
              }
              const expectedAtoms = collect(candidates);
              const r = await deleteDocuments(db, { collection: c, ids });
              t.is(r.deleted.length, deleted);
              t.is(r.atomsDeleted, expectedAtoms);
            } else {
              const docs = op.docs.map((d) => ({
                id: `d${d.id}`,
                content: d.paras.map(para).join('\n\n'),
                metadata: { v: d.meta },
              }));
              const expected = {
                added: 0,
                changed: 0,
                unchanged: 0,
                failed: 0,
                deleted: 0,
                atomsAdded: 0,
                atomsDeleted: 0,
              };
              const candidates: string[] = [];
              const createdNow = new Set<string>();
              for (const [i, d] of docs.entries()) {
                const chunks = op.docs[i]!.paras.map(para);
                const hash = JSON.stringify([d.content, d.metadata]);
                const old = stored.get(d.id);
                if (old?.hash === hash) {
                  expected.unchanged++;
                  continue;
                }
                for (const ch of chunks) {
                  if (ch.length < 200 && !model.atoms.has(ch)) {
                    model.atoms.add(ch);
                    createdNow.add(ch);
                    expected.atomsAdded++;
                  }
                }
                if (chunks.some((ch) => ch.length >= 200)) {
                  expected.failed++;
                  continue;
                }
                if (old) {
                  expected.changed++;
                  candidates.push(...old.chunks);
                } else expected.added++;
                stored.set(d.id, { hash, chunks });
              }
              const refs = referenced();
              for (const ch of createdNow) if (refs.has(ch)) model.owned.add(ch);
              if (op.cleanup !== 'none') expected.atomsDeleted += collect(candidates);
              if (op.cleanup === 'full') {
                const seen = new Set(docs.map((d) => d.id));
                const gone: string[] = [];
                for (const [id, d] of [...stored]) {
                  if (!seen.has(id)) {
                    gone.push(...d.chunks);
                    stored.delete(id);
                    expected.deleted++;
                  }
                }
                expected.atomsDeleted += collect(gone);
              }
              const r = await ingestDocuments(docs, {
                db,
                collection: c,
                cleanup: op.cleanup as 'none',
                maxContentBytes: 200,
                chunker: (d) => (d.content === '' ? [] : d.content.split('\n\n')),
              });
              t.like(r, expected, JSON.stringify({ op, r }));
            }
            t.deepEqual(await storedContents(db, vocabulary), [...model.atoms].sort());
            for (const col of cols) {
              const want: Record<string, string[]> = {};
              for (const [id, d] of model.docs.get(col)!)
                want[id] = d.chunks.map((ch) => contentHash(ch));
              t.deepEqual(await chunkLists(db, col), want);
            }
          }
        },
      ),
      { numRuns: 6 },
    );
  },
);

suite.test(
  'a full cleanup pages through more than one page of documents (keyset on the bigint id)',
  async (t, db) => {
    const c = `col-${tag()}`;
    // empty documents have no chunks: cheap to write, and ids cross 9/10, 99/100, 999/1000
    const docs = Array.from({ length: 1_100 }, (_, i) => ({ id: `e${i}`, content: '' }));
    t.like(await ingestDocuments(docs, { db, collection: c }), { added: 1_100 });
    const kept = docs.filter((_, i) => i % 11 === 0);
    const r = await ingestDocuments(kept, { db, collection: c, cleanup: 'full' });
    t.like(r, { unchanged: 100, deleted: 1_000, failed: 0 });
    t.is(Object.keys(await chunkLists(db, c)).length, 100);
  },
);
