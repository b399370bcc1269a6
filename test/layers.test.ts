// The layer rules of lib/: every folder sits on a layer, and a file imports only from its own
// folder and from folders on LOWER layers. Folders on one layer do not import each other, so
// nothing points up and there is no cycle between folders. Every import form counts: static,
// `import type`, `export ... from`, side-effect imports and dynamic `import()` (found with
// TypeScript's own scanner, so comments and strings are not mistaken for imports).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import ts from 'typescript';

const lib = fileURLToPath(new URL('../lib/', import.meta.url));

/**
 * The layers of lib/, lowest first (README, "Working on this repository", explains each).
 * `index.ts` is the root entry point (`@hartonomous/pipelines`).
 */
const layers: readonly (readonly string[])[] = [
  ['observability'],
  ['core'],
  ['flow', 'config', 'chunking', 'embedding', 'broker', 'worker'],
  ['operators'],
  ['saga', 'rollout', 'testing'],
  ['http', 'postgres', 'service-bus'],
  ['atoms', 'inference', 'outbox', 'ops'],
  ['documents'],
  ['cli'],
  ['index.ts'],
];

const layerOf = new Map(layers.flatMap((folders, i) => folders.map((f) => [f, i] as const)));

/** The relative module specifiers a TypeScript source imports, in every form. */
function importsOf(text: string): string[] {
  return ts
    .preProcessFile(text, true, true)
    .importedFiles.map((f) => f.fileName)
    .filter((spec) => spec.startsWith('.'));
}

/** Every .ts file under `dir`, as a path relative to lib/. */
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith('.ts') ? [relative(lib, path)] : [];
  });
}

/** The layer unit a lib/ path belongs to: its top folder, or the root file itself. */
const unitOf = (path: string): string => path.split('/')[0] as string;

interface Import {
  readonly from: string;
  readonly spec: string;
  /** The imported file, relative to lib/ (`../` when it is outside lib/). */
  readonly target: string;
}

const imports: Import[] = sources(lib).flatMap((from) =>
  importsOf(readFileSync(join(lib, from), 'utf8')).map((spec) => ({
    from,
    spec,
    target: relative(lib, resolve(lib, dirname(from), spec)).replace(/\.js$/, '.ts'),
  })),
);

test('the import scanner sees every import form and nothing in comments or strings', (t) => {
  const source = [
    "import { a } from './static.js';",
    "import type { B } from '../types/b.js';",
    "import './side-effect.js';",
    "export { c } from './re-export.js';",
    "export * from './star.js';",
    'async function f() {',
    "  const [x, y] = await Promise.all([import('../lazy/x.js'), import('./y.js')]);",
    "  type T = typeof import('../type-query/t.js');",
    '}',
    "// import { no } from './comment.js';",
    "/** @example import { no } from '../doc.js'; */",
    'const s = "import { no } from \'./string.js\'";',
    "import { external } from 'rxjs';",
  ].join('\n');
  t.deepEqual(importsOf(source).sort(), [
    '../lazy/x.js',
    '../type-query/t.js',
    '../types/b.js',
    './re-export.js',
    './side-effect.js',
    './star.js',
    './static.js',
    './y.js',
  ]);
});

test('every lib/ folder is on exactly one layer, and every layer names a real folder', (t) => {
  const units = [...new Set(sources(lib).map(unitOf))].sort();
  const declared = layers.flat();
  t.deepEqual([...declared].sort(), units);
  t.is(new Set(declared).size, declared.length);
});

test('every relative import of lib/ resolves to a lib/ source file', (t) => {
  t.true(imports.length > 500);
  const dynamic = imports.filter((i) => i.from === 'postgres/open-database.ts');
  t.true(
    dynamic.some((i) => i.spec === './entities.js'),
    'a lazy import() is seen',
  );
  const unresolved = imports
    .filter((i) => i.target.startsWith('..') || !existsSync(join(lib, i.target)))
    .map((i) => `${i.from} imports ${i.spec}`);
  t.deepEqual(unresolved, []);
});

test('no lib/ file imports from its own layer or a higher one', (t) => {
  const upward = imports
    .filter((i) => unitOf(i.from) !== unitOf(i.target))
    .filter((i) => (layerOf.get(unitOf(i.target)) ?? 0) >= (layerOf.get(unitOf(i.from)) ?? 0))
    .map((i) => `${i.from} imports ${i.spec}`);
  t.deepEqual(upward, []);
});

/** The cycles of a directed graph given by its edges, each as the path around it. */
function cyclesIn(edges: readonly (readonly [string, string])[]): string[] {
  const next = new Map<string, string[]>();
  for (const [from, to] of edges) next.set(from, [...(next.get(from) ?? []), to]);
  const state = new Map<string, 'open' | 'done'>();
  const found: string[] = [];
  const visit = (node: string, path: readonly string[]): void => {
    state.set(node, 'open');
    const here = [...path, node];
    for (const to of next.get(node) ?? []) {
      if (state.get(to) === 'open') found.push([...here.slice(here.indexOf(to)), to].join(' -> '));
      else if (!state.has(to)) visit(to, here);
    }
    state.set(node, 'done');
  };
  for (const node of next.keys()) if (!state.has(node)) visit(node, []);
  return found;
}

test('the cycle finder finds a cycle and only a cycle', (t) => {
  t.deepEqual(
    cyclesIn([
      ['a', 'b'],
      ['b', 'c'],
      ['c', 'a'],
      ['c', 'd'],
    ]),
    ['a -> b -> c -> a'],
  );
  t.deepEqual(
    cyclesIn([
      ['a', 'b'],
      ['a', 'c'],
      ['b', 'c'],
    ]),
    [],
  );
});

test('the engine (core/) has no import cycle between its files, types included', (t) => {
  const inCore = imports.filter((i) => unitOf(i.from) === 'core' && unitOf(i.target) === 'core');
  t.true(inCore.length > 10);
  t.deepEqual(cyclesIn(inCore.map((i) => [i.from, i.target] as const)), []);
});
