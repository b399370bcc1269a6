/**
 * The engine: runs a compiled {@link Plan} over a source. `stream` and `operator()` run it over
 * their source; `run` runs it over a source of one item. One scheduler, one set of semantics,
 * one place where cancellation happens.
 *
 * Items are pulled while fewer than `concurrency + buffer` are unfinished; each stage admits
 * items through a {@link Gate} (a step's own `concurrency`, else the stream's); a batch stage
 * groups items with a {@link Batcher} and runs batches through its gate; a failed item skips
 * the stages left; finished items leave through the {@link ReorderBuffer} when `ordered`.
 * @module
 */

import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { type Context, context as otelContext } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { asyncScheduler, Observable } from 'rxjs';
import { silentLogger } from '../observability/logger.js';
import { linkedController } from './abort.js';
import { Batcher, isWeight } from './batcher.js';
import type { ContextBag } from './context.js';
import { CancelledError } from './errors.js';
import { batchExec, itemExec, PolicyCall, type PolicySink } from './execute.js';
import { isPromiseLike } from './from-work.js';
import { Gate } from './gate.js';
import { type ItemExec, SessionTelemetry } from './instrument.js';
import { failItem, type Item, newItem } from './item.js';
import type { PipelineOptions, RunOptions, StreamOptions } from './options.js';
import type { Outcome } from './outcome.js';
import type { BatchNode, ItemNode, Plan } from './plan.js';
import { ReorderBuffer } from './reorder.js';
import { checkSource, driveSource, type Source, type SourceDriver } from './source.js';
import { isItemFailure } from './step.js';

/** What a session reports to its owner. */
interface SessionSink {
  /** An item finished (in order, when ordered). */
  outcome(item: Item, durationMs: number): void;
  /** Every item finished and the source ended. */
  complete(): void;
  /** The source failed. */
  error(error: unknown): void;
}

/** How a session runs. */
interface SessionConfig {
  readonly plan: Plan;
  /** Most calls of a stage at once, unless a step sets its own. */
  readonly concurrency: number;
  /** Most items admitted and not finished. */
  readonly window: number;
  readonly ordered: boolean;
  /** Every item's signal (a policy's attempts get signals linked to it). */
  readonly signal: AbortSignal;
  readonly parent: Context;
  readonly logger: Logger;
  readonly telemetry: SessionTelemetry;
  readonly bag: ContextBag | undefined;
  readonly copyBag: boolean;
  readonly idOf: (input: unknown, index: number) => string;
  /** Keep the unfinished items, so `cancel` can finish them (`run`). */
  readonly track: boolean;
}

/** A stage as the session sees it. */
interface StageRunner {
  offer(item: Item): void;
  /** Flushes a partial batch (batch stages only). */
  flush(): void;
  /** Items waiting inside the stage for more to arrive (a partial batch). */
  readonly held: number;
  clear(): void;
}

/**
 * One execution of a plan: a run, or one subscription of a stream.
 */
class Session {
  closed = false;
  private readonly stages: StageRunner[];
  /** For each stage: items that reached it or passed it (only batch stages read it). */
  private readonly reached: number[];
  private readonly batchStages: number[] = [];
  private readonly reorder: ReorderBuffer<Item> | undefined;
  private driver: SourceDriver | undefined;
  /** Unfinished items, kept only when the session may be cancelled item by item (`run`). */
  private readonly tracked: Set<Item> | undefined;
  private admitted = 0;
  private live = 0;
  private ended = false;
  /**
   * The clock read by the `emit` running now (-1 outside one): items admitted because that
   * item left start at the same instant, so a steady stream reads the clock once per item.
   */
  private now = -1;

  constructor(
    readonly cfg: SessionConfig,
    private readonly sink: SessionSink,
  ) {
    const t = cfg.telemetry;
    this.stages = cfg.plan.stages.map((stage, k) => {
      if (stage.kind === 'batch') {
        this.batchStages.push(k);
        return new BatchStage(this, k, stage.node);
      }
      const limit = stage.concurrency ?? cfg.concurrency;
      return new ItemStage(
        this,
        k,
        stage.nodes,
        stage.nodes.map((node) => t.item(node, itemExec(node))),
        limit,
      );
    });
    this.reached = cfg.plan.stages.map(() => 0);
    this.reorder = cfg.ordered ? new ReorderBuffer<Item>((item) => this.emit(item)) : undefined;
    this.tracked = cfg.track ? new Set() : undefined;
  }

  /** Starts reading `source`. */
  start(source: Source<unknown>, push: StreamOptions<unknown>): void {
    this.driver = driveSource(
      source,
      {
        room: () => this.live < this.cfg.window,
        admit: (input) => this.admit(input),
        end: () => this.end(),
        fail: (e) => this.fail(e),
        drop: (input) => {
          this.cfg.telemetry.dropped();
          push.onDrop?.(input);
        },
      },
      { buffer: this.cfg.window - this.cfg.concurrency, overflow: push.overflow ?? 'error' },
    );
    this.driver.pull();
  }

  /** Items admitted so far. */
  get admittedCount(): number {
    return this.admitted;
  }

  private admit(input: unknown): void {
    const cfg = this.cfg;
    const index = this.admitted++;
    const item = newItem({
      index,
      input,
      correlationId: cfg.idOf(input, index),
      signal: cfg.signal,
      otel: cfg.parent,
      bag: cfg.bag,
      copyBag: cfg.copyBag,
      logger: cfg.logger,
      start: this.now >= 0 ? this.now : performance.now(),
    });
    this.live++;
    this.tracked?.add(item);
    cfg.telemetry.admitted(item);
    this.enter(item, 0);
  }

  private end(): void {
    this.ended = true;
    this.checkIdle();
    this.checkComplete();
  }

  private fail(error: unknown): void {
    if (this.closed) return;
    this.close();
    this.sink.error(error);
  }

  /** An item leaves stage `k` (done, or failed there). */
  advance(item: Item, k: number): void {
    if (this.closed) return;
    if (item.failed || k + 1 === this.stages.length) {
      this.skip(k);
      this.finish(item);
      return;
    }
    this.enter(item, k + 1);
  }

  private enter(item: Item, k: number): void {
    this.reached[k] = (this.reached[k] ?? 0) + 1;
    (this.stages[k] as StageRunner).offer(item);
    if (this.ended && this.batchStages.length > 0) this.checkIdle();
  }

  /** Counts `item` as past every batch stage after `k` (it will not reach them). */
  private skip(k: number): void {
    for (const b of this.batchStages) if (b > k) this.reached[b] = (this.reached[b] ?? 0) + 1;
    if (this.ended && this.batchStages.length > 0) this.checkIdle();
  }

  /** Flushes partial batches nothing more can reach. */
  private checkIdle(): void {
    for (const b of this.batchStages) {
      const stage = this.stages[b] as StageRunner;
      if (stage.held > 0 && this.reached[b] === this.admitted) stage.flush();
    }
  }

  private finish(item: Item): void {
    if (this.reorder !== undefined) this.reorder.push(item.index, item);
    else this.emit(item);
  }

  private emit(item: Item): void {
    if (this.closed) return;
    this.live--;
    this.tracked?.delete(item);
    const outer = this.now;
    const now = performance.now();
    this.now = now;
    try {
      this.sink.outcome(item, this.cfg.telemetry.finished(item, now));
      if (this.closed) return;
      this.driver?.pull();
      this.checkComplete();
    } finally {
      this.now = outer;
    }
  }

  private checkComplete(): void {
    if (this.ended && this.live === 0 && !this.closed) {
      this.closed = true;
      this.sink.complete();
    }
  }

  /**
   * Stops at once and finishes every unfinished item as failed with `reason` (a cancelled
   * `run`: its caller gets the outcome now, whether or not the step honours its signal).
   * @param reason - the abort reason
   */
  cancel(reason: unknown): void {
    if (this.closed || this.tracked === undefined) return;
    const items = [...this.tracked];
    this.closed = true;
    this.driver?.stop();
    for (const stage of this.stages) stage.clear();
    for (const item of items) {
      item.failed = true;
      item.error = reason;
      this.sink.outcome(item, this.cfg.telemetry.finished(item, performance.now()));
    }
  }

  /** Stops reading and drops everything held; telemetry ends the spans left. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.driver?.stop();
    for (const stage of this.stages) stage.clear();
    this.reorder?.clear();
    this.cfg.telemetry.abandoned();
  }
}

/** Consecutive item steps run one after another for each item, `limit` items at once. */
class ItemStage implements StageRunner, PolicySink {
  readonly held = 0;
  private readonly gate: Gate<Item>;

  constructor(
    private readonly session: Session,
    private readonly k: number,
    private readonly nodes: readonly ItemNode[],
    private readonly execs: readonly ItemExec[],
    limit: number,
  ) {
    this.gate = new Gate<Item>(limit, (item) => this.run(item, 0));
  }

  offer(item: Item): void {
    this.gate.offer(item);
  }

  flush(): void {}

  clear(): void {
    this.gate.clear();
  }

  /**
   * Runs the item's steps from `from`: synchronous steps in a loop, a promise through
   * `resume`, a step with a policy through its {@link PolicyCall}'s callbacks.
   */
  private run(item: Item, from = 0): void {
    const execs = this.execs;
    for (let i = from; i < execs.length; i++) {
      let out: unknown;
      try {
        out = (execs[i] as ItemExec)(item);
      } catch (e) {
        failItem(item, this.nodes[i] as ItemNode, e);
        break;
      }
      if (out instanceof PolicyCall) {
        out.start(this, item, i);
        return;
      }
      if (isPromiseLike(out)) {
        void this.resume(item, i, out);
        return;
      }
      item.value = out;
    }
    this.done(item);
  }

  /** Continues an item after an asynchronous step. */
  private async resume(item: Item, from: number, pending: PromiseLike<unknown>): Promise<void> {
    const execs = this.execs;
    let i = from;
    try {
      item.value = await pending;
      for (i = from + 1; i < execs.length; i++) {
        const out = (execs[i] as ItemExec)(item);
        if (out instanceof PolicyCall) {
          out.start(this, item, i);
          return;
        }
        item.value = isPromiseLike(out) ? await out : out;
      }
    } catch (e) {
      failItem(item, this.nodes[i] as ItemNode, e);
    }
    this.done(item);
  }

  resolved(item: Item, step: number, value: unknown): void {
    if (this.session.closed) return;
    item.value = value;
    this.run(item, step + 1);
  }

  rejected(item: Item, step: number, error: unknown): void {
    if (this.session.closed) return;
    failItem(item, this.nodes[step] as ItemNode, error);
    this.done(item);
  }

  private done(item: Item): void {
    if (this.session.closed) return;
    this.session.advance(item, this.k);
    this.gate.release();
  }
}

/** A batch step: items grouped by size, time and weight; `limit` batches at once. */
class BatchStage implements StageRunner {
  private readonly batcher: Batcher<Item>;
  private readonly gate: Gate<Item[]>;
  private readonly exec: (items: readonly Item[]) => unknown;

  constructor(
    private readonly session: Session,
    private readonly k: number,
    private readonly node: BatchNode,
  ) {
    const cfg = session.cfg;
    this.exec = cfg.telemetry.batch(node, batchExec(node, cfg));
    this.gate = new Gate<Item[]>(node.concurrency ?? cfg.concurrency, (items) => this.run(items));
    this.batcher = new Batcher<Item>(
      {
        size: node.size,
        timeMs: node.timeMs,
        maxWeight: node.maxWeight,
        scheduler: asyncScheduler,
      },
      (items) => this.gate.offer(items),
    );
  }

  get held(): number {
    return this.batcher.size;
  }

  offer(item: Item): void {
    const weigh = this.node.weight;
    let w = 1;
    if (weigh !== undefined) {
      try {
        w = weigh(item.value);
        if (!isWeight(w)) {
          throw new TypeError(
            `batch step '${this.node.name}': weight(input) must be a finite number >= 0, got ${String(w)}`,
          );
        }
      } catch (e) {
        failItem(item, this.node, e);
        this.session.advance(item, this.k);
        return;
      }
    }
    this.batcher.add(item, w);
  }

  flush(): void {
    this.batcher.flush();
  }

  clear(): void {
    this.batcher.discard();
    this.gate.clear();
  }

  private run(items: Item[]): void {
    let out: unknown;
    try {
      out = this.exec(items);
    } catch (e) {
      this.settle(items, undefined, e);
      return;
    }
    if (isPromiseLike(out)) {
      out.then(
        (results) => this.settle(items, results as ReadonlyArray<unknown>, undefined),
        (e: unknown) => this.settle(items, undefined, e),
      );
      return;
    }
    this.settle(items, out as ReadonlyArray<unknown>, undefined);
  }

  private settle(items: Item[], results: ReadonlyArray<unknown> | undefined, error: unknown): void {
    if (this.session.closed) return;
    const node = this.node;
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as Item;
      if (results === undefined) failItem(item, node, error);
      else {
        const r = results[i];
        if (isItemFailure(r)) failItem(item, node, r.error);
        else item.value = r;
      }
    }
    for (const item of items) this.session.advance(item, this.k);
    this.gate.release();
  }
}

/** The outcome of a finished item. */
function outcomeOf<I, O>(item: Item, durationMs: number): Outcome<I, O> {
  if (item.failed) {
    return {
      ok: false,
      error: item.error,
      failedStep: item.failedStep,
      input: item.input as I,
      index: item.index,
      correlationId: item.correlationId,
      durationMs,
    };
  }
  return {
    ok: true,
    value: item.value as O,
    input: item.input as I,
    index: item.index,
    correlationId: item.correlationId,
    durationMs,
  };
}

/**
 * Streams `source` through `plan`: the engine behind `Pipeline.stream` and `operator()`.
 * @internal
 */
export function streamPlan<I, O>(
  plan: Plan,
  options: PipelineOptions,
  source: Source<I>,
  streamOptions: StreamOptions<I> = {},
): Observable<Outcome<I, O>> {
  const concurrency = streamOptions.concurrency ?? 8;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new TypeError(`stream(): concurrency must be a positive integer, got ${concurrency}`);
  }
  checkSource(source);
  const buffer = streamOptions.buffer ?? Math.max(concurrency, 2 * plan.largestBatch);
  if (!Number.isInteger(buffer) || buffer < 0) {
    throw new TypeError(`stream(): buffer must be an integer >= 0, got ${buffer}`);
  }
  const overflow = streamOptions.overflow ?? 'error';
  if (overflow !== 'error' && overflow !== 'dropOldest' && overflow !== 'dropNewest') {
    throw new TypeError(
      `stream(): overflow must be 'error', 'dropOldest' or 'dropNewest', got ${String(overflow)}`,
    );
  }

  return new Observable<Outcome<I, O>>((subscriber) => {
    const logger = streamOptions.logger ?? options.logger ?? silentLogger();
    const parent = streamOptions.otel ?? otelContext.active();
    const { controller, dispose } = linkedController(streamOptions.signal);
    // every in-flight attempt of a step with a policy may listen on this signal: no cap
    setMaxListeners(0, controller.signal);
    const signal = controller.signal;
    const prefix =
      typeof streamOptions.correlationId === 'string' ? streamOptions.correlationId : randomUUID();
    const idOf =
      typeof streamOptions.correlationId === 'function'
        ? (streamOptions.correlationId as (input: unknown, index: number) => string)
        : (_: unknown, index: number) => `${prefix}:${index}`;
    const telemetry = new SessionTelemetry({
      pipeline: plan.pipeline,
      telemetry: options,
      logger,
      parent,
      mode: 'stream',
    });
    const session = new Session(
      {
        plan,
        concurrency,
        window: concurrency + buffer,
        ordered: streamOptions.ordered === true,
        signal,
        parent,
        logger,
        telemetry,
        bag: streamOptions.bag,
        copyBag: true,
        idOf,
        track: false,
      },
      {
        outcome: (item, durationMs) => subscriber.next(outcomeOf<I, O>(item, durationMs)),
        complete: () => {
          telemetry.completed(session.admittedCount);
          subscriber.complete();
        },
        error: (e) => {
          telemetry.failed(e);
          subscriber.error(e);
        },
      },
    );
    const onAbort = (): void => subscriber.complete();
    signal.addEventListener('abort', onAbort, { once: true });
    telemetry.started({ concurrency, buffer });
    if (!signal.aborted) {
      session.start(source as Source<unknown>, streamOptions as StreamOptions<unknown>);
    }
    return () => {
      signal.removeEventListener('abort', onAbort);
      session.close();
      if (!signal.aborted) {
        controller.abort(new CancelledError(`stream of pipeline '${plan.pipeline}'`));
      }
      dispose();
    };
  });
}

/**
 * Runs one input through `plan`: a session over a source of one item.
 * @internal
 */
export function runPlan(
  plan: Plan,
  options: PipelineOptions,
  input: unknown,
  runOptions: RunOptions = {},
): Promise<unknown> {
  return new Promise<unknown>((resolve, reject) => {
    const logger = runOptions.logger ?? options.logger ?? silentLogger();
    const parent = runOptions.otel ?? otelContext.active();
    const { controller, dispose } = linkedController(runOptions.signal);
    const signal = controller.signal;
    const correlationId = runOptions.correlationId ?? randomUUID();
    const telemetry = new SessionTelemetry({
      pipeline: plan.pipeline,
      telemetry: options,
      logger,
      parent,
      mode: 'run',
    });
    if (signal.aborted) {
      dispose();
      reject(signal.reason);
      return;
    }
    let settled = false;
    const onAbort = (): void => session.cancel(signal.reason);
    const session = new Session(
      {
        plan,
        concurrency: 1,
        window: 1,
        ordered: false,
        signal,
        parent,
        logger,
        telemetry,
        bag: runOptions.bag,
        copyBag: false,
        idOf: () => correlationId,
        track: true,
      },
      {
        outcome: (item, durationMs) => {
          if (settled) return;
          settled = true;
          signal.removeEventListener('abort', onAbort);
          dispose();
          const cancelled = signal.aborted;
          telemetry.runEnded(item, durationMs, cancelled);
          if (item.failed) reject(item.error);
          else resolve(item.value);
        },
        complete: () => {},
        error: (e) => {
          if (settled) return;
          settled = true;
          signal.removeEventListener('abort', onAbort);
          dispose();
          reject(e);
        },
      },
    );
    telemetry.started({ correlationId });
    signal.addEventListener('abort', onAbort, { once: true });
    session.start([input], {});
  });
}
