import { deleteDocuments } from '../documents/delete-documents.js';
import type { CliIo } from './cli-io.js';
import { UsageError } from './errors.js';
import { EXIT } from './exit-status.js';
import { formatCount } from './format.js';
import { openCliDatabase } from './open-cli-database.js';
import type { CliOptions } from './parse-command-line.js';

/**
 * What `delete --json` prints.
 * @internal
 */
export interface DeleteCommandResult {
  readonly collection: string;
  /** Ids deleted (those that were stored). */
  readonly deleted: readonly string[];
  /** Ids given that were not stored. */
  readonly notFound: readonly string[];
  /** Atoms deleted because no document refers to them any more. */
  readonly atomsDeleted: number;
}

/**
 * `hartonomous delete --collection NAME <id...>`: deletes the documents, their chunk lists and
 * the atoms no document refers to any more, with their outbox events, in one transaction.
 *
 * @returns 0 (ids that are not stored are listed, not an error)
 * @internal
 */
export async function deleteCommand(
  ids: readonly string[],
  options: CliOptions,
  io: CliIo,
): Promise<number> {
  if (ids.length === 0) throw new UsageError('delete needs at least one document id', 'delete');
  const collection = options.collection!;
  const { db } = await openCliDatabase(options, io, { migrate: false, mustExist: true });
  try {
    const r = await deleteDocuments(db, {
      collection,
      ids,
      ...(io.signal ? { signal: io.signal } : {}),
    });
    const gone = new Set(r.deleted);
    const result: DeleteCommandResult = {
      collection,
      deleted: r.deleted,
      notFound: [...new Set(ids)].filter((id) => !gone.has(id)),
      atomsDeleted: r.atomsDeleted,
    };
    io.stdout.write(
      options.json
        ? `${JSON.stringify(result, null, 2)}\n`
        : `deleted ${formatCount(result.deleted.length)} document${result.deleted.length === 1 ? '' : 's'} of ${collection} and ${formatCount(result.atomsDeleted)} atom${result.atomsDeleted === 1 ? '' : 's'}${
            result.notFound.length > 0 ? `; not found: ${result.notFound.join(', ')}` : ''
          }\n`,
    );
    return EXIT.ok;
  } finally {
    await db.close();
  }
}
