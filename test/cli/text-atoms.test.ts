import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { isPathNotFoundError, textAtoms } from '../../lib/cli/index.js';

test('textAtoms yields the paragraphs of a folder with file:line sources, skipping hidden and binary files', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'text-atoms-'));
  try {
    await writeFile(join(dir, 'a.md'), '# Title\n\nfirst paragraph\nstill first\n\n\nsecond\n');
    await mkdir(join(dir, '.hidden'));
    await writeFile(join(dir, '.hidden', 'secret.md'), 'never read');
    await writeFile(join(dir, 'b.bin.txt'), Buffer.from([0x61, 0x00, 0x62]));
    const atoms = [];
    for await (const a of await textAtoms([dir], { cwd: dir })) atoms.push(a);
    t.deepEqual(
      atoms.map((a) => [a.content, a.sourceId, a.contentType]),
      [
        // the markdown chunker joins a heading to the block after it
        ['# Title\n\nfirst paragraph\nstill first', 'a.md:1', 'text/markdown'],
        ['second', 'a.md:7', 'text/markdown'],
      ],
    );
    const lines = [];
    for await (const a of await textAtoms(['a.md'], { cwd: dir, split: 'line' }))
      lines.push(a.content);
    t.deepEqual(lines, ['# Title', 'first paragraph', 'still first', 'second']);
    const e = await textAtoms(['missing'], { cwd: dir }).catch((error: unknown) => error);
    t.true(isPathNotFoundError(e));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
