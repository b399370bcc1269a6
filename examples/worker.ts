/**
 * An atom-ingestion worker: consumes a Service Bus queue of atom contents, runs the library's
 * ingestion pipeline (hash, dedupe, embed, persist with outbox rows) and settles each message
 * by its outcome; an outbox relay in the same process publishes the `atom.created` events to a
 * second queue. SIGTERM or SIGINT stops it gracefully: `/readyz` turns 503, reading stops,
 * in-flight messages finish (or are abandoned, so the broker redelivers them), the relay
 * finishes its round, and the health counts are printed.
 *
 * Run as many copies as you like, on as many machines (competing consumers on one queue, one
 * PostgreSQL): atoms stay unique by content hash and no outbox row is published twice.
 *
 *   SERVICEBUS_CONNECTION_STRING=... DATABASE_URL=postgres://... HARTONOMOUS_METRICS_PORT=9464 \
 *     npx tsx examples/worker.ts
 *
 * Settings come from `loadConfig()` (environment and the JSON file of HARTONOMOUS_CONFIG; see
 * the README's "Operating it"): queues, concurrency, drain timeout, outbox batching, database.
 * Prometheus scrapes `/metrics` on HARTONOMOUS_METRICS_PORT (default 9464 here); with
 * OTEL_EXPORTER_OTLP_ENDPOINT set, metrics and spans are pushed over OTLP instead. `/healthz`
 * and `/readyz` (database reachable, broker receiving, not draining) are served beside it.
 * Without DATABASE_URL it uses an embedded PGlite in .data/worker. Messages are JSON objects
 * `{ content, sourceId?, contentType?, metadata? }`.
 *
 * With SMOKE=1 (CI) it needs nothing: it starts the local AMQP peer from test/support (a test
 * double of Service Bus), enqueues some items (with duplicates and one poison message), runs
 * the worker on an embedded PGlite in a temporary folder until the queue is empty, scrapes its
 * own `/metrics` and `/readyz`, stops it, prints the counts and exits.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { ServiceBusReceivedMessage } from '@azure/service-bus';
import { type AtomInput, ingestionPipeline } from '@hartonomous/pipelines/atoms';
import { loadConfig } from '@hartonomous/pipelines/config';
import {
  observeDatabasePool,
  pingDatabase,
  serveOperations,
  startTelemetry,
} from '@hartonomous/pipelines/ops';
import { outboxRelay } from '@hartonomous/pipelines/outbox';
import { openDatabase } from '@hartonomous/pipelines/postgres';
import {
  serviceBusPublisher,
  serviceBusSource,
  serviceBusWorker,
} from '@hartonomous/pipelines/service-bus';
import { startAmqpPeer } from '../test/support/amqp-peer.js';

const smoke = Boolean(process.env.SMOKE);
// every setting validated at once: a bad one stops the worker with one line per bad key
const { config } = loadConfig();
const { inQueue, outQueue } = config.serviceBus;

/** The message body as an AtomInput; a throw dead-letters the message at once (`DecodeFailed`). */
function decode(message: ServiceBusReceivedMessage): AtomInput {
  const body: unknown =
    typeof message.body === 'string' ? JSON.parse(message.body) : (message.body as unknown);
  if (
    typeof body !== 'object' ||
    body === null ||
    typeof (body as AtomInput).content !== 'string'
  ) {
    throw new TypeError('the body is not a JSON object with a content string');
  }
  return body as AtomInput;
}

// ---- telemetry first: components created afterwards report to it ---------------------------
const telemetry = await startTelemetry({
  serviceName: config.otel.serviceName,
  exportIntervalMs: config.otel.exportIntervalMs,
  ...(config.otel.metricsExporter ? { metrics: config.otel.metricsExporter } : {}),
});

// ---- where to connect -----------------------------------------------------------------------
let connectionString = config.serviceBus.connectionString ?? '';
const peer = smoke ? await startAmqpPeer() : undefined;
if (peer) connectionString = peer.connectionString;
if (!connectionString) {
  console.error('set SERVICEBUS_CONNECTION_STRING (or SMOKE=1 to run against a local test peer)');
  process.exit(2);
}
const dataDir = smoke ? await mkdtemp(join(tmpdir(), 'hartonomous-worker-')) : undefined;
const db = await openDatabase({
  ...(dataDir
    ? { dataDir }
    : config.database.url
      ? { url: config.database.url }
      : { dataDir: config.database.dataDir ?? '.data/worker' }),
  schema: config.database.schema,
  poolSize: config.database.poolSize,
});
const pool = observeDatabasePool(db);

if (peer) {
  const contents = Array.from({ length: 150 }, (_, i) => `smoke atom number ${i % 100}`);
  contents.forEach((content, i) => {
    peer.enqueue(inQueue, { message_id: `in-${i}`, body: { content, sourceId: `smoke-${i}` } });
  });
  peer.enqueue(inQueue, { message_id: 'poison', body: 'not json at all' });
}

// ---- the worker and the relay ------------------------------------------------------------------
const source = serviceBusSource<AtomInput>({
  connectionString,
  queue: inQueue,
  maxConcurrent: config.worker.concurrency * 8, // at least concurrency + the batch buffer
  maxWaitTimeInMs: 2_000,
  maxDeliveryCount: config.serviceBus.maxDeliveryCount,
  decode,
});
const worker = serviceBusWorker({
  source,
  // an ok outcome means stored: content claimed by another worker is waited for (claimedWaitMs)
  pipeline: ingestionPipeline({ db, batchSize: config.ingest.batchSize, claimedWaitMs: 5_000 }),
  concurrency: config.worker.concurrency,
  drainTimeoutMs: config.worker.drainTimeoutMs,
});
const publisher = serviceBusPublisher({ connectionString, queueOrTopic: outQueue });
const relay = outboxRelay({
  db,
  publisher,
  batchSize: config.outbox.batchSize,
  pollIntervalMs: smoke ? 50 : config.outbox.pollIntervalMs,
  maxAttempts: config.outbox.maxAttempts,
});
const ops = await serveOperations({
  port: smoke ? 0 : (config.metrics.port ?? 9464),
  host: smoke ? '127.0.0.1' : config.metrics.host,
  telemetry,
  checks: {
    database: (signal) => pingDatabase(db, signal),
    broker: () => worker.health().receiving,
  },
  draining: () => worker.state !== 'running',
});
worker.start();
relay.start();
console.log(`consuming '${inQueue}', publishing events to '${outQueue}' (${db.backend})`);
console.log(`metrics ${ops.url}/metrics (${telemetry.metricsExporter}), probes /healthz /readyz`);

// ---- graceful stop ---------------------------------------------------------------------------
let stopping: Promise<void> | undefined;
function shutdown(reason: string): Promise<void> {
  stopping ??= (async () => {
    console.log(`stopping (${reason})...`);
    const report = await worker.stop(); // drains in-flight messages, closes the source
    await relay.stop();
    // the backlog is read from the database: a stop while it is down still closes everything
    const backlog = await relay.health().catch((e: unknown) => {
      console.error(`outbox backlog unknown: ${e instanceof Error ? e.message : String(e)}`);
      return undefined;
    });
    await publisher.close();
    pool.stop();
    await ops.close();
    await telemetry.shutdown();
    await db.close();
    console.log('worker:', JSON.stringify(report));
    if (backlog) {
      console.log(
        'outbox:',
        JSON.stringify({
          published: backlog.publishedTotal,
          pending: backlog.pending,
          dead: backlog.dead,
        }),
      );
    }
  })();
  return stopping;
}
process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));

if (peer) {
  // smoke: run until the queue is empty and every event is out, then stop
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const { completed } = worker.health();
    const { pending } = await relay.health();
    if (completed >= 150 && pending === 0) break;
    await delay(100);
  }
  const ready = await fetch(`${ops.url}/readyz`);
  const scrape = await (await fetch(`${ops.url}/metrics`)).text();
  const completed =
    /messaging_client_operation_duration_count\{[^}]*messaging_operation_name="complete"[^}]*\} (\d+)/.exec(
      scrape,
    );
  console.log(`readyz ${ready.status}, scraped completions: ${completed?.[1] ?? 'none'}`);
  await shutdown('smoke run done');
  console.log(
    `queue left: ${peer.messages(inQueue).length}, dead-lettered: ${peer.deadLetters(inQueue).length}, events: ${peer.messages(outQueue).length}`,
  );
  await peer.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
} else {
  setInterval(() => {
    const h = worker.health();
    console.log(
      `in flight ${h.inFlight}, queue depth ${h.queueDepth}, processed ${h.processed}, failed ${h.failed}`,
    );
  }, 30_000).unref();
  await worker.done;
  await shutdown('source closed');
}
