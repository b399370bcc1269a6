import { isDeepStrictEqual } from 'node:util';
import { type Client, OpenFeature } from '@openfeature/server-sdk';
import { type Attributes, type Context, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { lastValueFrom, toArray } from 'rxjs';
import type { BatchContext } from '../core/context.js';
import type { Outcome } from '../core/outcome.js';
import { type Pipeline, pipeline } from '../core/pipeline.js';
import { batchStep, type ItemFailure, itemFailure } from '../core/step.js';
import { LogEvents, logEvent } from '../observability/log-events.js';
import { silentLogger } from '../observability/logger.js';
import { instruments, type TelemetryOptions, tracerOf } from '../observability/telemetry.js';
import type { CircuitBreaker, CircuitPermit } from '../operators/circuit-breaker.js';
import { type RolloutVariant, rolloutPosition } from './variant-of.js';

/**
 * How a rollout uses the candidate: `'split'` routes each item to one variant; `'shadow'`
 * runs the stable pipeline for every item (its result is what comes out) and also runs the
 * candidate on the items the percentage selects, comparing the results.
 *
 * @example
 * ```ts
 * import type { RolloutMode } from '@hartonomous/pipelines/rollout';
 * const mode: RolloutMode = 'shadow';
 * ```
 */
export type RolloutMode = 'split' | 'shadow';

/**
 * Options of {@link rollout}. Give exactly one of `percent` and `flag`.
 *
 * @typeParam I - input of both pipelines
 * @typeParam O - output of both pipelines
 *
 * @example
 * ```ts
 * import type { RolloutOptions } from '@hartonomous/pipelines/rollout';
 *
 * const options: RolloutOptions<{ id: string }, number> = {
 *   name: 'score-v2',
 *   stable: scoreV1,
 *   candidate: scoreV2,
 *   key: (item) => item.id,
 *   percent: 10,
 * };
 * ```
 */
export interface RolloutOptions<I, O> extends TelemetryOptions {
  /** The rollout's name: the pipeline's name, metric attribute `rollout.name`, hash salt. */
  name: string;
  /** The current pipeline. */
  stable: Pipeline<I, O>;
  /** The new pipeline being rolled out. */
  candidate: Pipeline<I, O>;
  /** The item's routing key (a customer, a document): the same key always gets the same variant. */
  key: (input: I) => string;
  /** Fixed share of keys on the candidate, 0 to 100. */
  percent?: number;
  /**
   * OpenFeature flag key whose number value (0 to 100) is the share of keys on the candidate,
   * evaluated for every item (evaluation context `{ targetingKey: key, rollout: name }`), so
   * a change takes effect on the next item without a restart.
   */
  flag?: string;
  /**
   * The OpenFeature client `flag` is evaluated with.
   * @default `OpenFeature.getClient()` (the application's default provider); see {@link inMemoryFlags}
   */
  flags?: Client;
  /** Percentage used when the flag cannot be evaluated or is not a number in [0, 100]. @default 0 */
  defaultPercent?: number;
  /** `'split'` or `'shadow'`. @default 'split' */
  mode?: RolloutMode;
  /**
   * Whether a shadow result equals the stable one. @default `isDeepStrictEqual` from node:util
   */
  compare?: (stable: O, candidate: O) => boolean;
  /**
   * The candidate's circuit breaker: every candidate item is admitted through it and reports
   * its outcome to it. @default none
   */
  breaker?: CircuitBreaker;
  /**
   * While `breaker` is open (or isolated), send the items that would go to the candidate to
   * stable instead (counted on `hartonomous.rollout.fallbacks`); otherwise they fail with the
   * breaker's error. @default true
   */
  fallbackToStable?: boolean;
  /**
   * Items routed together: the rollout is a batch step, and each variant's share of a batch
   * runs through that variant's `stream`, so batch steps inside the variants still batch.
   * @default { size: 64, timeMs: 10 }
   */
  batch?: {
    /** Most items per batch. @default 64 */
    size?: number;
    /** Longest wait for a batch to fill, in ms. @default 10 */
    timeMs?: number;
  };
  /** Logger for shadow mismatches and failures, fallbacks and bad flag values. @default silent */
  logger?: Logger;
}

interface Routed<I> {
  readonly index: number;
  readonly input: I;
  readonly variant: RolloutVariant;
  readonly shadow: boolean;
  readonly permit?: CircuitPermit;
}

/**
 * A pipeline that rolls a new version of a pipeline out gradually. Each item's `key` hashes to
 * a fixed position (see {@link rolloutPosition}); the item goes to `candidate` when that
 * position is below the current percentage (fixed `percent`, or the OpenFeature `flag`
 * evaluated for every item), else to `stable`. The same key gets the same variant in every
 * process, and raising the percentage only moves keys from stable to candidate.
 *
 * In `shadow` mode every item runs on `stable`, whose result (or error) is what comes out;
 * the selected items also run on the candidate, and its differing results (`compare`) and
 * errors are counted and logged, never returned.
 *
 * With a `breaker`, candidate items are admitted through it; while it is open they go to
 * stable instead (`fallbackToStable`). Metrics: `hartonomous.rollout.items` and
 * `hartonomous.rollout.duration` by `rollout.variant` and `pipeline.outcome`,
 * `hartonomous.rollout.shadow.mismatches`, `hartonomous.rollout.shadow.errors`,
 * `hartonomous.rollout.fallbacks`; each variant's share of a batch runs under a span
 * `rollout <name> <variant>` with the attribute `rollout.variant` (also set on the step's span
 * when the whole batch went one way). Built on the public API only: the variants run through
 * their own `stream`.
 *
 * @param options - name, the two pipelines, the routing key, percentage or flag, mode
 * @returns the rollout as a pipeline (run it, stream it, or nest it as a step)
 * @throws TypeError when an option is invalid
 *
 * @example
 * ```ts
 * import { pipeline, step } from '@hartonomous/pipelines';
 * import { inMemoryFlags, rollout } from '@hartonomous/pipelines/rollout';
 *
 * const v1 = pipeline('price-v1', step('price', (o: { id: string; qty: number }) => o.qty * 10));
 * const v2 = pipeline('price-v2', step('price', (o: { id: string; qty: number }) => o.qty * 10));
 * const flags = await inMemoryFlags({ 'price-v2': 10 });
 * const price = rollout({
 *   name: 'price-v2',
 *   stable: v1,
 *   candidate: v2,
 *   key: (o) => o.id,
 *   flag: 'price-v2',
 *   flags: flags.client,
 * });
 * console.log(await price.run({ id: 'order-1', qty: 3 })); // 30
 * flags.set('price-v2', 50); // the next item already sees 50%
 * ```
 * @see {@link variantOf}
 * @see {@link inMemoryFlags}
 */
export function rollout<I, O>(options: RolloutOptions<I, O>): Pipeline<I, O> {
  const who = 'rollout';
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`${who}: options are required`);
  }
  const { name, stable, candidate, key } = options;
  if (typeof name !== 'string' || name.trim() === '') {
    throw new TypeError(`${who}: name must be a non-empty string`);
  }
  for (const [label, p] of [
    ['stable', stable],
    ['candidate', candidate],
  ] as const) {
    if (typeof p?.stream !== 'function' || typeof p.run !== 'function') {
      throw new TypeError(`${who}('${name}'): ${label} must be a pipeline`);
    }
  }
  if (typeof key !== 'function') throw new TypeError(`${who}('${name}'): key must be a function`);
  const hasPercent = options.percent !== undefined;
  const hasFlag = options.flag !== undefined;
  if (hasPercent === hasFlag) {
    throw new TypeError(`${who}('${name}'): give exactly one of percent and flag`);
  }
  if (hasPercent && !isPercent(options.percent)) {
    throw new TypeError(`${who}('${name}'): percent must be a number from 0 to 100`);
  }
  if (hasFlag && (typeof options.flag !== 'string' || options.flag === '')) {
    throw new TypeError(`${who}('${name}'): flag must be a non-empty string`);
  }
  const defaultPercent = options.defaultPercent ?? 0;
  if (!isPercent(defaultPercent)) {
    throw new TypeError(`${who}('${name}'): defaultPercent must be a number from 0 to 100`);
  }
  const mode = options.mode ?? 'split';
  if (mode !== 'split' && mode !== 'shadow') {
    throw new TypeError(`${who}('${name}'): mode must be 'split' or 'shadow'`);
  }
  const compare = options.compare ?? ((a: O, b: O) => isDeepStrictEqual(a, b));
  const { breaker } = options;
  if (breaker !== undefined && typeof breaker?.admit !== 'function') {
    throw new TypeError(`${who}('${name}'): breaker must be a CircuitBreaker`);
  }
  const fallbackToStable = options.fallbackToStable ?? true;
  const size = options.batch?.size ?? 64;
  const timeMs = options.batch?.timeMs ?? 10;
  const logger = options.logger ?? silentLogger();
  const inst = instruments(options);
  const tracer = tracerOf(options);
  const nameAttr = { 'rollout.name': name };
  const variantAttrs = (variant: RolloutVariant, ok: boolean): Attributes => ({
    ...nameAttr,
    'rollout.variant': variant,
    'pipeline.outcome': ok ? 'ok' : 'error',
  });

  const percentFor = async (k: string): Promise<number> => {
    if (hasPercent) return options.percent as number;
    const client = options.flags ?? OpenFeature.getClient();
    let value: number;
    try {
      value = await client.getNumberValue(options.flag as string, defaultPercent, {
        targetingKey: k,
        rollout: name,
      });
    } catch {
      return defaultPercent;
    }
    if (!isPercent(value)) {
      logEvent(logger, LogEvents.rolloutFlagInvalid, { rollout: name, flag: options.flag, value });
      return defaultPercent;
    }
    return value;
  };

  /** Admits a candidate item through the breaker, or says it must fall back. */
  const admit = (): { permit?: CircuitPermit; refused?: unknown } => {
    if (!breaker) return {};
    try {
      return { permit: breaker.admit() };
    } catch (e) {
      return { refused: e };
    }
  };

  /** Runs one variant's share of the batch through its pipeline's stream. */
  const runVariant = async (
    variant: RolloutVariant,
    items: readonly Routed<I>[],
    ctx: BatchContext,
    shadow: boolean,
  ): Promise<Map<number, Outcome<I, O>>> => {
    const out = new Map<number, Outcome<I, O>>();
    if (items.length === 0) return out;
    const target = variant === 'candidate' ? candidate : stable;
    const span = tracer.startSpan(
      `rollout ${name} ${variant}`,
      {
        attributes: {
          ...nameAttr,
          'rollout.variant': variant,
          'rollout.mode': mode,
          'rollout.shadow': shadow,
          'rollout.items': items.length,
        },
      },
      ctx.otel,
    );
    const otel: Context = trace.setSpan(ctx.otel, span);
    try {
      const outcomes = await lastValueFrom(
        target
          .stream(
            items.map((r) => r.input),
            {
              signal: ctx.signal,
              otel,
              ordered: false,
              concurrency: Math.max(1, items.length),
              correlationId: (_input, i) =>
                ctx.items[(items[i] as Routed<I>).index]?.correlationId ?? `${name}-${i}`,
            },
          )
          .pipe(toArray()),
      );
      for (const o of outcomes) {
        const routed = items[o.index] as Routed<I>;
        out.set(routed.index, o);
        if (routed.permit) {
          if (o.ok) routed.permit.success();
          else routed.permit.failure(o.error);
        }
        if (!shadow) {
          inst.rolloutItems.add(1, variantAttrs(variant, o.ok));
          inst.rolloutDuration.record(o.durationMs, variantAttrs(variant, o.ok));
        }
      }
      span.setStatus({ code: SpanStatusCode.OK });
      return out;
    } catch (e) {
      for (const r of items) r.permit?.release();
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw e;
    } finally {
      span.end();
    }
  };

  const route = batchStep<I, O>(
    'rollout',
    async (inputs: I[], ctx: BatchContext): Promise<ReadonlyArray<O | ItemFailure>> => {
      const results: Array<O | ItemFailure> = new Array(inputs.length);
      const routed: Routed<I>[] = [];
      await Promise.all(
        inputs.map(async (input, index) => {
          let k: string;
          try {
            k = key(input);
            if (typeof k !== 'string')
              throw new TypeError(`${who}('${name}'): key must return a string`);
          } catch (e) {
            results[index] = itemFailure(e);
            return;
          }
          const selected = rolloutPosition(name, k) < (await percentFor(k));
          if (!selected) {
            routed.push({ index, input, variant: 'stable', shadow: false });
            return;
          }
          const { permit, refused } = admit();
          if (refused !== undefined) {
            if (mode === 'shadow') {
              routed.push({ index, input, variant: 'stable', shadow: false });
              return;
            }
            if (!fallbackToStable) {
              results[index] = itemFailure(refused);
              return;
            }
            inst.rolloutFallbacks.add(1, nameAttr);
            logEvent(logger, LogEvents.rolloutFellBack, () => ({
              rollout: name,
              key: k,
              breaker: breaker?.name,
            }));
            routed.push({ index, input, variant: 'stable', shadow: false });
            return;
          }
          if (mode === 'shadow') {
            routed.push({ index, input, variant: 'stable', shadow: false });
            routed.push({
              index,
              input,
              variant: 'candidate',
              shadow: true,
              ...(permit ? { permit } : {}),
            });
          } else {
            routed.push({
              index,
              input,
              variant: 'candidate',
              shadow: false,
              ...(permit ? { permit } : {}),
            });
          }
        }),
      );
      const toStable = routed.filter((r) => r.variant === 'stable');
      const toCandidate = routed.filter((r) => r.variant === 'candidate');
      const step = trace.getSpan(ctx.otel);
      if (step?.isRecording()) {
        const variants = new Set(routed.filter((r) => !r.shadow).map((r) => r.variant));
        if (variants.size === 1) step.setAttribute('rollout.variant', [...variants][0] as string);
        step.setAttributes({ ...nameAttr, 'rollout.mode': mode });
      }
      const [stableOut, candidateOut] = await Promise.all([
        runVariant('stable', toStable, ctx, false),
        runVariant('candidate', toCandidate, ctx, mode === 'shadow'),
      ]);
      for (const [index, o] of stableOut) results[index] = o.ok ? o.value : itemFailure(o.error);
      if (mode === 'split') {
        for (const [index, o] of candidateOut)
          results[index] = o.ok ? o.value : itemFailure(o.error);
      } else {
        for (const [index, shadowOutcome] of candidateOut) {
          const main = stableOut.get(index);
          inst.rolloutItems.add(1, {
            ...variantAttrs('candidate', shadowOutcome.ok),
            'rollout.mode': 'shadow',
          });
          if (!shadowOutcome.ok) {
            inst.rolloutShadowErrors.add(1, nameAttr);
            logEvent(logger, LogEvents.rolloutShadowFailed, () => ({
              rollout: name,
              correlationId: ctx.items[index]?.correlationId,
              err: shadowOutcome.error,
            }));
          } else if (main?.ok) {
            let same: boolean;
            try {
              same = compare(main.value, shadowOutcome.value);
            } catch {
              same = false;
            }
            if (!same) {
              inst.rolloutShadowMismatches.add(1, nameAttr);
              logEvent(logger, LogEvents.rolloutShadowMismatch, () => ({
                rollout: name,
                correlationId: ctx.items[index]?.correlationId,
              }));
            }
          }
        }
      }
      return results;
    },
    { size, timeMs },
  );

  return pipeline(
    {
      name,
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.tracer ? { tracer: options.tracer } : {}),
      ...(options.meter ? { meter: options.meter } : {}),
    },
    route,
  );
}

function isPercent(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= 100;
}
