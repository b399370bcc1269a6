import type { Tokenizer } from './chunk.js';
import { TokenizerUnavailableError } from './errors.js';

/**
 * The byte-pair encodings {@link loadTokenizer} knows: `o200k_base` (GPT-4o and later) and
 * `cl100k_base` (GPT-4, GPT-3.5, OpenAI's text-embedding-3 models).
 *
 * @example
 * ```ts
 * import type { TokenizerEncoding } from '@hartonomous/pipelines/chunking';
 * const encoding: TokenizerEncoding = 'cl100k_base';
 * ```
 */
export type TokenizerEncoding = 'o200k_base' | 'cl100k_base';

/**
 * Loads a {@link Tokenizer} backed by `gpt-tokenizer` (an optional peer dependency), for size
 * budgets in tokens. The package is imported on the first call only, so importing the chunkers
 * costs nothing until a token budget is used. Special tokens in the text (`<|endoftext|>`) are
 * counted as ordinary text, never refused.
 *
 * @param encoding - which encoding
 * @returns a tokenizer whose `count` is synchronous
 * @throws {@link TokenizerUnavailableError} when `gpt-tokenizer` is not installed
 *
 * @example
 * ```ts
 * import { loadTokenizer, markdownChunker } from '@hartonomous/pipelines/chunking';
 *
 * const tokenizer = await loadTokenizer('cl100k_base');
 * const chunk = markdownChunker({ budget: { max: 256, overlap: 32, tokenizer } });
 * console.log(tokenizer.count('hello world')); // 2
 * ```
 */
export async function loadTokenizer(
  encoding: TokenizerEncoding = 'o200k_base',
): Promise<Tokenizer> {
  let countTokens: (text: string, options: { disallowedSpecial: Set<string> }) => number;
  try {
    const module =
      encoding === 'cl100k_base'
        ? await import('gpt-tokenizer/encoding/cl100k_base')
        : encoding === 'o200k_base'
          ? await import('gpt-tokenizer/encoding/o200k_base')
          : undefined;
    if (!module) throw new TypeError(`loadTokenizer: unknown encoding ${String(encoding)}`);
    countTokens = module.countTokens as typeof countTokens;
  } catch (e: unknown) {
    if (e instanceof TypeError && e.message.startsWith('loadTokenizer:')) throw e;
    throw new TokenizerUnavailableError(encoding, e);
  }
  const none = new Set<string>();
  return Object.freeze({
    name: encoding,
    count: (text: string) => countTokens(text, { disallowedSpecial: none }),
  });
}
