/**
 * The folder walk of `ingest` on real temporary folder trees: nested `.gitignore` files with
 * negations, include and exclude globs, hidden entries, node_modules and symbolic links; and a
 * property against git itself (`git ls-files --others --exclude-standard`) on random trees.
 */

import { deepStrictEqual } from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import test from 'ava';
import fc from 'fast-check';
import { findTextFiles } from '../../lib/cli/find-text-files.js';
import { runCli, tempDir } from '../support/cli-helpers.js';

async function writeTree(root: string, files: Record<string, string>): Promise<void> {
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), text);
  }
}

const names = async (paths: string[], cwd: string, options = {}): Promise<string[]> =>
  (await findTextFiles(paths, { cwd, ...options })).files.map((f) => f.name);

test('nested .gitignore files, negations and folder rules are honoured as git does', async (t) => {
  const { dir, remove } = await tempDir('gitignore');
  try {
    await writeTree(dir, {
      '.gitignore': '*.log.md\nbuild/\n/top-only.md\ndrafts/*\n!drafts/keep.md\n',
      'a.md': 'a',
      'top-only.md': 'ignored at the root only',
      'x.log.md': 'ignored everywhere',
      'build/out.md': 'ignored folder',
      'drafts/draft.md': 'ignored',
      'drafts/keep.md': 'negated',
      'sub/.gitignore': '!important.log.md\nsecret*\n',
      'sub/top-only.md': 'not the root one',
      'sub/important.log.md': 're-included by the deeper file',
      'sub/other.log.md': 'still ignored',
      'sub/secret-plan.md': 'ignored by the deeper file',
      'sub/build/inner.md': 'inside an ignored folder',
      'sub/deeper/.gitignore': '!secret-ok.md\n',
      'sub/deeper/secret-ok.md': 're-included two levels down',
      'sub/deeper/secret-no.md': 'still ignored',
    });
    const expected = [
      'a.md',
      'drafts/keep.md',
      'sub/deeper/secret-ok.md',
      'sub/important.log.md',
      'sub/top-only.md',
    ];
    t.deepEqual(await names(['.'], dir), expected);
    // git agrees
    execFileSync('git', ['init', '-q', dir]);
    t.deepEqual(
      gitFiles(dir).filter((f) => f.endsWith('.md')),
      expected,
    );
    // --no-gitignore reads everything
    t.is((await names(['.'], dir, { gitignore: false })).length, 13);
    // a named file is read even when ignored
    t.deepEqual(await names(['build/out.md'], dir), ['build/out.md']);
  } finally {
    await remove();
  }
});

test('a .gitignore above the walked folder counts inside a git repository', async (t) => {
  const { dir, remove } = await tempDir('gitignore-above');
  try {
    await writeTree(dir, {
      '.gitignore': 'docs/private/\n*.tmp.md\n',
      'docs/a.md': 'a',
      'docs/b.tmp.md': 'ignored by the root file',
      'docs/private/p.md': 'ignored folder',
    });
    // not a repository: the root file is above the walked folder and does not apply
    t.deepEqual(await names(['docs'], dir), ['docs/a.md', 'docs/b.tmp.md', 'docs/private/p.md']);
    execFileSync('git', ['init', '-q', dir]);
    t.deepEqual(await names(['docs'], dir), ['docs/a.md']);
    t.deepEqual(await names(['.'], join(dir, 'docs')), ['a.md']);
  } finally {
    await remove();
  }
});

test('include and exclude globs; hidden entries, node_modules and symbolic links are left out', async (t) => {
  const { dir, remove } = await tempDir('globs');
  try {
    await writeTree(dir, {
      'a.md': 'a',
      'b.txt': 'b',
      'c.xyz': 'unknown extension',
      'deep/x/d.md': 'd',
      'deep/x/e.xyz': 'e',
      'vendor/v.md': 'v',
      '.hidden.md': 'hidden file',
      '.git/notes.md': 'hidden folder',
      'node_modules/m/readme.md': 'node_modules',
    });
    await symlink(join(dir, 'deep'), join(dir, 'loop'));
    await symlink(join(dir, 'a.md'), join(dir, 'link.md'));
    t.deepEqual(await names(['.'], dir), ['a.md', 'b.txt', 'deep/x/d.md', 'vendor/v.md']);
    // a glob without a slash matches at any depth; include replaces the extension filter
    t.deepEqual(await names(['.'], dir, { include: ['*.xyz'] }), ['c.xyz', 'deep/x/e.xyz']);
    t.deepEqual(await names(['.'], dir, { include: ['deep/**'] }), ['deep/x/d.md', 'deep/x/e.xyz']);
    t.deepEqual(await names(['.'], dir, { include: ['/*.md'] }), ['a.md']);
    t.deepEqual(await names(['.'], dir, { exclude: ['vendor', '*.txt'] }), ['a.md', 'deep/x/d.md']);
    t.deepEqual(await names(['.'], dir, { exclude: ['deep/x'] }), ['a.md', 'b.txt', 'vendor/v.md']);
  } finally {
    await remove();
  }
});

test('ingest --include, --exclude and --no-gitignore reach the walk', async (t) => {
  const { dir, remove } = await tempDir('cli-globs');
  try {
    await writeTree(dir, {
      '.gitignore': 'ignored.md\n',
      'a.md': 'alpha paragraph',
      'b.md': 'beta paragraph',
      'ignored.md': 'gamma paragraph',
      'notes.xyz': 'delta paragraph',
    });
    const filesRead = async (...extra: string[]): Promise<number> => {
      const r = await runCli(['ingest', '.', '--data-dir', 'memory://', '--json', '-q', ...extra], {
        cwd: dir,
      });
      t.is(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as { files: number }).files;
    };
    t.is(await filesRead(), 2);
    t.is(await filesRead('--no-gitignore'), 3);
    t.is(await filesRead('--include', '*.md', '--include', '*.xyz', '--exclude', 'b.md'), 2);
  } finally {
    await remove();
  }
});

/** The untracked, not ignored files git lists, sorted, hidden names left out. */
function gitFiles(dir: string): string[] {
  return execFileSync('git', ['ls-files', '--others', '--exclude-standard', '-z'], {
    cwd: dir,
    encoding: 'utf8',
  })
    .split('\0')
    .filter((f) => f !== '' && !f.split('/').some((part) => part.startsWith('.')))
    .sort();
}

const DIRS = ['a', 'b', 'c'];
const FILES = ['x.md', 'y.md', 'a.md', 'keep.md'];
const PATTERNS = [
  '*.md',
  'x.md',
  '!x.md',
  '!keep.md',
  'a',
  'a/',
  '!a/',
  'b/',
  '!b',
  '/c',
  'c/*',
  '!c/keep.md',
  'a/**/y.md',
  '**/b/x.md',
  'y*',
  '!y.md',
  '*/x.md',
];

test('property: the walk lists exactly the files git does not ignore', async (t) => {
  const path = fc.array(fc.constantFrom(...DIRS), { maxLength: 3 }).map((parts) => parts.join('/'));
  const tree = fc.record({
    files: fc.array(
      fc.tuple(path, fc.constantFrom(...FILES)).map(([d, f]) => (d ? `${d}/${f}` : f)),
      { minLength: 1, maxLength: 25 },
    ),
    gitignores: fc.array(
      fc.tuple(path, fc.array(fc.constantFrom(...PATTERNS), { minLength: 1, maxLength: 4 })),
      { minLength: 1, maxLength: 4 },
    ),
  });
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(tree, async ({ files, gitignores }) => {
      const { dir, remove } = await tempDir(`prop-${runs++}`);
      try {
        const content: Record<string, string> = {};
        for (const f of files) content[f] = f;
        for (const [d, lines] of gitignores) {
          const file = d ? `${d}/.gitignore` : '.gitignore';
          // a folder path that is also a file name cannot be both: keep the tree valid
          content[file] = `${content[file] ?? ''}${lines.join('\n')}\n`;
        }
        const valid = Object.keys(content).every(
          (p) => !Object.keys(content).some((q) => q !== p && q.startsWith(`${p}/`)),
        );
        if (!valid) return;
        await writeTree(dir, content);
        execFileSync('git', ['init', '-q', dir]);
        deepStrictEqual(await names(['.'], dir), gitFiles(dir), JSON.stringify(content));
      } finally {
        await remove();
      }
    }),
    { numRuns: 40 },
  );
  t.pass();
});
