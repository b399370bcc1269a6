import type { Database } from '../postgres/database.js';
import { isInvalidEmbeddingError } from './errors.js';
import { AtomRejectedError } from './item-errors.js';
import { type PersistAtomsResult, persistAtoms } from './persist-atoms.js';
import type { NewAtom, StoreOptions } from './store.js';

/**
 * What {@link persistWithFallback} did: what {@link persistAtoms} reports, plus the atoms the
 * database refused.
 *
 * @example
 * ```ts
 * import { persistWithFallback, type PersistWithFallbackResult } from '@hartonomous/pipelines/atoms';
 * const result: PersistWithFallbackResult = await persistWithFallback(db, atoms);
 * for (const [hash, error] of result.rejected) console.warn(hash, error.message);
 * ```
 */
export interface PersistWithFallbackResult extends PersistAtomsResult {
  /** Refused atoms by content hash, each with the error that fails it alone. */
  readonly rejected: ReadonlyMap<string, Error>;
}

/**
 * SQLSTATE classes of errors caused by the data of some row, not by the statement or the
 * server: 22 data exception (e.g. a bad encoding), 23 integrity constraint violation, 54
 * program limit exceeded (e.g. a value too large for its index).
 */
const ROW_DATA_CLASSES = new Set(['22', '23', '54']);

/**
 * {@link persistAtoms}, but one row the database refuses does not fail the batch. When the
 * batch's statement fails with an error caused by some row's data (SQLSTATE class 22, 23 or
 * 54, or an unusable embedding), the batch is split in halves and each half retried, down
 * to the single refused rows (a bisection: about `2·log2(n)` extra statements per refused
 * row). Each refused row gets an {@link AtomRejectedError} wrapping the database's error
 * (an unusable embedding keeps its `InvalidEmbeddingError`); every other row is stored.
 * Each statement is one transaction, so a failed attempt writes nothing. Any other error
 * (the database unavailable, cancellation, a bad statement) rejects as before.
 *
 * Hand-written: bisecting a batch around bad rows is a few lines on top of `persistAtoms`;
 * no library does it for a batch `INSERT ... SELECT FROM unnest(...)`.
 *
 * @param db - an open database
 * @param atoms - the batch
 * @param options - cancellation
 * @returns the inserted atoms, the duplicates and the refused atoms
 *
 * @example
 * ```ts
 * import { contentHash, persistWithFallback } from '@hartonomous/pipelines/atoms';
 *
 * const atoms = ['ok', 'also ok'].map((content) => ({ hash: contentHash(content), content }));
 * const { inserted, rejected } = await persistWithFallback(db, atoms);
 * console.log(inserted.length, rejected.size); // 2 0
 * ```
 * @see {@link persistAtoms}
 */
export async function persistWithFallback(
  db: Database,
  atoms: readonly NewAtom[],
  options: StoreOptions = {},
): Promise<PersistWithFallbackResult> {
  try {
    return { ...(await persistAtoms(db, atoms, options)), rejected: new Map() };
  } catch (e) {
    if (atoms.length === 0 || !isRowDataError(e)) throw e;
    if (new Set(atoms.map((a) => a.hash)).size === 1) {
      const hash = (atoms[0] as NewAtom).hash;
      return { inserted: [], duplicates: [], rejected: new Map([[hash, rejection(hash, e)]]) };
    }
  }
  const mid = Math.ceil(atoms.length / 2);
  const left = await persistWithFallback(db, atoms.slice(0, mid), options);
  const right = await persistWithFallback(db, atoms.slice(mid), options);
  return {
    inserted: [...left.inserted, ...right.inserted],
    duplicates: [...left.duplicates, ...right.duplicates],
    rejected: new Map([...left.rejected, ...right.rejected]),
  };
}

/** The SQLSTATE of a driver error (searched along its causes), if any. */
function sqlStateOf(e: unknown): string | undefined {
  for (let cur: unknown = e, depth = 0; cur && depth < 5; depth++) {
    const code = typeof cur === 'object' ? (cur as { code?: unknown }).code : undefined;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
    cur = typeof cur === 'object' ? (cur as { cause?: unknown }).cause : undefined;
  }
  return undefined;
}

function isRowDataError(e: unknown): boolean {
  if (isInvalidEmbeddingError(e)) return true;
  const state = sqlStateOf(e);
  return state !== undefined && ROW_DATA_CLASSES.has(state.slice(0, 2));
}

function rejection(hash: string, e: unknown): Error {
  if (isInvalidEmbeddingError(e)) return e;
  const message =
    typeof e === 'object' && e !== null && typeof (e as Error).message === 'string'
      ? (e as Error).message
      : String(e);
  return new AtomRejectedError(hash, sqlStateOf(e), message, { cause: e });
}
