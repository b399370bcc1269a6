import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { metrics, trace } from '@opentelemetry/api';
import test from 'ava';
import { pipeline } from '../../lib/core/pipeline.js';
import { step } from '../../lib/core/step.js';
import { parseKeyValueList, startTelemetry } from '../../lib/observability/start-telemetry.js';

interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

async function collector(t: { teardown(fn: () => Promise<void>): void }) {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(
    () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received };
}

test('OTEL_EXPORTER_OTLP_ENDPOINT set: metrics and spans are pushed over OTLP/HTTP with the headers', async (t) => {
  const otlp = await collector(t);
  const telemetry = await startTelemetry({
    global: false,
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
      OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=abc123',
      OTEL_SERVICE_NAME: 'otlp-test',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=test',
    },
  });
  t.is(telemetry.metricsExporter, 'otlp');
  t.true(telemetry.tracesExported);
  t.is(telemetry.handleMetrics, undefined);
  const p = pipeline(
    { name: 'pushed', meter: telemetry.meter, tracer: telemetry.tracer },
    step('double', (n: number) => n * 2),
  );
  t.is(await p.run(21), 42);
  await telemetry.forceFlush();
  await telemetry.shutdown();
  const metricPosts = otlp.received.filter((r) => r.path === '/v1/metrics');
  const tracePosts = otlp.received.filter((r) => r.path === '/v1/traces');
  t.true(metricPosts.length >= 1);
  t.true(tracePosts.length >= 1);
  t.is(metricPosts[0]?.headers['x-api-key'], 'abc123');
  const body = metricPosts.map((r) => r.body).join('\n');
  t.regex(body, /hartonomous\.pipeline\.items\.processed/);
  t.regex(body, /hartonomous\.pipeline\.step\.duration/);
  t.regex(body, /otlp-test/);
  t.regex(body, /deployment\.environment/);
  t.regex(tracePosts.map((r) => r.body).join('\n'), /pipeline pushed/);
});

test('defaults: Prometheus without an endpoint, none when asked; global registration is undone by shutdown', async (t) => {
  const prom = await startTelemetry({ env: {} });
  t.is(prom.metricsExporter, 'prometheus');
  t.false(prom.tracesExported);
  t.is(typeof prom.handleMetrics, 'function');
  // registered globally: the global API's meter now records into this SDK
  t.not(metrics.getMeterProvider().constructor.name, 'NoopMeterProvider');
  await prom.shutdown();
  await prom.shutdown();
  t.is(metrics.getMeterProvider().constructor.name, 'NoopMeterProvider');
  const none = await startTelemetry({ global: false, env: { OTEL_METRICS_EXPORTER: 'none' } });
  t.is(none.metricsExporter, 'none');
  await none.shutdown();
  t.is(trace.getActiveSpan(), undefined);
  await t.throwsAsync(startTelemetry({ global: false, env: {}, exportIntervalMs: 0 }), {
    instanceOf: TypeError,
  });
  t.deepEqual(parseKeyValueList('a=1, b = two,bad,c=x%3Dy'), { a: '1', b: 'two', c: 'x=y' });
});
