/**
 * The mutable state of one saga execution and its writes to the saga log.
 *
 * @internal
 * @module
 */

import type { Logger } from 'pino';
import { describeError } from '../core/errors.js';
import { LogEvents, logEvent } from '../observability/log-events.js';
import type {
  SagaLog,
  SagaLogTransaction,
  SagaRecoveryDirection,
  SagaSnapshot,
  SagaStatus,
  SagaStepSnapshot,
} from './log.js';
import type { AnySagaStep } from './types.js';

type MutableStep = { -readonly [K in keyof SagaStepSnapshot]: SagaStepSnapshot[K] };

/** Who the tracker writes for. @internal */
export interface TrackerIdentity {
  readonly id: string;
  readonly name: string;
  readonly correlationId: string;
  readonly log: SagaLog | undefined;
  readonly logger: Logger;
}

/** What a new execution records beside its steps. @internal */
export interface FreshState {
  readonly recovery: SagaRecoveryDirection;
  /** The encoded input (forward sagas only). */
  readonly input?: unknown;
}

/**
 * The mutable state of one execution and its writes to the saga log.
 * @internal
 */
export class SagaTracker {
  status: SagaStatus = 'running';
  cause: unknown;
  failedStep: string | null = null;
  version = 0;
  readonly steps: MutableStep[];
  readonly recovery: SagaRecoveryDirection | undefined;
  readonly input: unknown;
  readonly hasInput: boolean;

  /**
   * @param who - the saga's identity and log
   * @param from - a saved snapshot to continue from, or the steps and extras of a new execution
   */
  constructor(
    readonly who: TrackerIdentity,
    from: SagaSnapshot | { steps: readonly AnySagaStep[]; fresh: FreshState },
  ) {
    if ('status' in from) {
      this.status = from.status;
      this.steps = from.steps.map((s) => ({ ...s }));
      this.version = from.version;
      this.recovery = from.recovery;
      this.hasInput = 'input' in from && from.input !== undefined;
      this.input = from.input;
      if (from.status !== 'running' && from.status !== 'completed') {
        this.cause = from.cause;
        this.failedStep = from.failedStep;
      }
    } else {
      this.steps = from.steps.map((s) => ({
        name: s.name,
        status: 'pending',
        compensable: typeof s.compensate === 'function',
        compensateFailed: s.compensateFailed === true,
      }));
      this.recovery = from.fresh.recovery;
      this.hasInput = from.fresh.input !== undefined;
      this.input = from.fresh.input;
    }
  }

  /** The id, for logs and refs. */
  get id(): string {
    return this.who.id;
  }

  /**
   * The state as a snapshot with the given version, optionally with one step patched (for a
   * write that must not change the tracker until it is committed).
   */
  snapshot(version: number, patch?: { index: number; step: Partial<MutableStep> }): SagaSnapshot {
    const steps = this.steps.map((s, i) =>
      patch && i === patch.index ? { ...s, ...patch.step } : { ...s },
    );
    const base = {
      id: this.who.id,
      name: this.who.name,
      correlationId: this.who.correlationId,
      steps,
      version,
      ...(this.recovery === undefined ? {} : { recovery: this.recovery }),
      ...(this.hasInput ? { input: this.input } : {}),
    };
    if (this.status === 'running' || this.status === 'completed') {
      return { ...base, status: this.status };
    }
    return {
      ...base,
      status: this.status,
      cause: serialize(this.cause),
      failedStep: this.failedStep,
    };
  }

  setStep(index: number, patch: Partial<MutableStep>): void {
    const s = this.steps[index];
    if (s) Object.assign(s, patch);
  }

  /**
   * Writes the state to the log, if any. `strict` writes rethrow a failure (forward phase);
   * others log it and go on (compensation must proceed whatever the log does).
   */
  async record(strict: boolean): Promise<void> {
    const log = this.who.log;
    if (!log) return;
    const snapshot = this.snapshot(this.version + 1);
    try {
      await log.write(snapshot);
      this.version = snapshot.version;
    } catch (e) {
      this.writeFailed(snapshot, e);
      if (strict) throw e;
    }
  }

  /**
   * Writes the state with `patch` applied inside a log transaction; the tracker changes only
   * when {@link SagaTracker.commit} is called after the transaction committed.
   */
  async recordIn(
    tx: SagaLogTransaction,
    patch: { index: number; step: Partial<MutableStep> },
  ): Promise<SagaSnapshot> {
    const snapshot = this.snapshot(this.version + 1, patch);
    try {
      await tx.write(snapshot);
    } catch (e) {
      this.writeFailed(snapshot, e);
      throw e;
    }
    return snapshot;
  }

  /** Applies a snapshot written by {@link SagaTracker.recordIn} once its transaction committed. */
  commit(snapshot: SagaSnapshot, patch: { index: number; step: Partial<MutableStep> }): void {
    this.setStep(patch.index, patch.step);
    this.version = snapshot.version;
  }

  private writeFailed(snapshot: SagaSnapshot, e: unknown): void {
    logEvent(this.who.logger, LogEvents.sagaLogWriteFailed, () => ({
      saga: this.who.name,
      sagaId: this.who.id,
      version: snapshot.version,
      status: snapshot.status,
      err: e,
    }));
  }
}

function serialize(e: unknown): Record<string, unknown> {
  if (typeof e === 'object' && e !== null && !(e instanceof Error) && 'message' in e) {
    return e as Record<string, unknown>; // already serialized (restored from a snapshot)
  }
  return describeError(e);
}
