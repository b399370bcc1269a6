import { pathToFileURL } from 'node:url';
import type { ServiceBusReceivedMessage } from '@azure/service-bus';
import type { Logger } from 'pino';
import type { Embedder } from '../../lib/atoms/embedder.js';
import { ingestionPipeline } from '../../lib/atoms/ingest.js';
import type { AtomInput, IngestResult } from '../../lib/atoms/ingest-steps.js';
import type { TelemetryOptions } from '../../lib/observability/telemetry.js';
import { type OutboxRelay, outboxRelay } from '../../lib/outbox/outbox-relay.js';
import type { Database } from '../../lib/postgres/database.js';
import { openDatabase } from '../../lib/postgres/open-database.js';
import { type ServiceBusPublisher, serviceBusPublisher } from '../../lib/service-bus/publisher.js';
import {
  type ServiceBusWorker,
  type ServiceBusWorkerOptions,
  type ServiceBusWorkerReport,
  serviceBusWorker,
} from '../../lib/service-bus/service-bus-worker.js';
import { serviceBusSource } from '../../lib/service-bus/source.js';

/**
 * The message body as an {@link AtomInput}: a JSON object with a `content` string. Anything
 * else throws, so the source dead-letters the message at once (`DecodeFailed`).
 */
export function atomInputFromMessage(message: ServiceBusReceivedMessage): AtomInput {
  let body: unknown = message.body;
  if (Buffer.isBuffer(body) || body instanceof Uint8Array)
    body = Buffer.from(body).toString('utf8');
  if (typeof body === 'string') body = JSON.parse(body);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new TypeError('the message body is not a JSON object');
  }
  const { content, sourceId, metadata, contentType } = body as Record<string, unknown>;
  if (typeof content !== 'string') throw new TypeError('the message body has no content string');
  return {
    content,
    ...(typeof sourceId === 'string' ? { sourceId } : {}),
    ...(typeof contentType === 'string' ? { contentType } : {}),
    ...(typeof metadata === 'object' && metadata !== null
      ? { metadata: metadata as Record<string, unknown> }
      : {}),
  };
}

/** Options of {@link startAtomWorker}. */
export interface AtomWorkerOptions extends TelemetryOptions {
  db: Database;
  connectionString: string;
  inQueue: string;
  /** Where the relay publishes `atom.created` events; no relay when omitted. */
  outQueue?: string;
  id?: string;
  maxDeliveryCount?: number;
  maxConcurrent?: number;
  concurrency?: number;
  claimStaleMs?: number;
  claimWaitMs?: number;
  isPermanent?: (error: unknown) => boolean;
  embedder?: Embedder;
  onSettled?: ServiceBusWorkerOptions<AtomInput, IngestResult>['onSettled'];
  logger?: Logger;
}

/** A running atom worker (and relay). */
export interface AtomWorker {
  readonly worker: ServiceBusWorker;
  readonly relay: OutboxRelay | undefined;
  readonly publisher: ServiceBusPublisher | undefined;
  /** Drains and stops the worker, flushes and stops the relay, closes the publisher. */
  stop(drainTimeoutMs?: number): Promise<ServiceBusWorkerReport>;
}

const fastRetry = { maxRetries: 1, retryDelayInMs: 50, maxRetryDelayInMs: 200, timeoutInMs: 5_000 };

/** Starts an atom worker (and its relay) in this process. */
export function startAtomWorker(options: AtomWorkerOptions): AtomWorker {
  const { db } = options;
  const telemetry = {
    ...(options.tracer ? { tracer: options.tracer } : {}),
    ...(options.meter ? { meter: options.meter } : {}),
  };
  const source = serviceBusSource<AtomInput>({
    connectionString: options.connectionString,
    clientOptions: { retryOptions: fastRetry },
    queue: options.inQueue,
    maxConcurrent: options.maxConcurrent ?? 600,
    // The SDK drains a receive call's unused credit when its wait ends and closes the link
    // (every lock on it lost) if the drain takes over 200 ms, as on a busy event loop: a long
    // wait makes calls fill up instead, so drains are rare.
    maxWaitTimeInMs: 2_000,
    maxDeliveryCount: options.maxDeliveryCount ?? 10,
    decode: atomInputFromMessage,
    ...(options.isPermanent ? { isPermanent: options.isPermanent } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    ...telemetry,
  });
  const pipeline = ingestionPipeline({
    db,
    ...(options.embedder ? { embedder: options.embedder } : {}),
    batchSize: 256,
    batchTimeMs: 20,
    claimStaleMs: options.claimStaleMs ?? 3_000,
    ...(options.id ? { owner: options.id } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    ...telemetry,
    claimedWaitMs: options.claimWaitMs ?? 1_000,
  });
  const worker = serviceBusWorker({
    source,
    pipeline,
    name: options.id ?? 'atom-worker',
    concurrency: options.concurrency ?? 64,
    receiveBackoff: { strategy: 'constant', baseMs: 100, maxMs: 100 },
    ...(options.onSettled ? { onSettled: options.onSettled } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    ...telemetry,
  });
  let publisher: ServiceBusPublisher | undefined;
  let relay: OutboxRelay | undefined;
  if (options.outQueue) {
    publisher = serviceBusPublisher({
      connectionString: options.connectionString,
      clientOptions: { retryOptions: fastRetry },
      queueOrTopic: options.outQueue,
      ...telemetry,
    });
    relay = outboxRelay({
      db,
      publisher,
      name: `${options.id ?? 'atom-worker'}-relay`,
      batchSize: 500,
      pollIntervalMs: 50,
      maxAttempts: 1_000,
      backoff: { strategy: 'constant', baseMs: 100, maxMs: 100 },
      publishTimeoutMs: 5_000,
      ...(options.logger ? { logger: options.logger } : {}),
      ...telemetry,
    });
    relay.start();
  }
  worker.start();
  return {
    worker,
    relay,
    publisher,
    async stop(drainTimeoutMs = 10_000) {
      const report = await worker.stop({ drainTimeoutMs });
      if (relay) {
        await relay.stop();
        await publisher?.close();
      }
      return report;
    },
  };
}

async function main(): Promise<void> {
  const env = (name: string): string => {
    const value = process.env[name];
    if (!value) throw new Error(`${name} is required`);
    return value;
  };
  // The parent holds our stdin open: if it dies (a test timed out), so do we.
  process.stdin.on('end', () => process.exit(2));
  process.stdin.resume();
  const id = process.env.WORKER_ID ?? `worker-${process.pid}`;
  const db = await openDatabase({ url: env('DATABASE_URL'), schema: env('DB_SCHEMA') });
  const running = startAtomWorker({
    db,
    id,
    connectionString: env('SERVICEBUS_CONNECTION_STRING'),
    inQueue: env('IN_QUEUE'),
    ...(process.env.OUT_QUEUE ? { outQueue: process.env.OUT_QUEUE } : {}),
  });
  console.log(`READY ${id}`);

  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  const report = await running.stop();
  const relayHealth = await running.relay?.health();
  const { settleFailures, receiveFailures } = running.worker.health();
  await db.close();
  console.log(
    `REPORT ${JSON.stringify({
      id,
      ...report,
      settleFailures,
      receiveFailures,
      relayPublished: relayHealth?.publishedTotal ?? 0,
    })}`,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
