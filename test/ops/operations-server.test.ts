import { request } from 'node:http';
import test from 'ava';
import { serveOperations } from '../../lib/observability/operations-server.js';
import { startTelemetry } from '../../lib/observability/start-telemetry.js';
import { instruments } from '../../lib/observability/telemetry.js';
import { pingDatabase } from '../../lib/ops/ping-database.js';
import { openDatabase } from '../../lib/postgres/open-database.js';
import { parsePrometheusText, sumOf } from '../support/prometheus-text.js';

test('/healthz, /readyz with passing, failing, throwing and hung checks, draining, 404 and 405', async (t) => {
  let draining = false;
  let dbUp = true;
  const ops = await serveOperations({
    port: 0,
    host: '127.0.0.1',
    checks: {
      database: () => dbUp,
      broker: async () => {
        if (!dbUp) throw new Error('connection refused');
        return true;
      },
    },
    draining: () => draining,
    checkTimeoutMs: 200,
  });
  t.teardown(() => ops.close());
  t.is((await fetch(`${ops.url}/healthz`)).status, 200);
  const ready = await fetch(`${ops.url}/readyz`);
  t.is(ready.status, 200);
  t.like(await ready.json(), { status: 'ready', checks: { database: { ok: true } } });

  dbUp = false;
  const down = await fetch(`${ops.url}/readyz`);
  t.is(down.status, 503);
  t.like(await down.json(), {
    status: 'not ready',
    checks: {
      database: { ok: false, error: 'check returned false' },
      broker: { ok: false, error: 'connection refused' },
    },
  });
  dbUp = true;
  draining = true;
  const drain = await fetch(`${ops.url}/readyz`);
  t.is(drain.status, 503);
  t.like(await drain.json(), { draining: true, checks: { database: { ok: true } } });
  t.is((await fetch(`${ops.url}/healthz`)).status, 200, 'alive while draining');

  t.is((await fetch(`${ops.url}/metrics`)).status, 404, 'no Prometheus exporter given');
  t.is((await fetch(`${ops.url}/nope`)).status, 404);
  t.is((await fetch(`${ops.url}/healthz`, { method: 'POST' })).status, 405);
  const head = await fetch(`${ops.url}/readyz`, { method: 'HEAD' });
  t.is(head.status, 503);
  t.is(await head.text(), '');
});

test('a hung check fails after checkTimeoutMs and is aborted', async (t) => {
  let aborted = false;
  const ops = await serveOperations({
    port: 0,
    host: '127.0.0.1',
    checks: {
      hung: (signal) =>
        new Promise<boolean>(() => {
          signal.addEventListener('abort', () => {
            aborted = true;
          });
        }),
    },
    checkTimeoutMs: 100,
  });
  t.teardown(() => ops.close());
  const r = await ops.readiness();
  t.is(r.status, 'not ready');
  t.regex(r.checks.hung?.error ?? '', /timed out after 100 ms/);
  t.true(aborted);
});

test('/metrics serves the Prometheus exposition of the telemetry meter; the database check pings', async (t) => {
  const telemetry = await startTelemetry({ global: false, env: {} });
  const db = await openDatabase({ dataDir: 'memory://' });
  const ops = await serveOperations({
    port: 0,
    host: '127.0.0.1',
    telemetry,
    checks: { database: (signal) => pingDatabase(db, signal) },
  });
  t.teardown(async () => {
    await ops.close();
    await telemetry.shutdown();
  });
  instruments({ meter: telemetry.meter }).itemsProcessed.add(3, { 'pipeline.name': 'p' });
  instruments({ meter: telemetry.meter }).stepDuration.record(1500, { 'pipeline.step': 's' });
  const res = await fetch(`${ops.url}/metrics`);
  t.is(res.status, 200);
  t.regex(res.headers.get('content-type') ?? '', /text\/plain/);
  const samples = parsePrometheusText(await res.text());
  t.is(sumOf(samples, 'hartonomous_pipeline_items_processed_total', { pipeline_name: 'p' }), 3);
  // milliseconds in, seconds out
  t.is(sumOf(samples, 'hartonomous_pipeline_step_duration_sum', { pipeline_step: 's' }), 1.5);
  t.is(sumOf(samples, 'hartonomous_pipeline_step_duration_bucket', { le: '1' }), 0);
  t.is(sumOf(samples, 'hartonomous_pipeline_step_duration_bucket', { le: '2.5' }), 1);

  t.like(await ops.readiness(), { status: 'ready', checks: { database: { ok: true } } });
  await db.close();
  const r = await ops.readiness();
  t.is(r.status, 'not ready');
  t.regex(r.checks.database?.error ?? '', /closed/);
});

test('options are validated; close is idempotent; the port is taken', async (t) => {
  await t.throwsAsync(serveOperations({ port: 70_000 }), { instanceOf: TypeError });
  await t.throwsAsync(serveOperations({ checkTimeoutMs: 0 }), { instanceOf: TypeError });
  await t.throwsAsync(serveOperations({ checks: { x: 1 as never } }), { instanceOf: TypeError });
  const ops = await serveOperations({ port: 0, host: '127.0.0.1' });
  await t.throwsAsync(serveOperations({ port: ops.port, host: '127.0.0.1' }), {
    code: 'EADDRINUSE',
  });
  await ops.close();
  await ops.close();
  await t.throwsAsync(
    new Promise((resolve, reject) => {
      request(`${ops.url}/healthz`).on('error', reject).on('response', resolve).end();
    }),
  );
});
