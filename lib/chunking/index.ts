/**
 * `@hartonomous/pipelines/chunking`: cut documents into chunks that respect their structure.
 * Markdown by section (heading paths kept, code fences never split, lists kept together),
 * plain text by paragraph or sentence, each within an optional size budget in characters or
 * tokens, with overlap. A chunker is a plain function `(doc) => Chunk[]`, and a step function.
 *
 * @example
 * ```ts
 * import { loadTokenizer, markdownChunker } from '@hartonomous/pipelines/chunking';
 *
 * const chunk = markdownChunker({ budget: { max: 256, overlap: 32, tokenizer: await loadTokenizer() } });
 * for (const c of chunk({ id: 'README.md', content: '# Title\n\nSome text.' })) {
 *   console.log(c.position, c.headingPath.join(' > '), c.content);
 * }
 * ```
 *
 * @module
 */

export {
  type Chunk,
  type Chunker,
  type ChunkerInput,
  type ChunkerOptions,
  type SizeBudget,
  type Tokenizer,
  withHeadingPath,
} from './chunk.js';
export {
  InvalidDocumentError,
  isInvalidDocumentError,
  isTokenizerUnavailableError,
  TokenizerUnavailableError,
} from './errors.js';
export { loadTokenizer, type TokenizerEncoding } from './load-tokenizer.js';
export { markdownChunker } from './markdown-chunker.js';
export { paragraphChunker } from './paragraph-chunker.js';
export { sentenceChunker } from './sentence-chunker.js';
