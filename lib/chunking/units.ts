/**
 * The units chunkers pack: trimmed ranges of a text, each knowing how to cut itself into finer
 * units when it is larger than the budget.
 *
 * @module
 * @internal
 */

/**
 * How a unit is cut when it is too large: list items, then sentences, then words, then single
 * characters (code points); `null` when it must never be cut (a code fence, a character).
 * @internal
 */
export type Cut = 'items' | 'sentences' | 'words' | 'chars' | null;

/** A range of the text, trimmed (it starts and ends on non-whitespace). @internal */
export interface Unit {
  readonly start: number;
  readonly end: number;
  readonly cut: Cut;
}

const WHITESPACE = /\s/;

/**
 * The range `[start, end)` of `text` without leading and trailing whitespace, or undefined when
 * it is only whitespace.
 * @internal
 */
export function trimRange(
  text: string,
  start: number,
  end: number,
): { start: number; end: number } | undefined {
  let s = start;
  let e = end;
  while (s < e && WHITESPACE.test(text[s]!)) s++;
  while (e > s && WHITESPACE.test(text[e - 1]!)) e--;
  return s < e ? { start: s, end: e } : undefined;
}

/** Appends the trimmed range as a unit when it is not blank. */
function pushTrimmed(out: Unit[], text: string, start: number, end: number, cut: Cut): void {
  const r = trimRange(text, start, end);
  if (r) out.push({ start: r.start, end: r.end, cut });
}

let segmenter: Intl.Segmenter | undefined;

/**
 * The sentences of `[start, end)`, as `Intl.Segmenter` (ICU's sentence rules) finds them.
 * @internal
 */
export function sentenceUnits(text: string, start: number, end: number): Unit[] {
  segmenter ??= new Intl.Segmenter('en', { granularity: 'sentence' });
  const out: Unit[] = [];
  for (const s of segmenter.segment(text.slice(start, end))) {
    pushTrimmed(out, text, start + s.index, start + s.index + s.segment.length, 'words');
  }
  return out;
}

/**
 * The paragraphs of `[start, end)`: runs of lines that are not blank.
 * @internal
 */
export function paragraphUnits(text: string, start: number, end: number): Unit[] {
  const out: Unit[] = [];
  const blankLine = /\n[ \t\r\f\v]*\n/g;
  blankLine.lastIndex = start;
  let from = start;
  for (;;) {
    const m = blankLine.exec(text);
    if (!m || m.index >= end) break;
    pushTrimmed(out, text, from, m.index, 'sentences');
    // the second newline may open the next blank line: rescan from it
    from = m.index + m[0].length - 1;
    blankLine.lastIndex = from;
  }
  pushTrimmed(out, text, from, end, 'sentences');
  return out;
}

const LIST_ITEM = /^([ \t]*)(?:[-+*]|\d{1,9}[.)])(?:[ \t]|$)/;

/** The items of a markdown list: each starts at a line opening an item at the list's indentation. */
function itemUnits(text: string, start: number, end: number, atomic: readonly Unit[]): Unit[] {
  const out: Unit[] = [];
  let base = -1;
  let itemStart = start;
  let lineStart = start;
  while (lineStart < end) {
    let lineEnd = text.indexOf('\n', lineStart);
    if (lineEnd === -1 || lineEnd > end) lineEnd = end;
    const m = LIST_ITEM.exec(text.slice(lineStart, lineEnd));
    if (m) {
      const indent = m[1]!.length;
      if (base === -1) base = indent;
      const inFence = atomic.some((a) => a.start < lineStart && lineStart < a.end);
      if (indent <= base && lineStart > itemStart && !inFence) {
        pushTrimmed(out, text, itemStart, lineStart, 'sentences');
        itemStart = lineStart;
      }
    }
    lineStart = lineEnd + 1;
  }
  pushTrimmed(out, text, itemStart, end, 'sentences');
  return out;
}

/**
 * Cuts a unit one level finer. Atomic ranges (code fences) inside it are kept whole: a list is
 * cut between items first (never inside a fence), and below that level a fence inside the unit
 * becomes an indivisible unit of its own.
 * @internal
 */
export function cutUnit(text: string, unit: Unit, atomic: readonly Unit[]): Unit[] {
  if (unit.cut === 'items') return itemUnits(text, unit.start, unit.end, atomic);
  const inside = atomic.filter(
    (a) => a.start >= unit.start && a.end <= unit.end && (a.start > unit.start || a.end < unit.end),
  );
  if (inside.length > 0) {
    const out: Unit[] = [];
    let from = unit.start;
    for (const a of inside) {
      if (a.start < from) continue;
      pushTrimmed(out, text, from, a.start, unit.cut);
      out.push({ start: a.start, end: a.end, cut: null });
      from = a.end;
    }
    pushTrimmed(out, text, from, unit.end, unit.cut);
    return out;
  }
  switch (unit.cut) {
    case 'sentences':
      return sentenceUnits(text, unit.start, unit.end).map((u) =>
        u.start === unit.start && u.end === unit.end ? { ...u, cut: 'words' } : u,
      );
    case 'words': {
      const out: Unit[] = [];
      const word = /\S+/g;
      word.lastIndex = unit.start;
      for (;;) {
        const m = word.exec(text);
        if (!m || m.index >= unit.end) break;
        out.push({ start: m.index, end: Math.min(unit.end, m.index + m[0].length), cut: 'chars' });
      }
      return out;
    }
    case 'chars': {
      const out: Unit[] = [];
      for (let i = unit.start; i < unit.end; ) {
        const cp = text.codePointAt(i)!;
        const n = cp > 0xffff ? 2 : 1;
        out.push({ start: i, end: i + n, cut: null });
        i += n;
      }
      return out;
    }
    default:
      return [unit];
  }
}
