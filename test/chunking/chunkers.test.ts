import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import {
  type Chunk,
  type Chunker,
  isInvalidDocumentError,
  loadTokenizer,
  markdownChunker,
  paragraphChunker,
  type SizeBudget,
  sentenceChunker,
  type Tokenizer,
  withHeadingPath,
} from '../../lib/chunking/index.js';
import { pipeline, step } from '../../lib/index.js';

/** A test tokenizer: one token per run of non-space characters (cheap, exact, monotone). */
const wordTokens: Tokenizer = {
  name: 'words',
  count: (text) => text.split(/\s+/).filter(Boolean).length,
};

// ---------------------------------------------------------------- markdown generator
interface GenBlock {
  readonly kind: 'heading' | 'paragraph' | 'list' | 'fence';
  readonly text: string;
  readonly level?: number;
  readonly title?: string;
}
interface GenDoc {
  readonly text: string;
  /** Offsets of every generated block (trimmed). */
  readonly blocks: readonly (GenBlock & { start: number; end: number })[];
  /** Offsets of every code fence, nested ones included. */
  readonly fences: readonly { start: number; end: number }[];
}

const word = fc.stringMatching(/^[a-z]{1,9}$/);
const sentence = fc
  .array(word, { minLength: 1, maxLength: 12 })
  .map((ws) => `${ws.join(' ')}.`)
  .map((s) => s[0]!.toUpperCase() + s.slice(1));
const paragraph = fc
  .array(fc.array(sentence, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 3 })
  .map((lines) => lines.map((l) => l.join(' ')).join('\n'));
const fenceBody = fc
  .array(
    fc.constantFrom(
      'const a = 1;',
      '',
      '# not a heading',
      '- not an item',
      '~~~',
      '  indented',
      'x. Y.',
    ),
    { maxLength: 6 },
  )
  .map((ls) => ls.join('\n'));
const fence = fenceBody.map((b) => `\`\`\`ts\n${b}${b === '' ? '' : '\n'}\`\`\``);
const listItem = fc.record({
  head: sentence,
  more: fc.option(sentence, { nil: undefined }),
  code: fc.option(fenceBody, { nil: undefined }),
});
const list = fc
  .tuple(fc.boolean(), fc.array(listItem, { minLength: 1, maxLength: 5 }), fc.boolean())
  .map(([ordered, items, loose]) =>
    items
      .map((it, i) => {
        let s = `${ordered ? `${i + 1}.` : '-'} ${it.head}`;
        if (it.more) s += `\n  ${it.more}`;
        if (it.code !== undefined) {
          const body = it.code
            .split('\n')
            .map((l) => (l === '' ? '' : `  ${l}`))
            .join('\n');
          s += `\n\n  \`\`\`\n${body}${body === '' ? '' : '\n'}  \`\`\``;
        }
        return s;
      })
      .join(loose ? '\n\n' : '\n'),
  );
const block: fc.Arbitrary<GenBlock> = fc.oneof(
  fc
    .tuple(fc.integer({ min: 1, max: 4 }), fc.array(word, { minLength: 1, maxLength: 4 }))
    .map(([level, ws]) => ({
      kind: 'heading' as const,
      level,
      title: ws.join(' '),
      text: `${'#'.repeat(level)} ${ws.join(' ')}`,
    })),
  paragraph.map((text) => ({ kind: 'paragraph' as const, text })),
  paragraph.map((text) => ({ kind: 'paragraph' as const, text })),
  list.map((text) => ({ kind: 'list' as const, text })),
  fence.map((text) => ({ kind: 'fence' as const, text })),
);
const markdownDoc: fc.Arbitrary<GenDoc> = fc
  .tuple(
    fc.array(fc.tuple(block, fc.constantFrom('\n\n', '\n\n\n', '\n \n')), { maxLength: 14 }),
    fc.constantFrom('', '\n', '  \n'),
    fc.boolean(),
  )
  .map(([parts, lead, crlf]) => {
    let text = lead;
    const blocks: (GenBlock & { start: number; end: number })[] = [];
    for (const [b, sep] of parts) {
      blocks.push({ ...b, start: text.length, end: text.length + b.text.length });
      text += b.text + sep;
    }
    const fences: { start: number; end: number }[] = [];
    for (const m of text.matchAll(/^( *)```[^\n]*\n(?:[^\n]*\n)*?\1```$/gm)) {
      fences.push({ start: m.index + m[1]!.length, end: m.index + m[0].length });
    }
    if (!crlf) return { text, blocks, fences };
    // same document with CRLF line ends: map every offset
    const map = (o: number) => o + (text.slice(0, o).match(/\n/g)?.length ?? 0);
    const shift = <T extends { start: number; end: number }>(r: T): T => ({
      ...r,
      start: map(r.start),
      end: map(r.end),
    });
    return {
      text: text.replace(/\n/g, '\r\n'),
      blocks: blocks.map(shift),
      fences: fences.map(shift),
    };
  });

// ---------------------------------------------------------------- invariants
const isBlank = (s: string) => s.trim() === '';

/** The invariants every chunker keeps, whatever the text and budget. */
function checkChunks(
  t: ExecutionContext,
  text: string,
  chunks: readonly Chunk[],
  budget: SizeBudget | undefined,
  indivisible: readonly { start: number; end: number }[] = [],
): void {
  const size = (s: string) => (budget?.tokenizer ? budget.tokenizer.count(s) : s.length);
  let rebuilt = '';
  let covered = 0;
  chunks.forEach((c, i) => {
    t.is(c.position, i);
    t.is(c.documentId, 'doc');
    t.is(c.content, text.slice(c.start, c.end), 'content is the exact slice');
    t.is(c.content, c.content.trim(), 'chunks are trimmed');
    t.true(c.content.length > 0);
    if (i > 0) {
      const prev = chunks[i - 1]!;
      t.true(c.start > prev.start && c.end > prev.end, 'chunks advance');
      if (c.start < prev.end) {
        t.truthy(budget?.overlap, 'overlap only when asked');
        t.true(size(text.slice(c.start, prev.end)) <= budget!.overlap!, 'overlap within budget');
      }
    }
    // the part of this chunk not already covered, with the whitespace gap before it
    const from = Math.max(covered, c.start);
    t.true(isBlank(text.slice(covered, from)), 'only whitespace between chunks');
    rebuilt += text.slice(covered, c.end);
    covered = c.end;
    if (budget && size(c.content) > budget.max) {
      const single = indivisible.some((u) => u.start === c.start && u.end === c.end);
      const oneCodePoint = [...c.content].length === 1;
      t.true(
        single || oneCodePoint,
        `chunk over budget is one indivisible unit: ${JSON.stringify(c.content)}`,
      );
    }
  });
  t.true(isBlank(text.slice(covered)), 'only whitespace after the last chunk');
  t.is(rebuilt + text.slice(covered), text, 'chunks minus overlap rebuild the text');
}

/**
 * The blocks as markdown reads them: consecutive generated lists are one list (as in
 * CommonMark); with `joinHeadings`, a heading's range stretched over the block after it.
 */
function readBlocks(
  doc: GenDoc,
  joinHeadings: boolean,
): { start: number; end: number; kind: string }[] {
  const ranges: { start: number; end: number; kind: string }[] = [];
  for (const b of doc.blocks) {
    const last = ranges.at(-1);
    if (b.kind === 'list' && last?.kind === 'list') last.end = b.end;
    else if (joinHeadings && b.kind !== 'heading' && last?.kind === 'heading') {
      last.end = b.end;
      last.kind = b.kind;
    } else ranges.push({ start: b.start, end: b.end, kind: b.kind });
  }
  return ranges;
}

/** The heading path at an offset, by brute force over the generated headings. */
function headingPathAt(doc: GenDoc, offset: number): string[] {
  const stack: { level: number; title: string }[] = [];
  for (const b of doc.blocks) {
    if (b.start > offset) break;
    if (b.kind !== 'heading') continue;
    while (stack.length > 0 && stack.at(-1)!.level >= b.level!) stack.pop();
    stack.push({ level: b.level!, title: b.title! });
  }
  return stack.map((h) => h.title);
}

const budgets: fc.Arbitrary<SizeBudget | undefined> = fc.oneof(
  fc.constant(undefined),
  fc
    .tuple(fc.integer({ min: 1, max: 300 }), fc.nat({ max: 100 }))
    .map(([max, o]) => ({ max, overlap: o % max })),
  fc
    .tuple(fc.integer({ min: 1, max: 40 }), fc.nat({ max: 10 }))
    .map(([max, o]) => ({ max, overlap: o % max, tokenizer: wordTokens })),
);

test('markdownChunker: exact slices, rebuilds the text, budget kept, fences never split, heading paths right, blocks that fit kept whole', (t) => {
  fc.assert(
    fc.property(markdownDoc, budgets, (doc, budget) => {
      const chunks = markdownChunker(budget ? { budget } : {})({ id: 'doc', content: doc.text });
      checkChunks(t, doc.text, chunks, budget, doc.fences);
      for (const f of doc.fences) {
        for (const c of chunks) {
          const disjoint = c.end <= f.start || c.start >= f.end;
          t.true(disjoint || (c.start <= f.start && c.end >= f.end), 'a fence is never cut');
        }
        t.true(
          chunks.some((c) => c.start <= f.start && c.end >= f.end),
          'every fence is in a chunk',
        );
      }
      for (const c of chunks) t.deepEqual([...c.headingPath], headingPathAt(doc, c.start));
      const size = (s: string) => (budget?.tokenizer ? budget.tokenizer.count(s) : s.length);
      for (const b of readBlocks(doc, false)) {
        if (b.kind === 'heading') continue;
        const whole = doc.text.slice(b.start, b.end);
        if (budget && size(whole) > budget.max) continue;
        t.true(
          chunks.some((c) => c.start <= b.start && c.end >= b.end),
          `a ${b.kind} that fits is kept together: ${JSON.stringify(whole)}`,
        );
      }
    }),
    { numRuns: 300 },
  );
});

test('markdownChunker without a budget: one chunk per block, a heading opening its first block', (t) => {
  fc.assert(
    fc.property(markdownDoc, (doc) => {
      const chunks = markdownChunker()({ id: 'doc', content: doc.text });
      const ranges = readBlocks(doc, true);
      const expected = ranges.map((r) => doc.text.slice(r.start, r.end));
      t.deepEqual(
        chunks.map((c) => c.content),
        expected,
      );
    }),
    { numRuns: 200 },
  );
});

for (const [name, make] of [
  ['paragraphChunker', paragraphChunker],
  ['sentenceChunker', sentenceChunker],
] as const) {
  test(`${name}: exact slices, rebuilds the text, budget kept, deterministic`, (t) => {
    const text = fc
      .array(fc.tuple(paragraph, fc.constantFrom('\n\n', '\n', ' ', '\n\n\n', '\n \t\n')), {
        maxLength: 10,
      })
      .map((ps) => ps.map(([p, s]) => p + s).join(''));
    fc.assert(
      fc.property(text, budgets, (content, budget) => {
        const chunker = make(budget ? { budget } : {});
        const chunks = chunker({ id: 'doc', content });
        checkChunks(t, content, chunks, budget);
        t.deepEqual(
          make(budget ? { budget } : {})({ id: 'doc', content }),
          chunks,
          'deterministic',
        );
        t.true(chunks.every((c) => c.headingPath.length === 0));
      }),
      { numRuns: 300 },
    );
  });
}

test('markdownChunker is deterministic (same input, fresh chunker, same chunks)', (t) => {
  fc.assert(
    fc.property(markdownDoc, budgets, (doc, budget) => {
      const a = markdownChunker(budget ? { budget } : {})({ id: 'doc', content: doc.text });
      const b = markdownChunker(budget ? { budget } : {})({ id: 'doc', content: doc.text });
      t.deepEqual(a, b);
    }),
    { numRuns: 100 },
  );
});

test('paragraphChunker without a budget gives one chunk per paragraph (brute force)', (t) => {
  fc.assert(
    fc.property(fc.array(paragraph, { maxLength: 8 }), (ps) => {
      const content = ps.join('\n\n');
      const chunks = paragraphChunker()({ id: 'doc', content });
      t.deepEqual(
        chunks.map((c) => c.content),
        ps,
      );
    }),
  );
});

test('a code fence larger than the budget is one chunk of its own, never cut', (t) => {
  const code = Array.from({ length: 30 }, (_, i) => `line ${i}`).join('\n');
  const text = `# Code\n\nBefore.\n\n\`\`\`\n${code}\n\n# inside\n\`\`\`\n\nAfter.`;
  const chunks = markdownChunker({ budget: 50 })({ id: 'doc', content: text });
  const fenceChunk = chunks.find((c) => c.content.startsWith('```'));
  t.truthy(fenceChunk);
  t.true(fenceChunk!.content.endsWith('```'));
  t.true(fenceChunk!.content.length > 50);
  t.deepEqual(
    chunks.map((c) => c.content.length <= 50 || c === fenceChunk),
    chunks.map(() => true),
  );
  t.deepEqual([...fenceChunk!.headingPath], ['Code']);
});

test('a list larger than the budget is cut between items, never inside one that fits', (t) => {
  const items = Array.from({ length: 6 }, (_, i) => `- item number ${i} says something`);
  const text = items.join('\n');
  const chunks = markdownChunker({ budget: 70 })({ id: 'doc', content: text });
  t.true(chunks.length > 1);
  for (const item of items) t.true(chunks.some((c) => c.content.includes(item)));
});

test('token budgets with gpt-tokenizer: no chunk over max tokens, overlap in tokens', async (t) => {
  const tokenizer = await loadTokenizer('cl100k_base');
  t.is(tokenizer.count('hello world'), 2);
  t.is(tokenizer.name, 'cl100k_base');
  t.true(tokenizer.count('<|endoftext|>') > 1, 'special tokens are counted as text, not refused');
  const budget = { max: 40, overlap: 14, tokenizer };
  const text = Array.from(
    { length: 40 },
    (_, i) => `Sentence ${i} talks about pipelines, atoms and relays.${i % 5 === 4 ? '\n\n' : ' '}`,
  ).join('');
  for (const chunker of [
    paragraphChunker({ budget }),
    sentenceChunker({ budget }),
    markdownChunker({ budget }),
  ]) {
    const chunks = chunker({ id: 'doc', content: text });
    checkChunks(t, text, chunks, budget);
    t.true(
      chunks.some((c, i) => i > 0 && c.start < chunks[i - 1]!.end),
      'some chunks overlap',
    );
  }
});

test('sentences: ICU rules keep decimals inside a sentence; a line break ends one', (t) => {
  const chunks = sentenceChunker()({
    id: 'doc',
    content: 'Version 3.5 is out. Is it? Yes!\nA new line starts a sentence',
  });
  t.deepEqual(
    chunks.map((c) => c.content),
    ['Version 3.5 is out.', 'Is it?', 'Yes!', 'A new line starts a sentence'],
  );
});

test('withHeadingPath puts the outer headings before the content', (t) => {
  const chunks = markdownChunker({ budget: 40 })({
    id: 'a',
    content: '# Cats\n\n## Sleep\n\nThey sleep a lot. They purr when they are content.',
  });
  t.deepEqual(chunks.map(withHeadingPath), [
    '# Cats',
    'Cats\n\n## Sleep\n\nThey sleep a lot.',
    'Cats > Sleep\n\nThey purr when they are content.',
  ]);
});

test('a chunker is a step function: it runs in a pipeline', async (t) => {
  const split = pipeline('split', step('chunk', markdownChunker()));
  const chunks = await split.run({ id: 'g', content: '# A\n\ntext\n\n# B\n\nmore' });
  t.deepEqual(
    chunks.map((c: Chunk) => [c.position, c.headingPath.join('/'), c.content]),
    [
      [0, 'A', '# A\n\ntext'],
      [1, 'B', '# B\n\nmore'],
    ],
  );
});

test('bad options are refused at creation; bad documents get InvalidDocumentError', (t) => {
  for (const make of [markdownChunker, paragraphChunker, sentenceChunker] as const) {
    t.throws(() => make({ budget: 0 }), { instanceOf: TypeError, message: /budget.max/ });
    t.throws(() => make({ budget: 1.5 }), { instanceOf: TypeError });
    t.throws(() => make({ budget: { max: 10, overlap: 10 } }), {
      instanceOf: TypeError,
      message: /overlap/,
    });
    t.throws(() => make({ budget: { max: 10, overlap: -1 } }), { instanceOf: TypeError });
    t.throws(() => make({ budget: { max: 10, tokenizer: {} as Tokenizer } }), {
      instanceOf: TypeError,
    });
    const chunker: Chunker = make();
    for (const bad of [null, 'text', { id: 1, content: 'x' }, { id: 'a' }]) {
      const e = t.throws(() => chunker(bad as never));
      t.true(isInvalidDocumentError(e), String(e));
    }
    t.deepEqual(chunker({ id: 'a', content: ' \n\t\n ' }), [], 'a blank document has no chunks');
  }
});
