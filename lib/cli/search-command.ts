import { type SimilarAtom, searchSimilar } from '../atoms/search-similar.js';
import type { CliIo } from './cli-io.js';
import { UsageError } from './errors.js';
import { snippet } from './format.js';
import { makeEmbedder } from './make-embedder.js';
import { openCliDatabase } from './open-cli-database.js';
import type { CliOptions } from './parse-command-line.js';

/**
 * What `search --json` prints.
 * @internal
 */
export interface SearchCommandResult {
  /** The query text. */
  readonly query: string;
  /** The embedding model searched (only atoms it embedded are considered). */
  readonly model: string;
  /** The hits, most similar first. */
  readonly hits: readonly (SimilarAtom & { readonly rank: number })[];
}

/**
 * `hartonomous search <text...>`: embeds the text (words joined by spaces) and prints the `k`
 * most similar atoms with their similarity, source and a one-line snippet.
 *
 * @param words - the query's words
 * @param options - the parsed options
 * @param io - streams, environment, cancellation
 * @returns the exit status (0)
 * @internal
 */
export async function searchCommand(
  words: readonly string[],
  options: CliOptions,
  io: CliIo,
): Promise<number> {
  const query = words.join(' ').trim();
  if (query === '') throw new UsageError('search needs a text to look for', 'search');
  const { db } = await openCliDatabase(options, io, { migrate: false, mustExist: true });
  try {
    const embedding = await makeEmbedder(options, db.embeddingDimensions, io);
    try {
      const { embedder } = embedding;
      const hits = await searchSimilar(db, query, options.k, {
        embedder,
        model: embedder.model,
        ...(io.signal ? { signal: io.signal } : {}),
      });
      if (options.json) {
        const result: SearchCommandResult = {
          query,
          model: embedder.model,
          hits: hits.map((hit, i) => ({ rank: i + 1, ...hit })),
        };
        io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        return 0;
      }
      if (hits.length === 0) {
        io.stdout.write(`no atoms embedded by ${embedder.model} in this database\n`);
        return 0;
      }
      const width = Math.max(40, (io.stdout.isTTY ? io.stdout.columns || 100 : 120) - 4);
      const lines = hits.map(
        (hit, i) =>
          `${String(i + 1).padStart(2)}. ${hit.similarity.toFixed(3)}  ${hit.sourceId ?? `atom ${hit.id}`}\n    ${snippet(hit.content, width)}`,
      );
      io.stdout.write(`${lines.join('\n')}\n`);
      return 0;
    } finally {
      embedding.close();
    }
  } finally {
    await db.close();
  }
}
