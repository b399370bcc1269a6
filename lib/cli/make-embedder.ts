import type { Embedder } from '../atoms/embedder.js';
import { localEmbedder } from '../atoms/local-embedder.js';
import { extraModel } from '../atoms/model-vectors.js';
import { type Database, readyStateOf, withClient } from '../postgres/database.js';
import type { CliIo } from './cli-io.js';
import type { CliOptions } from './parse-command-line.js';

/**
 * The embedder a command line asks for, at the database's dimensions: the built-in local one,
 * or an OpenAI-compatible server (`--embed-url`, else `OPENAI_BASE_URL`, else OpenAI; key from
 * `OPENAI_API_KEY` in `io.env`).
 *
 * @param options - the parsed options (`embedder`, `embedUrl`, `embedModel`)
 * @param dimensions - the database's embedding dimensions
 * @param io - the environment
 * @param model - the model name the vectors are stored and searched under (default: the
 *   embedder's own: the local embedder's, or `--embed-model`)
 * The HTTP client is imported only when asked for: `search` with the local embedder loads
 * neither got nor RxJS.
 *
 * @returns the embedder and a `close()` releasing its sockets
 * @internal
 */
export async function makeEmbedder(
  options: CliOptions,
  dimensions: number,
  io: CliIo,
  model?: string,
): Promise<{ embedder: Embedder; close(): void }> {
  if (options.embedder === 'local') {
    const local = localEmbedder(dimensions);
    // a named model (reembed --to-model, search --model): the same hashing under that name
    return { embedder: model ? { ...local, model } : local, close: () => undefined };
  }
  const { openAIEmbedder } = await import('../http/openai-embedder.js');
  const client = openAIEmbedder({
    baseUrl: options.embedUrl ?? io.env.OPENAI_BASE_URL ?? 'https://api.openai.com/v1',
    model: options.embedModel ?? model ?? '',
    dimensions,
    // '' means no Authorization header (and no fallback to the process environment)
    apiKey: io.env.OPENAI_API_KEY ?? '',
  });
  const embedder: Embedder =
    model === undefined || model === client.model
      ? client
      : {
          model,
          dimensions: client.dimensions,
          ...(client.maxBatchSize !== undefined ? { maxBatchSize: client.maxBatchSize } : {}),
          ...(client.maxBatchChars !== undefined ? { maxBatchChars: client.maxBatchChars } : {}),
          embed: (texts, signal) => client.embed(texts, signal),
        };
  return { embedder, close: () => client.close() };
}

/**
 * The embedder of a collection's default model (`reembed --set-default`): the same kind of
 * embedder as the command line's, asked for that model by its name (`--embed-model` names the
 * primary model, so it is left out), at the dimensions the database stores for the model.
 * Used by `sync` (to give new atoms that model's vectors) and `search --collection` without
 * `--model` (to embed the query as the collection's vectors were).
 *
 * @param options - the parsed options (`embedder`, `embedUrl`)
 * @param db - the open database
 * @param io - the environment, cancellation
 * @param model - the collection's default model
 * @returns the embedder and a `close()` releasing its sockets
 * @internal
 */
export async function makeDefaultModelEmbedder(
  options: CliOptions,
  db: Database,
  io: CliIo,
  model: string,
): Promise<{ embedder: Embedder; close(): void }> {
  const state = readyStateOf(db);
  const stored = await withClient(state, io.signal, (client) => extraModel(state, client, model));
  const { embedModel: _primary, ...forDefault } = options;
  return makeEmbedder(forDefault, stored?.dimensions ?? db.embeddingDimensions, io, model);
}
