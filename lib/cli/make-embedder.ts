import type { Embedder } from '../atoms/embedder.js';
import { localEmbedder } from '../atoms/local-embedder.js';
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
): Promise<{ embedder: Embedder; close(): void }> {
  if (options.embedder === 'local') {
    return { embedder: localEmbedder(dimensions), close: () => undefined };
  }
  const { openAIEmbedder } = await import('../http/openai-embedder.js');
  const embedder = openAIEmbedder({
    baseUrl: options.embedUrl ?? io.env.OPENAI_BASE_URL ?? 'https://api.openai.com/v1',
    model: options.embedModel ?? '',
    dimensions,
    // '' means no Authorization header (and no fallback to the process environment)
    apiKey: io.env.OPENAI_API_KEY ?? '',
  });
  return { embedder, close: () => embedder.close() };
}
