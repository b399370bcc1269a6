import { connect, createServer, type Socket } from 'node:net';
import test from 'ava';
import { findExistingHashes } from '../../lib/atoms/find-existing-hashes.js';
import { contentHash } from '../../lib/atoms/hash.js';
import { localEmbedder } from '../../lib/atoms/local-embedder.js';
import { persistAtoms } from '../../lib/atoms/persist-atoms.js';
import { Atom, AtomClaim, Outbox } from '../../lib/atoms/schema.js';
import { redactUrl } from '../../lib/core/redact-url.js';
import {
  type DatabaseUnavailableError,
  isDatabaseUnavailableError,
} from '../../lib/postgres/errors.js';
import { openDatabase } from '../../lib/postgres/open-database.js';
import { SchemaMigration } from '../../lib/postgres/schema-migration.js';
import {
  databaseSuite,
  dropSchemaAndClose,
  SERVER_URL,
  serverUnavailableReason,
  uniqueSchema,
} from '../support/databases.js';

const suite = await databaseSuite('open');
const serverTest = (await serverUnavailableReason()) ? test.skip : test;

test('options are validated with clear TypeErrors', async (t) => {
  await t.throwsAsync(openDatabase({ url: '' }), { instanceOf: TypeError, message: /url/ });
  await t.throwsAsync(openDatabase({ url: SERVER_URL, dataDir: 'memory://' }), {
    instanceOf: TypeError,
    message: /not both/,
  });
  await t.throwsAsync(openDatabase({ dataDir: 'memory://', schema: 'no spaces' }), {
    instanceOf: TypeError,
    message: /schema/,
  });
  await t.throwsAsync(openDatabase({ dataDir: 'memory://', poolSize: 0 }), {
    instanceOf: TypeError,
    message: /poolSize/,
  });
  await t.throwsAsync(openDatabase({ dataDir: 'memory://', dimensions: 1.5 }), {
    instanceOf: TypeError,
    message: /dimensions/,
  });
  await t.throwsAsync(
    // @ts-expect-error: an invalid storage on purpose
    openDatabase({ dataDir: 'memory://', vector: 'faiss' }),
    { instanceOf: TypeError, message: /vector/ },
  );
  const ac = new AbortController();
  ac.abort(new Error('stop'));
  await t.throwsAsync(openDatabase({ dataDir: 'memory://', signal: ac.signal }), {
    message: 'stop',
  });
});

test('passwords are redacted from logged URLs', (t) => {
  t.is(redactUrl('postgres://app:s3cret@db:5432/x'), 'postgres://app:***@db:5432/x');
  t.false(redactUrl('postgres://app:s3cret@db:5432/x').includes('s3cret'));
  // a password given as a parameter (node-postgres reads it there too)
  t.is(redactUrl('postgres://app@db/x?password=s3cret'), 'postgres://app@db/x?password=***');
  t.is(
    redactUrl('postgres://app@db/x?sslmode=require&password=s3cret&a=1'),
    'postgres://app@db/x?sslmode=require&password=***&a=1',
  );
  t.is(redactUrl('host=db password=s3cret user=app'), 'host=db password=*** user=app');
});

suite.test(
  'ordinary queries go through MikroORM entities (ids as strings, embeddings as Float32Array)',
  async (t, db) => {
    const embedder = localEmbedder();
    const content = `orm round trip ${db.backend} ${Math.random()}`;
    const [vector] = await embedder.embed([content], AbortSignal.timeout(5_000));
    const em = db.orm.em.fork();
    const atom = em.create(Atom, {
      contentHash: contentHash(content),
      content,
      byteSize: Buffer.byteLength(content),
      embedding: vector!,
      embeddingModel: embedder.model,
      embeddingDims: vector!.length,
      metadata: { via: 'orm' },
    });
    await em.flush();
    t.is(typeof atom.id, 'string');

    const loaded = await db.orm.em
      .fork()
      .findOneOrFail(Atom, { contentHash: contentHash(content) });
    t.is(loaded.content, content);
    t.deepEqual(loaded.metadata, { via: 'orm' });
    t.true(loaded.createdAt instanceof Date);
    t.deepEqual(Array.from(loaded.embedding!), Array.from(vector!));
    t.true(await findExistingHashes(db, [contentHash(content)]).then((s) => s.size === 1));

    const em2 = db.orm.em.fork();
    t.true((await em2.count(SchemaMigration)) >= 4);
    t.is(await em2.count(AtomClaim, { owner: 'nobody' }), 0);
    t.true((await em2.count(Outbox, { publishedAt: null })) >= 0);
  },
);

test('an unreachable server gives DatabaseUnavailableError on open', async (t) => {
  const closedPort = await new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
  const e = await t.throwsAsync<DatabaseUnavailableError>(
    openDatabase({ url: `postgres://postgres@127.0.0.1:${closedPort}/test` }),
  );
  t.true(isDatabaseUnavailableError(e));
  t.is(e?.backend, 'postgres');
  t.regex(e?.reason ?? '', /ECONNREFUSED/);
  t.truthy(e?.cause);
});

/** A TCP proxy to the server that the test can cut. */
async function startProxy(
  target: URL,
): Promise<{ url: string; cut: () => void; forwarded: () => number }> {
  const sockets = new Set<Socket>();
  let bytes = 0;
  const proxy = createServer((client) => {
    const upstream = connectTo(target);
    sockets.add(client);
    sockets.add(upstream);
    client.on('data', (d: Buffer) => {
      bytes += d.length;
    });
    client.pipe(upstream).pipe(client);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const { port } = proxy.address() as { port: number };
  const url = new URL(target.toString());
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return {
    url: url.toString(),
    forwarded: () => bytes,
    cut: () => {
      proxy.close();
      for (const s of sockets) s.destroy();
    },
  };
}

function connectTo(target: URL): Socket {
  return connect({ host: target.hostname, port: Number(target.port || 5432) });
}

serverTest(
  'the server going away mid-run gives DatabaseUnavailableError and writes nothing',
  async (t) => {
    const schema = uniqueSchema('outage');
    const direct = await openDatabase({ url: SERVER_URL, schema });
    const proxy = await startProxy(new URL(SERVER_URL));
    const db = await openDatabase({ url: proxy.url, schema });
    const embedder = localEmbedder();
    const texts = Array.from({ length: 2_000 }, (_, i) => `outage ${i} ${Math.random()}`);
    const vectors = await embedder.embed(texts, AbortSignal.timeout(10_000));
    const atoms = texts.map((content, i) => ({
      hash: contentHash(content),
      content,
      embedding: vectors[i]!,
      embeddingModel: embedder.model,
    }));
    try {
      // One batch goes through, then the connection is cut while the next is in flight.
      t.is((await persistAtoms(db, atoms.slice(0, 10))).inserted.length, 10);
      const before = proxy.forwarded();
      const inFlight = persistAtoms(db, atoms.slice(10));
      const timer = setInterval(() => {
        if (proxy.forwarded() > before + 64 * 1024) {
          clearInterval(timer);
          proxy.cut();
        }
      }, 1);
      const e = await t.throwsAsync<DatabaseUnavailableError>(inFlight);
      clearInterval(timer);
      t.true(isDatabaseUnavailableError(e), String(e));
      t.truthy(e?.cause);
      // The database stays unavailable for later calls, with the same clear error.
      const again = await t.throwsAsync(persistAtoms(db, atoms.slice(10, 20)));
      t.true(isDatabaseUnavailableError(again), String(again));
      // Nothing of the cut batch was committed: no atom, no outbox row.
      const stored = await findExistingHashes(
        direct,
        atoms.map((a) => a.hash),
      );
      t.is(stored.size, 10);
      const outbox = await direct.orm.em.fork().count(Outbox, {});
      t.is(outbox, 10);
    } finally {
      proxy.cut();
      await db.close();
      await dropSchemaAndClose(direct, schema);
    }
  },
);
