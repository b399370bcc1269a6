import { randomBytes } from 'node:crypto';
import { isEmptyContentError } from '../../lib/atoms/errors.js';
import { isStepError } from '../../lib/core/errors.js';
import { openAIEmbedder } from '../../lib/http/openai-embedder.js';
import { METRICS, prometheusNames } from '../../lib/observability/metric-catalog.js';
import { serveOperations } from '../../lib/observability/operations-server.js';
import { startTelemetry } from '../../lib/observability/start-telemetry.js';
import { observeDatabasePool } from '../../lib/ops/observe-database-pool.js';
import { pingDatabase } from '../../lib/ops/ping-database.js';
import { startAmqpPeer } from '../support/amqp-peer.js';
import { startAtomWorker } from '../support/atom-worker.js';
import { databaseSuite } from '../support/databases.js';
import { metricNamesInDeployFiles } from '../support/deploy-files.js';
import { startEmbeddingServer } from '../support/embedding-server.js';
import { insertRows, sql } from '../support/outbox-helpers.js';
import {
  parsePrometheusText,
  type Sample,
  seriesNames,
  sumOf,
} from '../support/prometheus-text.js';
import { until } from '../support/service-bus-helpers.js';

const suite = await databaseSuite('ops_scrape');

async function scrape(url: string): Promise<{ text: string; samples: Sample[] }> {
  const res = await fetch(`${url}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  const text = await res.text();
  return { text, samples: parsePrometheusText(text) };
}

suite.serial(
  'the worker scraped over HTTP: counters equal what the broker and the database saw, histograms count every item, the dashboard and alert rules name only emitted metrics',
  async (t, db, backend) => {
    const telemetry = await startTelemetry({ global: false, env: {}, serviceName: 'scrape-test' });
    t.is(telemetry.metricsExporter, 'prometheus');
    const { meter } = telemetry;
    const peer = await startAmqpPeer();
    const server = await startEmbeddingServer({ dimensions: db.embeddingDimensions });
    const inQueue = `in-${backend}-${process.pid}`;
    const outQueue = `out-${backend}-${process.pid}`;
    const embedder = openAIEmbedder({
      baseUrl: server.baseUrl,
      model: 'test-embed',
      dimensions: db.embeddingDimensions,
      retry: { maxAttempts: 4, baseDelayMs: 10, maxDelayMs: 10 },
      meter,
    });
    // one failed embedding request (retried): the error series exists and is counted
    server.enqueue({ type: 'status', status: 503, retryAfter: '0' });

    const tag = randomBytes(4).toString('hex');
    const distinct = Array.from({ length: 80 }, (_, i) => `${tag} scraped atom ${i}`);
    const contents = [...distinct, ...distinct.slice(0, 40)];
    contents.forEach((content, i) => {
      peer.enqueue(inQueue, { message_id: `m-${i}`, body: { content, sourceId: `s${i}` } });
    });
    peer.enqueue(inQueue, { message_id: 'poison-1', body: 'not json' });
    peer.enqueue(inQueue, { message_id: 'poison-2', body: [1, 2, 3] });
    // a body that decodes but fails the pipeline permanently: dead-lettered by the worker
    peer.enqueue(inQueue, { message_id: 'empty', body: { content: '' } });

    // one outbox row too large for the broker (262,144 bytes): it fails once and goes dead
    await insertRows(db, [{ key: 'too-large', payload: { blob: 'x'.repeat(300_000) } }]);
    const pool = observeDatabasePool(db, { meter, poolName: `scrape-${backend}` });
    const running = startAtomWorker({
      db,
      connectionString: peer.connectionString,
      inQueue,
      outQueue,
      embedder,
      meter,
      isPermanent: (e) => isEmptyContentError(isStepError(e) ? e.cause : e),
    });
    const { worker, relay } = running;
    const ops = await serveOperations({
      port: 0,
      host: '127.0.0.1',
      telemetry,
      checks: {
        database: (signal) => pingDatabase(db, signal),
        broker: () => worker.health().receiving,
      },
      draining: () => worker.state !== 'running',
    });
    t.teardown(async () => {
      await running.stop().catch(() => undefined);
      pool.stop();
      await ops.close();
      await telemetry.shutdown();
      embedder.close();
      await server.close();
      await peer.close();
    });

    await until(
      () => worker.health().completed === contents.length && peer.deadLetters(inQueue).length === 3,
      'every message settled',
      60_000,
    );
    await until(() => peer.messages(outQueue).length === distinct.length, 'events out', 60_000);
    const deadline = Date.now() + 30_000;
    while ((await relay?.health())?.pending !== 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }

    const ready = await fetch(`${ops.url}/readyz`);
    t.is(ready.status, 200, await ready.clone().text());
    t.like(await ready.json(), {
      status: 'ready',
      draining: false,
      checks: { database: { ok: true }, broker: { ok: true } },
    });
    t.is((await fetch(`${ops.url}/healthz`)).status, 200);

    // what the broker and the database saw
    const stats = peer.stats(inQueue);
    const [atoms] = await sql<{ n: number }>(db, 'SELECT count(*)::int AS n FROM S.atoms');
    const [published] = await sql<{ n: number }>(
      db,
      'SELECT count(*)::int AS n FROM S.outbox WHERE published_at IS NOT NULL',
    );
    const [dead] = await sql<{ n: number }>(
      db,
      'SELECT count(*)::int AS n FROM S.outbox WHERE dead_at IS NOT NULL',
    );
    t.is(dead?.n, 1);
    t.is(atoms?.n, distinct.length);
    t.is(published?.n, distinct.length);
    t.is(stats.completed, contents.length);
    t.is(stats.deadLettered, 3);

    const { samples } = await scrape(ops.url);
    const settle = 'messaging_client_operation_duration_count';
    const q = { messaging_destination_name: inQueue };
    t.is(sumOf(samples, settle, { ...q, messaging_operation_name: 'complete' }), stats.completed);
    t.is(sumOf(samples, settle, { ...q, messaging_operation_name: 'dead_letter' }), 3);
    t.is(sumOf(samples, settle, { ...q, messaging_operation_name: 'abandon' }), stats.abandoned);
    t.is(
      sumOf(samples, 'messaging_client_consumed_messages_total', q),
      contents.length + 3 + stats.abandoned,
    );
    t.is(sumOf(samples, 'hartonomous_atoms_added_total'), atoms?.n ?? -1);
    t.is(sumOf(samples, 'hartonomous_outbox_published_total'), published?.n ?? -1);
    const sent = { messaging_destination_name: outQueue };
    const notSent = { ...sent, error_type: 'MessageTooLargeError' };
    t.is(
      sumOf(samples, 'messaging_client_sent_messages_total', sent) -
        sumOf(samples, 'messaging_client_sent_messages_total', notSent),
      peer.sent(outQueue).length,
    );
    t.is(sumOf(samples, 'messaging_client_sent_messages_total', notSent), 1);
    t.is(sumOf(samples, 'hartonomous_outbox_pending'), 0);
    t.is(sumOf(samples, 'hartonomous_outbox_dead'), dead?.n ?? -1);
    t.is(sumOf(samples, 'hartonomous_outbox_dead_lettered_total'), 1);
    t.is(sumOf(samples, 'hartonomous_outbox_publish_failures_total'), 1);
    t.is(sumOf(samples, 'hartonomous_outbox_lag'), 0);

    // histograms: one observation per processed message, per item step, per request
    const pipelineName = 'atom-worker';
    const handled = contents.length + 1; // the empty one reached the pipeline and failed
    t.is(sumOf(samples, 'messaging_process_duration_count', q), handled);
    t.is(
      sumOf(samples, 'messaging_process_duration_count', { ...q, error_type: 'EmptyContentError' }),
      1,
    );
    t.is(
      sumOf(samples, 'hartonomous_pipeline_run_duration_count', { pipeline_name: pipelineName }),
      handled,
    );
    t.is(
      sumOf(samples, 'hartonomous_pipeline_items_processed_total', { pipeline_name: pipelineName }),
      contents.length,
    );
    t.is(
      sumOf(samples, 'hartonomous_pipeline_items_failed_total', { pipeline_name: pipelineName }),
      1,
    );
    // 'hash' belongs to the nested ingest pipeline: its samples carry that pipeline's name
    for (const step of ['servicebus.receive', 'hash']) {
      t.is(
        sumOf(samples, 'hartonomous_pipeline_step_duration_count', { pipeline_step: step }),
        handled,
        step,
      );
    }
    t.is(
      sumOf(samples, 'hartonomous_pipeline_step_duration_bucket', {
        pipeline_step: 'hash',
        le: '+Inf',
      }),
      handled,
    );
    t.is(sumOf(samples, 'gen_ai_client_operation_duration_count'), server.requests.length);
    t.is(
      sumOf(samples, 'gen_ai_client_operation_duration_count', {
        error_type: 'EmbeddingHttpError',
      }),
      1,
    );
    t.is(
      sumOf(samples, 'hartonomous_circuit_breaker_state', {
        circuit_breaker_name: 'embeddings',
        circuit_breaker_state: 'closed',
      }),
      1,
    );
    t.is(sumOf(samples, 'hartonomous_pipeline_items_in_flight'), 0);
    t.true(
      sumOf(samples, 'db_client_connection_max', {
        db_client_connection_pool_name: `scrape-${backend}`,
      }) >= 1,
    );

    // every metric the dashboard and the alert rules use is in this scrape
    const emitted = seriesNames(samples);
    const referenced = await metricNamesInDeployFiles();
    t.true(referenced.size >= 10, [...referenced].join(', '));
    const missing = [...referenced].filter((name) => !emitted.has(name));
    t.deepEqual(missing, [], `emitted: ${[...emitted].sort().join(', ')}`);
    // every label a series carries is one of its instrument's attributes in the catalog (and
    // so in the README's table), besides the exporter's own
    const specs = new Map(
      Object.values(METRICS).flatMap((spec) => prometheusNames(spec).map((n) => [n, spec])),
    );
    const exporterLabels = new Set(['otel_scope_name', 'otel_scope_version', 'le']);
    const undocumented = new Set<string>();
    for (const sample of samples) {
      const spec = specs.get(sample.name);
      if (!spec) continue;
      const documented = new Set(spec.attributes.map((a) => a.replace(/\./g, '_')));
      for (const label of Object.keys(sample.labels)) {
        if (!documented.has(label) && !exporterLabels.has(label)) {
          undocumented.add(`${spec.name}: ${label}`);
        }
      }
    }
    t.deepEqual([...undocumented], []);
    // the catalog's Prometheus names are what the exporter wrote
    for (const spec of [METRICS.stepDuration, METRICS.outboxPublished, METRICS.outboxLag]) {
      for (const name of prometheusNames(spec)) t.true(emitted.has(name), name);
    }

    // draining: not ready any more
    await worker.stop({ drainTimeoutMs: 5_000 });
    const draining = await fetch(`${ops.url}/readyz`);
    t.is(draining.status, 503);
    t.like(await draining.json(), { status: 'not ready', draining: true });
  },
);
