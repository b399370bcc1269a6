/**
 * Start once across processes (PostgreSQL server): two child processes `start` the same 24
 * ids of a 4-step forward saga at the same moment. Each saga runs once (one effect row per
 * step, one saga_log row per id), and both callers get the same result, or the same failure.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { bundleArgs } from '../support/child-bundle.js';
import { openTestDatabase, SERVER_URL, serverUnavailableReason } from '../support/databases.js';
import { FORWARD_EFFECTS_DDL, failsAtS4, type StartResult } from '../support/saga-forward.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const unavailable = await serverUnavailableReason();

if (unavailable) {
  test.skip(`start once across processes (server unreachable: ${unavailable})`, () => undefined);
} else {
  test('two processes starting the same ids at once: one execution each, both callers get the same result', async (t) => {
    t.timeout(3 * 60_000);
    const tdb = await openTestDatabase('postgres', 'saga_start_once');
    t.teardown(() => tdb.dispose());
    const { db, schema } = tdb;
    const conn = db.orm.em.getConnection();
    await conn.execute(FORWARD_EFFECTS_DDL.replace('S.', `"${schema}".`));
    const name = `start-once-${randomUUID().slice(0, 6)}`;
    const ids = Array.from({ length: 24 }, (_, i) => ({ id: `id-${i}`, input: i + 1 }));

    const children = [0, 1].map(() => {
      const child = spawn(process.execPath, bundleArgs('test/support/saga-forward.ts'), {
        cwd: ROOT,
        env: {
          ...process.env,
          DATABASE_URL: SERVER_URL,
          SAGA_SCHEMA: schema,
          SAGA_MODE: 'start',
          SAGA_NAME: name,
          SAGA_IDS: ids.map((x) => `${x.id}=${x.input}`).join(','),
        },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
      });
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
      });
      const ready = new Promise<void>((resolve, reject) => {
        child.stdout.on('data', () => {
          if (out.includes('READY')) resolve();
        });
        child.once('exit', (code) => reject(new Error(`child exited (${code}): ${err}`)));
      });
      const done = new Promise<StartResult[]>((resolve, reject) =>
        child.once('exit', (code) => {
          if (code !== 0) reject(new Error(`child exited (${code}): ${err}`));
          else resolve(JSON.parse(out.trim().split('\n').at(-1) ?? '[]') as StartResult[]);
        }),
      );
      return { child, ready, done };
    });
    // both processes are up; then both start every id at once
    await Promise.all(children.map((c) => c.ready));
    for (const c of children) c.child.stdin.end('go\n');
    const [a, b] = await Promise.all(children.map((c) => c.done));

    t.deepEqual(a, b, 'both callers got the same outcomes');
    for (const { id, input } of ids) {
      const mine = a?.find((r) => r.id === id);
      if (failsAtS4(input)) {
        t.false(mine?.ok, id);
        t.regex(mine?.error ?? '', /s4 fails/, id);
      } else {
        t.deepEqual(mine, { id, ok: true, value: input + 4 });
      }
    }
    const rows = await conn.execute<Array<{ saga_id: string; step: string; n: string }>>(
      `SELECT saga_id, step, count(*) AS n FROM "${schema}".fwd_effects GROUP BY saga_id, step`,
    );
    for (const { id, input } of ids) {
      const steps = failsAtS4(input)
        ? ['s1', 's2', 's3', 'undo s1', 'undo s2', 'undo s3']
        : ['s1', 's2', 's3', 's4'];
      t.deepEqual(
        rows
          .filter((r) => r.saga_id === id)
          .map((r) => [r.step, Number(r.n)])
          .sort(),
        steps.map((s) => [s, 1]).sort(),
        `${id}: every step (and compensation) ran once`,
      );
    }
    const logged = await conn.execute<Array<{ n: string }>>(
      `SELECT count(*) AS n FROM "${schema}".saga_log WHERE name = ?`,
      [name],
    );
    t.is(Number(logged[0]?.n), ids.length);
  });
}
