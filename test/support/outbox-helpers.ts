/**
 * Shared helpers for the outbox tests (not a test file).
 * @internal
 * @module
 */
import { textArray } from '../../lib/postgres/binary.js';
import { type Database, stateOf, withClient } from '../../lib/postgres/database.js';

/** One row to insert into the outbox. */
export interface RowSpec {
  key: string;
  type?: string;
  payload?: unknown;
  messageId?: string;
  traceparent?: string | null;
  /** Seconds to backdate `created_at` by. */
  ageSeconds?: number;
}

/** Runs raw SQL with `$n` parameters on the database's schema (`S.` becomes the schema). */
export async function sql<R = Record<string, unknown>>(
  db: Database,
  text: string,
  values: unknown[] = [],
): Promise<R[]> {
  const state = stateOf(db);
  const { rows } = await withClient(state, undefined, (c) =>
    c.query<R>({ text: text.replaceAll('S.', `${state.qschema}.`), values }),
  );
  return rows;
}

let seq = 0;

/** Inserts outbox rows in order (ids ascending); returns their ids. */
export async function insertRows(db: Database, specs: readonly RowSpec[]): Promise<string[]> {
  if (specs.length === 0) return [];
  const tag = `${process.pid}-${Date.now()}-${++seq}`;
  const rows = await sql<{ id: string }>(
    db,
    `INSERT INTO S.outbox (event_type, aggregate_key, payload, message_id, traceparent, created_at)
     SELECT t.type, t.key, t.payload::jsonb, t.mid, t.tp, now() - t.age::float8 * interval '1 second'
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
       WITH ORDINALITY AS t(type, key, payload, mid, tp, age, ord)
     ORDER BY t.ord
     RETURNING id::text AS id`,
    [
      textArray(specs.map((s) => s.type ?? 'test.event')),
      textArray(specs.map((s) => s.key)),
      textArray(specs.map((s, i) => JSON.stringify(s.payload ?? { key: s.key, i }))),
      textArray(specs.map((s, i) => s.messageId ?? `m-${tag}-${i}`)),
      textArray(specs.map((s) => s.traceparent ?? null)),
      textArray(specs.map((s) => String(s.ageSeconds ?? 0))),
    ],
  );
  return rows.map((r) => r.id).sort((a, b) => Number(a) - Number(b));
}

/** The state of outbox rows by id. */
export async function rowsById(
  db: Database,
  ids: readonly string[],
): Promise<
  Map<
    string,
    {
      published: boolean;
      dead: boolean;
      attempts: number;
      lastError: string | null;
      nextAttemptAt: Date | null;
    }
  >
> {
  const rows = await sql<{
    id: string;
    published: boolean;
    dead: boolean;
    attempts: number;
    last_error: string | null;
    next_attempt_at: Date | null;
  }>(
    db,
    `SELECT id::text AS id, published_at IS NOT NULL AS published, dead_at IS NOT NULL AS dead,
            attempts, last_error, next_attempt_at
     FROM S.outbox WHERE id = ANY($1::text[]::bigint[])`,
    [textArray(ids)],
  );
  return new Map(
    rows.map((r) => [
      r.id,
      {
        published: r.published,
        dead: r.dead,
        attempts: Number(r.attempts),
        lastError: r.last_error,
        nextAttemptAt: r.next_attempt_at,
      },
    ]),
  );
}

/** Marks every pending row of the outbox published (isolates tests sharing a database). */
export async function clearOutbox(db: Database): Promise<void> {
  await sql(db, 'DELETE FROM S.outbox');
}
