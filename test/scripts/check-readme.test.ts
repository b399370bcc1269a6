/**
 * The README checker on a Markdown file made for the test: a type error and a block that
 * hangs are each named by heading and line; fragments are skipped and counted; `no-run`
 * blocks are type-checked only; a good block runs. Also the block extractor itself.
 */

import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { readmeBlocks } from '../../scripts/readme-blocks.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const script = join(root, 'scripts', 'check-readme.ts');

const FENCE = '```';
const MARKDOWN = `# Title

Some text.

## Good

${FENCE}ts
const n: number = 2;
console.log(n * 21);
${FENCE}

## Broken

<!-- no-run: only its types matter -->

${FENCE}ts
const s: string = 1;
${FENCE}

### Hangs

${FENCE}typescript
setInterval(() => undefined, 1_000);
${FENCE}

## Pieces

<!-- fragment: an excerpt -->
${FENCE}ts
this is not even TypeScript
${FENCE}

${FENCE}sh
echo not typescript either
${FENCE}
`;

test('readmeBlocks finds the TypeScript blocks with heading, fence line and marker', (t) => {
  const blocks = readmeBlocks(MARKDOWN);
  t.deepEqual(
    blocks.map((b) => [b.n, b.heading, b.fenceLine, b.kind, b.reason ?? '']),
    [
      [1, '## Good', 7, 'run', ''],
      [2, '## Broken', 16, 'no-run', 'only its types matter'],
      [3, '### Hangs', 22, 'run', ''],
      [4, '## Pieces', 29, 'fragment', 'an excerpt'],
    ],
  );
  t.is(blocks[0]?.code, 'const n: number = 2;\nconsole.log(n * 21);');
});

function check(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      cwd: root,
      env: { ...process.env, DATABASE_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      out += s;
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, out }));
  });
}

test('a type error and a hang are named by heading and line; the rest passes', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'readme-check-'));
  try {
    const file = join(dir, 'FIXTURE.md');
    await writeFile(file, MARKDOWN);
    const typed = await check(['--file', file, '--no-run']);
    t.is(typed.code, 1, typed.out);
    t.regex(
      typed.out,
      /FIXTURE\.md:17:7 \[## Broken, block 2\]: error TS2322: Type 'number' is not assignable to type 'string'\./,
    );
    t.notRegex(typed.out, /block 4/, 'the fragment is not checked');

    // a block that never exits is reported, whatever the machine's speed: it hangs at any
    // timeout (the good block is left out of this run, so nothing depends on how fast it is)
    const fixed = MARKDOWN.replace('const s: string = 1;', "const s: string = '1';");
    await writeFile(
      file,
      fixed.replace('console.log(n * 21);', 'setInterval(() => undefined, 1_000);'),
    );
    const hung = await check(['--file', file, '--timeout', '5']);
    t.is(hung.code, 1, hung.out);
    t.regex(hung.out, /FIXTURE\.md:8 \[## Good, block 1\]: did not exit within 5 s/);
    t.regex(hung.out, /FIXTURE\.md:23 \[### Hangs, block 3\]: did not exit within 5 s/);
    t.notRegex(hung.out, /block 2\]: (did not|exited)/, 'no-run blocks are not run');

    const tooMany = await check(['--file', file, '--no-run', '--max-fragments', '0']);
    t.is(tooMany.code, 1);
    t.regex(tooMany.out, /1 blocks are marked fragment \(at most 0\)/);

    await writeFile(
      file,
      MARKDOWN.replace('const s: string = 1;', "const s: string = '1';").replace(
        'setInterval(() => undefined, 1_000);',
        'console.log(1);',
      ),
    );
    const good = await check(['--file', file]);
    t.is(good.code, 0, good.out);
    t.regex(good.out, /ok \S*FIXTURE\.md:8 \[## Good, block 1\]/);
    t.regex(
      good.out,
      /4 TypeScript blocks: 3 type-checked against dist\/, 2 ran to completion, 1 fragment/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
