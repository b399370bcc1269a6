/**
 * Heartbeats of a running saga: while an action or a compensation runs, the saga log is told
 * every `everyMs` that the saga is alive, so recovery does not take it over.
 *
 * @internal
 * @module
 */

import { LogEvents, logEvent } from '../observability/log-events.js';
import { SagaConflictError } from './errors.js';
import type { SagaTracker } from './tracker.js';

/**
 * Runs `work` with heartbeats every `everyMs` (when the log has `heartbeat` and `everyMs` >
 * 0). A heartbeat that finds the saga changed calls `onLost` once. When `work` settles, the
 * timer is cleared and an in-flight heartbeat awaited, so no heartbeat overlaps the next write.
 * @internal
 */
export async function withHeartbeat<T>(
  tracker: SagaTracker,
  everyMs: number,
  onLost: (e: SagaConflictError) => void,
  work: () => Promise<T>,
): Promise<T> {
  const log = tracker.who.log;
  const heartbeat = log?.heartbeat?.bind(log);
  if (!heartbeat || everyMs <= 0) return work();
  const version = tracker.version;
  const ref = { name: tracker.who.name, id: tracker.who.id, version };
  let pending: Promise<void> | undefined;
  let lost = false;
  const beat = (): void => {
    if (pending || lost) return;
    pending = heartbeat(ref)
      .then(
        (alive) => {
          if (alive || tracker.version !== version) return;
          lost = true;
          logEvent(tracker.who.logger, LogEvents.sagaOwnershipLost, { version });
          onLost(new SagaConflictError(tracker.who.id, version));
        },
        (e: unknown) => {
          logEvent(tracker.who.logger, LogEvents.sagaHeartbeatFailed, () => ({ version, err: e }));
        },
      )
      .finally(() => {
        pending = undefined;
      });
  };
  // ref'd on purpose: a saga whose step is running is work in progress (cleared when it ends)
  const timer = setInterval(beat, everyMs);
  try {
    return await work();
  } finally {
    clearInterval(timer);
    await pending;
  }
}
