import test from 'ava';
import { lastValueFrom, toArray } from 'rxjs';
import { batchStep, LogEvents, pipeline, step } from '../../lib/index.js';
import { memoryLogger, memoryMeter, memoryTracer } from '../support/telemetry.js';

test('run makes one span per run and a child span per step, with attributes and errors', async (t) => {
  const { tracer, spans } = memoryTracer();
  const p = pipeline(
    { name: 'traced', tracer },
    step('a', (n: number) => n + 1),
    step('b', async (n: number) => {
      if (n > 5) throw new Error('too big');
      return n;
    }),
  );
  await p.run(1, { correlationId: 'c1' });
  await t.throwsAsync(p.run(9, { correlationId: 'c2' }));
  const all = spans();
  const roots = all.filter((s) => s.name === 'pipeline traced');
  t.is(roots.length, 2);
  for (const root of roots) {
    const children = all.filter((s) => s.parentSpanContext?.spanId === root.spanContext().spanId);
    t.deepEqual(children.map((c) => c.name).sort(), ['step a', 'step b']);
    t.true(children.every((c) => c.spanContext().traceId === root.spanContext().traceId));
    t.is(children[0]?.attributes['pipeline.name'], 'traced');
  }
  const failedRoot = roots.find((r) => r.attributes['pipeline.correlation_id'] === 'c2');
  t.is(failedRoot?.status.code, 2);
  t.is(failedRoot?.attributes['pipeline.outcome'], 'error');
  const failedStep = all.find(
    (s) => s.name === 'step b' && s.parentSpanContext?.spanId === failedRoot?.spanContext().spanId,
  );
  t.is(failedStep?.status.code, 2);
  t.true((failedStep?.events ?? []).some((e) => e.name === 'exception'));
});

test('stream spans: one run span per item, batch spans link to their items', async (t) => {
  const { tracer, spans } = memoryTracer();
  const p = pipeline(
    { name: 'streamed', tracer },
    step('a', (n: number) => n),
    batchStep('b', async (ns: number[]) => ns, { size: 4, timeMs: 1 }),
  );
  await lastValueFrom(p.stream([1, 2, 3, 4, 5, 6, 7, 8]).pipe(toArray()));
  const all = spans();
  const runs = all.filter((s) => s.name === 'pipeline streamed');
  t.is(runs.length, 8);
  const batches = all.filter((s) => s.name === 'step b');
  t.is(
    batches.reduce((n, b) => n + b.links.length, 0),
    8,
  );
  const runIds = new Set(runs.map((r) => r.spanContext().spanId));
  t.true(batches.every((b) => b.links.every((l) => runIds.has(l.context.spanId))));
  t.is(all.filter((s) => s.name === 'step a').length, 8);
});

test('logs come from the catalog with stable event ids and bound fields', async (t) => {
  const { logger, lines } = memoryLogger('trace');
  const p = pipeline(
    { name: 'logged', logger },
    step('fails', (n: number) => {
      if (n === 2) throw new Error('nope');
      return n;
    }),
    step('talks', (n: number, ctx) => {
      ctx.logger.info({ n }, 'user message');
      return n;
    }),
  );
  await lastValueFrom(p.stream([1, 2, 3], { correlationId: 's' }).pipe(toArray()));
  const ids = new Set(lines().map((l) => l.eventId));
  t.true(ids.has(LogEvents.streamStarted.id));
  t.true(ids.has(LogEvents.streamCompleted.id));
  t.true(ids.has(LogEvents.stepFailed.id));
  t.true(ids.has(LogEvents.streamItemFailed.id));
  const user = lines().filter((l) => l.msg === 'user message');
  t.is(user.length, 2);
  t.true(
    user.every(
      (l) =>
        l.pipeline === 'logged' && l.step === 'talks' && String(l.correlationId).startsWith('s:'),
    ),
  );
  const failed = lines().find((l) => l.eventId === LogEvents.streamItemFailed.id);
  t.is(failed?.event, 'stream.item_failed');
  t.is(failed?.msg, LogEvents.streamItemFailed.message);
});

test('the catalog has unique ids and names', (t) => {
  const entries = Object.values(LogEvents);
  t.is(new Set(entries.map((e) => e.id)).size, entries.length);
  t.is(new Set(entries.map((e) => e.name)).size, entries.length);
});

test('metrics: processed and failed counters and duration histograms are recorded', async (t) => {
  const { meter, collect } = memoryMeter();
  const p = pipeline(
    { name: 'metered', meter },
    step('maybe', async (n: number) => {
      if (n < 0) throw new Error('negative');
      return n;
    }),
  );
  await lastValueFrom(p.stream([1, -1, 2, -2, 3]).pipe(toArray()));
  const metrics = await collect();
  const sum = (name: string) =>
    metrics
      .filter((m) => m.descriptor.name === name)
      .flatMap((m) => m.dataPoints as Array<{ value: unknown }>)
      .reduce((n, d) => n + (typeof d.value === 'number' ? d.value : 0), 0);
  t.is(sum('hartonomous.pipeline.items.processed'), 3);
  t.is(sum('hartonomous.pipeline.items.failed'), 2);
  t.is(sum('hartonomous.pipeline.items.in_flight'), 0);
  t.true(metrics.some((m) => m.descriptor.name === 'hartonomous.pipeline.step.duration'));
});
