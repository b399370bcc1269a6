/**
 * A 4-step forward saga that writes real rows, for the multi-process tests of durable sagas
 * (test/saga/crash-forward.test.ts and test/saga/start-once.test.ts).
 *
 * Steps `s1` and `s3` are transactional (their effect row commits with the record of their
 * completion), `s2` and `s4` are not. Each step inserts one row into `fwd_effects` per
 * execution; each compensation inserts an `undo sN` row. A saga whose input is a multiple
 * of 5 fails at `s4` (before its insert), so it ends compensated. The output is input + 4.
 *
 * Run as a child (`node --import tsx test/support/saga-forward.ts`) with env `DATABASE_URL`,
 * `SAGA_SCHEMA`, `SAGA_MODE` and `SAGA_IDS` (comma-separated `id=input` pairs):
 * - `crash`: prints `READY`, runs every saga at once with `start`, and SIGKILLs itself at the
 *   `KILL_AT`-th hook point (before, during and after each step and each log write, counted
 *   over all its sagas); the parent may also kill it at any moment. If it passes fewer points
 *   it prints `DONE` and then dies anyway: by its own SIGKILL when `KILL_AT` is finite, by the
 *   parent's otherwise (it waits for it), so every crash child ends by SIGKILL.
 * - `recover`: runs `sagaRecovery` until no saga is open, then `start`s every id (sagas that
 *   never got a record run now) and prints one JSON line with the stats and the results.
 * - `start`: prints `READY`, waits for `go` on stdin, `start`s every id at once, prints the
 *   results as one JSON line.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
// narrow imports (not the package indexes): a crash child starts faster, and the crash test
// starts dozens of them
import type { Database } from '../../lib/postgres/database.js';
import { openDatabase } from '../../lib/postgres/open-database.js';
import { postgresSagaLog, sagaEntityManager } from '../../lib/postgres/saga-log.js';
import { sagaRecovery } from '../../lib/postgres/saga-recovery.js';
import type { SagaLog, SagaLogTransaction, SagaSnapshot } from '../../lib/saga/log.js';
import { type Saga, saga } from '../../lib/saga/saga.js';
import type { SagaContext } from '../../lib/saga/types.js';

/** The saga's name in `saga_log`. */
export const FORWARD_SAGA = 'forward-crash';

/** The table the steps write to (created by the parent in the test schema). */
export const FORWARD_EFFECTS_DDL = `CREATE TABLE IF NOT EXISTS S.fwd_effects (
  seq bigserial PRIMARY KEY, saga_id text NOT NULL, step text NOT NULL)`;

/** Whether a saga with this input fails (at s4). */
export const failsAtS4 = (input: number): boolean => input % 5 === 0;

/** A point where the crash child may kill itself. */
export type HookPoint = 'before' | 'during' | 'after';

/** Called at every hook point; the crash child kills itself at the chosen one. */
export type Hook = (where: string, point: HookPoint) => void;

/** Wraps a saga log so every write (also inside a transaction) calls the hook around it. */
function hookedLog(log: Required<SagaLog>, hook: Hook): Required<SagaLog> {
  const hooked =
    (write: (s: SagaSnapshot) => Promise<void>) =>
    async (s: SagaSnapshot): Promise<void> => {
      const what = `write v${s.version} ${s.status}`;
      hook(what, 'before');
      const pending = write(s);
      pending.catch(() => undefined); // awaited below; not unhandled meanwhile
      // give the driver a turn to send the statement: the write is in flight
      await new Promise<void>((resolve) => setImmediate(resolve));
      hook(what, 'during');
      await pending;
      hook(what, 'after');
    };
  return {
    write: hooked((s) => log.write(s)),
    load: (ref) => log.load(ref),
    heartbeat: (ref) => log.heartbeat(ref),
    transaction: (work) =>
      log.transaction((tx: SagaLogTransaction) =>
        work({ handle: tx.handle, write: hooked((s) => tx.write(s)) }),
      ),
  };
}

/** The 4-step forward saga. */
export function forwardSaga(
  db: Database,
  schema: string,
  options: { hook?: Hook; name?: string; stepDelayMs?: () => number } = {},
): Saga<number, number> {
  const hook = options.hook ?? (() => undefined);
  const pause = options.stepDelayMs ?? (() => 0);
  const insertSql = `INSERT INTO "${schema}".fwd_effects (saga_id, step) VALUES (?, ?)`;
  const effect = async (ctx: SagaContext, step: string): Promise<void> => {
    if (ctx.transaction) await sagaEntityManager(ctx).execute(insertSql, [ctx.sagaId, step]);
    else await db.orm.em.getConnection().execute(insertSql, [ctx.sagaId, step]);
  };
  const step = (name: string, transactional: boolean, fails?: (n: number) => boolean) => ({
    name,
    transactional,
    action: async (n: number, ctx: SagaContext) => {
      hook(`${name} ${ctx.sagaId}`, 'before');
      const ms = pause();
      if (ms > 0) await delay(ms);
      if (fails?.(n)) throw new Error(`${name} fails for ${n}`);
      await effect(ctx, name);
      hook(`${name} ${ctx.sagaId}`, 'during');
      if (ms > 0) await delay(ms);
      hook(`${name} ${ctx.sagaId}`, 'after');
      return n + 1;
    },
    compensate: async (_r: number, ctx: SagaContext) => {
      await db.orm.em.getConnection().execute(insertSql, [ctx.sagaId, `undo ${name}`]);
    },
  });
  const log = postgresSagaLog(db);
  return saga(
    {
      name: options.name ?? FORWARD_SAGA,
      log: options.hook ? hookedLog(log, hook) : log,
      recovery: 'forward',
      heartbeatMs: 1_000,
    },
    step('s1', true),
    step('s2', false),
    step('s3', true),
    // s4 sees input + 3
    step('s4', false, (n) => failsAtS4(n - 3)),
  );
}

/** `id=input,id=input` from the environment. */
function trials(): Array<{ id: string; input: number }> {
  return (process.env.SAGA_IDS ?? '')
    .split(',')
    .filter(Boolean)
    .map((pair) => {
      const [id, input] = pair.split('=');
      return { id: String(id), input: Number(input) };
    });
}

/** The outcome of one `start`, as JSON. */
export interface StartResult {
  readonly id: string;
  readonly ok: boolean;
  readonly value?: number;
  readonly error?: string;
}

async function startAll(s: Saga<number, number>): Promise<StartResult[]> {
  const settled = await Promise.allSettled(
    trials().map((t) => s.start(t.input, { id: t.id, pollMs: 20 })),
  );
  return settled.map((r, i) => {
    const id = trials()[i]?.id as string;
    return r.status === 'fulfilled'
      ? { id, ok: true, value: r.value }
      : { id, ok: false, error: r.reason instanceof Error ? r.reason.message : String(r.reason) };
  });
}

async function main(): Promise<void> {
  const schema = process.env.SAGA_SCHEMA;
  const mode = process.env.SAGA_MODE;
  if (!schema || !mode) throw new Error('SAGA_SCHEMA and SAGA_MODE are required');
  const db = await openDatabase({ url: process.env.DATABASE_URL, schema, migrate: false });
  const out = (line: string) => process.stdout.write(`${line}\n`);
  if (mode === 'crash') {
    const killAt = Number(process.env.KILL_AT ?? 'Infinity');
    let points = 0;
    const s = forwardSaga(db, schema, {
      hook: () => {
        if (++points === killAt) process.kill(process.pid, 'SIGKILL');
      },
      stepDelayMs: () => Math.floor(Math.random() * 4),
    });
    out('READY');
    await startAll(s);
    out(`DONE ${points}`);
    // every crash child dies by SIGKILL: after its last write when the point was not reached
    if (Number.isFinite(killAt)) process.kill(process.pid, 'SIGKILL');
    await new Promise(() => setInterval(() => undefined, 60_000));
  } else if (mode === 'recover') {
    const s = forwardSaga(db, schema);
    const recovery = sagaRecovery({
      db,
      sagas: [s],
      staleAfterMs: 0,
      intervalMs: 50,
      concurrency: 4,
    });
    const open = async () => {
      const rows = await db.orm.em
        .getConnection()
        .execute<Array<{ n: string }>>(
          `SELECT count(*) AS n FROM "${schema}".saga_log WHERE name = ? AND status IN ('running', 'compensating')`,
          [FORWARD_SAGA],
        );
      return Number(rows[0]?.n ?? 0);
    };
    // bounded: a saga that cannot be finished shows up as still open in the test's checks
    for (let pass = 0; pass < 20 && (await open()) > 0; pass++) await recovery.runOnce();
    await recovery.stop();
    const results = await startAll(s);
    out(JSON.stringify({ stats: recovery.stats, results }));
  } else if (mode === 'start') {
    const s = forwardSaga(db, schema, { name: process.env.SAGA_NAME, stepDelayMs: () => 5 });
    out('READY');
    await new Promise<void>((resolve) => {
      process.stdin.on('data', (d: Buffer) => {
        if (d.toString().includes('go')) resolve();
      });
    });
    out(JSON.stringify(await startAll(s)));
  }
  await db.close();
  process.exit(0);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}
