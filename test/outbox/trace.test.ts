import { randomBytes } from 'node:crypto';
import { context, propagation } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { ingest } from '../../lib/atoms/ingest.js';
import { pipeline } from '../../lib/core/pipeline.js';
import { step } from '../../lib/core/step.js';
import { outboxRelay } from '../../lib/outbox/outbox-relay.js';
import {
  DIAGNOSTIC_ID,
  RECEIVE_STEP,
  serviceBusPublisher,
  serviceBusSource,
  serviceBusWorker,
} from '../../lib/service-bus/index.js';
import { startAmqpPeer } from '../support/amqp-peer.js';
import { databaseSuite } from '../support/databases.js';
import { sql } from '../support/outbox-helpers.js';
import { fastClient, until } from '../support/service-bus-helpers.js';
import { memoryTracer } from '../support/telemetry.js';

// What an application's OpenTelemetry SDK would register (this test process only).
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());

const suite = await databaseSuite('outbox_trace');

suite.serial(
  'trace context travels from the transaction that wrote the atom, through the outbox and the broker, to a span link at the consumer',
  async (t, db, backend) => {
    const peer = await startAmqpPeer();
    t.teardown(() => peer.close());
    const queue = `traced-${backend}-${process.pid}`;
    const { tracer, spans } = memoryTracer();
    const tag = randomBytes(4).toString('hex');
    const contents = [`${tag} traced one`, `${tag} traced two`];

    await tracer.startActiveSpan('producer request', async (span) => {
      const report = await ingest(
        contents.map((content) => ({ content })),
        { db, tracer },
      );
      t.is(report.added, 2);
      span.end();
    });
    const rows = await sql<{ message_id: string; traceparent: string | null }>(
      db,
      'SELECT message_id, traceparent FROM S.outbox WHERE published_at IS NULL ORDER BY id',
    );
    t.is(rows.length, 2);
    const producerTrace = spans()
      .find((s) => s.name === 'producer request')
      ?.spanContext().traceId;
    const persist = spans().find((s) => s.name.includes('persist'));
    t.truthy(
      persist,
      spans()
        .map((s) => s.name)
        .join(', '),
    );
    for (const row of rows) {
      // the persist step's span (the transaction that wrote the row), in the producer's trace
      t.is(row.traceparent, `00-${producerTrace}-${persist?.spanContext().spanId}-01`);
    }

    const publisher = serviceBusPublisher({
      connectionString: peer.connectionString,
      clientOptions: fastClient,
      queueOrTopic: queue,
    });
    const relay = outboxRelay({ db, publisher });
    t.like(await relay.flush(), { published: 2 });
    await relay.stop();
    await publisher.close();
    for (const m of peer.messages(queue)) {
      t.is(m.applicationProperties[DIAGNOSTIC_ID], rows[0]?.traceparent);
    }

    const consumed: string[] = [];
    const w = serviceBusWorker({
      source: serviceBusSource<{ contentHash: string }>({
        connectionString: peer.connectionString,
        clientOptions: fastClient,
        queue,
        maxWaitTimeInMs: 100,
      }),
      pipeline: pipeline(
        'index',
        step('index', (event: { contentHash: string }) => {
          consumed.push(event.contentHash);
          return event.contentHash;
        }),
      ),
      tracer,
    });
    w.start();
    await until(() => w.health().completed === 2, 'consumed');
    await w.stop();
    const receives = spans().filter((s) => s.name.includes(RECEIVE_STEP));
    t.is(receives.length, 2);
    for (const r of receives) {
      t.deepEqual(
        r.links.map((l) => [l.context.traceId, l.context.spanId]),
        [[producerTrace, persist?.spanContext().spanId]],
      );
      t.not(r.spanContext().traceId, producerTrace, 'linked, not parented');
    }
  },
);
