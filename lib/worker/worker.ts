import type { Logger } from 'pino';
import type { Subscription } from 'rxjs';
import { describeError } from '../core/errors.js';
import type { Outcome } from '../core/outcome.js';
import type { Pipeline } from '../core/pipeline.js';
import { LogEvents, logEvent } from '../observability/log-events.js';
import { silentLogger } from '../observability/logger.js';

/**
 * A source a worker can stop reading from cleanly: `read(signal)` resolves the next item, or
 * rejects with `signal.reason` without taking one when the signal aborts. A `BoundedQueue` and
 * the Service Bus source both are one.
 *
 * @typeParam T - item type
 */
export interface ReadableSource<T> {
  /**
   * Reads the next item.
   * @param signal - aborts a waiting read; no item is taken then
   * @returns the next item, or `{ done: true }` when the source is finished
   */
  read(signal?: AbortSignal): Promise<IteratorResult<T, unknown>>;
  /** Items waiting in the source, if it knows (reported as queue depth). */
  readonly size?: number;
}

/** Lifecycle state of a {@link Worker}. */
export type WorkerState = 'idle' | 'running' | 'stopping' | 'stopped';

/**
 * Options of {@link worker}.
 *
 * @typeParam I - item type
 * @typeParam O - pipeline output type
 */
export interface WorkerOptions<I, O> {
  /** Name for logs and health. @default the pipeline's name */
  name?: string;
  /**
   * Where work comes from. A {@link ReadableSource} (a bounded queue, a Service Bus source) is
   * stopped without losing an item; a plain AsyncIterable is stopped after its pending read.
   */
  source: ReadableSource<I> | AsyncIterable<I>;
  /** The pipeline each item goes through. */
  pipeline: Pipeline<I, O>;
  /** Most items in any one step at once. @default 8 */
  concurrency?: number;
  /** Items admitted beyond `concurrency` (see `StreamOptions.buffer`). @default the stream default */
  buffer?: number;
  /**
   * Called with every outcome (e.g. to complete or abandon a broker message). Awaited before
   * the worker counts the item as done, and during `stop`'s drain.
   */
  onOutcome?: (outcome: Outcome<I, O>) => void | PromiseLike<void>;
  /**
   * Called with each item that was still running when the drain timed out and was aborted
   * (e.g. to abandon its message so the broker redelivers it).
   */
  onAbandon?: (input: I) => void | PromiseLike<void>;
  /** Logger for lifecycle events. @default a silent logger */
  logger?: Logger;
}

/** Options of {@link Worker.stop}. */
export interface StopOptions {
  /**
   * How long in-flight items may run after reading stops; then they are aborted through their
   * signals. @default 30000
   */
  drainTimeoutMs?: number;
}

/** What happened during a {@link Worker.stop}. */
export interface StopReport {
  /** Whether every in-flight item finished within the drain timeout. */
  readonly drained: boolean;
  /** Items aborted when the drain timed out (each passed to `onAbandon`). */
  readonly abandoned: number;
  /** Items finished over the worker's life. */
  readonly processed: number;
  /** Of those, items that failed. */
  readonly failed: number;
}

/** A health snapshot of a {@link Worker}. */
export interface WorkerHealth {
  /** Worker name. */
  readonly name: string;
  /** Lifecycle state. */
  readonly state: WorkerState;
  /** Items read and not yet finished. */
  readonly inFlight: number;
  /** Items finished successfully. */
  readonly processed: number;
  /** Items finished with an error. */
  readonly failed: number;
  /** Items waiting in the source, when it reports a size. */
  readonly queueDepth: number | undefined;
  /** The last item error, as JSON. */
  readonly lastError: Record<string, unknown> | undefined;
}

/**
 * A long-running consumer of a source through a pipeline (the seed's BackgroundService).
 *
 * @example
 * ```ts
 * import { boundedQueue, pipeline, step, worker } from '@hartonomous/pipelines';
 *
 * const queue = boundedQueue<string>(100);
 * const w = worker({ source: queue, pipeline: pipeline('echo', step('echo', (s: string) => s)) });
 * w.start();
 * await queue.write('hello');
 * await w.stop({ drainTimeoutMs: 5_000 });
 * ```
 */
export interface Worker {
  /** Lifecycle state. */
  readonly state: WorkerState;
  /** Settles when the worker has stopped (by `stop`, or because the source ended). */
  readonly done: Promise<StopReport>;
  /** Starts consuming. Idempotent while running; throws once stopped. */
  start(): void;
  /**
   * Stops taking new work, lets in-flight items finish for up to `drainTimeoutMs`, then aborts
   * the rest through their AbortSignals. Idempotent: later calls return the same report.
   * @param options - drain timeout
   * @returns what happened
   */
  stop(options?: StopOptions): Promise<StopReport>;
  /**
   * A health snapshot for probes and metrics.
   * @returns state, counts and queue depth
   */
  health(): WorkerHealth;
}

/**
 * Creates a {@link Worker}: consumes `source` through `pipeline` with bounded concurrency,
 * with graceful drain and stop.
 *
 * @param options - source, pipeline, concurrency, outcome hooks
 * @returns a worker, not yet started
 *
 * @example
 * ```ts
 * import { boundedQueue, pipeline, step, worker } from '@hartonomous/pipelines';
 *
 * const queue = boundedQueue<number>({ capacity: 1_000 });
 * const w = worker({
 *   source: queue,
 *   pipeline: pipeline('square', step('square', async (n: number) => n * n)),
 *   concurrency: 16,
 *   onOutcome: (o) => { if (!o.ok) console.error(o.error); },
 * });
 * w.start();
 * process.once('SIGTERM', () => void w.stop({ drainTimeoutMs: 10_000 }));
 * ```
 */
export function worker<I, O>(options: WorkerOptions<I, O>): Worker {
  const name = options.name ?? options.pipeline.name;
  const logger = options.logger ?? silentLogger();
  const concurrency = options.concurrency ?? 8;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new TypeError(
      `worker('${name}'): concurrency must be a positive integer, got ${concurrency}`,
    );
  }
  const source = options.source;
  const readable = typeof (source as ReadableSource<I>).read === 'function';
  if (!readable && typeof (source as AsyncIterable<I>)[Symbol.asyncIterator] !== 'function') {
    throw new TypeError(`worker('${name}'): source must have read(signal) or be an AsyncIterable`);
  }

  let state: WorkerState = 'idle';
  let processed = 0;
  let failed = 0;
  let lastError: Record<string, unknown> | undefined;
  const live = new Map<I, number>();
  const settling = new Set<Promise<void>>();
  const reading = new AbortController();
  let subscription: Subscription | undefined;
  let streamDone!: () => void;
  const streamFinished = new Promise<void>((resolve) => {
    streamDone = resolve;
  });
  let report: Promise<StopReport> | undefined;
  let resolveDone!: (r: StopReport) => void;
  const done = new Promise<StopReport>((resolve) => {
    resolveDone = resolve;
  });

  const track = (input: I, delta: number): void => {
    const n = (live.get(input) ?? 0) + delta;
    if (n <= 0) live.delete(input);
    else live.set(input, n);
  };
  const inFlight = (): number => {
    let n = 0;
    for (const c of live.values()) n += c;
    return n;
  };

  async function* gate(): AsyncGenerator<I> {
    if (readable) {
      const r = source as ReadableSource<I>;
      while (!reading.signal.aborted) {
        let next: IteratorResult<I, unknown>;
        try {
          next = await r.read(reading.signal);
        } catch (e) {
          if (reading.signal.aborted) return;
          throw e;
        }
        if (next.done) return;
        track(next.value, 1);
        yield next.value;
      }
      return;
    }
    const it = (source as AsyncIterable<I>)[Symbol.asyncIterator]();
    try {
      while (!reading.signal.aborted) {
        const next = await it.next();
        if (next.done) return;
        track(next.value, 1);
        yield next.value;
      }
    } finally {
      await it.return?.();
    }
  }

  const onOutcome = (outcome: Outcome<I, O>): void => {
    if (outcome.ok) processed++;
    else {
      failed++;
      lastError = describeError(outcome.error);
      logEvent(logger, LogEvents.workerItemFailed, () => ({
        worker: name,
        step: outcome.failedStep,
        err: outcome.error,
      }));
    }
    const hook = options.onOutcome;
    if (!hook) {
      track(outcome.input, -1);
      return;
    }
    const p = Promise.resolve()
      .then(() => hook(outcome))
      .then(
        () => track(outcome.input, -1),
        (e: unknown) => {
          track(outcome.input, -1);
          lastError = describeError(e);
          logEvent(logger, LogEvents.workerItemFailed, () => ({
            worker: name,
            phase: 'onOutcome',
            err: e,
          }));
        },
      );
    settling.add(p);
    void p.finally(() => settling.delete(p));
  };

  const finish = async (drained: boolean, abandoned: I[]): Promise<StopReport> => {
    for (const input of abandoned) {
      try {
        await options.onAbandon?.(input);
      } catch (e) {
        lastError = describeError(e);
      }
    }
    state = 'stopped';
    const r: StopReport = { drained, abandoned: abandoned.length, processed, failed };
    logEvent(logger, LogEvents.workerStopped, () => ({ worker: name, ...r }));
    resolveDone(r);
    return r;
  };

  const self: Worker = {
    get state() {
      return state;
    },
    done,
    start() {
      if (state === 'running') return;
      if (state !== 'idle')
        throw new TypeError(`worker('${name}') was stopped; create a new worker`);
      state = 'running';
      logEvent(logger, LogEvents.workerStarted, () => ({ worker: name, concurrency }));
      subscription = options.pipeline
        .stream(gate(), {
          concurrency,
          ...(options.buffer !== undefined ? { buffer: options.buffer } : {}),
          logger,
        })
        .subscribe({
          next: onOutcome,
          error: (e: unknown) => {
            lastError = describeError(e);
            logEvent(logger, LogEvents.workerItemFailed, () => ({
              worker: name,
              phase: 'source',
              err: e,
            }));
            streamDone();
          },
          complete: () => streamDone(),
        });
      // the source ending on its own stops the worker
      void streamFinished.then(() => {
        if (state === 'running') void self.stop();
      });
    },
    stop(stopOptions = {}) {
      if (report) return report;
      const drainTimeoutMs = stopOptions.drainTimeoutMs ?? 30_000;
      if (!(drainTimeoutMs >= 0)) {
        throw new TypeError(`worker.stop(): drainTimeoutMs must be >= 0, got ${drainTimeoutMs}`);
      }
      if (state === 'idle') {
        state = 'stopped';
        report = finish(true, []);
        return report;
      }
      state = 'stopping';
      logEvent(logger, LogEvents.workerStopping, () => ({
        worker: name,
        inFlight: inFlight(),
        drainTimeoutMs,
      }));
      reading.abort();
      report = (async () => {
        let handle: NodeJS.Timeout | undefined;
        const timedOut = new Promise<'timeout'>((resolve) => {
          handle = setTimeout(() => resolve('timeout'), drainTimeoutMs);
        });
        const drained = async (): Promise<'drained'> => {
          await streamFinished;
          while (settling.size > 0) await Promise.allSettled([...settling]);
          return 'drained';
        };
        const result = await Promise.race([drained(), timedOut]);
        clearTimeout(handle);
        if (result === 'drained') return finish(true, []);
        logEvent(logger, LogEvents.workerDrainTimedOut, () => ({
          worker: name,
          inFlight: inFlight(),
        }));
        const abandoned: I[] = [];
        for (const [input, count] of live) for (let i = 0; i < count; i++) abandoned.push(input);
        live.clear();
        subscription?.unsubscribe();
        return finish(false, abandoned);
      })();
      return report;
    },
    health() {
      const depth = (source as ReadableSource<I>).size;
      return {
        name,
        state,
        inFlight: inFlight(),
        processed,
        failed,
        queueDepth: typeof depth === 'number' ? depth : undefined,
        lastError,
      };
    },
  };
  return self;
}
