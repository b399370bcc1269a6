/**
 * Calling a step: the function, through its policy when it has one. No telemetry here (see
 * instrument.ts) and no scheduling (see engine.ts).
 * @module
 */

import { type Context, context as otelContext } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { EmptyError, isObservable, lastValueFrom, Observable, type Subscriber } from 'rxjs';
import { isPromiseLike } from './from-work.js';
import type { BatchExec, ItemExec } from './instrument.js';
import { AttemptSignal, batchContext, type Item, ItemContext, type SignalSource } from './item.js';
import type { BatchNode, ItemNode } from './plan.js';

/**
 * The executor of an item step. Without a policy the function is called directly (a
 * synchronous step stays synchronous). With one, each call is a cold Observable of attempts
 * the policy's operators wrap, so `retry` re-runs the function and `timeout` drops an attempt
 * (aborting its signal, if the step read it).
 * @internal
 */
export function itemExec(node: ItemNode): ItemExec {
  const { fn, policy } = node;
  if (policy === undefined) {
    return (item, otel) => {
      const out =
        otel === undefined
          ? fn(item.value, new ItemContext(node, item, item.otel))
          : otelContext.with(otel, fn, undefined, item.value, new ItemContext(node, item, otel));
      return isPromiseLike(out) || !isObservable(out) ? out : lastValueFrom(out);
    };
  }
  return (item, otel) => {
    const input = item.value;
    const attempt$ = new Observable<unknown>((subscriber) => {
      const signal = new AttemptSignal(item.signal);
      const ctx = new ItemContext(node, item, otel ?? item.otel, signal);
      let out: unknown;
      try {
        out =
          otel === undefined ? fn(input, ctx) : otelContext.with(otel, fn, undefined, input, ctx);
      } catch (e) {
        signal.settle();
        subscriber.error(e);
        return;
      }
      deliver(out, signal, subscriber);
      return signal;
    });
    return new PolicyCall(policy(attempt$));
  };
}

/**
 * Where a {@link PolicyCall} reports, with the item and the step's position it was started
 * with (so nothing is allocated per call to carry them).
 * @internal
 */
export interface PolicySink {
  resolved(item: Item, step: number, value: unknown): void;
  rejected(item: Item, step: number, error: unknown): void;
}

/**
 * One call of a step through its policy: the policy's Observable, run to its last value.
 * The engine starts it with callbacks (no promise, no closure per call); anything else sees a
 * thenable.
 * @internal
 */
export class PolicyCall implements PromiseLike<unknown> {
  private sink: PolicySink | undefined;
  private item: Item | undefined;
  private step = 0;
  private last: unknown;
  private has = false;

  /** @param source - the policy applied to the attempts */
  constructor(private readonly source: Observable<unknown>) {}

  /**
   * Runs the call; reports to `sink` with `item` and `step`.
   * @param sink - where the outcome goes
   * @param item - the item
   * @param step - the step's position in its stage
   */
  start(sink: PolicySink, item: Item, step: number): void {
    this.sink = sink;
    this.item = item;
    this.step = step;
    this.source.subscribe(this);
  }

  /** @internal observer side */
  next(value: unknown): void {
    this.last = value;
    this.has = true;
  }

  /** @internal observer side */
  error(e: unknown): void {
    this.sink?.rejected(this.item as Item, this.step, e);
  }

  /** @internal observer side */
  complete(): void {
    if (this.has) this.sink?.resolved(this.item as Item, this.step, this.last);
    else this.sink?.rejected(this.item as Item, this.step, new EmptyError());
  }

  // biome-ignore lint/suspicious/noThenProperty: a thenable on purpose, so code outside the engine (the telemetry layer) can await a call
  then<R1 = unknown, R2 = never>(
    onfulfilled?: ((value: unknown) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): PromiseLike<R1 | R2> {
    return lastValueFrom(this.source).then(onfulfilled, onrejected);
  }
}

/**
 * The executor of a batch step: calls the function once per batch (through its policy) and
 * checks that it returned one result per input.
 * @internal
 */
export function batchExec(
  node: BatchNode,
  session: { readonly signal: AbortSignal; readonly logger: Logger },
): BatchExec {
  const { fn, policy, name } = node;
  const { signal, logger } = session;
  const call = (
    items: readonly Item[],
    inputs: unknown[],
    source: SignalSource,
    otel: Context,
    activate: boolean,
  ): unknown => {
    const ctx = batchContext(node, items, source, otel, logger);
    return activate ? otelContext.with(otel, fn, undefined, inputs, ctx) : fn(inputs, ctx);
  };
  const checked = (results: unknown, n: number): ReadonlyArray<unknown> => {
    if (!Array.isArray(results) || results.length !== n) {
      throw new TypeError(
        `batch step '${name}' returned ${Array.isArray(results) ? results.length : typeof results} results for ${n} inputs; it must return one result per input`,
      );
    }
    return results;
  };
  return (items, otel, activate) => {
    const inputs = items.map((item) => item.value);
    let out: unknown;
    if (policy === undefined) {
      out = call(items, inputs, { signal }, otel, activate);
      if (!isPromiseLike(out) && isObservable(out)) out = lastValueFrom(out);
    } else {
      const attempt$ = new Observable<unknown>((subscriber) => {
        const attempt = new AttemptSignal(signal);
        let result: unknown;
        try {
          result = call(items, inputs, attempt, otel, activate);
        } catch (e) {
          attempt.settle();
          subscriber.error(e);
          return;
        }
        deliver(result, attempt, subscriber);
        return attempt;
      });
      out = lastValueFrom(policy(attempt$));
    }
    return isPromiseLike(out)
      ? out.then((results) => checked(results, items.length))
      : checked(out, items.length);
  };
}

/** Passes an attempt's result (a value, a promise, or an Observable's last value) on. */
function deliver(out: unknown, signal: AttemptSignal, subscriber: Subscriber<unknown>): void {
  if (!isPromiseLike(out) && isObservable(out)) out = lastValueFrom(out);
  if (isPromiseLike(out)) {
    out.then(
      (value) => {
        signal.settle();
        subscriber.next(value);
        subscriber.complete();
      },
      (e: unknown) => {
        signal.settle();
        subscriber.error(e);
      },
    );
    return;
  }
  signal.settle();
  subscriber.next(out);
  subscriber.complete();
}
