/**
 * What the persist statement costs against COPY, on the PostgreSQL server (DATABASE_URL): 10,000
 * rows with 384-float vectors, one statement after another, 3 rounds, each variant on a fresh
 * schema: binary COPY (atoms only), the same unnest as persistAtoms but atoms only, persistAtoms'
 * statement without its atom_claims DELETE, and persistAtoms' statement (atoms + outbox) at
 * several batch sizes (SIZES, default 256,1024).
 *
 *   npm run build && npx tsx --tsconfig bench/tsconfig.json bench/persist-variants.ts
 */

import { contentHash } from '@hartonomous/pipelines/atoms';
import { persistSql } from '../lib/atoms/persist-atoms.js';
import {
  byteaArray,
  float32ByteaArray,
  int4Array,
  jsonbArray,
  textArray,
} from '../lib/postgres/binary.js';
import { binaryCopyChunks, copyFrom, float32Bytes, jsonbBinary } from './support/copy-in.js';
import { corpus } from './support/corpus.js';
import { openFresh, withRawClient } from './support/postgres.js';
import { serverCpuMonitor } from './support/server-cpu.js';

const n = 10_000;
const { serverCpu, end } = await serverCpuMonitor();
let B = 256;
const { texts, vectors } = corpus(n, 384);
const hashes = texts.map((t) => Buffer.from(contentHash(t), 'hex'));
async function run(
  name: string,
  make: (q: string) => string | null,
  copy = false,
  prepare: (q: string) => string[] = () => [],
) {
  const fresh = await openFresh('x', 'x');
  try {
    return await withRawClient(fresh.db, async (c) => {
      const q = `"${fresh.schema}"`;
      for (const ddl of prepare(q)) await c.query(ddl);
      const t = performance.now();
      const { server } = await serverCpu(async () => {
        if (copy) {
          const rows = texts.map(
            (t, i) =>
              [
                hashes[i]!,
                t,
                'text/plain',
                { int4: Buffer.byteLength(t) },
                float32Bytes(vectors[i]!),
                'm',
                { int4: 384 },
                jsonbBinary('{}'),
              ] as const,
          );
          await copyFrom(
            c as never,
            `COPY ${q}.atoms (content_hash, content, content_type, byte_size, embedding, embedding_model, embedding_dims, metadata) FROM STDIN (FORMAT binary)`,
            binaryCopyChunks(rows as never),
          );
        } else {
          const sql = make(q)!;
          for (let i = 0; i < n; i += B) {
            const idx = [...Array(Math.min(B, n - i)).keys()]
              .map((k) => k + i)
              .sort((a, b) => Buffer.compare(hashes[a]!, hashes[b]!));
            const values = [
              byteaArray(idx.map((k) => hashes[k]!)),
              textArray(idx.map((k) => texts[k]!)),
              textArray(idx.map(() => 'text/plain')),
              int4Array(idx.map((k) => Buffer.byteLength(texts[k]!))),
              float32ByteaArray(idx.map((k) => vectors[k]!)),
              textArray(idx.map(() => 'm')),
              int4Array(idx.map(() => 384)),
              textArray(idx.map(() => null)),
              jsonbArray(idx.map(() => '{}')),
              textArray(idx.map(() => null)),
              textArray(idx.map(() => null)),
            ];
            await c.query({ text: sql, values, name: `${name}_${fresh.schema}` });
          }
        }
      });
      const r = n / ((performance.now() - t) / 1000);
      console.log(
        name.padEnd(20),
        String(Math.round(r)).padStart(6),
        'rows/s; server CPU per 1,000 rows',
        ((server * 1000) / n).toFixed(3),
        's',
      );
      return r;
    });
  } finally {
    await fresh.dispose();
  }
}
const base = (q: string) => persistSql(q, 'bytea');
const noClaims = (q: string) => base(q).replace(/,\nreleased AS \([\s\S]*?\n\)\n/, '\n');
const noOutbox = (q: string) => `WITH input AS (
  SELECT * FROM unnest($1::bytea[], $2::text[], $3::text[], $4::int4[], $5::bytea[],
                       $6::text[], $7::int4[], $8::text[], $9::jsonb[], $10::text[], $11::text[])
    WITH ORDINALITY AS t(content_hash, content, content_type, byte_size, embedding,
                         embedding_model, embedding_dims, source_id, metadata,
                         traceparent, tracestate, ord)
)
  INSERT INTO ${q}.atoms (content_hash, content, content_type, byte_size, embedding,
                                embedding_model, embedding_dims, source_id, metadata)
  SELECT content_hash, content, content_type, byte_size, embedding,
         embedding_model, embedding_dims, source_id, metadata
  FROM input ORDER BY ord
  ON CONFLICT (content_hash) DO NOTHING
  RETURNING id`;
const noExists = (q: string) => base(q).replace(/ \|\| CASE WHEN EXISTS \([\s\S]*?END,/, ',');
const slimPayload = (q: string) =>
  base(q).replace(
    /jsonb_build_object\([\s\S]*?'createdAt', i.created_at\)/,
    "jsonb_build_object('atomId', i.id::text, 'contentHash', encode(i.content_hash, 'hex'))",
  );
const dropIdx =
  (...names: string[]) =>
  (q: string) =>
    names.map((n) => `DROP INDEX ${q}.${n}`);
const sizes = (process.env.SIZES ?? '256,1024').split(',').map(Number);
const only = process.env.ONLY?.split(',');
const variants: [string, () => Promise<unknown>][] = [
  ['copy', () => run('copy', () => null, true)],
  ['atoms-only-unnest', () => run('atoms-only-unnest', noOutbox)],
  ['persist-no-claims', () => run('persist-no-claims', noClaims)],
  ['no-exists', () => run('no-exists', noExists)],
  ['slim-payload', () => run('slim-payload', slimPayload)],
  ['no-aggkey-idx', () => run('no-aggkey-idx', base, false, dropIdx('outbox_aggregate_key_idx'))],
  [
    'no-text-idx',
    () =>
      run(
        'no-text-idx',
        base,
        false,
        dropIdx('outbox_aggregate_key_idx', 'outbox_pending_key_idx'),
      ),
  ],
  [
    'no-fts',
    () => run('no-fts', base, false, (q) => [`ALTER TABLE ${q}.atoms DROP COLUMN content_tsv`]),
  ],
  ...sizes.map((s): [string, () => Promise<unknown>] => [
    `persist-${s}`,
    async () => {
      B = s;
      await run(`persist-${s}`, base);
      B = 256;
    },
  ]),
];
for (let r = 0; r < 3; r++) {
  for (const [name, go] of variants) if (!only || only.includes(name)) await go();
}
await end();
