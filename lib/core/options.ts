/**
 * The options of a pipeline and of its `run` and `stream` calls, in a module of their own so
 * the engine and the pipeline both read them without importing each other.
 * @module
 */

import type { Context } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { TelemetryOptions } from '../observability/telemetry.js';
import type { ContextBag } from './context.js';
import type { OverflowPolicy } from './source.js';

/**
 * Where a pipeline logs and traces. Given once to {@link pipeline}; `run` and `stream` may
 * override the logger.
 *
 * @example
 * ```ts
 * import { pipeline, step } from '@hartonomous/pipelines';
 * import { pino } from 'pino';
 *
 * const p = pipeline({ name: 'greet', logger: pino() }, step('hi', (s: string) => `hi ${s}`));
 * ```
 */
export interface PipelineOptions extends TelemetryOptions {
  /** Pipeline name, used in spans (`pipeline <name>`), logs, metrics and errors. */
  name: string;
  /** A pino logger; the pipeline logs through children of it. @default a silent logger */
  logger?: Logger;
}

/**
 * Options of one `run`.
 *
 * @example
 * ```ts
 * import { pipeline, step } from '@hartonomous/pipelines';
 *
 * const p = pipeline('double', step('double', (n: number) => n * 2));
 * await p.run(21, { correlationId: 'req-42', signal: AbortSignal.timeout(1_000) });
 * ```
 */
export interface RunOptions {
  /** Cancels the run; the run rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** Correlation id of the item. @default a random UUID */
  correlationId?: string;
  /** Parent OpenTelemetry context of the run span. @default the active context */
  otel?: Context;
  /** Logger for this run. @default the pipeline's logger */
  logger?: Logger;
  /** The item's bag of typed user data. @default an empty bag */
  bag?: ContextBag;
}

/**
 * Options of `stream` and `operator`.
 *
 * @typeParam I - input type
 *
 * @example
 * ```ts
 * import { pipeline, step } from '@hartonomous/pipelines';
 *
 * const p = pipeline('double', step('double', async (n: number) => n * 2));
 * p.stream([1, 2, 3], { concurrency: 2, ordered: true }).subscribe(console.log);
 * ```
 */
export interface StreamOptions<I> {
  /**
   * Most calls of any one step running at once (a step's own `concurrency` overrides it).
   * @default 8
   */
  concurrency?: number;
  /**
   * Items admitted beyond `concurrency`, so later steps and batches have work queued.
   * Items read from a pull source and not finished never exceed `concurrency + buffer`.
   * A push (Observable) source also gets a FIFO of `buffer` items in front of that window.
   * @default the larger of `concurrency` and twice the largest batch size of the steps
   */
  buffer?: number;
  /** Emit outcomes in input order (results wait for earlier items). @default false */
  ordered?: boolean;
  /**
   * What a push source does when its buffer is full: `'error'` fails the stream with a
   * `BufferOverflowError` and stops reading the source at once; the drop modes discard items
   * (counted, and reported to `onDrop`). A push source cannot `'wait'`.
   * @default 'error'
   */
  overflow?: Exclude<OverflowPolicy, 'wait'>;
  /** Called with each item a drop mode discarded. */
  onDrop?: (input: I) => void;
  /** Cancels the stream: in-flight items are aborted and the Observable completes. */
  signal?: AbortSignal;
  /**
   * Correlation id per item: a function of (input, index), or a prefix to which `:<index>` is
   * appended. @default a random UUID prefix per stream
   */
  correlationId?: string | ((input: I, index: number) => string);
  /** Parent OpenTelemetry context of every run span. @default the active context */
  otel?: Context;
  /** Logger for this stream. @default the pipeline's logger */
  logger?: Logger;
  /** Bag copied to every item. @default an empty bag */
  bag?: ContextBag;
}
