import { context, ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import test from 'ava';
import {
  extractTraceContext,
  serviceBusPublisher,
  serviceBusSource,
} from '../../lib/service-bus/index.js';
import { startAmqpPeer } from '../support/amqp-peer.js';
import { fastClient } from '../support/service-bus-helpers.js';

// This test process needs an active-context manager for `context.with`; the library registers none.
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());

test('producer span -> Diagnostic-Id -> consumer context with the producer traceId, usable as a span link', async (t) => {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  t.teardown(() => provider.shutdown());
  const tracer = provider.getTracer('test');
  const peer = await startAmqpPeer();
  t.teardown(() => peer.close());

  const publisher = serviceBusPublisher({
    connectionString: peer.connectionString,
    clientOptions: fastClient,
    queueOrTopic: 'trace-q',
    tracer,
  });
  const producer = tracer.startSpan('produce', { kind: SpanKind.INTERNAL });
  await context.with(trace.setSpan(context.active(), producer), () =>
    publisher.publish([{ messageId: 'traced', body: { n: 1 } }]),
  );
  producer.end();
  await publisher.close();

  const diagnosticId = peer.sent('trace-q')[0]?.applicationProperties['Diagnostic-Id'];
  t.regex(
    String(diagnosticId),
    new RegExp(`^00-${producer.spanContext().traceId}-[0-9a-f]{16}-01$`),
  );
  const publishSpan = exporter.getFinishedSpans().find((s) => s.name === 'publish trace-q');
  t.truthy(publishSpan);
  t.is(publishSpan?.kind, SpanKind.PRODUCER);
  t.is(publishSpan?.parentSpanContext?.spanId, producer.spanContext().spanId);
  t.true(String(diagnosticId).includes(publishSpan?.spanContext().spanId ?? 'none'));

  const source = serviceBusSource({
    connectionString: peer.connectionString,
    clientOptions: fastClient,
    queue: 'trace-q',
    maxWaitTimeInMs: 200,
  });
  for await (const item of source) {
    const remote = trace.getSpanContext(item.traceContext);
    t.truthy(remote);
    t.is(remote?.traceId, producer.spanContext().traceId);
    t.true(remote?.isRemote);
    const consumer = tracer.startSpan('consume', {
      kind: SpanKind.CONSUMER,
      links: remote ? [{ context: remote }] : [],
    });
    consumer.end();
    await item.complete();
    break;
  }
  await source.close();
  const consumed = exporter.getFinishedSpans().find((s) => s.name === 'consume');
  t.is(consumed?.links[0]?.context.traceId, producer.spanContext().traceId);
  t.is(consumed?.links[0]?.context.spanId, publishSpan?.spanContext().spanId);
  // The consumer starts its own trace (a link, not a parent).
  t.not(consumed?.spanContext().traceId, producer.spanContext().traceId);
});

test('without an active span and without a traceparent, no Diagnostic-Id is sent', async (t) => {
  const peer = await startAmqpPeer();
  t.teardown(() => peer.close());
  const publisher = serviceBusPublisher({
    connectionString: peer.connectionString,
    clientOptions: fastClient,
    queueOrTopic: 'trace-none',
  });
  await publisher.publish([{ messageId: 'plain', body: 1 }]);
  await publisher.close();
  t.deepEqual(peer.sent('trace-none')[0]?.applicationProperties, {});
});

test('extractTraceContext parses W3C traceparent and tracestate, ignores garbage', (t) => {
  const ctx = extractTraceContext({
    'Diagnostic-Id': '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    tracestate: 'vendor=abc',
  });
  const sc = trace.getSpanContext(ctx);
  t.is(sc?.traceId, '0af7651916cd43dd8448eb211c80319c');
  t.is(sc?.spanId, 'b7ad6b7169203331');
  t.is(sc?.traceFlags, 1);
  t.is(sc?.traceState?.get('vendor'), 'abc');
  t.is(extractTraceContext({ 'Diagnostic-Id': 'not-a-traceparent' }), ROOT_CONTEXT);
  t.is(
    extractTraceContext({ 'Diagnostic-Id': `00-${'0'.repeat(32)}-${'1'.repeat(16)}-01` }),
    ROOT_CONTEXT,
  );
  t.is(extractTraceContext(undefined), ROOT_CONTEXT);
});
