import type { Embedder } from '../atoms/embedder.js';
import { extraModel } from '../atoms/model-vectors.js';
import {
  type SearchMode,
  type SimilarAtom,
  searchSimilar,
  type TextMatch,
} from '../atoms/search-similar.js';
import { defaultModelOf } from '../documents/set-default-model.js';
import { type Database, readyStateOf, withClient } from '../postgres/database.js';
import type { CliIo } from './cli-io.js';
import { UsageError } from './errors.js';
import { snippet } from './format.js';
import { makeDefaultModelEmbedder, makeEmbedder } from './make-embedder.js';
import { openCliDatabase } from './open-cli-database.js';
import type { CliOptions } from './parse-command-line.js';

/**
 * What `search --json` prints.
 * @internal
 */
export interface SearchCommandResult {
  /** The query text. */
  readonly query: string;
  /** How the atoms were ranked. */
  readonly mode: SearchMode;
  /** The embedding model searched (only atoms it embedded are considered); null in text mode. */
  readonly model: string | null;
  /** The metadata filter and content type given, if any. */
  readonly filter: { readonly metadata?: Record<string, unknown>; readonly contentType?: string };
  /** The hits, best first. */
  readonly hits: readonly ((SimilarAtom | TextMatch) & { readonly rank: number })[];
}

/**
 * `hartonomous search <text...>`: embeds the text (words joined by spaces) and prints the `k`
 * most similar atoms with their similarity, source and a one-line snippet. `--mode text` ranks
 * by full-text search instead (no embedding; the score shown is `ts_rank`), `--mode hybrid`
 * fuses both; `--filter key=value` and `--content-type` narrow the atoms searched.
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
    const { mode } = options;
    const filter = {
      ...(options.filter ? { metadata: { ...options.filter } } : {}),
      ...(options.contentType ? { contentType: options.contentType } : {}),
      ...(options.collection !== undefined ? { collection: options.collection } : {}),
    };
    const signal = io.signal ? { signal: io.signal } : {};
    // the model searched: --model, else the collection's default, else the embedder's own
    const byDefault =
      options.model === undefined && options.collection !== undefined
        ? await defaultModelOf(db, options.collection, signal)
        : undefined;
    const embedding = mode === 'text' ? undefined : await queryEmbedder(options, db, io, byDefault);
    try {
      const embedder = embedding?.embedder;
      const hits: (SimilarAtom | TextMatch)[] = embedder
        ? await searchSimilar(db, query, options.k, {
            embedder,
            model: embedder.model,
            mode,
            ...filter,
            ...signal,
          })
        : await searchSimilar(db, query, options.k, { mode: 'text', ...filter, ...signal });
      const model = embedder?.model ?? null;
      if (options.json) {
        const result: SearchCommandResult = {
          query,
          mode,
          model,
          filter,
          hits: hits.map((hit, i) => ({ rank: i + 1, ...hit })),
        };
        io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        return 0;
      }
      if (hits.length === 0) {
        const narrowed = Object.keys(filter).length > 0 ? ' matching the filter' : '';
        io.stdout.write(
          model
            ? `no atoms embedded by ${model}${narrowed} in this database\n`
            : `no atoms contain a word of the query${narrowed}\n`,
        );
        return 0;
      }
      const width = Math.max(40, (io.stdout.isTTY ? io.stdout.columns || 100 : 120) - 4);
      const lines = hits.map(
        (hit, i) =>
          `${String(i + 1).padStart(2)}. ${(hit.similarity ?? hit.score).toFixed(3)}  ${hit.sourceId ?? `atom ${hit.id}`}\n    ${snippet(hit.content, width)}`,
      );
      io.stdout.write(`${lines.join('\n')}\n`);
      return 0;
    } finally {
      embedding?.close();
    }
  } finally {
    await db.close();
  }
}

/**
 * The query's embedder: a collection's default model's (asked for by its name, as its vectors
 * were made), else `--model`'s at its stored dimensions, else the command line's own.
 */
async function queryEmbedder(
  options: CliOptions,
  db: Database,
  io: CliIo,
  byDefault: string | undefined,
): Promise<{ embedder: Embedder; close(): void }> {
  if (byDefault !== undefined) return makeDefaultModelEmbedder(options, db, io, byDefault);
  const model = options.model;
  if (model === undefined) return makeEmbedder(options, db.embeddingDimensions, io);
  const state = readyStateOf(db);
  const stored = await withClient(state, io.signal, (client) => extraModel(state, client, model));
  return makeEmbedder(options, stored?.dimensions ?? db.embeddingDimensions, io, model);
}
