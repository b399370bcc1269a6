import type { Context } from '@opentelemetry/api';
import type { Logger } from 'pino';

/**
 * A typed key into a {@link ContextBag}. Create one per kind of value with {@link contextKey}.
 *
 * @typeParam T - the type of value stored under this key
 */
export interface ContextKey<T> {
  /** Human-readable name, used in logs and errors. */
  readonly name: string;
  /** @internal phantom type carrier; never set */
  readonly __type?: T;
}

/**
 * Creates a typed key for the context bag.
 *
 * @param name - a descriptive name
 * @returns a new, unique key
 *
 * @example
 * ```ts
 * import { contextBag, contextKey, pipeline, step } from '@hartonomous/pipelines';
 *
 * const Tenant = contextKey<string>('tenant');
 * const greet = step('greet', (name: string, ctx) => `${ctx.bag.get(Tenant)}: hello ${name}`);
 * await pipeline('p', greet).run('ada', { bag: contextBag().set(Tenant, 'acme') });
 * ```
 */
export function contextKey<T>(name: string): ContextKey<T> {
  if (typeof name !== 'string' || name.length === 0) {
    throw new TypeError('contextKey(name): name must be a non-empty string');
  }
  return Object.freeze({ name });
}

/**
 * A small typed map that travels with one item through every step of a pipeline.
 *
 * @example
 * ```ts
 * import { contextBag, contextKey } from '@hartonomous/pipelines';
 *
 * const Attempts = contextKey<number>('attempts');
 * const bag = contextBag().set(Attempts, 1);
 * bag.get(Attempts); // 1
 * ```
 */
export interface ContextBag {
  /**
   * Reads a value.
   * @param key - the key
   * @returns the value, or undefined when unset
   */
  get<T>(key: ContextKey<T>): T | undefined;
  /**
   * Writes a value.
   * @param key - the key
   * @param value - the value
   * @returns this bag, for chaining
   */
  set<T>(key: ContextKey<T>, value: T): ContextBag;
  /**
   * Whether a value is set.
   * @param key - the key
   * @returns true when set
   */
  has(key: ContextKey<unknown>): boolean;
  /**
   * A copy of this bag (each streamed item gets its own copy of the stream's bag).
   * @returns a new bag with the same entries
   */
  clone(): ContextBag;
}

/**
 * Creates an empty {@link ContextBag}.
 *
 * @returns a new bag
 *
 * @example
 * ```ts
 * import { contextBag, contextKey } from '@hartonomous/pipelines';
 * const User = contextKey<{ id: string }>('user');
 * const bag = contextBag().set(User, { id: 'u1' });
 * ```
 */
export function contextBag(): ContextBag {
  return makeBag(new Map());
}

function makeBag(map: Map<ContextKey<unknown>, unknown>): ContextBag {
  const bag: ContextBag = {
    get: <T>(key: ContextKey<T>) => map.get(key) as T | undefined,
    set: <T>(key: ContextKey<T>, value: T) => {
      map.set(key, value);
      return bag;
    },
    has: (key) => map.has(key),
    clone: () => makeBag(new Map(map)),
  };
  return bag;
}

/**
 * What every step receives beside its input: who the item is, how to cancel, where to trace
 * and log, and the item's typed bag.
 *
 * @example
 * ```ts
 * import { step } from '@hartonomous/pipelines';
 *
 * const fetchPage = step('fetch', async (url: string, ctx) => {
 *   ctx.logger.debug({ url }, 'fetching');
 *   const res = await fetch(url, { signal: ctx.signal });
 *   return res.text();
 * });
 * ```
 */
export interface StepContext {
  /** Correlation id of the item (given by the caller or generated). */
  readonly correlationId: string;
  /**
   * Aborts when the item is cancelled: the caller's signal fired, the stream was unsubscribed,
   * or a timeout policy expired for this attempt. Pass it to every I/O call.
   */
  readonly signal: AbortSignal;
  /** The OpenTelemetry context whose active span is this step's span. */
  readonly otel: Context;
  /**
   * A pino child logger bound to pipeline, step, correlation id and trace id.
   * Created on first access, so steps that never log pay nothing.
   */
  readonly logger: Logger;
  /** Name of the pipeline running the step. */
  readonly pipeline: string;
  /** Name of the step. */
  readonly step: string;
  /** Position of the item in its stream (0 for `run`). */
  readonly index: number;
  /** The item's typed bag of user data, shared by all its steps. */
  readonly bag: ContextBag;
}

/**
 * What a batch step receives: the contexts of the items in the batch plus one signal that
 * aborts when every item of the batch has been cancelled (or the stream was unsubscribed).
 *
 * @example
 * ```ts
 * import { batchStep } from '@hartonomous/pipelines';
 *
 * const lengths = batchStep('lengths', async (texts: string[], ctx) => {
 *   ctx.logger.debug({ size: texts.length }, 'batch');
 *   return texts.map((t) => t.length);
 * }, { size: 64 });
 * ```
 */
export interface BatchContext {
  /** Contexts of the items, aligned with the inputs. */
  readonly items: readonly StepContext[];
  /** Aborts when the whole batch is cancelled. */
  readonly signal: AbortSignal;
  /** The OpenTelemetry context of the batch span (linked to each item's run span). */
  readonly otel: Context;
  /** A pino child logger bound to pipeline and step. */
  readonly logger: Logger;
  /** Name of the pipeline. */
  readonly pipeline: string;
  /** Name of the step. */
  readonly step: string;
}
