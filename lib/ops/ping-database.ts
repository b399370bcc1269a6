import { type Database, stateOf, withClient } from '../postgres/database.js';

/**
 * Checks that a database answers: takes a connection from its pool and runs `SELECT 1`.
 * Use it as the `database` readiness check of {@link serveOperations}.
 *
 * @param db - an open database (`@hartonomous/pipelines/postgres`)
 * @param signal - cancels the check before it takes a connection
 * @returns `true` when the database answered
 * @throws `DatabaseUnavailableError` when it cannot be reached, `TypeError` once it is closed
 *
 * @example
 * ```ts
 * import { pingDatabase } from '@hartonomous/pipelines/ops';
 * import { openDatabase } from '@hartonomous/pipelines/postgres';
 *
 * const db = await openDatabase({ dataDir: 'memory://' });
 * console.log(await pingDatabase(db)); // true
 * await db.close();
 * ```
 */
export async function pingDatabase(db: Database, signal?: AbortSignal): Promise<boolean> {
  await withClient(stateOf(db), signal, (client) => client.query('SELECT 1'));
  return true;
}
