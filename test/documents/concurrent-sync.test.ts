import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { contentHash } from '../../lib/atoms/hash.js';
import type { DocumentSyncReport } from '../../lib/documents/ingest-documents.js';
import { streamDocuments } from '../../lib/documents/stream-documents.js';
import { runScript } from '../support/child-process.js';
import { openTestDatabase, serverUnavailableReason } from '../support/databases.js';
import { startEmbeddingServer } from '../support/embedding-server.js';

// Several processes need one database they can all open: the PostgreSQL server (an embedded
// PGlite folder is opened by one process at a time).
const serverDown = await serverUnavailableReason();
const serverTest = serverDown ? test.skip : test;

serverTest(
  'three processes syncing overlapping folders at once: one row per content, right chunk lists, no error, each content embedded once',
  async (t) => {
    t.timeout(400_000);
    const { db, schema, dispose } = await openTestDatabase('postgres', 'docsync');
    const server = await startEmbeddingServer({ dimensions: db.embeddingDimensions, latencyMs: 5 });
    const root = mkdtempSync(join(tmpdir(), 'docsync-'));
    try {
      const para = (i: number) => `paragraph ${i} of the shared corpus`;
      // shared files (same relative path and content in every folder) and each folder's own
      const shared: Record<string, number[]> = {};
      for (let f = 0; f < 8; f++) shared[`shared/file-${f}.md`] = [f, f + 1, f + 2, 20 + (f % 3)];
      const own = (p: number): Record<string, number[]> => ({
        [`own-${p}/a.md`]: [30 + p, 1, 2],
        [`own-${p}/b.md`]: [40 + p, 20],
      });
      const expected: Record<string, number[]> = { ...shared };
      for (let p = 0; p < 3; p++) {
        const folder = join(root, `f${p}`);
        for (const [path, paras] of Object.entries({ ...shared, ...own(p) })) {
          mkdirSync(join(folder, path, '..'), { recursive: true });
          writeFileSync(join(folder, path), paras.map(para).join('\n\n'));
        }
        Object.assign(expected, own(p));
      }
      const children = [0, 1, 2].map((p) =>
        runScript('test/support/document-sync.ts', {
          DATABASE_URL: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
          DB_SCHEMA: schema,
          FOLDER: join(root, `f${p}`),
          COLLECTION: 'corpus',
          EMBED_URL: server.baseUrl,
        }),
      );
      const codes = await Promise.all(children.map((c) => c.exited));
      t.deepEqual(codes, [0, 0, 0], children.map((c) => c.lines.join('\n')).join('\n---\n'));
      const reports = await Promise.all(
        children.map(
          async (c) =>
            JSON.parse((await c.line('report ')).slice('report '.length)) as DocumentSyncReport,
        ),
      );
      for (const r of reports) {
        t.is(r.failed, 0, JSON.stringify(r.failures));
        t.is(r.processed, 10);
      }
      // every document once, with the right chunk list
      const lists: Record<string, string[]> = {};
      for await (const d of streamDocuments(db, { collection: 'corpus', chunks: true })) {
        lists[d.id] = [...(d.chunkHashes ?? [])];
      }
      const want: Record<string, string[]> = {};
      for (const [path, paras] of Object.entries(expected)) {
        want[path] = paras.map((i) => contentHash(para(i)));
      }
      t.deepEqual(lists, want);
      // one row per content; the reports' counts add up to the rows
      const distinct = new Set(Object.values(expected).flat());
      const [row] = await db.orm.em
        .getConnection()
        .execute<{ n: string }[]>(`SELECT count(*) AS n FROM "${schema}".atoms`);
      t.is(Number(row?.n), distinct.size);
      t.is(
        reports.reduce((s, r) => s + r.atomsAdded, 0),
        distinct.size,
      );
      t.is(
        reports.reduce((s, r) => s + r.added + r.unchanged + r.changed, 0),
        30,
      );
      t.is(
        reports.reduce((s, r) => s + r.added, 0),
        Object.keys(expected).length,
      );
      // each content embedded once
      const embedded = new Map<string, number>();
      for (const req of server.requests) {
        for (const input of req.inputs) embedded.set(input, (embedded.get(input) ?? 0) + 1);
      }
      t.deepEqual(
        [...embedded.entries()].filter(([, n]) => n !== 1),
        [],
      );
      t.is(embedded.size, distinct.size);
    } finally {
      rmSync(root, { recursive: true, force: true });
      await server.close();
      await dispose();
    }
  },
);
