/**
 * A saga log in memory, with every capability of the {@link SagaLog} contract: for tests, for
 * start-once within one process, and as the reference implementation of the contract.
 *
 * @module
 */

import { SagaConflictError } from './errors.js';
import type { SagaLog, SagaLogTransaction, SagaRef, SagaSnapshot } from './log.js';

/**
 * A {@link SagaLog} held in memory, with `load`, `heartbeat` and `transaction`, plus a view of
 * what it holds.
 *
 * @example
 * ```ts
 * import type { MemorySagaLog } from '@hartonomous/pipelines';
 * const statuses = (log: MemorySagaLog) => log.list().map((s) => `${s.id}: ${s.status}`);
 * ```
 */
export interface MemorySagaLog extends Required<SagaLog> {
  /** Every saga held, latest write of each (copies). */
  list(): SagaSnapshot[];
  /** How many heartbeats were accepted. */
  readonly heartbeats: number;
}

/**
 * Creates a saga log in memory. It honours the whole contract (version checks, ids unique per
 * saga name, heartbeats, transactions whose writes apply only when the work resolves), so a
 * saga behaves with it as with `postgresSagaLog`, except that nothing survives the process.
 *
 * @returns an empty log
 *
 * @example
 * ```ts
 * import { memorySagaLog, saga } from '@hartonomous/pipelines';
 *
 * const log = memorySagaLog();
 * const once = saga({ name: 'once', log }, { name: 'add', action: (n: number) => n + 1 });
 * const [a, b] = await Promise.all([once.start(1, { id: 'x' }), once.start(1, { id: 'x' })]);
 * console.log(a, b, log.list().length); // 2 2 1
 * ```
 */
export function memorySagaLog(): MemorySagaLog {
  const records = new Map<string, SagaSnapshot>();
  let heartbeats = 0;
  const keyOf = (ref: SagaRef): string => `${ref.name}\u0000${ref.id}`;
  const copy = (s: SagaSnapshot): SagaSnapshot => structuredClone(s);
  const check = (snapshot: SagaSnapshot): void => {
    const held = records.get(keyOf(snapshot))?.version ?? 0;
    if (held !== snapshot.version - 1) {
      throw new SagaConflictError(snapshot.id, snapshot.version - 1);
    }
  };
  return {
    async write(snapshot) {
      check(snapshot);
      records.set(keyOf(snapshot), copy(snapshot));
    },
    async load(ref) {
      const found = records.get(keyOf(ref));
      return found ? copy(found) : undefined;
    },
    async heartbeat(ref) {
      const alive = records.get(keyOf(ref))?.version === ref.version;
      if (alive) heartbeats++;
      return alive;
    },
    async transaction<T>(work: (tx: SagaLogTransaction) => Promise<T>): Promise<T> {
      const staged: SagaSnapshot[] = [];
      const tx: SagaLogTransaction = {
        handle: undefined,
        async write(snapshot) {
          const held = staged.at(-1)?.version ?? records.get(keyOf(snapshot))?.version ?? 0;
          if (held !== snapshot.version - 1) {
            throw new SagaConflictError(snapshot.id, snapshot.version - 1);
          }
          staged.push(copy(snapshot));
        },
      };
      const result = await work(tx);
      // commit: the first staged write must still follow what is held (the rest follow it)
      if (staged[0]) check(staged[0]);
      for (const s of staged) records.set(keyOf(s), s);
      return result;
    },
    list: () => [...records.values()].map(copy),
    get heartbeats() {
      return heartbeats;
    },
  };
}
