/**
 * One item's state while it goes through a plan, and the contexts its steps receive.
 * @module
 */

import { type Context, type Span, trace } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { linkedController, noop } from './abort.js';
import { type BatchContext, type ContextBag, contextBag, type StepContext } from './context.js';
import { CancelledError, isStepError, StepError } from './errors.js';
import type { PlanNode, Scope } from './plan.js';

/**
 * What {@link newItem} needs to start an item.
 * @internal
 */
export interface ItemInit {
  /** Position of the item in its stream (0 for `run`). */
  readonly index: number;
  /** The input as read from the source. */
  readonly input: unknown;
  /** The item's correlation id. */
  readonly correlationId: string;
  /** Aborts when the item is cancelled. */
  readonly signal: AbortSignal;
  /** The parent OpenTelemetry context of the item's spans. */
  readonly otel: Context;
  /** The bag the item starts from. */
  readonly bag: ContextBag | undefined;
  /** Whether the item gets a copy of `bag` (a stream's items) or `bag` itself (`run`). */
  readonly copyBag: boolean;
  /** The session's logger (step loggers are children of it). */
  readonly logger: Logger;
  /** `performance.now()` at admission. */
  readonly start: number;
}

/**
 * One item going through the plan.
 * @internal
 */
export interface Item {
  readonly index: number;
  readonly input: unknown;
  readonly correlationId: string;
  readonly signal: AbortSignal;
  readonly logger: Logger;
  /** The current value (the input, then each step's output). */
  value: unknown;
  /** Whether a step failed; `error` and `failedStep` say which and why. */
  failed: boolean;
  error: unknown;
  failedStep: string;
  /** The parent context of the next step span (the run span, or a nested pipeline's span). */
  otel: Context;
  /** The item's run span, when telemetry made one. */
  span: Span | undefined;
  /** Whether the run span records (step spans are made only then). */
  traced: boolean;
  /** Telemetry of the nested pipelines the item is inside, innermost last. */
  scopes: ScopeState[] | undefined;
  /** `performance.now()` when the item was admitted. */
  readonly start: number;
  bag: ContextBag | undefined;
  readonly seed: ContextBag | undefined;
  readonly copyBag: boolean;
}

/**
 * Telemetry of one nested pipeline an item is inside.
 * @internal
 */
export interface ScopeState {
  /** The nested pipeline. */
  readonly scope: Scope;
  readonly span: Span | undefined;
  readonly start: number;
  /** The item's `otel` before the scope opened. */
  readonly outer: Context;
}

/**
 * Starts an item.
 * @internal
 */
export function newItem(init: ItemInit): Item {
  return {
    index: init.index,
    input: init.input,
    correlationId: init.correlationId,
    signal: init.signal,
    logger: init.logger,
    value: init.input,
    failed: false,
    error: undefined,
    failedStep: '',
    otel: init.otel,
    span: undefined,
    traced: false,
    scopes: undefined,
    start: init.start,
    bag: undefined,
    seed: init.bag,
    copyBag: init.copyBag,
  };
}

/** The item's bag, created on first use (most steps never touch it). */
function bagOf(item: Item): ContextBag {
  let bag = item.bag;
  if (bag === undefined) {
    const seed = item.seed;
    bag = seed === undefined ? contextBag() : item.copyBag ? seed.clone() : seed;
    item.bag = bag;
  }
  return bag;
}

/**
 * Records that `item` failed at `node`: the error is wrapped once, in a `StepError` naming the
 * node's step and pipeline, unless the item was cancelled (then it is the abort reason) or it
 * already is a `StepError` (a step that ran another pipeline).
 * @internal
 */
export function failItem(item: Item, node: PlanNode, e: unknown): void {
  if (item.failed) return;
  item.failed = true;
  const error = item.signal.aborted
    ? item.signal.reason
    : isStepError(e)
      ? e
      : new StepError(node.pipeline, node.name, item.correlationId, e);
  item.error = error;
  item.failedStep = isStepError(error) ? error.step : node.name;
}

/**
 * Something that hands out an AbortSignal (the item's, or an attempt's own).
 * @internal
 */
export interface SignalSource {
  readonly signal: AbortSignal;
}

/**
 * The context of one call of an item step (or of one item in a batch call).
 * @internal
 */
export class ItemContext implements StepContext {
  #logger: Logger | undefined;

  /**
   * @param node - the step
   * @param item - the item
   * @param otel - the step's context (its span, or the item's parent context)
   * @param source - where the signal comes from @defaultValue the item
   */
  constructor(
    private readonly node: PlanNode,
    private readonly item: Item,
    readonly otel: Context,
    private readonly source: SignalSource = item,
  ) {}

  get signal(): AbortSignal {
    return this.source.signal;
  }
  get correlationId(): string {
    return this.item.correlationId;
  }
  get index(): number {
    return this.item.index;
  }
  get pipeline(): string {
    return this.node.pipeline;
  }
  get step(): string {
    return this.node.name;
  }
  get bag(): ContextBag {
    return bagOf(this.item);
  }
  get logger(): Logger {
    this.#logger ??= this.item.logger.child({
      pipeline: this.node.pipeline,
      step: this.node.name,
      correlationId: this.item.correlationId,
      traceId: trace.getSpanContext(this.otel)?.traceId,
    });
    return this.#logger;
  }
}

const OPEN = 0;
const SETTLED = 1;
const CANCELLED = 2;

/**
 * The signal of one attempt of a step with a policy: aborted when the policy drops the attempt
 * (a timeout, a losing hedge) or the item is cancelled, but created only when the step reads
 * it. An AbortController per attempt costs more than many a step, and a step that never reads
 * its signal cannot be cancelled by one. Doubles as the attempt's teardown (`unsubscribe`).
 * @internal
 */
export class AttemptSignal implements SignalSource {
  #state = OPEN;
  #controller: AbortController | undefined;
  #dispose: () => void = noop;

  /** @param parent - the item's (or batch's) signal */
  constructor(private readonly parent: AbortSignal) {}

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      if (this.#state === SETTLED) return this.parent;
      const { controller, dispose } = linkedController(this.parent);
      if (this.#state === CANCELLED) controller.abort(new CancelledError('work'));
      this.#controller = controller;
      this.#dispose = dispose;
    }
    return this.#controller.signal;
  }

  /** The attempt produced its outcome: its signal will not abort any more. */
  settle(): void {
    if (this.#state !== OPEN) return;
    this.#state = SETTLED;
    this.#dispose();
  }

  /** The attempt was dropped before its outcome: abort its signal. */
  unsubscribe(): void {
    if (this.#state !== OPEN) return;
    this.#state = CANCELLED;
    this.#dispose();
    this.#controller?.abort(new CancelledError('work'));
  }
}

/**
 * The context of a batch call: the items' contexts share the call's signal.
 * @internal
 */
export function batchContext(
  node: PlanNode,
  items: readonly Item[],
  source: SignalSource,
  otel: Context,
  logger: Logger,
): BatchContext {
  let child: Logger | undefined;
  return {
    items: items.map((it) => new ItemContext(node, it, otel, source)),
    get signal() {
      return source.signal;
    },
    otel,
    pipeline: node.pipeline,
    step: node.name,
    get logger() {
      child ??= logger.child({
        pipeline: node.pipeline,
        step: node.name,
        batchSize: items.length,
      });
      return child;
    },
  };
}
