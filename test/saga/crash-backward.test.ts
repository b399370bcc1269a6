/**
 * Crash and resume against the PostgreSQL server (PGlite is one process, so a second process
 * cannot share it): a child process runs a saga with the PostgreSQL saga log and is killed
 * with SIGKILL mid-saga; `resumeSagas()` in this process then finishes the compensation.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { isSagaInterruptedError, type SagaEvent } from '../../lib/index.js';
import { loadSaga, resumeSagas } from '../../lib/postgres/index.js';
import { bundleArgs } from '../support/child-bundle.js';
import { openTestDatabase, SERVER_URL, serverUnavailableReason } from '../support/databases.js';
import { crashSaga, EFFECTS_DDL, UNDO_DDL } from '../support/saga-crash.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const unavailable = await serverUnavailableReason();

/** Starts the child and resolves when it printed READY (or rejects if it exits first). */
async function runChildUntilReady(
  schema: string,
  sagaId: string,
  crashAt: 'action' | 'compensation',
): Promise<ChildProcess> {
  const child = spawn(process.execPath, bundleArgs('test/support/saga-crash.ts'), {
    cwd: ROOT,
    env: {
      ...process.env,
      DATABASE_URL: SERVER_URL,
      SAGA_SCHEMA: schema,
      SAGA_ID: sagaId,
      CRASH_AT: crashAt,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(`READY ${sagaId}`)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`child exited early (${code}): ${stderr}`)));
  });
  return child;
}

async function kill(child: ChildProcess): Promise<void> {
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  const [code, signal] = (await exited) as [number | null, NodeJS.Signals | null];
  if (signal !== 'SIGKILL') throw new Error(`child ended with ${code}/${signal}, not SIGKILL`);
}

function register(title: string, crashAt: 'action' | 'compensation', expected: string[]): void {
  if (unavailable) {
    test.skip(`${title} (server unreachable: ${unavailable})`, () => undefined);
    return;
  }
  test.serial(title, async (t) => {
    const tdb = await openTestDatabase('postgres', `saga_crash_${crashAt}`);
    t.teardown(() => tdb.dispose());
    const { db, schema } = tdb;
    const conn = db.orm.em.getConnection();
    await conn.execute(EFFECTS_DDL.replace('crash_effects', `"${schema}".crash_effects`));
    await conn.execute(UNDO_DDL.replace('crash_undo', `"${schema}".crash_undo`));
    const sagaId = randomUUID();

    const child = await runChildUntilReady(schema, sagaId, crashAt);
    const before = await loadSaga(db, sagaId);
    t.is(before?.status, crashAt === 'action' ? 'running' : 'compensating');
    await kill(child);

    // the killed process left its effects and an open saga behind
    const effects = () =>
      conn.execute<Array<{ step: string }>>(
        `SELECT step FROM "${schema}".crash_effects WHERE saga_id = ? ORDER BY step`,
        [sagaId],
      );
    t.true((await effects()).length > 0);

    const events: SagaEvent[] = [];
    const outcomes = await resumeSagas(db, [crashSaga(db, schema)], {
      staleAfterMs: 0,
      onEvent: (e) => events.push(e),
    });
    const mine = outcomes.find((o) => o.sagaId === sagaId);
    t.is(mine?.status, 'compensated');
    t.deepEqual(mine?.compensated, expected);

    t.deepEqual(await effects(), []);
    const undo = await conn.execute<
      Array<{ step: string; action_failed: boolean; resumed: boolean }>
    >(
      `SELECT step, action_failed, resumed FROM "${schema}".crash_undo WHERE saga_id = ? AND resumed ORDER BY seq`,
      [sagaId],
    );
    t.deepEqual(
      undo.map((u) => u.step),
      expected,
    );
    const after = await loadSaga(db, sagaId);
    t.is(after?.status, 'compensated');
    t.deepEqual(
      after?.steps.map((s) => s.status),
      ['compensated', 'compensated', 'compensated'],
    );
    const last = events.at(-1);
    t.is(last?.type, 'saga-failed');
    if (crashAt === 'action') {
      t.true(last?.type === 'saga-failed' && isSagaInterruptedError(last.cause));
      t.true(undo[0]?.action_failed === true, 'the running step was compensated as unknown');
    }
    // a second resume finds nothing
    const again = await resumeSagas(db, [crashSaga(db, schema)], { staleAfterMs: 0 });
    t.false(again.some((o) => o.sagaId === sagaId));
  });
}

register('a saga killed (SIGKILL) during an action is compensated by resumeSagas', 'action', [
  'hang',
  'b',
  'a',
]);
register(
  'a saga killed (SIGKILL) while compensating has its compensation finished by resumeSagas',
  'compensation',
  ['b', 'a'],
);
