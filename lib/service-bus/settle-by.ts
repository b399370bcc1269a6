import { sleep } from '../core/abort.js';
import { isPipelineError, messageOf } from '../core/errors.js';
import { type BackoffOptions, backoffFunction } from '../operators/backoff.js';

/**
 * How work on a received message ended, as the settle policy needs it. Structurally a subset of
 * the core `Outcome` (`{ ok: true, value }` / `{ ok: false, error }`), so a pipeline outcome can
 * be passed as it is.
 *
 * @example
 * ```ts
 * import type { SettleOutcome } from '@hartonomous/pipelines/service-bus';
 *
 * const done: SettleOutcome = { ok: true };
 * const failed: SettleOutcome = { ok: false, error: new Error('database down') };
 * ```
 */
export type SettleOutcome =
  | {
      /** The work succeeded (and committed). */
      readonly ok: true;
    }
  | {
      /** The work failed. */
      readonly ok: false;
      /** What the work threw. */
      readonly error: unknown;
    };

/** What {@link settleBy} did with a message. */
export type SettleAction = 'completed' | 'abandoned' | 'deadLettered';

/**
 * The settle operations {@link settleBy} needs; a {@link ReceivedItem} has them.
 */
export interface Settleable {
  /** Deliveries before this one (0 on the first delivery, as the SDK reports it). */
  readonly deliveryCount: number;
  /** Removes the message from the queue. */
  complete(): Promise<void>;
  /** Returns the message to the queue for another delivery. */
  abandon(reason?: unknown): Promise<void>;
  /** Moves the message to the dead-letter sub-queue. */
  deadLetter(details: DeadLetterDetails): Promise<void>;
}

/** Why a message was dead-lettered (Service Bus `DeadLetterReason` / `DeadLetterErrorDescription`). */
export interface DeadLetterDetails {
  /** Short machine-readable reason, e.g. an error code. */
  readonly reason: string;
  /** Human-readable description. @default undefined (none) */
  readonly description?: string;
}

/** The policy {@link settleBy} applies. */
export interface SettlePolicy {
  /**
   * True when an error can never succeed on retry (bad input, schema violation): the message is
   * dead-lettered at once.
   * @default a predicate that is true when the error, or any error in its `cause` chain, is a
   *   library `PermanentError` (code `PERMANENT`), a `MessageTooLargeError`, a
   *   `MessageDecodeError`, or any library error that says `permanent: true` (bad input such as
   *   empty or oversized atom content)
   */
  isPermanent?: (error: unknown) => boolean;
  /**
   * How long a transiently failed message is held (its lock renewed by the SDK) before it is
   * abandoned, by its `deliveryCount` (0 on the first delivery): Service Bus redelivers an
   * abandoned message at once, so without a wait a failing message burns its deliveries in
   * seconds. `false` abandons at once. The wait ends early (and the message is abandoned) when
   * the settle's `signal` aborts, e.g. when the worker stops. Keep `maxMs` well below the
   * source's `maxAutoLockRenewalDurationInMs`.
   * @default { strategy: 'exponential', baseMs: 1_000, maxMs: 30_000 } (1 s, 2 s, 4 s, ...)
   */
  redeliveryBackoff?: BackoffOptions | false;
  /**
   * Deliveries allowed before a transiently failing message is dead-lettered instead of
   * abandoned (keep it at or below the entity's own `MaxDeliveryCount`, 10 by default).
   * @default 10
   */
  maxDeliveryCount?: number;
}

/** Options of one {@link settleBy} call. */
export interface SettleOptions {
  /** Ends a redelivery backoff early (the message is abandoned at once). @default undefined */
  readonly signal?: AbortSignal;
}

const DESCRIPTION_LIMIT = 1024;

/** The default {@link SettlePolicy.redeliveryBackoff}. */
export const DEFAULT_REDELIVERY_BACKOFF: Readonly<BackoffOptions> = Object.freeze({
  strategy: 'exponential',
  baseMs: 1_000,
  maxMs: 30_000,
});

/**
 * The wait before abandoning a message that had `deliveryCount` deliveries before this one,
 * under `backoffOptions` (validated here; `false` is no wait).
 * @internal
 */
export function redeliveryDelay(
  backoffOptions: BackoffOptions | false | undefined,
  deliveryCount: number,
): number {
  if (backoffOptions === false) return 0;
  return backoffFunction(backoffOptions ?? DEFAULT_REDELIVERY_BACKOFF)(deliveryCount);
}

/**
 * Settles a received message by how its work ended: complete on success (call it only AFTER
 * the work committed), dead-letter on a permanent failure, abandon a transient one after the
 * policy's `redeliveryBackoff` (so the broker's redeliveries are spaced out), and dead-letter a
 * transient failure that used the last allowed delivery
 * (`deliveryCount + 1 >= maxDeliveryCount`), so a poison message never blocks the queue.
 *
 * @param item - the received item (its settle helpers are idempotent)
 * @param outcome - `{ ok: true }` or `{ ok: false, error }`
 * @param policy - what counts as permanent, how many deliveries are allowed, how long to wait
 *   before an abandon
 * @param options - a signal that cuts the wait before an abandon short
 * @returns what was done
 *
 * @example
 * ```ts
 * import { serviceBusSource, settleBy } from '@hartonomous/pipelines/service-bus';
 *
 * const source = serviceBusSource<{ atomId: number }>({ connectionString, queue: 'atoms' });
 * for await (const item of source) {
 *   try {
 *     await store(item.body);
 *     await settleBy(item, { ok: true });
 *   } catch (error) {
 *     await settleBy(item, { ok: false, error }, { maxDeliveryCount: 5 });
 *   }
 * }
 * ```
 */
export async function settleBy(
  item: Settleable,
  outcome: SettleOutcome,
  policy: SettlePolicy = {},
  options: SettleOptions = {},
): Promise<SettleAction> {
  const maxDeliveryCount = policy.maxDeliveryCount ?? 10;
  const isPermanent = policy.isPermanent ?? isPermanentByDefault;
  if (outcome.ok) {
    await item.complete();
    return 'completed';
  }
  const { error } = outcome;
  if (isPermanent(error)) {
    await item.deadLetter({ reason: reasonOf(error), description: describe(error) });
    return 'deadLettered';
  }
  const deliveries = item.deliveryCount + 1;
  if (deliveries >= maxDeliveryCount) {
    await item.deadLetter({
      reason: 'MaxDeliveryCountExceeded',
      description: describe(error, `failed ${deliveries} deliveries; last error: `),
    });
    return 'deadLettered';
  }
  const wait = redeliveryDelay(policy.redeliveryBackoff, item.deliveryCount);
  if (wait > 0 && !options.signal?.aborted) {
    // the lock is renewed meanwhile; an abort (stop) ends the wait and abandons at once
    await sleep(wait, options.signal).catch(() => undefined);
  }
  await item.abandon(error);
  return 'abandoned';
}

/**
 * The default permanence test: a `PermanentError`, `MessageTooLargeError` or
 * `MessageDecodeError`, or a library error with `permanent: true`, anywhere in the `cause`
 * chain (checked by code and property, so it works across copies of the package).
 * @internal
 */
export function isPermanentByDefault(error: unknown): boolean {
  let e: unknown = error;
  for (let depth = 0; depth < 8 && e !== undefined && e !== null; depth++) {
    if (
      isPipelineError(e) &&
      (PERMANENT_CODES.has(e.code) || (e as { permanent?: unknown }).permanent === true)
    ) {
      return true;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

const PERMANENT_CODES: ReadonlySet<string> = new Set([
  'PERMANENT',
  'MESSAGE_TOO_LARGE',
  'MESSAGE_DECODE_FAILED',
]);

/** @internal */
export function reasonOf(error: unknown): string {
  if (isPipelineError(error)) return error.code;
  if (error instanceof Error) return error.name;
  return 'Error';
}

/** @internal */
export function describe(error: unknown, prefix = ''): string {
  const text = prefix + messageOf(error);
  return text.length > DESCRIPTION_LIMIT ? `${text.slice(0, DESCRIPTION_LIMIT - 1)}…` : text;
}
