import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { trace } from '@opentelemetry/api';
import test from 'ava';
import { lastValueFrom, toArray } from 'rxjs';
import { pipeline } from '../../lib/core/pipeline.js';
import { step } from '../../lib/core/step.js';
import { createCircuitBreaker } from '../../lib/operators/circuit-breaker.js';
import { inMemoryFlags } from '../../lib/rollout/in-memory-flags.js';
import { rollout } from '../../lib/rollout/rollout.js';
import { rolloutPosition, variantOf } from '../../lib/rollout/variant-of.js';
import { servedVariants } from '../support/rollout-variants.js';
import { memoryLogger, memoryMeter, memoryTracer } from '../support/telemetry.js';

const run = promisify(execFile);

async function sum(
  collect: ReturnType<typeof memoryMeter>['collect'],
  name: string,
  match: Record<string, string> = {},
): Promise<number> {
  const metric = (await collect()).find((m) => m.descriptor.name === name);
  let total = 0;
  for (const p of metric?.dataPoints ?? []) {
    if (Object.entries(match).every(([k, v]) => p.attributes[k] === v)) {
      const v = p.value as number | { count: number };
      total += typeof v === 'number' ? v : v.count;
    }
  }
  return total;
}

test('100,000 keys at 10% put 10% +- 0.5% on the candidate; raising the percentage only adds keys', (t) => {
  const keys = Array.from({ length: 100_000 }, (_, i) => `customer-${i}`);
  const at10 = keys.filter((k) => variantOf('ingest-v2', k, 10) === 'candidate');
  t.true(Math.abs(at10.length / keys.length - 0.1) <= 0.005, `${at10.length / 1000}%`);
  const at25 = new Set(keys.filter((k) => variantOf('ingest-v2', k, 25) === 'candidate'));
  t.true(Math.abs(at25.size / keys.length - 0.25) <= 0.005, `${at25.size / 1000}%`);
  t.true(
    at10.every((k) => at25.has(k)),
    'every key on the candidate at 10% stays there at 25%',
  );
  t.is(keys.filter((k) => variantOf('ingest-v2', k, 0) === 'candidate').length, 0);
  t.is(keys.filter((k) => variantOf('ingest-v2', k, 100) === 'candidate').length, keys.length);
  // another rollout's name splits the same keys differently
  const other = keys.filter((k) => variantOf('other', k, 10) === 'candidate');
  const overlap = other.filter((k) => variantOf('ingest-v2', k, 10) === 'candidate').length;
  t.true(overlap < other.length * 0.2, `overlap ${overlap}`);
  const p = rolloutPosition('ingest-v2', 'customer-1');
  t.true(p >= 0 && p < 100);
});

test('the pipeline routes each key by its position: served variants equal variantOf', async (t) => {
  const served = await servedVariants(3_000, 30);
  t.is(served.length, 3_000);
  served.forEach((v, i) => {
    if (v !== variantOf('two-processes', `key-${i}`, 30)) t.fail(`key-${i} served by ${v}`);
  });
  const share = served.filter((v) => v === 'candidate').length / served.length;
  t.true(share > 0.25 && share < 0.35, String(share));
});

test('each key gets the same variant in two other processes', async (t) => {
  const script = fileURLToPath(new URL('../support/rollout-variants.ts', import.meta.url));
  const child = () =>
    run(process.execPath, ['--import', 'tsx', script, '2000', '30'], {
      maxBuffer: 16 * 1024 * 1024,
    });
  const [a, b] = await Promise.all([child(), child()]);
  const first = JSON.parse(a.stdout) as string[];
  const second = JSON.parse(b.stdout) as string[];
  t.is(first.length, 2_000);
  t.deepEqual(first, second);
  t.deepEqual(first, await servedVariants(2_000, 30));
  t.true(first.includes('candidate') && first.includes('stable'));
});

test('an OpenFeature flag change takes effect on the next item, with no restart', async (t) => {
  const flags = await inMemoryFlags({ 'tag-v2': 0 });
  const stable = pipeline(
    'v1',
    step('tag', (_k: string) => 'stable'),
  );
  const candidate = pipeline(
    'v2',
    step('tag', (_k: string) => 'candidate'),
  );
  const r = rollout({
    name: 'tag-v2',
    stable,
    candidate,
    key: (k: string) => k,
    flag: 'tag-v2',
    flags: flags.client,
  });
  t.is(await r.run('a'), 'stable');
  flags.set('tag-v2', 100);
  t.is(await r.run('a'), 'candidate');
  flags.set('tag-v2', 0);
  t.is(await r.run('a'), 'stable');
  // in a stream: items after the change see the new value
  flags.set('tag-v2', 100);
  const out = await lastValueFrom(r.stream(['x', 'y', 'z']).pipe(toArray()));
  t.deepEqual(
    out.map((o) => (o.ok ? o.value : 'failed')),
    ['candidate', 'candidate', 'candidate'],
  );
  // a value that is not a percentage falls back to defaultPercent, and is logged
  const { logger, lines } = memoryLogger();
  const guarded = rollout({
    name: 'tag-v2',
    stable,
    candidate,
    key: (k: string) => k,
    flag: 'tag-v2',
    flags: flags.client,
    logger,
  });
  flags.set('tag-v2', 250);
  t.is(await guarded.run('a'), 'stable');
  t.true(lines().some((l) => l.event === 'rollout.flag_invalid' && l.value === 250));
  // an unknown flag (or no provider) is the default percentage
  const missing = rollout({
    name: 'm',
    stable,
    candidate,
    key: String,
    flag: 'nope',
    defaultPercent: 100,
  });
  t.is(await missing.run('a'), 'candidate');
});

test('shadow: stable results come out; candidate mismatches and errors are counted and logged, never returned', async (t) => {
  const { meter, collect } = memoryMeter();
  const { logger, lines } = memoryLogger();
  const stable = pipeline(
    'price-v1',
    step('price', (n: number) => n * 10),
  );
  const candidate = pipeline(
    'price-v2',
    step('price', (n: number) => {
      if (n % 7 === 0) throw new Error(`v2 cannot price ${n}`);
      return n % 5 === 0 ? n * 11 : n * 10;
    }),
  );
  const r = rollout({
    name: 'price-v2',
    stable,
    candidate,
    key: String,
    percent: 100,
    mode: 'shadow',
    meter,
    logger,
  });
  const inputs = Array.from({ length: 70 }, (_, i) => i + 1);
  const out = await lastValueFrom(r.stream(inputs, { ordered: true }).pipe(toArray()));
  t.deepEqual(
    out.map((o) => (o.ok ? o.value : 'failed')),
    inputs.map((n) => n * 10),
  );
  const sevens = inputs.filter((n) => n % 7 === 0).length; // 10
  const fivesNotSevens = inputs.filter((n) => n % 5 === 0 && n % 7 !== 0).length; // 12
  t.is(
    await sum(collect, 'hartonomous.rollout.shadow.errors', { 'rollout.name': 'price-v2' }),
    sevens,
  );
  t.is(
    await sum(collect, 'hartonomous.rollout.shadow.mismatches', { 'rollout.name': 'price-v2' }),
    fivesNotSevens,
  );
  t.is(
    await sum(collect, 'hartonomous.rollout.items', { 'rollout.variant': 'stable' }),
    inputs.length,
  );
  t.is(
    await sum(collect, 'hartonomous.rollout.items', {
      'rollout.variant': 'candidate',
      'rollout.mode': 'shadow',
    }),
    inputs.length,
  );
  t.is(lines().filter((l) => l.event === 'rollout.shadow_mismatch').length, fivesNotSevens);
  t.is(lines().filter((l) => l.event === 'rollout.shadow_failed').length, sevens);
  // a failing stable item fails in shadow mode too (the stable outcome is what comes out)
  const failing = rollout({
    name: 's',
    stable: pipeline(
      'bad',
      step('x', (_n: number): number => {
        throw new Error('stable failed');
      }),
    ),
    candidate,
    key: String,
    percent: 100,
    mode: 'shadow',
  });
  await t.throwsAsync(failing.run(1), { message: /stable failed/ });
});

test("fallbackToStable: when the candidate's breaker opens, its items go to stable", async (t) => {
  const { meter, collect } = memoryMeter();
  const breaker = createCircuitBreaker({
    name: 'candidate',
    strategy: { type: 'consecutive', failures: 2 },
    breakDuration: 3_600_000,
  });
  const stable = pipeline(
    'v1',
    step('tag', (_k: string) => 'stable'),
  );
  const candidate = pipeline(
    'v2',
    step('tag', (_k: string): string => {
      throw new Error('v2 is broken');
    }),
  );
  const r = rollout({ name: 'fb', stable, candidate, key: String, percent: 100, breaker, meter });
  await t.throwsAsync(r.run('a'), { message: /v2 is broken/ });
  await t.throwsAsync(r.run('b'), { message: /v2 is broken/ });
  t.is(breaker.state, 'open');
  t.is(await r.run('c'), 'stable');
  t.is(await r.run('d'), 'stable');
  t.is(await sum(collect, 'hartonomous.rollout.fallbacks', { 'rollout.name': 'fb' }), 2);
  t.is(
    await sum(collect, 'hartonomous.rollout.items', {
      'rollout.variant': 'candidate',
      'pipeline.outcome': 'error',
    }),
    2,
  );
  // without fallback the breaker's error is the item's
  const strict = rollout({
    name: 'fb2',
    stable,
    candidate,
    key: String,
    percent: 100,
    breaker,
    fallbackToStable: false,
  });
  await t.throwsAsync(strict.run('e'), { message: /circuit breaker 'candidate' is open/ });
});

test('the variant is a span attribute; the variant runs under its own span', async (t) => {
  const { tracer, spans } = memoryTracer();
  const stable = pipeline(
    { name: 'v1', tracer },
    step('tag', (_k: string) => 'stable'),
  );
  const candidate = pipeline(
    { name: 'v2', tracer },
    step('tag', (_k: string) => 'candidate'),
  );
  const r = rollout({ name: 'traced', stable, candidate, key: String, percent: 100, tracer });
  t.is(await r.run('k'), 'candidate');
  const rolloutStep = spans().find(
    (s) =>
      s.attributes['rollout.variant'] === 'candidate' &&
      s.name.includes('rollout') &&
      !s.name.startsWith('rollout '),
  );
  t.truthy(
    rolloutStep,
    spans()
      .map((s) => `${s.name} ${JSON.stringify(s.attributes)}`)
      .join('\n'),
  );
  const variantSpan = spans().find((s) => s.name === 'rollout traced candidate');
  t.is(variantSpan?.attributes['rollout.variant'], 'candidate');
  const inner = spans().find((s) => s.name === 'pipeline v2');
  t.is(inner?.parentSpanContext?.spanId, variantSpan?.spanContext().spanId);
  t.is(trace.getActiveSpan(), undefined);
});

test('a key that throws fails only its item; options are validated', async (t) => {
  const stable = pipeline(
    'v1',
    step('id', (s: string) => s),
  );
  const r = rollout({
    name: 'k',
    stable,
    candidate: stable,
    key: (s: string) => {
      if (s === 'bad') throw new Error('no key');
      return s;
    },
    percent: 50,
  });
  const out = await lastValueFrom(r.stream(['a', 'bad', 'c'], { ordered: true }).pipe(toArray()));
  t.deepEqual(
    out.map((o) => o.ok),
    [true, false, true],
  );
  const base = { name: 'x', stable, candidate: stable, key: String };
  t.throws(() => rollout({ ...base }), { message: /exactly one of percent and flag/ });
  t.throws(() => rollout({ ...base, percent: 10, flag: 'f' }), { message: /exactly one/ });
  t.throws(() => rollout({ ...base, percent: 101 }), { message: /percent must be/ });
  t.throws(() => rollout({ ...base, percent: 10, mode: 'canary' as never }), { message: /mode/ });
  t.throws(() => rollout({ ...base, name: '', percent: 1 }), { message: /name/ });
  t.throws(() => rollout({ ...base, stable: {} as never, percent: 1 }), {
    message: /stable must be a pipeline/,
  });
});
