/**
 * A saga that writes real rows, for the crash-and-resume test.
 *
 * Imported: `crashSaga(db, schema)` builds the saga (the parent uses it as the resume registry).
 * Run as a child (`node --import tsx test/support/saga-crash.ts`) with env `DATABASE_URL`,
 * `SAGA_SCHEMA`, `SAGA_ID` and `CRASH_AT`:
 * - `CRASH_AT=action`: steps `a` and `b` insert rows, then `hang` inserts its row and hangs;
 * - `CRASH_AT=compensation`: `hang` fails, `b`'s compensation deletes its row and then hangs.
 * The child prints `READY <saga id>` on stdout when it reaches the hang; the parent kills it.
 */
import { pathToFileURL } from 'node:url';
import type { Database } from '../../lib/postgres/database.js';
import { openDatabase } from '../../lib/postgres/open-database.js';
import { postgresSagaLog } from '../../lib/postgres/saga-log.js';
import { saga } from '../../lib/saga/saga.js';

/** The table the saga's actions write to (created by the parent). */
export const EFFECTS_DDL = `CREATE TABLE IF NOT EXISTS crash_effects (
  saga_id text NOT NULL, step text NOT NULL, PRIMARY KEY (saga_id, step))`;
/** Where compensations record that they ran, in order. */
export const UNDO_DDL = `CREATE TABLE IF NOT EXISTS crash_undo (
  seq bigserial PRIMARY KEY, saga_id text NOT NULL, step text NOT NULL, action_failed boolean NOT NULL,
  resumed boolean NOT NULL)`;

const forever = (signal: AbortSignal) =>
  new Promise<never>((_, reject) =>
    signal.addEventListener('abort', () => reject(signal.reason), { once: true }),
  );

/** The saga: a, b, hang (compensateFailed). */
export function crashSaga(
  db: Database,
  schema: string,
  onHang: (sagaId: string) => void = () => {},
) {
  const sql = (text: string, params: unknown[]) =>
    db.orm.em.getConnection().execute(text.replaceAll('S.', `"${schema}".`), params);
  const insert = async (sagaId: string, step: string) => {
    await sql('INSERT INTO S.crash_effects (saga_id, step) VALUES (?, ?)', [sagaId, step]);
    return { sagaId, step };
  };
  const undo = async (
    sagaId: string,
    step: string,
    ctx: { actionFailed: boolean; resumed: boolean },
  ) => {
    await sql('DELETE FROM S.crash_effects WHERE saga_id = ? AND step = ?', [sagaId, step]);
    await sql(
      'INSERT INTO S.crash_undo (saga_id, step, action_failed, resumed) VALUES (?, ?, ?, ?)',
      [sagaId, step, ctx.actionFailed, ctx.resumed],
    );
  };
  const crashAt = process.env.CRASH_AT ?? 'action';
  return saga(
    { name: 'crash-demo', log: postgresSagaLog(db) },
    {
      name: 'a',
      action: (_: null, ctx) => insert(ctx.sagaId, 'a'),
      compensate: (r, ctx) => undo(r.sagaId, 'a', ctx),
    },
    {
      name: 'b',
      action: (_: { sagaId: string }, ctx) => insert(ctx.sagaId, 'b'),
      compensate: async (r, ctx) => {
        await undo(r.sagaId, 'b', ctx);
        if (!ctx.resumed && crashAt === 'compensation') {
          onHang(ctx.sagaId);
          await forever(ctx.signal);
        }
      },
    },
    {
      name: 'hang',
      compensateFailed: true,
      action: async (_: { sagaId: string }, ctx): Promise<string> => {
        if (crashAt === 'compensation') throw new Error('hang failed on purpose');
        await insert(ctx.sagaId, 'hang');
        onHang(ctx.sagaId);
        return forever(ctx.signal);
      },
      compensate: (_r, ctx) => undo(ctx.sagaId, 'hang', ctx),
    },
  );
}

async function main(): Promise<void> {
  const schema = process.env.SAGA_SCHEMA;
  const sagaId = process.env.SAGA_ID;
  if (!schema || !sagaId) throw new Error('SAGA_SCHEMA and SAGA_ID are required');
  const db = await openDatabase({ url: process.env.DATABASE_URL, schema, migrate: false });
  const s = crashSaga(db, schema, (id) => process.stdout.write(`READY ${id}\n`));
  await s.run(null, { sagaId }).catch(() => undefined);
  process.stdout.write('FINISHED\n'); // never reached: the parent kills the process first
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((e: unknown) => {
    process.stderr.write(`${String(e)}\n`);
    process.exit(1);
  });
}
