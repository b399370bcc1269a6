import {
  type BatchObservableResult,
  context,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import type { Logger } from 'pino';
import { isPublishFailedError, type OutgoingMessage, type Publisher } from '../broker/publisher.js';
import { sleep } from '../core/abort.js';
import { describeError, isPipelineError, messageOf } from '../core/errors.js';
import { LogEvents, logEvent } from '../observability/log-events.js';
import { silentLogger } from '../observability/logger.js';
import {
  instruments,
  meterOf,
  type TelemetryOptions,
  tracerOf,
} from '../observability/telemetry.js';
import { type BackoffOptions, backoffFunction } from '../operators/backoff.js';
import { TimeoutError } from '../operators/timeout.js';
import { textArray } from '../postgres/binary.js';
import {
  type Database,
  prepared,
  readyStateOf,
  type SqlClient,
  withTransaction,
} from '../postgres/database.js';
import { type OutboxHealth, outboxHealth } from './outbox-health.js';
import { outboxMessage } from './outbox-message.js';
import { type OutboxRow, type RawOutboxRow, ROW_COLUMNS, toOutboxRow } from './outbox-row.js';

/**
 * Options of {@link outboxRelay}.
 *
 * @example
 * ```ts
 * import { memoryPublisher } from '@hartonomous/pipelines/testing';
 * import type { OutboxRelayOptions } from '@hartonomous/pipelines/outbox';
 *
 * const options: OutboxRelayOptions = {
 *   db,
 *   publisher: memoryPublisher(),
 *   batchSize: 200,
 *   pollIntervalMs: 500,
 *   maxAttempts: 12,
 *   backoff: { strategy: 'exponential', baseMs: 2_000, maxMs: 600_000 },
 * };
 * ```
 */
export interface OutboxRelayOptions extends TelemetryOptions {
  /** The database whose `outbox` table is relayed (`@hartonomous/pipelines/postgres`). */
  db: Database;
  /** Where rows are published: `serviceBusPublisher(...)`, `memoryPublisher()`, your own. */
  publisher: Publisher;
  /** Name in logs, spans, metric attributes and health. @default 'outbox-relay' */
  name?: string;
  /** Most rows locked and published per round (one transaction, one publish call). @default 100 */
  batchSize?: number;
  /**
   * Wait between rounds when the last round found fewer rows than `batchSize` (a full round is
   * followed at once). `wake()` cuts a wait short. @default 1000
   */
  pollIntervalMs?: number;
  /**
   * Failed publishing attempts after which a row moves to the dead state (`dead_at`).
   * @default 10
   */
  maxAttempts?: number;
  /**
   * Delay before a failed row is tried again, by its number of failed attempts (stored as
   * `next_attempt_at`). @default { strategy: 'half-jitter', baseMs: 1_000, maxMs: 300_000 }
   */
  backoff?: BackoffOptions;
  /**
   * Longest time one publish call may take before it is aborted and counted as failed (the
   * round's transaction, and its row locks, stay open while publishing). @default 30_000
   */
  publishTimeoutMs?: number;
  /** Turns a row into the message to publish. @default {@link outboxMessage} */
  toMessage?: (row: OutboxRow) => OutgoingMessage;
  /**
   * True when a publishing error can never succeed on retry: the row goes dead at once.
   * @default true for a `MessageTooLargeError` or `PermanentError` (also as a `cause`)
   */
  isPermanent?: (error: unknown) => boolean;
  /** Aborting it stops the relay, like `stop()`. @default none */
  signal?: AbortSignal;
  /** Logger for the catalog events (`outbox.published`, `outbox.publish_failed`, `outbox.dead`). @default a silent logger */
  logger?: Logger;
}

/** Lifecycle state of an {@link OutboxRelay}. */
export type OutboxRelayState = 'idle' | 'running' | 'stopping' | 'stopped';

/**
 * What one relay round did.
 *
 * @example
 * ```ts
 * import type { OutboxRelayRound } from '@hartonomous/pipelines/outbox';
 * const done = (r: OutboxRelayRound) => r.claimed === 0;
 * ```
 */
export interface OutboxRelayRound {
  /** Rows locked for the round (due rows at the head of their keys, and their due successors). */
  readonly claimed: number;
  /** Rows published and marked (`published_at`). */
  readonly published: number;
  /** Rows charged with a failed attempt (those moved to the dead state included). */
  readonly failed: number;
  /** Rows moved to the dead state. */
  readonly dead: number;
}

/**
 * A health snapshot of an {@link OutboxRelay}: the outbox's backlog plus the relay's own
 * counters.
 *
 * @example
 * ```ts
 * import type { OutboxRelayHealth } from '@hartonomous/pipelines/outbox';
 * const ready = (h: OutboxRelayHealth) => h.state === 'running' && h.oldestPendingAgeMs < 60_000;
 * ```
 */
export interface OutboxRelayHealth extends OutboxHealth {
  /** The relay's name. */
  readonly name: string;
  /** Lifecycle state. */
  readonly state: OutboxRelayState;
  /** Rows this relay published since it was created. */
  readonly publishedTotal: number;
  /** Failed attempts this relay charged to rows since it was created. */
  readonly failedTotal: number;
  /** The last round error or publishing error, as JSON. */
  readonly lastError: Record<string, unknown> | undefined;
}

/**
 * A transactional-outbox relay: publishes the `outbox` table's rows to a {@link Publisher}.
 * Create it with {@link outboxRelay}.
 */
export interface OutboxRelay {
  /** The relay's name. */
  readonly name: string;
  /** Lifecycle state. */
  readonly state: OutboxRelayState;
  /** Starts polling in the background. Idempotent while running; throws once stopped. */
  start(): void;
  /**
   * Stops polling: the round in progress finishes (its publish is bounded by
   * `publishTimeoutMs`) and commits, then the relay is stopped and its gauges removed. The
   * publisher is not closed (it is yours). Idempotent.
   * @returns when stopped
   */
  stop(): Promise<void>;
  /**
   * Runs one round now (serialised with the background rounds): lock due rows, publish them,
   * mark them published or charge the failures, commit.
   * @returns what the round did; rejects when the database fails (nothing is marked then)
   */
  runOnce(): Promise<OutboxRelayRound>;
  /**
   * Runs rounds until one claims nothing or publishes nothing (everything due is published,
   * or what is left is failing).
   * @returns the sums over the rounds
   */
  flush(): Promise<OutboxRelayRound>;
  /** Cuts the current wait between background rounds short (e.g. right after a commit). */
  wake(): void;
  /**
   * The outbox backlog (pending, dead, oldest pending age) and the relay's counters.
   * @param options - cancellation of the backlog query
   * @returns a snapshot
   */
  health(options?: { signal?: AbortSignal }): Promise<OutboxRelayHealth>;
}

/** A failed attempt charged to one row. */
interface Charge {
  readonly row: OutboxRow;
  readonly error: unknown;
  readonly dead: boolean;
  readonly delayMs: number;
}

type Attempt = { ok: true } | { ok: false; sent: number; error: unknown };

const ERROR_TEXT_LIMIT = 2_000;

/**
 * Creates a relay for the transactional outbox: rows written in the same transaction as the
 * change they announce (`persistAtoms` does this for atoms) are published by this relay, in
 * rounds. Each round, in ONE transaction:
 *
 * 1. locks up to `batchSize` due rows with `SELECT ... FOR UPDATE SKIP LOCKED`, taking a row
 *    only when every earlier row of its `aggregate_key` is published (dead rows hold their
 *    key back), plus the due rows that follow it in its key;
 * 2. publishes them in one call, in id order (so each key's rows stay in order);
 * 3. marks what the broker accepted (`published_at`), and charges the rest one failed attempt
 *    (`attempts`, `last_error`, `next_attempt_at` by `backoff`), moving a row to the dead
 *    state (`dead_at`) after `maxAttempts` attempts, or at once for a permanent error;
 * 4. commits.
 *
 * Several relays (threads, processes, machines) may run on one database: `SKIP LOCKED` gives
 * each round rows no other round holds, and a row is marked in the same transaction that
 * locked it, so no two relays publish the same row. A failure is isolated: when the batch
 * fails, the relay publishes key by key, so a failing key holds back only its own later
 * rows; when even the first key fails (the broker is down), the round stops and the relay
 * backs off.
 *
 * Delivery is **at least once**: a crash (or a lost commit) after the broker accepted a
 * message and before the commit publishes the row again. The message keeps its id (the row's
 * `message_id`), so a broker with duplicate detection (Service Bus `requiresDuplicateDetection`)
 * drops the replay, and consumers can deduplicate by it too. Each message carries the row's
 * `traceparent` (Service Bus: `Diagnostic-Id`), so the consumer's span links to the
 * transaction that wrote the row.
 *
 * Metrics (on the meter of `options`): `hartonomous.outbox.published`,
 * `hartonomous.outbox.publish.failures` and `hartonomous.outbox.dead_lettered` counters, and the
 * `hartonomous.outbox.lag` (age of the oldest pending row, seconds), `hartonomous.outbox.pending`
 * and `hartonomous.outbox.dead` gauges, read from the database when collected.
 *
 * @param options - database, publisher, batching, retry policy, telemetry
 * @returns a relay, not yet started: `start()` polls in the background, `runOnce()` runs one round
 *
 * @example
 * ```ts
 * import { openDatabase } from '@hartonomous/pipelines/postgres';
 * import { outboxRelay } from '@hartonomous/pipelines/outbox';
 * import { serviceBusPublisher } from '@hartonomous/pipelines/service-bus';
 *
 * const db = await openDatabase();
 * const publisher = serviceBusPublisher({
 *   connectionString: process.env.SERVICEBUS_CONNECTION_STRING,
 *   queueOrTopic: 'atom-events',
 * });
 * const relay = outboxRelay({ db, publisher, batchSize: 200 });
 * relay.start();
 * process.once('SIGTERM', async () => {
 *   await relay.stop();
 *   await publisher.close();
 *   await db.close();
 * });
 * ```
 * @see {@link listDeadOutbox}
 * @see {@link replayDeadOutbox}
 * @see {@link outboxHealth}
 */
export function outboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const who = 'outboxRelay';
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`${who}: options are required`);
  }
  const { db, publisher } = options;
  if (typeof db !== 'object' || db === null) throw new TypeError(`${who}: db is required`);
  if (typeof publisher?.publish !== 'function') {
    throw new TypeError(`${who}: publisher must have a publish(messages, signal) function`);
  }
  const name = options.name ?? 'outbox-relay';
  if (typeof name !== 'string' || name.trim() === '') {
    throw new TypeError(`${who}: name must be a non-empty string`);
  }
  const batchSize = intOption(options.batchSize, 100, 'batchSize', 1, 10_000);
  const pollIntervalMs = intOption(options.pollIntervalMs, 1_000, 'pollIntervalMs', 0, 2 ** 31 - 1);
  const maxAttempts = intOption(options.maxAttempts, 10, 'maxAttempts', 1, 1_000);
  const publishTimeoutMs = intOption(
    options.publishTimeoutMs,
    30_000,
    'publishTimeoutMs',
    1,
    2 ** 31 - 1,
  );
  const backoffOptions: BackoffOptions = options.backoff ?? {
    strategy: 'half-jitter',
    baseMs: 1_000,
    maxMs: 300_000,
  };
  backoffFunction(backoffOptions); // validates
  const toMessage = options.toMessage ?? outboxMessage;
  if (typeof toMessage !== 'function') throw new TypeError(`${who}: toMessage must be a function`);
  const isPermanent = options.isPermanent ?? isPermanentByDefault;
  if (typeof isPermanent !== 'function') {
    throw new TypeError(`${who}: isPermanent must be a function`);
  }
  const logger = options.logger ?? silentLogger();
  const attrs = { 'outbox.relay': name };

  let state: OutboxRelayState = 'idle';
  let chain: Promise<unknown> = Promise.resolve();
  let loop: Promise<void> | undefined;
  let stopping: Promise<void> | undefined;
  const halt = new AbortController();
  let nap: AbortController | undefined;
  let publishedTotal = 0;
  let failedTotal = 0;
  let lastError: Record<string, unknown> | undefined;

  // ---- gauges: read the backlog from the database when the meter collects -----------------
  const inst = instruments(options);
  const meter = meterOf(options);
  const gauges = [inst.outboxLag, inst.outboxPending, inst.outboxDead];
  const observe = async (result: BatchObservableResult): Promise<void> => {
    let h: OutboxHealth;
    try {
      h = await outboxHealth(db);
    } catch {
      return; // database closed or unreachable: nothing to report
    }
    result.observe(inst.outboxLag, h.oldestPendingAgeMs / 1000, attrs);
    result.observe(inst.outboxPending, h.pending, attrs);
    result.observe(inst.outboxDead, h.dead, attrs);
  };
  meter.addBatchObservableCallback(observe, gauges);

  const delayFor = (failedBefore: number): number => {
    const next = backoffFunction(backoffOptions);
    let delay = 0;
    for (let i = 0; i <= failedBefore; i++) delay = next(i);
    return delay;
  };

  const charge = (row: OutboxRow, error: unknown, permanent = false): Charge => ({
    row,
    error,
    dead: permanent || isPermanent(error) || row.attempts + 1 >= maxAttempts,
    delayMs: delayFor(row.attempts),
  });

  async function attempt(rows: readonly OutboxRow[], messages: Map<string, OutgoingMessage>) {
    const controller = new AbortController();
    const timer = setTimeout(
      () =>
        controller.abort(
          new TimeoutError(`publish of ${rows.length} outbox row(s)`, publishTimeoutMs),
        ),
      publishTimeoutMs,
    );
    try {
      await publisher.publish(
        rows.map((r) => messages.get(r.id) as OutgoingMessage),
        controller.signal,
      );
      return { ok: true } as Attempt;
    } catch (error) {
      const sent = isPublishFailedError(error) ? Math.max(0, Math.min(error.sent, rows.length)) : 0;
      return { ok: false, sent, error } as Attempt;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Publishes the groups (one per key, rows in id order); returns what went out and what failed. */
  async function publishGroups(
    groups: OutboxRow[][],
  ): Promise<{ published: OutboxRow[]; charges: Charge[] }> {
    const published: OutboxRow[] = [];
    const charges: Charge[] = [];
    const messages = new Map<string, OutgoingMessage>();
    let open: OutboxRow[][] = [];
    for (const group of groups) {
      const kept: OutboxRow[] = [];
      for (const row of group) {
        try {
          messages.set(row.id, toMessage(row));
          kept.push(row);
        } catch (e) {
          charges.push(charge(row, e, true)); // a row that cannot become a message never will
          break;
        }
      }
      if (kept.length > 0) open.push(kept);
    }

    // 1. Everything in one call. An error that names a message takes that row (and the later
    //    rows of its key) out, and the rest is sent again.
    let unattributed: unknown;
    while (open.length > 0) {
      const rows = byId(open.flat());
      const r = await attempt(rows, messages);
      if (r.ok) {
        published.push(...rows);
        return { published, charges };
      }
      const sent = new Set(rows.slice(0, r.sent).map((row) => row.id));
      published.push(...rows.slice(0, r.sent));
      open = open.map((g) => g.filter((row) => !sent.has(row.id))).filter((g) => g.length > 0);
      const culprit = culpritOf(r.error, open.flat());
      if (!culprit) {
        unattributed = r.error;
        break;
      }
      charges.push(charge(culprit, r.error));
      open = open
        .map((g) => (g.includes(culprit) ? g.slice(0, g.indexOf(culprit)) : g))
        .filter((g) => g.length > 0);
    }
    if (open.length === 0) return { published, charges };
    if (open.length === 1) {
      charges.push(charge((open[0] as OutboxRow[])[0] as OutboxRow, unattributed));
      return { published, charges };
    }

    // 2. Key by key, so a failing key holds back only its own rows: keys that never failed
    //    first (a key that failed before is the likely culprit). If the first key fails too and
    //    nothing at all went out, the broker is the problem: stop, leave the others as they are.
    open.sort((a, b) => (a[0] as OutboxRow).attempts - (b[0] as OutboxRow).attempts);
    for (const group of open) {
      let rest = group;
      while (rest.length > 0) {
        const r = await attempt(rest, messages);
        if (r.ok) {
          published.push(...rest);
          break;
        }
        published.push(...rest.slice(0, r.sent));
        rest = rest.slice(r.sent);
        if (rest.length === 0) break;
        const culprit = culpritOf(r.error, rest);
        charges.push(charge(culprit ?? (rest[0] as OutboxRow), r.error));
        if (!culprit && published.length === 0) return { published, charges };
        rest = culprit ? rest.slice(0, rest.indexOf(culprit)) : [];
      }
    }
    return { published, charges };
  }

  async function claim(client: SqlClient, q: string): Promise<OutboxRow[]> {
    const heads = (
      await prepared<RawOutboxRow>(client, 'outbox_claim', claimSql(q), [batchSize])
    ).rows.map(toOutboxRow);
    if (heads.length === 0 || heads.length >= batchSize) return heads;
    const { rows } = await prepared<RawOutboxRow & { due: boolean }>(
      client,
      'outbox_successors',
      successorsSql(q),
      [
        textArray(heads.map((h) => h.aggregateKey)),
        textArray(heads.map((h) => h.id)),
        batchSize - heads.length,
      ],
    );
    const closed = new Set<string>();
    const out = [...heads];
    for (const raw of rows) {
      if (closed.has(raw.aggregate_key)) continue;
      if (!raw.due) {
        closed.add(raw.aggregate_key); // not due or dead: it holds back the rest of its key
        continue;
      }
      out.push(toOutboxRow(raw));
    }
    return byId(out);
  }

  async function round(): Promise<OutboxRelayRound> {
    const st = readyStateOf(db);
    const q = st.qschema;
    const span = tracerOf(options).startSpan(`outbox relay ${name}`, {
      kind: SpanKind.INTERNAL,
      attributes: { 'outbox.relay': name, 'outbox.batch_size': batchSize },
    });
    try {
      const active = trace.setSpan(context.active(), span);
      const result = await withTransaction(st, undefined, (client) =>
        context.with(active, async () => {
          const rows = await claim(client, q);
          if (rows.length === 0) {
            return { claimed: 0, published: [] as OutboxRow[], charges: [] as Charge[] };
          }
          const { published, charges } = await publishGroups(groupByKey(rows));
          if (published.length > 0) {
            await prepared(client, 'outbox_mark', markSql(q), [
              textArray(published.map((r) => r.id)),
            ]);
          }
          if (charges.length > 0) {
            await prepared(client, 'outbox_charge', chargeSql(q), [
              textArray(charges.map((c) => c.row.id)),
              textArray(charges.map((c) => clip(messageOf(c.error)))),
              textArray(charges.map((c) => String(c.delayMs))),
              textArray(charges.map((c) => String(c.dead))),
            ]);
          }
          return { claimed: rows.length, published, charges };
        }),
      );
      const dead = result.charges.filter((c) => c.dead);
      publishedTotal += result.published.length;
      failedTotal += result.charges.length;
      if (result.published.length > 0) {
        inst.outboxPublished.add(result.published.length, attrs);
        logEvent(logger, LogEvents.outboxPublished, () => ({
          relay: name,
          claimed: result.claimed,
          published: result.published.length,
        }));
      }
      if (result.charges.length > 0) {
        inst.outboxPublishFailures.add(result.charges.length, attrs);
        lastError = describeError(result.charges[0]?.error);
      }
      if (dead.length > 0) inst.outboxRowsDead.add(dead.length, attrs);
      for (const c of result.charges) {
        logEvent(logger, c.dead ? LogEvents.outboxDead : LogEvents.outboxPublishFailed, () => ({
          relay: name,
          outboxId: c.row.id,
          messageId: c.row.messageId,
          eventType: c.row.eventType,
          attempts: c.row.attempts + 1,
          ...(c.dead ? {} : { retryInMs: c.delayMs }),
          err: c.error,
        }));
      }
      span.setAttributes({
        'outbox.claimed': result.claimed,
        'outbox.published': result.published.length,
        'outbox.failed': result.charges.length,
      });
      span.setStatus({ code: SpanStatusCode.OK });
      return {
        claimed: result.claimed,
        published: result.published.length,
        failed: result.charges.length,
        dead: dead.length,
      };
    } catch (e) {
      span.recordException(e instanceof Error ? e : new Error(messageOf(e)));
      span.setStatus({ code: SpanStatusCode.ERROR });
      lastError = describeError(e);
      throw e;
    } finally {
      span.end();
    }
  }

  function runOnce(): Promise<OutboxRelayRound> {
    if (state === 'stopped') {
      return Promise.reject(new TypeError(`outboxRelay('${name}') is stopped`));
    }
    const p = chain.then(round);
    chain = p.catch(() => undefined);
    return p;
  }

  async function flush(): Promise<OutboxRelayRound> {
    const sum = { claimed: 0, published: 0, failed: 0, dead: 0 };
    for (;;) {
      const r = await runOnce();
      sum.claimed += r.claimed;
      sum.published += r.published;
      sum.failed += r.failed;
      sum.dead += r.dead;
      if (r.claimed === 0 || r.published === 0) return sum;
    }
  }

  async function run(): Promise<void> {
    let failedRounds = 0;
    while (!halt.signal.aborted) {
      let wait = pollIntervalMs;
      try {
        const r = await runOnce();
        if (r.claimed > 0 && r.published === 0) {
          failedRounds++;
        } else {
          failedRounds = 0;
          if (r.claimed >= batchSize) wait = 0;
        }
      } catch (e) {
        failedRounds++;
        logEvent(logger, LogEvents.outboxPublishFailed, () => ({
          relay: name,
          phase: 'round',
          err: e,
        }));
      }
      if (failedRounds > 0) {
        const base = Math.max(pollIntervalMs, 10);
        wait = Math.min(base * 2 ** Math.min(failedRounds - 1, 16), Math.max(base, 30_000));
      }
      if (halt.signal.aborted) break;
      if (wait > 0) {
        const c = new AbortController();
        nap = c;
        await sleep(wait, c.signal).catch(() => undefined);
        nap = undefined;
      }
    }
  }

  const onAbort = (): void => {
    void relay.stop();
  };

  const relay: OutboxRelay = {
    name,
    get state() {
      return state;
    },
    start() {
      if (state === 'running') return;
      if (state !== 'idle')
        throw new TypeError(`outboxRelay('${name}') was stopped; create a new one`);
      state = 'running';
      loop = run();
    },
    stop() {
      stopping ??= (async () => {
        options.signal?.removeEventListener('abort', onAbort);
        if (state === 'running') state = 'stopping';
        halt.abort();
        nap?.abort();
        await loop;
        await chain;
        meter.removeBatchObservableCallback(observe, gauges);
        state = 'stopped';
      })();
      return stopping;
    },
    runOnce,
    flush,
    wake() {
      nap?.abort();
    },
    async health(healthOptions = {}) {
      const backlog = await outboxHealth(db, healthOptions);
      return { name, state, ...backlog, publishedTotal, failedTotal, lastError };
    },
  };
  if (options.signal?.aborted) void relay.stop();
  else options.signal?.addEventListener('abort', onAbort, { once: true });
  return relay;
}

/** The claim statement: due rows at the head of their key, locked, skipping locked rows. */
function claimSql(q: string): string {
  return `SELECT ${ROW_COLUMNS}
FROM ${q}.outbox o
WHERE o.published_at IS NULL AND o.dead_at IS NULL
  AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= clock_timestamp())
  AND NOT EXISTS (
    SELECT 1 FROM ${q}.outbox e
    WHERE e.aggregate_key = o.aggregate_key AND e.id < o.id AND e.published_at IS NULL)
ORDER BY o.id
LIMIT $1
FOR UPDATE OF o SKIP LOCKED`;
}

/** The unpublished rows after the claimed heads of their keys (no other relay takes them). */
function successorsSql(q: string): string {
  return `SELECT ${ROW_COLUMNS},
  (o.dead_at IS NULL AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= clock_timestamp())) AS due
FROM ${q}.outbox o
JOIN unnest($1::text[], $2::text[]::bigint[]) AS h(key, head)
  ON o.aggregate_key = h.key AND o.id > h.head
WHERE o.published_at IS NULL
ORDER BY o.id
LIMIT $3
FOR UPDATE OF o`;
}

function markSql(q: string): string {
  return `UPDATE ${q}.outbox SET published_at = clock_timestamp(), next_attempt_at = NULL
WHERE id = ANY($1::text[]::bigint[])`;
}

function chargeSql(q: string): string {
  return `UPDATE ${q}.outbox o
SET attempts = o.attempts + 1,
    last_error = f.error,
    next_attempt_at = clock_timestamp() + f.delay_ms * interval '1 millisecond',
    dead_at = CASE WHEN f.dead THEN clock_timestamp() ELSE NULL END
FROM unnest($1::text[]::bigint[], $2::text[], $3::text[]::float8[], $4::text[]::boolean[])
  AS f(id, error, delay_ms, dead)
WHERE o.id = f.id`;
}

/** Rows grouped by key, each group in id order, groups ordered by their first id. */
function groupByKey(rows: readonly OutboxRow[]): OutboxRow[][] {
  const groups = new Map<string, OutboxRow[]>();
  for (const row of byId(rows)) {
    const g = groups.get(row.aggregateKey);
    if (g) g.push(row);
    else groups.set(row.aggregateKey, [row]);
  }
  return [...groups.values()];
}

function byId(rows: readonly OutboxRow[]): OutboxRow[] {
  return [...rows].sort((a, b) =>
    a.id.length !== b.id.length
      ? a.id.length - b.id.length
      : a.id < b.id
        ? -1
        : a.id > b.id
          ? 1
          : 0,
  );
}

/** The row an error names by `messageId` (e.g. a `MessageTooLargeError`), searching its causes. */
function culpritOf(error: unknown, rows: readonly OutboxRow[]): OutboxRow | undefined {
  let e: unknown = error;
  for (let depth = 0; depth < 6 && typeof e === 'object' && e !== null; depth++) {
    const id = (e as { messageId?: unknown }).messageId;
    if (typeof id === 'string') {
      const row = rows.find((r) => r.messageId === id);
      if (row) return row;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * The default permanence test: a `PermanentError` or `MessageTooLargeError` anywhere in the
 * `cause` chain.
 * @internal
 */
export function isPermanentByDefault(error: unknown): boolean {
  let e: unknown = error;
  for (let depth = 0; depth < 8 && e !== undefined && e !== null; depth++) {
    if (isPipelineError(e) && (e.code === 'PERMANENT' || e.code === 'MESSAGE_TOO_LARGE')) {
      return true;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

function clip(text: string): string {
  return text.length > ERROR_TEXT_LIMIT ? `${text.slice(0, ERROR_TEXT_LIMIT - 1)}…` : text;
}

function intOption(
  value: unknown,
  fallback: number,
  field: string,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new TypeError(
      `outboxRelay: ${field} must be an integer in [${min}, ${max}], got ${String(value)}`,
    );
  }
  return value;
}
