/**
 * Claims that live exactly as long as their owner. Ingestion claims a content hash before it
 * embeds it, so no two workers embed the same content; a claim must never outlive the process
 * holding it (a re-run would otherwise wait for a dead owner).
 *
 * Two layers:
 * - in this process, a lease table per database handle (hash -> owner): one owner per hash at a
 *   time, whichever batch or run it comes from, so one process never claims a hash twice;
 * - across processes (PostgreSQL server with a pool of more than one connection), a
 *   session-level advisory lock per hash, held on one dedicated connection per database handle.
 *   PostgreSQL releases it when that session ends, so a SIGKILLed process's claims are free the
 *   moment the server sees its connection close: nothing to expire, no staleness to wait for.
 *   The lock key is 64 bits of SHA-256 over the schema and the hash, so schemas never collide.
 *
 * The embedded PGlite (and a single-connection pool) is one process by construction: the
 * in-process table is the whole claim.
 *
 * Why advisory locks and not rows with a heartbeat: a heartbeat needs a lease time (a dead
 * owner blocks others until it runs out, a slow one loses its claim), whereas a session lock
 * is released by the server itself at the owner's death and costs one statement per batch.
 *
 * @internal
 * @module
 */
import { createHash } from 'node:crypto';
import {
  type Database,
  type DatabaseState,
  type SqlClient,
  stateOf,
} from '../postgres/database.js';

/** A raw node-postgres client held outside the pool. */
interface RawClient extends SqlClient {
  on(event: 'error', listener: (e: unknown) => void): unknown;
}

interface LockSession {
  readonly client: Promise<RawClient>;
  broken: boolean;
  /** One statement at a time on the session (node-postgres 8 deprecates overlapping ones). */
  tail: Promise<unknown>;
}

/** Runs `text` on the session after the statements already queued on it. */
function onSession<R>(s: LockSession, text: string, values: unknown[]): Promise<{ rows: R[] }> {
  const run = s.tail.then(async () => (await s.client).query<R>({ text, values }));
  s.tail = run.catch(() => undefined);
  return run;
}

interface Leases {
  readonly state: DatabaseState;
  /** hash -> owner holding it in this process. */
  readonly holders: Map<string, string>;
  session: LockSession | undefined;
  idleTimer: NodeJS.Timeout | undefined;
}

const registry = new WeakMap<DatabaseState, Leases>();

/** How long the lock session stays open with no lease held. */
const IDLE_CLOSE_MS = 1_000;

function leasesOf(db: Database): Leases {
  const state = stateOf(db);
  let leases = registry.get(state);
  if (!leases) {
    const created: Leases = { state, holders: new Map(), session: undefined, idleTimer: undefined };
    registry.set(state, created);
    // the lock session is a connection beside the pool: it closes with the handle, so a lease
    // taken by a step still running when its run was cancelled cannot outlive the database
    state.closeHooks.push(async () => {
      if (created.idleTimer) clearTimeout(created.idleTimer);
      created.idleTimer = undefined;
      created.holders.clear();
      await closeSession(created);
    });
    leases = created;
  }
  return leases;
}

interface KnexClientInternals {
  config?: { pool?: { max?: number } };
  acquireRawConnection(): Promise<RawClient>;
  destroyRawConnection(connection: RawClient): Promise<void>;
}

/** knex's client of a server connection (a server database always has one). */
function knexClientOf(state: DatabaseState): KnexClientInternals {
  if (!state.knex) throw new TypeError('claim leases need a server connection pool (knex)');
  return state.knex.client as unknown as KnexClientInternals;
}

/** Whether other processes can share this database (a server with a real pool). */
function crossProcess(state: DatabaseState): boolean {
  if (state.backend !== 'postgres') return false;
  const max = knexClientOf(state).config?.pool?.max;
  return max === undefined || max > 1;
}

/** The advisory-lock key of a hash in a schema, as a decimal int8. */
export function lockKey(schema: string, hash: string): string {
  return createHash('sha256')
    .update(`${schema}\u0000${hash}`)
    .digest()
    .readBigInt64BE(0)
    .toString();
}

function session(leases: Leases): LockSession {
  if (leases.session && !leases.session.broken) return leases.session;
  if (leases.state.closed) throw new TypeError('the database has been closed');
  const internals = knexClientOf(leases.state);
  const s: LockSession = {
    broken: false,
    tail: Promise.resolve(),
    client: internals.acquireRawConnection().then((client) => {
      // A lost connection means lost locks: forget the session, open a new one next time.
      client.on('error', () => {
        s.broken = true;
      });
      return client;
    }),
  };
  s.client.catch(() => {
    s.broken = true;
  });
  leases.session = s;
  return s;
}

function scheduleIdleClose(leases: Leases): void {
  if (leases.holders.size > 0 || !leases.session || leases.idleTimer) return;
  leases.idleTimer = setTimeout(() => {
    leases.idleTimer = undefined;
    if (leases.holders.size === 0) void closeSession(leases);
  }, IDLE_CLOSE_MS);
}

async function closeSession(leases: Leases): Promise<void> {
  const s = leases.session;
  if (!s) return;
  leases.session = undefined;
  const client = await s.client.catch(() => undefined);
  if (client) {
    const internals = knexClientOf(leases.state);
    await internals.destroyRawConnection(client).catch(() => undefined);
  }
}

/** What {@link leaseHashes} found for each hash asked. */
export interface LeaseResult {
  /** Now held by the caller. */
  readonly won: string[];
  /** Held by another owner (in this process or another one). */
  readonly heldElsewhere: string[];
  /** Already held by the same owner (another batch of the same run). */
  readonly heldByOwner: string[];
}

/**
 * Takes a lease on each hash not held by anyone. Never waits for a holder.
 * @internal
 */
export async function leaseHashes(
  db: Database,
  hashes: readonly string[],
  owner: string,
): Promise<LeaseResult> {
  const leases = leasesOf(db);
  const won: string[] = [];
  const heldElsewhere: string[] = [];
  const heldByOwner: string[] = [];
  // Synchronously, before any await: concurrent batches of this process see each other.
  for (const h of new Set(hashes)) {
    const holder = leases.holders.get(h);
    if (holder === undefined) {
      leases.holders.set(h, owner);
      won.push(h);
    } else if (holder === owner) heldByOwner.push(h);
    else heldElsewhere.push(h);
  }
  if (won.length === 0 || !crossProcess(leases.state)) return { won, heldElsewhere, heldByOwner };
  if (leases.idleTimer) {
    clearTimeout(leases.idleTimer);
    leases.idleTimer = undefined;
  }
  const schema = leases.state.schema;
  const keys = new Map(won.map((h) => [lockKey(schema, h), h]));
  let locked: Set<string>;
  try {
    const { rows } = await onSession<{ k: string }>(
      session(leases),
      'SELECT k::text AS k FROM unnest($1::int8[]) AS k WHERE pg_try_advisory_lock(k)',
      [[...keys.keys()]],
    );
    locked = new Set(rows.map((r) => keys.get(r.k)!));
  } catch (e) {
    for (const h of won) leases.holders.delete(h);
    scheduleIdleClose(leases);
    throw e;
  }
  const mine: string[] = [];
  for (const h of won) {
    if (locked.has(h)) mine.push(h);
    else {
      leases.holders.delete(h);
      heldElsewhere.push(h);
    }
  }
  scheduleIdleClose(leases);
  return { won: mine, heldElsewhere, heldByOwner };
}

/**
 * Gives up `owner`'s leases on `hashes` (hashes it does not hold are ignored). Never throws: a
 * lock that cannot be released now dies with the session.
 * @internal
 */
export async function releaseLeases(
  db: Database,
  hashes: Iterable<string>,
  owner: string,
): Promise<void> {
  const leases = leasesOf(db);
  const freed: string[] = [];
  for (const h of hashes) {
    if (leases.holders.get(h) === owner) {
      leases.holders.delete(h);
      freed.push(h);
    }
  }
  await unlock(leases, freed);
}

/**
 * Gives up every lease `owner` holds (the end of a run, on every exit path).
 * @internal
 */
export async function releaseOwnerLeases(db: Database, owner: string): Promise<number> {
  let leases: Leases;
  try {
    leases = leasesOf(db);
  } catch {
    return 0; // the database is closed: its session (and every lock) is gone with it
  }
  const freed: string[] = [];
  for (const [h, holder] of leases.holders) {
    if (holder === owner) {
      leases.holders.delete(h);
      freed.push(h);
    }
  }
  await unlock(leases, freed);
  if (leases.holders.size === 0) {
    if (leases.idleTimer) clearTimeout(leases.idleTimer);
    leases.idleTimer = undefined;
    await closeSession(leases);
  }
  return freed.length;
}

async function unlock(leases: Leases, hashes: readonly string[]): Promise<void> {
  const s = leases.session;
  if (hashes.length > 0 && s && !s.broken && crossProcess(leases.state)) {
    const schema = leases.state.schema;
    try {
      await onSession(
        s,
        'SELECT count(*) FILTER (WHERE pg_advisory_unlock(k)) FROM unnest($1::int8[]) AS k',
        [hashes.map((h) => lockKey(schema, h))],
      );
    } catch {
      // the session is gone, and its locks with it
    }
  }
  scheduleIdleClose(leases);
}

/**
 * Hashes of `owner`'s leases in this process (for tests and diagnostics).
 * @internal
 */
export function ownerLeases(db: Database, owner: string): string[] {
  return [...leasesOf(db).holders].filter(([, o]) => o === owner).map(([h]) => h);
}
