/**
 * A child process for the concurrent document-sync test: syncs every file of FOLDER (ids are
 * paths relative to it) into COLLECTION of the server schema DB_SCHEMA, embedding through the
 * test's embedding server at EMBED_URL, and prints `report <json>`. Exits when its stdin
 * closes (the parent died).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { ingestDocuments } from '../../lib/documents/ingest-documents.js';
import { openAIEmbedder } from '../../lib/http/openai-embedder.js';
import { openDatabase } from '../../lib/postgres/open-database.js';

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is required`);
  return v;
};

async function main(): Promise<void> {
  process.stdin.on('end', () => process.exit(2));
  process.stdin.resume();
  const folder = env('FOLDER');
  const db = await openDatabase({ url: env('DATABASE_URL'), schema: env('DB_SCHEMA') });
  const embedder = openAIEmbedder({
    baseUrl: env('EMBED_URL'),
    model: 'test-model',
    dimensions: db.embeddingDimensions,
    apiKey: '',
  });
  try {
    const files = (await readdir(folder, { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name));
    const docs = await Promise.all(
      files.map(async (f) => ({ id: relative(folder, f), content: await readFile(f, 'utf8') })),
    );
    const report = await ingestDocuments(docs, {
      db,
      embedder,
      collection: env('COLLECTION'),
      cleanup: 'incremental',
      documentBatchSize: Number(process.env.DOC_BATCH ?? 4),
      batchSize: Number(process.env.ATOM_BATCH ?? 8),
    });
    process.stdout.write(`report ${JSON.stringify(report)}\n`);
  } finally {
    embedder.close();
    await db.close();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
