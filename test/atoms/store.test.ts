import { randomBytes } from 'node:crypto';
import { getEventListeners } from 'node:events';
import test from 'ava';
import { claimHashes } from '../../lib/atoms/claim-hashes.js';
import { type InvalidEmbeddingError, isInvalidEmbeddingError } from '../../lib/atoms/errors.js';
import { findExistingHashes } from '../../lib/atoms/find-existing-hashes.js';
import { contentHash } from '../../lib/atoms/hash.js';
import { localEmbedder } from '../../lib/atoms/local-embedder.js';
import { ATOM_CREATED_EVENT, persistAtoms } from '../../lib/atoms/persist-atoms.js';
import { releaseClaims } from '../../lib/atoms/release-claims.js';
import { Atom, Outbox } from '../../lib/atoms/schema.js';
import type { NewAtom } from '../../lib/atoms/store.js';
import type { Database } from '../../lib/postgres/database.js';
import { openDatabase } from '../../lib/postgres/open-database.js';
import {
  databaseSuite,
  dropSchemaAndClose,
  SERVER_URL,
  serverUnavailableReason,
  uniqueSchema,
} from '../support/databases.js';

const suite = await databaseSuite('store');
const serverTest = (await serverUnavailableReason()) ? test.skip : test;
const embedder = localEmbedder();

/** `n` distinct atoms with embeddings; contents are unique to this call. */
async function makeAtoms(n: number, tag = randomBytes(4).toString('hex')): Promise<NewAtom[]> {
  const texts = Array.from({ length: n }, (_, i) => `${tag} item ${i}: ${'lorem '.repeat(i % 7)}`);
  const vectors = await embedder.embed(texts, AbortSignal.timeout(30_000));
  return texts.map((content, i) => ({
    hash: contentHash(content),
    content,
    embedding: vectors[i]!,
    embeddingModel: embedder.model,
    sourceId: tag,
    metadata: { i },
  }));
}

async function q<T = Record<string, unknown>>(
  db: Database,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  return db.orm.em.getConnection().execute(sql, params);
}

/** Atoms and outbox rows stored for the given hashes. */
async function stored(db: Database, hashes: readonly string[]) {
  const atoms = await db.orm.em.fork().find(Atom, { contentHash: { $in: [...hashes] } });
  const outbox = await db.orm.em.fork().find(Outbox, { aggregateKey: { $in: [...hashes] } });
  return { atoms, outbox };
}

suite.test('persistAtoms writes atoms with their atom.created outbox rows', async (t, db) => {
  const atoms = await makeAtoms(25);
  const traced = {
    ...atoms[0]!,
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    tracestate: 'k=v',
  };
  const result = await persistAtoms(db, [traced, ...atoms.slice(1)]);
  t.is(result.inserted.length, 25);
  t.deepEqual(result.duplicates, []);
  t.deepEqual(
    result.inserted.map((a) => a.hash),
    atoms.map((a) => a.hash),
  );
  const { atoms: rows, outbox } = await stored(
    db,
    atoms.map((a) => a.hash),
  );
  t.is(rows.length, 25);
  t.is(outbox.length, 25);
  const byHash = new Map(rows.map((r) => [r.contentHash, r]));
  for (const [i, ins] of result.inserted.entries()) {
    const row = byHash.get(ins.hash)!;
    t.is(row.id, ins.id);
    t.is(row.content, atoms[i]!.content);
    t.is(row.byteSize, Buffer.byteLength(atoms[i]!.content));
    t.is(row.contentType, 'text/plain');
    t.is(row.embeddingDims, 384);
    t.is(row.embeddingModel, embedder.model);
    t.deepEqual(row.metadata, { i });
  }
  const first = outbox.find((o) => o.aggregateKey === atoms[0]!.hash)!;
  t.is(first.eventType, ATOM_CREATED_EVENT);
  t.is(first.messageId, `atom.created:${atoms[0]!.hash}`);
  t.is(first.traceparent, traced.traceparent);
  t.is(first.tracestate, 'k=v');
  t.is(first.attempts, 0);
  t.is(first.publishedAt, null);
  t.like(first.payload, {
    atomId: result.inserted[0]!.id,
    contentHash: atoms[0]!.hash,
    byteSize: Buffer.byteLength(atoms[0]!.content),
    embeddingDims: 384,
    sourceId: atoms[0]!.sourceId,
    metadata: { i: 0 },
  });
  t.is(result.inserted[0]!.outboxId, first.id);
});

suite.test(
  'duplicates: against the database and within a batch; no outbox row for them',
  async (t, db) => {
    const atoms = await makeAtoms(10);
    await persistAtoms(db, atoms.slice(0, 4));
    const result = await persistAtoms(db, [...atoms, atoms[7]!, atoms[1]!]);
    t.deepEqual(
      result.inserted.map((a) => a.hash),
      atoms.slice(4).map((a) => a.hash),
    );
    t.deepEqual(result.duplicates, [
      ...atoms.slice(0, 4).map((a) => a.hash),
      atoms[7]!.hash,
      atoms[1]!.hash,
    ]);
    const { atoms: rows, outbox } = await stored(
      db,
      atoms.map((a) => a.hash),
    );
    t.is(rows.length, 10);
    t.is(outbox.length, 10);
  },
);

suite.test('findExistingHashes: one query per batch, returns the stored subset', async (t, db) => {
  const atoms = await makeAtoms(6);
  await persistAtoms(db, atoms.slice(0, 3));
  const missing = contentHash(`missing ${Math.random()}`);
  const found = await findExistingHashes(db, [
    ...atoms.map((a) => a.hash),
    missing,
    atoms[0]!.hash,
  ]);
  t.deepEqual(
    [...found].sort(),
    atoms
      .slice(0, 3)
      .map((a) => a.hash)
      .sort(),
  );
  t.deepEqual(await findExistingHashes(db, []), new Set());
  await t.throwsAsync(findExistingHashes(db, ['not-hex']), { instanceOf: TypeError });
});

serverTest(
  'the dedupe lookup is a named prepared statement (pg_prepared_statements) [postgres]',
  async (t) => {
    // One connection, so pg_prepared_statements (per session) shows what the hot path prepared.
    const schema = uniqueSchema('prepared');
    const db = await openDatabase({ url: SERVER_URL, schema, poolSize: 1 });
    try {
      await checkPrepared(t, db);
    } finally {
      await dropSchemaAndClose(db, schema);
    }
  },
);

suite.test('the dedupe lookup is a named prepared statement, reused', async (t, db, backend) => {
  if (backend === 'postgres') {
    t.pass('checked on a one-connection pool above');
    return;
  }
  await checkPrepared(t, db);
});

async function checkPrepared(t: import('ava').ExecutionContext, db: Database): Promise<void> {
  const atoms = await makeAtoms(3);
  await persistAtoms(db, atoms);
  await findExistingHashes(db, [atoms[0]!.hash]);
  await findExistingHashes(db, [atoms[1]!.hash, atoms[2]!.hash]);
  const rows = await q<{ name: string; statement: string }>(
    db,
    "SELECT name, statement FROM pg_prepared_statements WHERE name LIKE 'hartonomous_%'",
  );
  const lookup = rows.filter((r) => r.name.startsWith('hartonomous_find_existing_'));
  t.is(lookup.length, 1, JSON.stringify(rows));
  t.regex(lookup[0]!.statement, /content_hash = ANY\(\$1::bytea\[\]\)/);
  t.true(
    rows.some(
      (r) =>
        r.name.startsWith('hartonomous_persist_atoms_') &&
        /unnest\(\$1::bytea\[\]/.test(r.statement),
    ),
  );
}

suite.test(
  'claimHashes: first owner wins, others skip, own claims renew, stored atoms are never claimed',
  async (t, db) => {
    const atoms = await makeAtoms(4);
    const [h0, h1, h2, h3] = atoms.map((a) => a.hash) as [string, string, string, string];
    await persistAtoms(db, [atoms[3]!]);
    t.deepEqual(await claimHashes(db, [h0, h1, h0], 'worker-a'), [h0, h1]);
    t.deepEqual(await claimHashes(db, [h0, h1, h2, h3], 'worker-b'), [h2]);
    t.deepEqual(await claimHashes(db, [h1, h0], 'worker-a'), [h1, h0]);
    // A stale claim (older than staleAfterMs) is taken over.
    await q(
      db,
      `UPDATE "${db.schema}".atom_claims SET claimed_at = now() - interval '1 hour' WHERE owner = 'worker-a'`,
    );
    t.deepEqual(await claimHashes(db, [h0, h1], 'worker-b', { staleAfterMs: 60_000 }), [h0, h1]);
    t.deepEqual(await claimHashes(db, [h0], 'worker-a', { staleAfterMs: 60_000 }), []);
    // Release only touches the owner's claims.
    t.is(await releaseClaims(db, [h0, h1, h2], 'worker-a'), 0);
    t.is(await releaseClaims(db, [h0, h2], 'worker-b'), 2);
    t.deepEqual(await claimHashes(db, [h0, h1, h2], 'worker-a'), [h0, h2]);
    // Persisting releases the claims of the batch, whoever holds them.
    await persistAtoms(db, atoms.slice(0, 3));
    const left = await q<{ h: string }>(
      db,
      `SELECT encode(hash, 'hex') AS h FROM "${db.schema}".atom_claims`,
    );
    t.false(left.some((r) => [h0, h1, h2].includes(r.h)));
    await t.throwsAsync(claimHashes(db, [h0], ''), { instanceOf: TypeError });
    await t.throwsAsync(claimHashes(db, [h0], 'x', { staleAfterMs: -1 }), {
      instanceOf: TypeError,
    });
  },
);

suite.test(
  'atom and outbox row are written together or not at all (fault between them)',
  async (t, db) => {
    const atoms = await makeAtoms(5);
    const marker = randomBytes(6).toString('hex');
    const poisoned = atoms.map((a, i) => (i === 3 ? { ...a, metadata: { poison: marker } } : a));
    // A trigger that fails the outbox insert for one row of the batch: the fault sits after the
    // atoms were inserted and before their outbox rows exist.
    const fn = `"${db.schema}".fail_outbox_${marker}`;
    await q(
      db,
      `CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
       IF NEW.payload->'metadata'->>'poison' = '${marker}' THEN
         RAISE EXCEPTION 'injected outbox failure';
       END IF;
       RETURN NEW;
     END $$`,
    );
    await q(
      db,
      `CREATE TRIGGER fail_outbox_${marker} BEFORE INSERT ON "${db.schema}".outbox FOR EACH ROW EXECUTE FUNCTION ${fn}()`,
    );
    try {
      await claimHashes(
        db,
        atoms.map((a) => a.hash),
        'worker-fault',
      );
      await t.throwsAsync(persistAtoms(db, poisoned), { message: /injected outbox failure/ });
      const { atoms: rows, outbox } = await stored(
        db,
        atoms.map((a) => a.hash),
      );
      t.is(rows.length, 0);
      t.is(outbox.length, 0);
      // The failed statement kept the claims; the worker releases them.
      t.is(
        await releaseClaims(
          db,
          atoms.map((a) => a.hash),
          'worker-fault',
        ),
        5,
      );
    } finally {
      await q(db, `DROP TRIGGER fail_outbox_${marker} ON "${db.schema}".outbox`);
    }
    const result = await persistAtoms(db, atoms);
    t.is(result.inserted.length, 5);
  },
);

suite.test('vectors round-trip exactly (hot path in, ORM and SQL out)', async (t, db) => {
  const specials = [0, -0, 1e-38, -1e-38, 3.4e38, -3.4e38, Math.PI, 1 / 3, 1.401298464324817e-45];
  const vector = new Float32Array(384);
  for (let i = 0; i < vector.length; i++) {
    vector[i] =
      i < specials.length
        ? specials[i]!
        : (Math.random() - 0.5) * 10 ** Math.floor(Math.random() * 10 - 5);
  }
  const content = `exact ${Math.random()}`;
  await persistAtoms(db, [
    { hash: contentHash(content), content, embedding: vector, embeddingModel: 'm' },
  ]);
  const row = await db.orm.em.fork().findOneOrFail(Atom, { contentHash: contentHash(content) });
  const back = row.embedding!;
  t.is(back.length, 384);
  t.deepEqual(
    Buffer.from(back.buffer, back.byteOffset, back.byteLength),
    Buffer.from(vector.buffer),
  );
  t.true(Object.is(back[1], -0));
});

suite.test('bad input is rejected before anything is written', async (t, db) => {
  const [good] = await makeAtoms(1);
  const wrongDims = t.throwsAsync<InvalidEmbeddingError>(
    persistAtoms(db, [
      good!,
      { ...good!, hash: contentHash('x1'), embedding: new Float32Array(3) },
    ]),
  );
  const e1 = await wrongDims;
  t.true(isInvalidEmbeddingError(e1));
  t.is(e1?.index, 1);
  t.is(e1?.reason, 'dimensions');
  const nan = new Float32Array(384);
  nan[5] = Number.NaN;
  const e2 = await t.throwsAsync<InvalidEmbeddingError>(
    persistAtoms(db, [{ ...good!, embedding: nan }]),
  );
  t.is(e2?.reason, 'not-finite');
  await t.throwsAsync(persistAtoms(db, [{ ...good!, hash: 'ABC' }]), { instanceOf: TypeError });
  t.is((await findExistingHashes(db, [good!.hash])).size, 0);
  // Atoms without an embedding are fine.
  const plain = `no embedding ${Math.random()}`;
  const r = await persistAtoms(db, [{ hash: contentHash(plain), content: plain }]);
  t.is(r.inserted.length, 1);
});

suite.test(
  'an aborted signal rejects with its reason; no listener is left behind',
  async (t, db) => {
    const atoms = await makeAtoms(2);
    const ac = new AbortController();
    ac.abort(new Error('cancelled by test'));
    await t.throwsAsync(persistAtoms(db, atoms, { signal: ac.signal }), {
      message: 'cancelled by test',
    });
    await t.throwsAsync(findExistingHashes(db, [atoms[0]!.hash], { signal: ac.signal }), {
      message: 'cancelled by test',
    });
    t.is(
      (
        await findExistingHashes(
          db,
          atoms.map((a) => a.hash),
        )
      ).size,
      0,
    );
    const live = new AbortController();
    await persistAtoms(db, atoms, { signal: live.signal });
    await findExistingHashes(db, [atoms[0]!.hash], { signal: live.signal });
    await claimHashes(db, [atoms[0]!.hash], 'w', { signal: live.signal });
    await releaseClaims(db, [atoms[0]!.hash], 'w', { signal: live.signal });
    t.is(getEventListeners(live.signal, 'abort').length, 0);
  },
);

/** 5,000 items, about a fifth of them repeats of others. */
async function fiveThousand(): Promise<NewAtom[]> {
  const distinct = await makeAtoms(4_000);
  return Array.from({ length: 5_000 }, (_, i) => distinct[i < 4_000 ? i : (i * 7919) % 4_000]!);
}

async function checkOneRowEach(
  t: import('ava').ExecutionContext,
  db: Database,
  items: readonly NewAtom[],
) {
  const hashes = [...new Set(items.map((a) => a.hash))];
  const { atoms, outbox } = await stored(db, hashes);
  t.is(atoms.length, hashes.length, 'exactly one atom per distinct content');
  t.is(outbox.length, hashes.length, 'exactly one outbox row per atom');
  const atomIds = new Set(atoms.map((a) => a.id));
  t.true(outbox.every((o) => atomIds.has(String((o.payload as { atomId: string }).atomId))));
  t.is(new Set(outbox.map((o) => o.aggregateKey)).size, hashes.length);
}

/** Persists `items` in batches of 500, in the given order. */
async function writer(db: Database, items: readonly NewAtom[]) {
  let inserted = 0;
  for (let i = 0; i < items.length; i += 500) {
    inserted += (await persistAtoms(db, items.slice(i, i + 500))).inserted.length;
  }
  return inserted;
}

/** The claim-before-embed loop of a worker: lookup, claim, "embed" (count), persist. */
async function worker(db: Database, items: readonly NewAtom[], owner: string) {
  let embedded = 0;
  for (let i = 0; i < items.length; i += 500) {
    const batch = items.slice(i, i + 500);
    const existing = await findExistingHashes(
      db,
      batch.map((a) => a.hash),
    );
    const fresh = batch.filter((a) => !existing.has(a.hash));
    const won = new Set(
      await claimHashes(
        db,
        fresh.map((a) => a.hash),
        owner,
      ),
    );
    const mine = [
      ...new Map(fresh.filter((a) => won.has(a.hash)).map((a) => [a.hash, a])).values(),
    ];
    embedded += mine.length;
    await persistAtoms(db, mine);
  }
  return embedded;
}

/** A second handle on the same database (the server: its own pool, like another process). */
async function twin(
  db: Database,
  backend: string,
): Promise<{ other: Database; close: () => Promise<void> }> {
  // PGlite, in process or behind its socket server, is one session: the same handle
  if (backend !== 'postgres') return { other: db, close: async () => undefined };
  const other = await openDatabase({ url: SERVER_URL, schema: db.schema, poolSize: 2 });
  return { other, close: () => other.close() };
}

suite.serial(
  'two writers, the same 5k items at once: one row per content, no error',
  async (t, db, backend) => {
    const items = await fiveThousand();
    const { other, close } = await twin(db, backend);
    try {
      const [a, b] = await Promise.all([writer(db, items), writer(other, [...items].reverse())]);
      t.is(a + b, 4_000, 'each distinct content inserted by exactly one writer');
      await checkOneRowEach(t, db, items);
    } finally {
      await close();
    }
  },
);

suite.serial(
  'two workers claiming before embedding never embed the same content twice',
  async (t, db, backend) => {
    const items = await fiveThousand();
    const { other, close } = await twin(db, backend);
    try {
      const [a, b] = await Promise.all([
        worker(db, items, 'worker-1'),
        worker(other, [...items].reverse(), 'worker-2'),
      ]);
      t.is(a + b, 4_000, 'every distinct content embedded exactly once');
      await checkOneRowEach(t, db, items);
      const claims = await q(
        db,
        `SELECT count(*)::int AS n FROM "${db.schema}".atom_claims WHERE owner IN ('worker-1', 'worker-2')`,
      );
      t.is((claims[0] as { n: number }).n, 0, 'no claim left behind');
    } finally {
      await close();
    }
  },
);

serverTest(
  'writers in two processes-worth of pools with claims also agree [postgres, 4 handles]',
  async (t) => {
    const schema = uniqueSchema('fourway');
    const handles = await Promise.all(
      Array.from({ length: 4 }, () => openDatabase({ url: SERVER_URL, schema, poolSize: 1 })),
    );
    try {
      const items = (await makeAtoms(1_200)).concat(await makeAtoms(300));
      const shuffled = (seed: number) =>
        [...items].sort((x, y) => (x.hash.slice(seed * 3) < y.hash.slice(seed * 3) ? -1 : 1));
      const counts = await Promise.all(handles.map((h, i) => worker(h, shuffled(i), `w${i}`)));
      t.is(
        counts.reduce((s, n) => s + n, 0),
        1_500,
      );
      await checkOneRowEach(t, handles[0]!, items);
    } finally {
      await Promise.all(handles.slice(1).map((h) => h.close()));
      await dropSchemaAndClose(handles[0]!, schema);
    }
  },
);
