/**
 * `reembed` killed (SIGKILL) mid-run in a child process: a new run embeds only the atoms still
 * missing a vector (requests to the embedding server counted), and the rows equal the atoms.
 * On the PostgreSQL server (three trials) and on a PGlite data folder reopened after the kill.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import test from 'ava';
import { ingest } from '../../lib/atoms/ingest.js';
import { localEmbedder } from '../../lib/atoms/local-embedder.js';
import { reembed } from '../../lib/documents/reembed.js';
import { openAIEmbedder } from '../../lib/http/openai-embedder.js';
import type { Database } from '../../lib/postgres/database.js';
import { openDatabase } from '../../lib/postgres/open-database.js';
import { runScript } from '../support/child-process.js';
import { tempDir } from '../support/cli-helpers.js';
import {
  dropSchemaAndClose,
  SERVER_URL,
  serverUnavailableReason,
  uniqueSchema,
} from '../support/databases.js';
import { startEmbeddingServer } from '../support/embedding-server.js';
import { sql } from '../support/outbox-helpers.js';

const serverDown = await serverUnavailableReason();
const serverTest = serverDown ? test.skip : test.serial;

async function count(db: Database, text: string, values: unknown[] = []): Promise<number> {
  const [row] = await sql<{ n: string }>(db, text, values);
  return Number(row?.n ?? 0);
}

serverTest(
  'reembed killed (SIGKILL) mid-run: the next run embeds only the missing vectors',
  async (t) => {
    t.timeout(400_000);
    const schema = uniqueSchema('reembed_kill');
    const db = await openDatabase({ url: SERVER_URL, schema });
    t.teardown(() => dropSchemaAndClose(db, schema));
    const server = await startEmbeddingServer({ dimensions: 24, latencyMs: 15 });
    t.teardown(() => server.close());
    const p = randomBytes(3).toString('hex');
    const ATOMS = 240;
    const BATCH = 8;
    await ingest(
      Array.from({ length: ATOMS }, (_, i) => ({ content: `${p} atom ${i}` })),
      { db, embedder: localEmbedder(db.embeddingDimensions) },
    );
    const stored = (model: string) =>
      count(db, `SELECT count(*) AS n FROM "${schema}".atom_embeddings WHERE model = $1`, [model]);

    for (let trial = 0; trial < 3; trial++) {
      const model = `served-${trial}-${p}`;
      const child = runScript('test/support/reembed-child.ts', {
        DATABASE_URL: SERVER_URL,
        DB_SCHEMA: schema,
        EMBED_URL: server.baseUrl,
        MODEL: model,
        DIMS: '24',
        BATCH_SIZE: String(BATCH),
      });
      const firstRequest = server.requests.length;
      await child.line(`BATCH ${randomInt(1, 12)} `, 120_000);
      await delay(randomInt(0, 60));
      await child.kill();
      // the killed child's request (if one was in flight) is closed before counting
      const deadline = Date.now() + 30_000;
      while (server.inFlight > 0 && Date.now() < deadline) await delay(10);
      const before = await stored(model);
      const where = `trial ${trial}: ${before} stored at the kill`;
      t.true(before > 0 && before < ATOMS, where);
      const childInputs = server.requests.slice(firstRequest).flatMap((r) => r.inputs);
      // what the child wrote, plus at most the batch in flight when it died
      t.true(childInputs.length >= before && childInputs.length <= before + BATCH, where);

      const resumedFrom = server.requests.length;
      const embedder = openAIEmbedder({
        baseUrl: server.baseUrl,
        model,
        dimensions: 24,
        apiKey: '',
      });
      const report = await reembed(db, { to: embedder, batchSize: BATCH });
      embedder.close();
      const inputs = server.requests.slice(resumedFrom).flatMap((r) => r.inputs);
      t.is(inputs.length, ATOMS - before, where);
      t.is(new Set(inputs).size, inputs.length, where);
      t.like(report, { scanned: ATOMS - before, embedded: ATOMS - before, skipped: 0, failed: 0 });
      t.is(await stored(model), ATOMS, where);
    }
  },
);

test.serial(
  'reembed killed (SIGKILL) mid-run on a PGlite data folder: reopened, the next run embeds only the missing vectors',
  async (t) => {
    t.timeout(400_000);
    const { dir, remove } = await tempDir('reembed-kill');
    t.teardown(remove);
    const dataDir = join(dir, 'db');
    const server = await startEmbeddingServer({ dimensions: 24, latencyMs: 15 });
    t.teardown(() => server.close());
    const ATOMS = 240;
    const BATCH = 8;
    const model = 'served-pglite';
    let db = await openDatabase({ dataDir });
    await ingest(
      Array.from({ length: ATOMS }, (_, i) => ({ content: `pglite atom ${i}` })),
      { db, embedder: localEmbedder(db.embeddingDimensions) },
    );
    await db.close();
    const child = runScript('test/support/reembed-child.ts', {
      DATA_DIR: dataDir,
      EMBED_URL: server.baseUrl,
      MODEL: model,
      DIMS: '24',
      BATCH_SIZE: String(BATCH),
    });
    await child.line(`BATCH ${randomInt(2, 12)} `, 240_000);
    await child.kill();
    const deadline = Date.now() + 30_000;
    while (server.inFlight > 0 && Date.now() < deadline) await delay(10);
    const childInputs = server.requests.flatMap((r) => r.inputs).length;

    db = await openDatabase({ dataDir });
    t.teardown(() => db.close());
    const before = await count(db, 'SELECT count(*) AS n FROM atom_embeddings WHERE model = $1', [
      model,
    ]);
    t.true(before > 0 && before < ATOMS, `${before} stored at the kill`);
    t.true(childInputs >= before && childInputs <= before + BATCH, `${childInputs} sent`);
    const resumedFrom = server.requests.length;
    const embedder = openAIEmbedder({ baseUrl: server.baseUrl, model, dimensions: 24, apiKey: '' });
    const report = await reembed(db, { to: embedder, batchSize: BATCH });
    embedder.close();
    const inputs = server.requests.slice(resumedFrom).flatMap((r) => r.inputs);
    t.is(inputs.length, ATOMS - before);
    t.like(report, { embedded: ATOMS - before, failed: 0 });
    t.is(
      await count(db, 'SELECT count(*) AS n FROM atom_embeddings WHERE model = $1', [model]),
      ATOMS,
    );
  },
);
