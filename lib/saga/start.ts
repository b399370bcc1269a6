/**
 * Starting a saga once per id: the first caller runs it; a later caller (in this process or
 * another) gets the stored outcome, waiting while it runs.
 *
 * @internal
 * @module
 */

import { sleep } from '../core/abort.js';
import { decodeWith, type SagaDefinition } from './define.js';
import { IdTaken, StoppedUnlogged } from './engine.js';
import {
  CompensationFailedError,
  type FailedCompensation,
  isSagaConflictError,
  SagaFailedError,
} from './errors.js';
import type { SagaLog, SagaRef, SagaSnapshot, SerializedError } from './log.js';

/** How a later caller waits. @internal */
export interface AwaitOptions {
  readonly signal: AbortSignal | undefined;
  readonly pollMs: number;
}

/** A log that can load sagas. @internal */
export type LoadingLog = SagaLog & Required<Pick<SagaLog, 'load'>>;

/**
 * Runs the saga under `ref.id` if the id is new (`runOwned` claims it with the first
 * write); else, or if another process took it over meanwhile, returns (or throws) the
 * stored outcome, polling the log while the saga is still open.
 * @internal
 */
export async function startOnce(
  def: SagaDefinition,
  log: LoadingLog,
  ref: SagaRef,
  runOwned: () => Promise<unknown>,
  options: AwaitOptions,
): Promise<unknown> {
  // a purged id can be started again: loop if the record vanished while we looked for it
  for (;;) {
    try {
      return await runOwned();
    } catch (e) {
      const waitFor =
        e instanceof IdTaken || (e instanceof StoppedUnlogged && isSagaConflictError(e.error));
      if (!waitFor) throw e instanceof StoppedUnlogged ? e.error : e;
    }
    const outcome = await awaitOutcome(def, log, ref, options);
    if (outcome.found) return outcome.value;
  }
}

async function awaitOutcome(
  def: SagaDefinition,
  log: LoadingLog,
  ref: SagaRef,
  options: AwaitOptions,
): Promise<{ found: false } | { found: true; value: unknown }> {
  for (;;) {
    options.signal?.throwIfAborted();
    const saved = await log.load(ref);
    if (!saved) return { found: false };
    switch (saved.status) {
      case 'completed':
        return { found: true, value: storedResult(def, saved) };
      case 'compensated':
      case 'failed':
        throw storedFailure(saved);
      default:
        await sleep(options.pollMs, options.signal);
    }
  }
}

/** A completed saga's output: its last step's recorded result, decoded by its codec. */
function storedResult(def: SagaDefinition, saved: SagaSnapshot): unknown {
  const last = saved.steps.at(-1);
  const step = def.steps.find((s) => s.name === last?.name);
  return decodeWith(step?.codec, last?.result);
}

/**
 * The error a finished, failed saga ended with, rebuilt from its snapshot: a
 * `SagaFailedError` (fully compensated) or a `CompensationFailedError`, whose causes are
 * plain errors carrying the recorded name, message and fields.
 * @internal
 */
export function storedFailure(saved: SagaSnapshot): SagaFailedError | CompensationFailedError {
  if (saved.status !== 'compensated' && saved.status !== 'failed') {
    throw new TypeError(`saga ${saved.id} has not failed (${saved.status})`);
  }
  const latestFirst = [...saved.steps].reverse();
  const compensated = latestFirst.filter((s) => s.status === 'compensated').map((s) => s.name);
  const cause = restoreError(saved.cause);
  const failedStep = saved.failedStep ?? undefined;
  if (saved.status === 'compensated') {
    return new SagaFailedError(saved.name, saved.id, failedStep, compensated, cause);
  }
  const failures: FailedCompensation[] = latestFirst
    .filter((s) => s.status === 'compensation-failed')
    .map((s) => ({ step: s.name, error: restoreError(s.error) }));
  const notCompensated = latestFirst
    .filter(
      (s) => s.status === 'compensation-failed' || (s.status === 'completed' && s.compensable),
    )
    .map((s) => s.name);
  return new CompensationFailedError(
    saved.name,
    saved.id,
    failedStep,
    compensated,
    notCompensated,
    failures,
    cause,
  );
}

/** An Error carrying a recorded error's name, message and fields. */
function restoreError(serialized: SerializedError | undefined): Error {
  const { name, message, stack: _stack, cause: _cause, ...fields } = serialized ?? {};
  const e = new Error(typeof message === 'string' ? message : 'unknown error');
  if (typeof name === 'string') e.name = name;
  return Object.assign(e, fields);
}
