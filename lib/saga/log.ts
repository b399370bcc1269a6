/**
 * The saved state of a saga and the interface of a store that keeps it (a saga log), so a
 * saga interrupted by a crash can be compensated later from its last saved state.
 *
 * @module
 */

/**
 * Status of a whole saga: `'running'` (actions going forward), `'compensating'` (undoing),
 * and the terminal `'completed'` (every action succeeded), `'compensated'` (failed, fully
 * undone) and `'failed'` (failed and at least one compensation failed: needs attention).
 *
 * @example
 * ```ts
 * import type { SagaStatus } from '@hartonomous/pipelines';
 * const open = (s: SagaStatus) => s === 'running' || s === 'compensating';
 * ```
 */
export type SagaStatus = 'running' | 'compensating' | 'completed' | 'compensated' | 'failed';

/**
 * Status of one step of a saga. Forward: `'pending'` -> `'running'` (written BEFORE the
 * action starts, so its compensation is registered) -> `'completed'` or `'failed'`.
 * Backward: `'compensating'` -> `'compensated'` or `'compensation-failed'`.
 *
 * @example
 * ```ts
 * import type { SagaStepStatus } from '@hartonomous/pipelines';
 * const undone = (s: SagaStepStatus) => s === 'compensated';
 * ```
 */
export type SagaStepStatus =
  | 'pending'
  | 'running'
  | 'completed'
  | 'failed'
  | 'compensating'
  | 'compensated'
  | 'compensation-failed';

/**
 * A JSON description of an error, as `describeError` makes it (name, message, code, fields,
 * cause).
 *
 * @example
 * ```ts
 * import type { SerializedError } from '@hartonomous/pipelines';
 * const e: SerializedError = { name: 'Error', message: 'card declined' };
 * ```
 */
export type SerializedError = Readonly<Record<string, unknown>>;

/**
 * The saved state of one step.
 *
 * @example
 * ```ts
 * import type { SagaStepSnapshot } from '@hartonomous/pipelines';
 * const step: SagaStepSnapshot = {
 *   name: 'charge', status: 'completed', compensable: true, compensateFailed: false,
 *   result: { chargeId: 'ch_1' },
 * };
 * ```
 */
export interface SagaStepSnapshot {
  /** The step's name (unique in its saga); with the saga's name it finds the compensation. */
  readonly name: string;
  /** Where the step is. */
  readonly status: SagaStepStatus;
  /** Whether the step has a compensation. */
  readonly compensable: boolean;
  /** Whether the compensation also runs when the step's own action failed (or its outcome is unknown). */
  readonly compensateFailed: boolean;
  /**
   * The action's result, encoded for JSON (the step's `codec`, else JSON itself); present
   * from `'completed'` on.
   */
  readonly result?: unknown;
  /** The action's error (`'failed'`) or the compensation's error (`'compensation-failed'`). */
  readonly error?: SerializedError;
}

/**
 * Fields every {@link SagaSnapshot} has, whatever its status.
 *
 * @example
 * ```ts
 * import type { SagaSnapshotBase } from '@hartonomous/pipelines';
 * const label = (s: SagaSnapshotBase) => `${s.name}/${s.id} v${s.version}`;
 * ```
 */
export interface SagaSnapshotBase {
  /** The id of this execution of the saga. */
  readonly id: string;
  /** The saga's name. */
  readonly name: string;
  /** The correlation id of the item the saga ran for. */
  readonly correlationId: string;
  /** Every step, in definition order. */
  readonly steps: readonly SagaStepSnapshot[];
  /**
   * How many times this saga's state has been written, this write included: 1 for the first
   * write. A store accepts a write only if what it holds has `version - 1` (optimistic
   * concurrency), else it throws a `SagaConflictError`.
   */
  readonly version: number;
}

/**
 * The saved state of a saga: a discriminated union on `status`. Sagas that have begun to
 * fail carry the original error (`cause`) and the step whose action failed (`failedStep`,
 * `null` when the saga failed between steps or was cancelled between steps).
 * It is plain JSON, so a store can save it as is; `resumeSaga` restarts from it.
 *
 * @example
 * ```ts
 * import type { SagaSnapshot } from '@hartonomous/pipelines';
 *
 * const describe = (s: SagaSnapshot) =>
 *   s.status === 'running' || s.status === 'completed'
 *     ? `${s.name} ${s.status}`
 *     : `${s.name} ${s.status} after ${s.failedStep ?? 'cancellation'}: ${String(s.cause.message)}`;
 * ```
 */
export type SagaSnapshot =
  | (SagaSnapshotBase & {
      /** Going forward (or stopped going forward: its process died). */
      readonly status: 'running';
    })
  | (SagaSnapshotBase & {
      /** Every step completed. */
      readonly status: 'completed';
    })
  | (SagaSnapshotBase & {
      /** Undoing, fully undone, or failed to undo. */
      readonly status: 'compensating' | 'compensated' | 'failed';
      /** The original error. */
      readonly cause: SerializedError;
      /** The step whose action failed, or `null`. */
      readonly failedStep: string | null;
    });

/**
 * A store for saga state: the saga writes a full {@link SagaSnapshot} every time its state
 * changes (before each action, after it, and through compensation), so after a crash
 * `resumeSaga`/`resumeSagas` can finish compensating. `@hartonomous/pipelines/postgres`
 * provides one on PostgreSQL (`postgresSagaLog`); implement this interface for any other store.
 *
 * Contract of `write`: version 1 inserts a new record (a record with that id already existing
 * is a conflict); a later version replaces the record only if the stored version is
 * `version - 1`, otherwise it rejects with a `SagaConflictError`. Writes of one saga never
 * overlap (the saga awaits each one).
 *
 * @example
 * ```ts
 * import { SagaConflictError, type SagaLog, type SagaSnapshot, saga } from '@hartonomous/pipelines';
 *
 * const records = new Map<string, SagaSnapshot>();
 * const memoryLog: SagaLog = {
 *   async write(snapshot) {
 *     const held = records.get(snapshot.id)?.version ?? 0;
 *     if (held !== snapshot.version - 1) throw new SagaConflictError(snapshot.id, snapshot.version - 1);
 *     records.set(snapshot.id, snapshot);
 *   },
 * };
 * const order = saga({ name: 'order', log: memoryLog }, { name: 'reserve', action: (n: number) => n });
 * ```
 */
export interface SagaLog {
  /**
   * Saves a snapshot (insert for version 1, compare-and-replace after).
   * @param snapshot - the saga's full new state
   * @returns when the write is durable
   */
  write(snapshot: SagaSnapshot): Promise<void>;
}

/** @internal checks that a value read back from a store is a usable snapshot */
export function checkSnapshot(value: unknown): SagaSnapshot {
  const s = value as Partial<SagaSnapshot> | null;
  const statuses = ['running', 'compensating', 'completed', 'compensated', 'failed'];
  if (
    typeof s !== 'object' ||
    s === null ||
    typeof s.id !== 'string' ||
    typeof s.name !== 'string' ||
    !statuses.includes(String(s.status)) ||
    !Array.isArray(s.steps) ||
    !Number.isInteger(s.version) ||
    s.steps.some((st) => typeof st !== 'object' || st === null || typeof st.name !== 'string')
  ) {
    throw new TypeError(`not a saga snapshot: ${JSON.stringify(value)?.slice(0, 200)}`);
  }
  return s as SagaSnapshot;
}
