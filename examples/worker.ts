/**
 * An atom-ingestion worker: consumes a Service Bus queue of atom contents, runs the library's
 * ingestion pipeline (hash, dedupe, embed, persist with outbox rows) and settles each message
 * by its outcome; an outbox relay in the same process publishes the `atom.created` events to a
 * second queue. SIGTERM or SIGINT stops it gracefully: reading stops, in-flight messages finish
 * (or are abandoned, so the broker redelivers them), the relay finishes its round, and the
 * health counts are printed.
 *
 * Run as many copies as you like, on as many machines (competing consumers on one queue, one
 * PostgreSQL): atoms stay unique by content hash and no outbox row is published twice.
 *
 *   SERVICEBUS_CONNECTION_STRING=... DATABASE_URL=postgres://... npx tsx examples/worker.ts
 *
 * Env: IN_QUEUE (default `atoms-in`), OUT_QUEUE (default `atom-events`), DATABASE_URL (default:
 * an embedded PGlite in .data/worker). Messages are JSON objects `{ content, sourceId?,
 * contentType?, metadata? }`.
 *
 * With SMOKE=1 (CI) it needs nothing: it starts the local AMQP peer from test/support (a test
 * double of Service Bus), enqueues some items (with duplicates and one poison message), runs
 * the worker on an embedded PGlite in a temporary folder until the queue is empty, stops it,
 * prints the counts and exits.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { ServiceBusReceivedMessage } from '@azure/service-bus';
import { type AtomInput, ingestionPipeline } from '@hartonomous/pipelines/atoms';
import { outboxRelay } from '@hartonomous/pipelines/outbox';
import { openDatabase } from '@hartonomous/pipelines/postgres';
import {
  serviceBusPublisher,
  serviceBusSource,
  serviceBusWorker,
} from '@hartonomous/pipelines/service-bus';
import { startAmqpPeer } from '../test/support/amqp-peer.js';

const smoke = Boolean(process.env.SMOKE);
const inQueue = process.env.IN_QUEUE ?? 'atoms-in';
const outQueue = process.env.OUT_QUEUE ?? 'atom-events';

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

// ---- where to connect -----------------------------------------------------------------------
let connectionString = process.env.SERVICEBUS_CONNECTION_STRING ?? '';
const peer = smoke ? await startAmqpPeer() : undefined;
if (peer) connectionString = peer.connectionString;
if (!connectionString) {
  console.error('set SERVICEBUS_CONNECTION_STRING (or SMOKE=1 to run against a local test peer)');
  process.exit(2);
}
const dataDir = smoke ? await mkdtemp(join(tmpdir(), 'hartonomous-worker-')) : undefined;
const db = await openDatabase(
  dataDir ? { dataDir } : process.env.DATABASE_URL ? {} : { dataDir: '.data/worker' },
);

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
  maxConcurrent: 512, // at least concurrency + the pipeline's batch buffer
  maxWaitTimeInMs: 2_000,
  maxDeliveryCount: 10,
  decode,
});
const worker = serviceBusWorker({
  source,
  // an ok outcome means stored: content claimed by another worker is waited for (claimedWaitMs)
  pipeline: ingestionPipeline({ db, batchSize: 128, claimedWaitMs: 5_000 }),
  concurrency: 64,
  drainTimeoutMs: 20_000,
});
const publisher = serviceBusPublisher({ connectionString, queueOrTopic: outQueue });
const relay = outboxRelay({ db, publisher, batchSize: 200, pollIntervalMs: smoke ? 50 : 500 });
worker.start();
relay.start();
console.log(`consuming '${inQueue}', publishing events to '${outQueue}' (${db.backend})`);

// ---- graceful stop ---------------------------------------------------------------------------
let stopping: Promise<void> | undefined;
function shutdown(reason: string): Promise<void> {
  stopping ??= (async () => {
    console.log(`stopping (${reason})...`);
    const report = await worker.stop(); // drains in-flight messages, closes the source
    await relay.stop();
    const backlog = await relay.health();
    await publisher.close();
    await db.close();
    console.log('worker:', JSON.stringify(report));
    console.log(
      'outbox:',
      JSON.stringify({
        published: backlog.publishedTotal,
        pending: backlog.pending,
        dead: backlog.dead,
      }),
    );
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
