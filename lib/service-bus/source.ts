import type { ServiceBusReceivedMessage, ServiceBusReceiver } from '@azure/service-bus';
import type { Context } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { describeError, messageOf } from '../core/errors.js';
import { LogEvents, logEvent } from '../observability/log-events.js';
import { silentLogger } from '../observability/logger.js';
import { instruments, type TelemetryOptions } from '../observability/telemetry.js';
import { backoffFunction } from '../operators/backoff.js';
import {
  optionalInt,
  requireEntity,
  resolveClient,
  type ServiceBusConnectionOptions,
} from './connection.js';
import { extractTraceContext } from './extract-trace-context.js';
import {
  type DeadLetterDetails,
  type SettleAction,
  type Settleable,
  type SettleOptions,
  type SettleOutcome,
  type SettlePolicy,
  settleBy,
} from './settle-by.js';

/** Options of {@link serviceBusSource}. */
export interface ServiceBusSourceOptions<T>
  extends ServiceBusConnectionOptions,
    TelemetryOptions,
    SettlePolicy {
  /** The queue to receive from (`<topic>/Subscriptions/<name>` for a subscription). */
  queue: string;
  /**
   * Most messages held at once: handed to consumers and not yet settled, plus received and
   * waiting to be handed out. The source asks the broker for more only below this.
   * @default 16
   */
  maxConcurrent?: number;
  /** Most messages asked for in one receive call (capped by free capacity). @default maxConcurrent */
  prefetch?: number;
  /** How long one receive call waits for the first message before asking again. @default 1000 */
  maxWaitTimeInMs?: number;
  /**
   * The SDK renews the lock of every received message until it is settled or this much time has
   * passed; 0 turns auto-renewal off (use {@link ReceivedItem.renewLock}).
   * @default 300_000 (the SDK's default, 5 minutes)
   */
  maxAutoLockRenewalDurationInMs?: number;
  /** How long `close()` waits for handed-out items to be settled before closing anyway. @default 30_000 */
  closeTimeoutMs?: number;
  /**
   * How long the SDK waits for the broker to confirm a drain at the end of a receive call
   * before it closes the link. The SDK's own 200 ms is missed whenever the event loop stalls
   * that long (CPU-bound steps, a loaded machine), and a closed link loses the lock of every
   * message it delivered: all of them are redelivered and processed again (3,586 locks lost
   * to 16 closed links for 3,000 messages in the scale-out test at load 25). Set through an SDK internal of
   * `@azure/service-bus` 7.9.x; without it (another SDK version) the SDK's default applies.
   * @default 10_000
   */
  receiveDrainTimeoutMs?: number;
  /**
   * Turns a message into the item body. A throw dead-letters the message on its first delivery
   * (`DecodeFailed`, with the error's message as the description); {@link jsonObjectBody}
   * accepts JSON objects only.
   * @default the SDK's decoded body, whatever it is (JSON bodies arrive as objects)
   */
  decode?: (message: ServiceBusReceivedMessage) => T;
  /** Aborting it closes the source. @default undefined */
  signal?: AbortSignal;
  /** Logger for the catalog events. @default a silent logger */
  logger?: Logger;
}

/**
 * One received, locked message. Settle it exactly once: the settle helpers are idempotent (the
 * first call decides; later calls of any kind return the same promise).
 * @typeParam T - body type
 */
export interface ReceivedItem<T> extends Settleable {
  /** The decoded body. */
  readonly body: T;
  /** The SDK's message (all broker properties). */
  readonly message: ServiceBusReceivedMessage;
  /** The message id. */
  readonly messageId: string;
  /** Deliveries before this one (0 on the first delivery, +1 after each abandon or lost lock). */
  readonly deliveryCount: number;
  /**
   * The producer's trace context from `Diagnostic-Id`, for a span link (or parent); `ROOT_CONTEXT`
   * when the message carries none.
   */
  readonly traceContext: Context;
  /** What was done with the message, once a settle call succeeded. */
  readonly settled: SettleAction | undefined;
  /** Removes the message from the queue. Call only after the work committed. */
  complete(): Promise<void>;
  /** Returns the message to the queue (deliveryCount + 1). `reason` is only logged. */
  abandon(reason?: unknown): Promise<void>;
  /** Moves the message to `<queue>/$DeadLetterQueue` with the reason and description. */
  deadLetter(details: DeadLetterDetails): Promise<void>;
  /** Renews the lock now. @returns the new lock expiry */
  renewLock(): Promise<Date>;
  /**
   * {@link settleBy} with the source's policy (`isPermanent`, `maxDeliveryCount`,
   * `redeliveryBackoff`); the backoff before an abandon ends early when `options.signal` aborts
   * or the source closes.
   */
  settleBy(outcome: SettleOutcome, options?: SettleOptions): Promise<SettleAction>;
}

/**
 * What a {@link ServiceBusSource} did with messages so far, counted when the broker accepted
 * the settlement: these are the numbers the broker's own counters show for this consumer.
 */
export interface ServiceBusSourceCounts {
  /** Messages completed. */
  readonly completed: number;
  /** Messages abandoned (by the consumer, on a transient failure, or on close). */
  readonly abandoned: number;
  /**
   * Messages dead-lettered: by `settleBy`/`deadLetter`, and before being handed out
   * (`DecodeFailed`, `MaxDeliveryCountExceeded`).
   */
  readonly deadLettered: number;
  /** Settle calls the broker refused or that failed (the lock was lost; it redelivers). */
  readonly settleFailures: number;
}

/**
 * A pull-based Service Bus receiver: iterate it with `for await`. Breaking out of the loop (or
 * `close()`) stops receiving.
 * @typeParam T - body type
 */
export interface ServiceBusSource<T> extends AsyncIterable<ReceivedItem<T>> {
  /** The queue received from. */
  readonly queue: string;
  /** Items handed out and not yet settled. */
  readonly inFlight: number;
  /** Items received and waiting to be handed out. */
  readonly buffered: number;
  /** The same as `buffered`: the queue depth a `worker()` reports in its health. */
  readonly size: number;
  /** Settlements so far (every one the source made, also those before handing a message out). */
  readonly counts: ServiceBusSourceCounts;
  /**
   * Takes the next item, receiving from the broker when none is buffered (the `ReadableSource`
   * contract of `worker()`, so a worker can use the source as it is). When `signal` aborts it
   * rejects with `signal.reason` and takes nothing: a receive already running completes into
   * the buffer, for the next read (or to be abandoned by `close()`), so no message is lost.
   * @param signal - aborts a waiting read
   * @returns the next item, or `{ done: true }` once the source is closed
   */
  read(signal?: AbortSignal): Promise<IteratorResult<ReceivedItem<T>, undefined>>;
  /**
   * Stops receiving, abandons items not yet handed out, waits (up to `closeTimeoutMs`) for
   * handed-out items to be settled, then closes the receiver (and the client if owned).
   * Settle in-flight items before awaiting `close()` from the same task.
   * @returns a promise that resolves when everything is closed
   */
  close(): Promise<void>;
}

/**
 * Receives messages from a Service Bus queue in peekLock mode as an AsyncIterable of
 * {@link ReceivedItem}s, pulled by demand: the source calls `receiveMessages(n)` only when a
 * consumer asks for the next item and fewer than `maxConcurrent` messages are held, so nothing
 * is buffered without bound. Locks are renewed by the SDK while work runs
 * (`maxAutoLockRenewalDurationInMs`), or by hand with `renewLock()`.
 *
 * Poison messages never block the queue: a message that already had `maxDeliveryCount`
 * deliveries, or whose `decode` throws, is dead-lettered before it is handed out, and
 * `item.settleBy(outcome)` dead-letters permanent failures and the last allowed attempt.
 * On `close()` nothing is lost: items not yet handed out are abandoned, and items still held
 * after the timeout return to the queue when the receiver closes (or their lock expires).
 *
 * @param options - connection, queue, concurrency, lock renewal and settle policy
 * @returns the source
 *
 * @example
 * ```ts
 * import { trace } from '@opentelemetry/api';
 * import { serviceBusSource } from '@hartonomous/pipelines/service-bus';
 *
 * const source = serviceBusSource<{ atomId: number }>({
 *   connectionString: process.env.SERVICEBUS_CONNECTION_STRING,
 *   queue: 'atoms',
 *   maxDeliveryCount: 5,
 * });
 * for await (const item of source) {
 *   const producer = trace.getSpanContext(item.traceContext);
 *   try {
 *     await index(item.body);
 *     await item.settleBy({ ok: true });
 *   } catch (error) {
 *     await item.settleBy({ ok: false, error });
 *   }
 * }
 * ```
 * @see {@link settleBy}
 */
export function serviceBusSource<T = unknown>(
  options: ServiceBusSourceOptions<T>,
): ServiceBusSource<T> {
  const who = 'serviceBusSource';
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`${who}: options are required`);
  }
  const queue = requireEntity(options.queue, 'queue', who);
  optionalInt(options.maxConcurrent, 'maxConcurrent', who, 1, 2047);
  optionalInt(options.prefetch, 'prefetch', who, 1, 2047);
  optionalInt(options.maxWaitTimeInMs, 'maxWaitTimeInMs', who, 1);
  optionalInt(options.maxAutoLockRenewalDurationInMs, 'maxAutoLockRenewalDurationInMs', who, 0);
  optionalInt(options.closeTimeoutMs, 'closeTimeoutMs', who, 0);
  optionalInt(options.receiveDrainTimeoutMs, 'receiveDrainTimeoutMs', who, 1);
  optionalInt(options.maxDeliveryCount, 'maxDeliveryCount', who, 1);
  if (options.redeliveryBackoff !== undefined && options.redeliveryBackoff !== false) {
    backoffFunction(options.redeliveryBackoff); // validates
  }
  if (options.decode !== undefined && typeof options.decode !== 'function') {
    throw new TypeError(`${who}: decode must be a function`);
  }
  if (options.isPermanent !== undefined && typeof options.isPermanent !== 'function') {
    throw new TypeError(`${who}: isPermanent must be a function`);
  }
  const maxConcurrent = options.maxConcurrent ?? 16;
  const prefetch = Math.min(options.prefetch ?? maxConcurrent, maxConcurrent);
  const maxWaitTimeInMs = options.maxWaitTimeInMs ?? 1000;
  const closeTimeoutMs = options.closeTimeoutMs ?? 30_000;
  const maxDeliveryCount = options.maxDeliveryCount ?? 10;
  const policy: SettlePolicy = {
    maxDeliveryCount,
    isPermanent: options.isPermanent,
    redeliveryBackoff: options.redeliveryBackoff,
  };
  const decode = options.decode ?? ((m: ServiceBusReceivedMessage) => m.body as T);
  const logger = options.logger ?? silentLogger();
  const signal = options.signal;

  const { client, owned } = resolveClient(options, who);
  const receiver: ServiceBusReceiver = client.createReceiver(queue, {
    receiveMode: 'peekLock',
    maxAutoLockRenewalDurationInMs: options.maxAutoLockRenewalDurationInMs ?? 300_000,
  });
  setDrainTimeout(receiver, options.receiveDrainTimeoutMs ?? 10_000);

  const buffer: Array<ReceivedItem<T>> = [];
  /** Items handed to a consumer and not yet settled (they count against maxConcurrent). */
  const handedOut = new WeakSet<ReceivedItem<T>>();
  const settling = new Set<Promise<unknown>>();
  let inFlight = 0;
  let stopped = false;
  let fetching: Promise<void> | undefined;
  let fetchAbort: AbortController | undefined;
  let waiters: Array<() => void> = [];
  let closing: Promise<void> | undefined;
  /** Aborted when the source stops: redelivery backoffs end and their messages are abandoned. */
  const stopping = new AbortController();
  const counts = { completed: 0, abandoned: 0, deadLettered: 0, settleFailures: 0 };

  // rhea 3.0.5 (under @azure/service-bus 7.9.5) merges dispositions issued in the same tick for
  // consecutive deliveries into one frame with the FIRST outcome: complete(A) + abandon(B) in one
  // tick completes B too. Settle calls therefore go out in turns, each turn at least one
  // macrotask after the previous one and holding calls of ONE outcome only: merging those is
  // harmless (same outcome), and a busy worker settles hundreds of messages per turn instead
  // of one. A dead-letter's outcome includes its reason and description (two dead-letters with
  // different reasons merged would both get the first reason), so only identical ones share.
  let gate: Promise<void> = Promise.resolve();
  let open: { key: string; turn: Promise<void> } | undefined;
  const inst = instruments(options);
  const messaging = { 'messaging.system': 'servicebus', 'messaging.destination.name': queue };
  const settleAttrs = (operation: string) => ({
    ...messaging,
    'messaging.operation.type': 'settle',
    'messaging.operation.name': operation,
    'messaging.servicebus.disposition_status': operation,
  });
  const settleAttrsOf: Record<SettleAction, Record<string, string>> = {
    completed: settleAttrs('complete'),
    abandoned: settleAttrs('abandon'),
    deadLettered: settleAttrs('dead_letter'),
  };
  const receiveAttrs = { ...messaging, 'messaging.operation.name': 'receive' };
  /** Runs one settle call, timed on `messaging.client.operation.duration`. */
  const measured =
    <R>(kind: SettleAction, op: () => Promise<R>) =>
    async (): Promise<R> => {
      const started = performance.now();
      try {
        const r = await op();
        counts[kind]++;
        inst.messagingOperationDuration.record(performance.now() - started, settleAttrsOf[kind]);
        return r;
      } catch (e) {
        counts.settleFailures++;
        inst.messagingOperationDuration.record(performance.now() - started, {
          ...settleAttrsOf[kind],
          'error.type': e instanceof Error ? e.name : '_OTHER',
        });
        throw e;
      }
    };

  function disposition<R>(
    kind: SettleAction,
    unmeasured: () => Promise<R>,
    key: string = kind,
  ): Promise<R> {
    const op = measured(kind, unmeasured);
    if (open?.key === key) return open.turn.then(op);
    const turn = gate.then(() => new Promise<void>((resolve) => setImmediate(resolve)));
    const current = { key, turn };
    open = current;
    gate = turn;
    void turn.then(() => {
      if (open === current) open = undefined;
    });
    return turn.then(op);
  }

  const notify = (): void => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const changed = (): Promise<void> => new Promise((resolve) => waiters.push(resolve));

  function track<P extends Promise<unknown>>(p: P): P {
    settling.add(p);
    const done = (): void => {
      settling.delete(p);
    };
    p.then(done, done);
    return p;
  }

  function makeItem(message: ServiceBusReceivedMessage, body: T): ReceivedItem<T> {
    let settlement: Promise<void> | undefined;
    let action: SettleAction | undefined;
    const settleOnce = (kind: SettleAction, op: () => Promise<void>): Promise<void> => {
      if (settlement) return settlement;
      settlement = track(
        (async () => {
          try {
            await op();
            action = kind;
          } finally {
            if (handedOut.delete(item)) {
              inFlight--;
              notify();
              if (stopped && inFlight === 0) void close();
            }
          }
        })(),
      );
      return settlement;
    };
    const item: ReceivedItem<T> = {
      body,
      message,
      messageId: String(message.messageId ?? ''),
      deliveryCount: message.deliveryCount ?? 0,
      traceContext: extractTraceContext(message.applicationProperties),
      get settled() {
        return action;
      },
      complete: () =>
        settleOnce('completed', () =>
          disposition('completed', () => receiver.completeMessage(message)),
        ),
      abandon: (reason?: unknown) =>
        settleOnce('abandoned', async () => {
          await disposition('abandoned', () => receiver.abandonMessage(message));
          logEvent(logger, LogEvents.serviceBusAbandoned, () => ({
            queue,
            messageId: message.messageId,
            deliveryCount: message.deliveryCount,
            ...(reason === undefined ? {} : { reason: describeError(reason) }),
          }));
        }),
      deadLetter: (details: DeadLetterDetails) => {
        if (typeof details?.reason !== 'string') {
          return Promise.reject(new TypeError('deadLetter: details.reason must be a string'));
        }
        return settleOnce('deadLettered', () => deadLetter(message, details));
      },
      renewLock: () => receiver.renewMessageLock(message),
      settleBy: (outcome: SettleOutcome, settleOptions: SettleOptions = {}) =>
        settleWithBackoff(item, outcome, settleOptions.signal),
    };
    return item;
  }

  /** {@link settleBy} whose backoff also ends when the source stops. */
  async function settleWithBackoff(
    item: ReceivedItem<T>,
    outcome: SettleOutcome,
    callerSignal: AbortSignal | undefined,
  ): Promise<SettleAction> {
    if (outcome.ok || policy.redeliveryBackoff === false) return settleBy(item, outcome, policy);
    const waitEnds = new AbortController();
    const end = (): void => waitEnds.abort();
    stopping.signal.addEventListener('abort', end, { once: true });
    callerSignal?.addEventListener('abort', end, { once: true });
    if (stopping.signal.aborted || callerSignal?.aborted) end();
    try {
      return await settleBy(item, outcome, policy, { signal: waitEnds.signal });
    } finally {
      stopping.signal.removeEventListener('abort', end);
      callerSignal?.removeEventListener('abort', end);
    }
  }

  async function deadLetter(
    message: ServiceBusReceivedMessage,
    details: DeadLetterDetails,
  ): Promise<void> {
    const deadLetterReason = details.reason;
    const deadLetterErrorDescription = details.description ?? '';
    await disposition(
      'deadLettered',
      () => receiver.deadLetterMessage(message, { deadLetterReason, deadLetterErrorDescription }),
      `deadLettered\u0000${deadLetterReason}\u0000${deadLetterErrorDescription}`,
    );
    logEvent(logger, LogEvents.serviceBusDeadLettered, () => ({
      queue,
      messageId: message.messageId,
      deliveryCount: message.deliveryCount,
      reason: details.reason,
      description: details.description,
    }));
  }

  /** A received message enters the buffer, or is settled at once when it must not be handed out. */
  function admit(message: ServiceBusReceivedMessage): void {
    inst.messagingConsumed.add(1, receiveAttrs);
    if (stopped) {
      track(disposition('abandoned', () => receiver.abandonMessage(message))).catch(() => {});
      return;
    }
    const count = message.deliveryCount ?? 0;
    if (count >= maxDeliveryCount) {
      track(
        deadLetter(message, {
          reason: 'MaxDeliveryCountExceeded',
          description: `delivered ${count} times before (maxDeliveryCount ${maxDeliveryCount})`,
        }),
      ).catch((e: unknown) => logSettleFailure(message, e));
      return;
    }
    let body: T;
    try {
      body = decode(message);
    } catch (e) {
      track(deadLetter(message, { reason: 'DecodeFailed', description: messageOf(e) })).catch(
        (err: unknown) => logSettleFailure(message, err),
      );
      return;
    }
    buffer.push(makeItem(message, body));
  }

  function logSettleFailure(message: ServiceBusReceivedMessage, e: unknown): void {
    logEvent(logger, LogEvents.streamItemFailed, () => ({
      queue,
      messageId: message.messageId,
      error: describeError(e),
    }));
  }

  /** Makes progress for a waiting consumer: receives, or waits for capacity or a stop. */
  function fill(): Promise<void> {
    if (fetching) return fetching;
    const free = maxConcurrent - inFlight - buffer.length;
    if (free <= 0) return changed();
    const controller = new AbortController();
    fetchAbort = controller;
    fetching = (async () => {
      try {
        const messages = await receiver.receiveMessages(Math.min(prefetch, free), {
          maxWaitTimeInMs,
          abortSignal: controller.signal,
        });
        if (messages.length > 0) {
          logEvent(logger, LogEvents.serviceBusReceived, { queue, messages: messages.length });
        }
        for (const m of messages) admit(m);
      } catch (e) {
        if (!stopped) throw e;
      } finally {
        fetchAbort = undefined;
        fetching = undefined;
        notify();
      }
    })();
    return fetching;
  }

  /** Stops receiving and abandons what was received but not handed out. */
  function stop(): void {
    if (stopped) return;
    stopped = true;
    stopping.abort();
    fetchAbort?.abort();
    for (const item of buffer.splice(0)) item.abandon('source closed').catch(() => {});
    notify();
    queueMicrotask(() => {
      if (inFlight === 0) void close();
    });
  }

  async function drainInFlight(): Promise<void> {
    const deadline = Date.now() + closeTimeoutMs;
    while (inFlight > 0) {
      const left = deadline - Date.now();
      if (left <= 0) {
        logEvent(logger, LogEvents.workerDrainTimedOut, { queue, inFlight });
        return;
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        changed(),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, left);
        }),
      ]);
      clearTimeout(timer);
    }
  }

  function close(): Promise<void> {
    closing ??= (async () => {
      signal?.removeEventListener('abort', onAbort);
      stop();
      await drainInFlight();
      await fetching?.catch(() => {});
      await Promise.allSettled([...settling]);
      try {
        await receiver.close();
      } finally {
        if (owned) await client.close();
      }
    })();
    return closing;
  }

  const onAbort = (): void => {
    void close();
  };
  if (signal?.aborted) stop();
  else signal?.addEventListener('abort', onAbort, { once: true });

  async function read(
    readSignal?: AbortSignal,
  ): Promise<IteratorResult<ReceivedItem<T>, undefined>> {
    if (readSignal?.aborted) throw readSignal.reason;
    for (;;) {
      const item = buffer.shift();
      if (item) {
        handedOut.add(item);
        inFlight++;
        return { value: item, done: false };
      }
      if (stopped) return { value: undefined, done: true };
      if (readSignal) await untilAborted(fill(), readSignal);
      else await fill();
    }
  }

  return {
    queue,
    get inFlight() {
      return inFlight;
    },
    get buffered() {
      return buffer.length;
    },
    get size() {
      return buffer.length;
    },
    get counts() {
      return { ...counts };
    },
    read,
    close,
    [Symbol.asyncIterator](): AsyncIterator<ReceivedItem<T>> {
      return {
        next: () => read(),
        async return() {
          stop();
          return { value: undefined, done: true };
        },
      };
    },
  };
}

/**
 * Gives every batching receiver the SDK creates for `receiver` a drain timeout of `ms` (the
 * SDK has no option for it; 7.9.x keeps it in `_batchingReceiverLite._drainTimeoutInMs`, set
 * when a batching receiver is created, again after a link is re-created). Hand-written because
 * no public API exists; it does nothing when the internals are not there.
 */
function setDrainTimeout(receiver: ServiceBusReceiver, ms: number): void {
  type Batching = { _batchingReceiverLite?: { _drainTimeoutInMs?: unknown } } | undefined;
  const internals = receiver as unknown as {
    _createBatchingReceiver?: (...args: unknown[]) => Batching;
  };
  const create = internals._createBatchingReceiver;
  if (typeof create !== 'function') return;
  internals._createBatchingReceiver = function (this: unknown, ...args: unknown[]): Batching {
    const batching = create.apply(this, args);
    const lite = batching?._batchingReceiverLite;
    if (lite && typeof lite._drainTimeoutInMs === 'number') lite._drainTimeoutInMs = ms;
    return batching;
  };
}

/**
 * `work`, or a rejection with `signal.reason` as soon as `signal` aborts (the work goes on;
 * its result is dropped). The abort listener is removed either way.
 */
function untilAborted<R>(work: Promise<R>, signal: AbortSignal): Promise<R> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<R>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
