/**
 * The transactional outbox end to end: ingest a few atoms (each new atom and its
 * `atom.created` outbox row are written in ONE transaction), look at the backlog, then relay the
 * outbox to Azure Service Bus with `outboxRelay`: at least once, in order per key, each message
 * with a stable id (`atom.created:<content hash>`, so duplicate detection drops a replay) and
 * the writer's trace context in `Diagnostic-Id`.
 *
 *   SERVICEBUS_CONNECTION_STRING=... npx tsx examples/publish-to-service-bus.ts
 *
 * Env: OUT_QUEUE (default `atom-events`); DATABASE_URL (default: an embedded PGlite in
 * .data/publish-example). Without SERVICEBUS_CONNECTION_STRING nothing needs a broker: the
 * relay publishes to an in-process `memoryPublisher()` (the embedded default; or leave the
 * rows in the outbox for a relay elsewhere). With SMOKE=1 (CI) it uses the local AMQP peer from
 * test/support (a test double of Service Bus) and a temporary PGlite, and exits.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Publisher } from '@hartonomous/pipelines';
import { ingest } from '@hartonomous/pipelines/atoms';
import { listDeadOutbox, outboxHealth, outboxRelay } from '@hartonomous/pipelines/outbox';
import { openDatabase } from '@hartonomous/pipelines/postgres';
import { serviceBusPublisher } from '@hartonomous/pipelines/service-bus';
import { memoryPublisher } from '@hartonomous/pipelines/testing';
import { startAmqpPeer } from '../test/support/amqp-peer.js';

const smoke = Boolean(process.env.SMOKE);
const queue = process.env.OUT_QUEUE ?? 'atom-events';

const peer = smoke ? await startAmqpPeer({ duplicateDetectionWindowMs: 600_000 }) : undefined;
const connectionString = peer?.connectionString ?? process.env.SERVICEBUS_CONNECTION_STRING;
const dataDir = smoke ? await mkdtemp(join(tmpdir(), 'hartonomous-outbox-')) : undefined;
const db = await openDatabase(
  dataDir ? { dataDir } : process.env.DATABASE_URL ? {} : { dataDir: '.data/publish-example' },
);

// 1. Ingest: atoms and their outbox rows commit together; nothing is published yet.
const report = await ingest(
  [
    { content: 'The outbox row is written in the same transaction as the atom.' },
    { content: 'A relay publishes pending rows with FOR UPDATE SKIP LOCKED.' },
    { content: 'Message ids are stable, so a replay is dropped as a duplicate.' },
    { content: 'The outbox row is written in the same transaction as the atom.' }, // duplicate
  ],
  { db },
);
console.log(`ingested: ${report.added} new, ${report.duplicates} duplicates`);
console.log('outbox before:', await outboxHealth(db));

// 2. Relay: publish everything pending, then stop.
const publisher: Publisher & { close?(): Promise<void> } = connectionString
  ? serviceBusPublisher({ connectionString, queueOrTopic: queue })
  : memoryPublisher();
const relay = outboxRelay({ db, publisher, batchSize: 100 });
const flushed = await relay.flush();
await relay.stop();
await publisher.close?.();
console.log(
  `relayed to ${connectionString ? `Service Bus queue '${queue}'` : 'memory (no broker configured)'}: ${flushed.published} published, ${flushed.failed} failed`,
);
console.log('outbox after:', await outboxHealth(db));
const dead = await listDeadOutbox(db);
if (dead.length > 0) console.log('dead rows (fix, then replayDeadOutbox):', dead);

if (peer) {
  // Diagnostic-Id carries the writer's W3C traceparent once the application registers an
  // OpenTelemetry SDK (context manager and propagator); this example registers none: '-'.
  for (const m of peer.messages(queue)) {
    console.log(
      `  ${m.messageId} subject=${m.subject} Diagnostic-Id=${String(m.applicationProperties['Diagnostic-Id'] ?? '-')}`,
    );
  }
  await peer.close();
}
await db.close();
if (dataDir) await rm(dataDir, { recursive: true, force: true });
