/**
 * The packing engine every chunker shares: groups of units in, chunks out, within a size
 * budget, with overlap.
 *
 * @module
 * @internal
 */

import type { Chunk, ChunkerInput, ChunkerOptions, SizeBudget } from './chunk.js';
import { InvalidDocumentError } from './errors.js';
import { cutUnit, type Unit } from './units.js';

/** A budget checked and turned into a measure. @internal */
export interface Measure {
  readonly max: number;
  readonly overlap: number;
  /** The size of `text.slice(start, end)`. */
  size(text: string, start: number, end: number): number;
}

/**
 * Units that are packed together, never with units of another group (a markdown section), all
 * under the same heading path.
 * @internal
 */
export interface UnitGroup {
  readonly headingPath: readonly string[];
  readonly units: readonly Unit[];
  /** The first unit is the section's heading: without a budget it joins the next unit. */
  readonly leadingHeading: boolean;
}

/**
 * Checks a chunker's options (throws `TypeError` with the chunker's name) and returns its
 * measure, or undefined without a budget.
 * @internal
 */
export function measureOf(name: string, options: ChunkerOptions): Measure | undefined {
  const { budget } = options;
  if (budget === undefined) return undefined;
  const b: SizeBudget = typeof budget === 'number' ? { max: budget } : budget;
  if (typeof b !== 'object' || b === null) {
    throw new TypeError(`${name}: budget must be a number or { max, overlap?, tokenizer? }`);
  }
  if (!Number.isInteger(b.max) || b.max < 1) {
    throw new TypeError(`${name}: budget.max must be a positive integer, got ${String(b.max)}`);
  }
  const overlap = b.overlap ?? 0;
  if (!Number.isInteger(overlap) || overlap < 0 || overlap >= b.max) {
    throw new TypeError(
      `${name}: budget.overlap must be an integer from 0 to max - 1 (${b.max - 1}), got ${String(overlap)}`,
    );
  }
  const { tokenizer } = b;
  if (tokenizer !== undefined && typeof tokenizer?.count !== 'function') {
    throw new TypeError(`${name}: budget.tokenizer must have a count(text) function`);
  }
  return {
    max: b.max,
    overlap,
    size: tokenizer
      ? (text, start, end) => tokenizer.count(text.slice(start, end))
      : (_text, start, end) => end - start,
  };
}

/**
 * Throws {@link InvalidDocumentError} unless `doc` has a string id and content.
 * @internal
 */
export function checkDocument(doc: unknown): asserts doc is ChunkerInput {
  if (typeof doc !== 'object' || doc === null) {
    throw new InvalidDocumentError('document', doc === null ? 'null' : typeof doc);
  }
  const { id, content } = doc as Record<string, unknown>;
  if (typeof id !== 'string') throw new InvalidDocumentError('id', typeOf(id));
  if (typeof content !== 'string') throw new InvalidDocumentError('content', typeOf(content));
}

function typeOf(v: unknown): string {
  return v === null ? 'null' : typeof v;
}

/**
 * Packs each group's units into chunks: without a measure one chunk per unit (a leading
 * heading joined to the unit after it); with one, units larger than the budget are cut finer
 * (atomic ranges never), then consecutive units are packed greedily while the chunk fits, and
 * each new chunk starts with the longest run of the previous chunk's last units (not all of
 * them) that fits in the overlap.
 * @internal
 */
export function packChunks(
  doc: ChunkerInput,
  groups: readonly UnitGroup[],
  measure: Measure | undefined,
  atomic: readonly Unit[] = [],
): Chunk[] {
  const text = doc.content;
  const chunks: Chunk[] = [];
  const emit = (first: Unit, last: Unit, headingPath: readonly string[]): void => {
    chunks.push({
      documentId: doc.id,
      position: chunks.length,
      headingPath,
      content: text.slice(first.start, last.end),
      start: first.start,
      end: last.end,
    });
  };
  for (const group of groups) {
    const { units, headingPath } = group;
    if (units.length === 0) continue;
    if (!measure) {
      let i = 0;
      if (group.leadingHeading && units.length > 1) {
        emit(units[0]!, units[1]!, headingPath);
        i = 2;
      }
      for (; i < units.length; i++) emit(units[i]!, units[i]!, headingPath);
      continue;
    }
    const fitted: Unit[] = [];
    fitUnits(text, units, measure, atomic, fitted);
    const { max, overlap, size } = measure;
    let cur: Unit[] = [];
    for (const u of fitted) {
      if (cur.length === 0 || size(text, cur[0]!.start, u.end) <= max) {
        cur.push(u);
        continue;
      }
      emit(cur[0]!, cur.at(-1)!, headingPath);
      let from = cur.length;
      if (overlap > 0) {
        const lastEnd = cur.at(-1)!.end;
        for (let j = cur.length - 1; j >= 1; j--) {
          const s = cur[j]!.start;
          if (size(text, s, lastEnd) > overlap || size(text, s, u.end) > max) break;
          from = j;
        }
      }
      cur = cur.slice(from);
      cur.push(u);
    }
    if (cur.length > 0) emit(cur[0]!, cur.at(-1)!, headingPath);
  }
  return chunks;
}

/** Appends `units` to `out`, each cut finer (recursively) until it fits or cannot be cut. */
function fitUnits(
  text: string,
  units: readonly Unit[],
  measure: Measure,
  atomic: readonly Unit[],
  out: Unit[],
): void {
  for (const u of units) {
    if (u.cut === null || measure.size(text, u.start, u.end) <= measure.max) out.push(u);
    else fitUnits(text, cutUnit(text, u, atomic), measure, atomic, out);
  }
}
