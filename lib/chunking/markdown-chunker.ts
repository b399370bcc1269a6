import type { Chunker, ChunkerOptions } from './chunk.js';
import { markdownBlocks } from './markdown-blocks.js';
import { checkDocument, measureOf, packChunks, type UnitGroup } from './pack-chunks.js';

/**
 * A chunker for markdown that follows its structure:
 * - **sections**: a heading starts a section; a chunk never spans two sections and carries the
 *   section's heading path (`['Guide', 'Install']`, outermost first); the heading line itself
 *   opens the section's first chunk;
 * - **code fences** (```` ``` ```` or `~~~`, nested in lists too) are never split, even when
 *   larger than the budget (then they are a chunk of their own);
 * - **lists** are one block: kept together when they fit, cut between items when they do not;
 * - **paragraphs** (and anything else) are blocks cut by sentences, then words, when too large.
 *
 * Without a budget every block is a chunk (a heading joined to the block after it); with one,
 * the blocks of a section are packed up to the budget. It reads ATX headings (`#` to
 * `######`); setext headings, block quotes and indented code read as paragraphs.
 *
 * @param options - the size budget (characters, or tokens with a tokenizer) and overlap
 * @returns a {@link Chunker}: a plain function, usable as a pipeline step function
 * @throws `TypeError` at creation when the budget is invalid
 *
 * @example
 * ```ts
 * import { pipeline, step } from '@hartonomous/pipelines';
 * import { markdownChunker } from '@hartonomous/pipelines/chunking';
 *
 * const chunk = markdownChunker({ budget: { max: 800, overlap: 100 } });
 * const chunks = chunk({ id: 'guide.md', content: '# Guide\n\n## Install\n\nRun `npm i`.' });
 * // [{ documentId: 'guide.md', position: 0, headingPath: ['Guide'], content: '# Guide', ... },
 * //  { documentId: 'guide.md', position: 1, headingPath: ['Guide', 'Install'], content: '## Install\n\nRun `npm i`.', ... }]
 *
 * const split = pipeline('split', step('chunk', chunk)); // Pipeline<ChunkerInput, Chunk[]>
 * ```
 * @see {@link paragraphChunker}, {@link sentenceChunker}
 */
export function markdownChunker(options: ChunkerOptions = {}): Chunker {
  const measure = measureOf('markdownChunker', options);
  return (doc) => {
    checkDocument(doc);
    const { blocks, fences } = markdownBlocks(doc.content);
    const groups: UnitGroup[] = [];
    let current: { headingPath: readonly string[]; units: typeof blocks; leadingHeading: boolean } =
      { headingPath: [], units: [], leadingHeading: false };
    for (const block of blocks) {
      if (block.kind === 'heading') {
        if (current.units.length > 0) groups.push(current);
        current = { headingPath: block.headingPath, units: [block], leadingHeading: true };
      } else {
        current.units.push(block);
      }
    }
    if (current.units.length > 0) groups.push(current);
    return packChunks(doc, groups, measure, fences);
  };
}
