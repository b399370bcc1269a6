import {
  type Database,
  prepared,
  readyStateOf,
  stateOf,
  withClient,
} from '../postgres/database.js';

/**
 * What `stats` reports about a database.
 * @internal
 */
export interface DatabaseStats {
  /** `'postgres'` or `'pglite'`. */
  readonly backend: string;
  /** Server URL without password, or the PGlite folder. */
  readonly location: string;
  /** The PostgreSQL schema. */
  readonly schema: string;
  /** The highest migration applied. */
  readonly schemaVersion: number;
  /** The highest migration this library knows. */
  readonly knownVersion: number;
  /** Embedding storage (null before the first migration). */
  readonly vectorStorage: string | null;
  /** Embedding dimensions (null before the first migration). */
  readonly dimensions: number | null;
  /** Stored atoms (null when the schema is not current). */
  readonly atoms: number | null;
  /** Sum of the atoms' content sizes in bytes (null when the schema is not current). */
  readonly bytes: number | null;
  /** Outbox rows by state (null when the schema is not current). */
  readonly outbox: {
    readonly pending: number;
    readonly published: number;
    readonly dead: number;
  } | null;
}

/**
 * Reads the counts behind `stats`: atoms and their bytes, outbox rows pending (not published,
 * not dead), published and dead, in one round trip; plus the schema version and settings.
 *
 * @param db - an open database (opened with or without migrations)
 * @param location - where it is, for the report
 * @param signal - cancels the query
 * @returns the statistics
 * @internal
 */
export async function databaseStats(
  db: Database,
  location: string,
  signal?: AbortSignal,
): Promise<DatabaseStats> {
  const state = stateOf(db);
  const base = {
    backend: db.backend,
    location,
    schema: db.schema,
    schemaVersion: db.schemaVersion,
    knownVersion: db.knownVersion,
    vectorStorage: state.settings?.vectorStorage ?? null,
    dimensions: state.settings?.embeddingDimensions ?? null,
  };
  if (db.schemaVersion < db.knownVersion || !state.settings) {
    return { ...base, atoms: null, bytes: null, outbox: null };
  }
  const q = readyStateOf(db).qschema;
  const sql = `SELECT a.atoms, a.bytes, o.pending, o.published, o.dead
FROM (SELECT count(*)::bigint AS atoms, coalesce(sum(byte_size), 0)::bigint AS bytes FROM ${q}.atoms) a,
     (SELECT count(*) FILTER (WHERE published_at IS NULL AND dead_at IS NULL)::bigint AS pending,
             count(*) FILTER (WHERE published_at IS NOT NULL)::bigint AS published,
             count(*) FILTER (WHERE dead_at IS NOT NULL)::bigint AS dead
      FROM ${q}.outbox) o`;
  const { rows } = await withClient(state, signal, (client) =>
    prepared<Record<'atoms' | 'bytes' | 'pending' | 'published' | 'dead', string>>(
      client,
      'cli_stats',
      sql,
      [],
    ),
  );
  const row = rows[0];
  const n = (v: string | undefined): number => Number(v ?? 0);
  return {
    ...base,
    atoms: n(row?.atoms),
    bytes: n(row?.bytes),
    outbox: { pending: n(row?.pending), published: n(row?.published), dead: n(row?.dead) },
  };
}
