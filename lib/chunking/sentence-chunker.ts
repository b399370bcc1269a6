import type { Chunker, ChunkerOptions } from './chunk.js';
import { checkDocument, measureOf, packChunks } from './pack-chunks.js';
import { sentenceUnits } from './units.js';

/**
 * A chunker for plain text by sentence, with ICU's sentence rules (`Intl.Segmenter`: it knows
 * `"3.5"` does not end a sentence, a line break does; it does not know abbreviations such as `"Mr."`). Without a budget every
 * sentence is a chunk; with one, consecutive sentences are packed up to the budget (a sentence
 * larger than it is cut by words, then characters), and the overlap repeats whole sentences.
 *
 * @param options - the size budget (characters, or tokens with a tokenizer) and overlap
 * @returns a {@link Chunker}: a plain function, usable as a pipeline step function
 * @throws `TypeError` at creation when the budget is invalid
 *
 * @example
 * ```ts
 * import { sentenceChunker } from '@hartonomous/pipelines/chunking';
 *
 * const chunk = sentenceChunker({ budget: { max: 40, overlap: 20 } });
 * const chunks = chunk({ id: 'a', content: 'Cats sleep. Dogs bark. Birds sing at dawn.' });
 * chunks.map((c) => c.content); // ['Cats sleep. Dogs bark.', 'Dogs bark. Birds sing at dawn.']
 * ```
 * @see {@link paragraphChunker}, {@link markdownChunker}
 */
export function sentenceChunker(options: ChunkerOptions = {}): Chunker {
  const measure = measureOf('sentenceChunker', options);
  return (doc) => {
    checkDocument(doc);
    const units = sentenceUnits(doc.content, 0, doc.content.length);
    return packChunks(doc, [{ headingPath: [], units, leadingHeading: false }], measure);
  };
}
