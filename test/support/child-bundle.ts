/**
 * Test-support child scripts as one plain JavaScript file each, for the crash and scale-out
 * tests that start dozens of short-lived processes. `node --import tsx <script>` pays, in
 * every child, for tsx's loader and for resolving and transforming each TypeScript module of
 * the library one by one (about 1 CPU second per child here). The bundle (esbuild) holds the
 * script, the library and the packages it uses, MikroORM, knex and node-postgres included:
 * measured on the saga child, loading them from node_modules one module at a time
 * (resolution, `stat`s, the CommonJS lexer of each ESM-imported package) was 1.4 CPU s per
 * child, one bundle 0.8 s. Left outside: PGlite (it finds its WASM and data files next to
 * its own module) and the drivers knex names but never loads here. Without source maps by
 * default (parsing an inline map of the whole bundle costs 0.5 CPU s per child); set
 * `HARTONOMOUS_CHILD_SOURCEMAPS=1` to get them when reading a child's stack trace.
 *
 * The bundle is made from the current source by each test process the first time it asks,
 * so it can never be stale, and is stored under a name that hashes its content (written to a
 * file of its own, then renamed into place), so parallel test files share it safely.
 *
 * @internal
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Under node_modules, so that the bundle's external packages resolve from there. */
const OUT_DIR = join(ROOT, 'node_modules', '.cache', '@hartonomous', 'pipelines', 'children');

const made = new Map<string, string>();

/** Whether bundles carry inline source maps (see the module comment). */
export const SOURCE_MAPS = process.env.HARTONOMOUS_CHILD_SOURCEMAPS === '1';

/** The `node` arguments that run a bundle: with `--enable-source-maps` when it has them. */
export function bundleArgs(script: string): string[] {
  const file = bundledScript(script);
  return SOURCE_MAPS ? ['--enable-source-maps', file] : [file];
}

/**
 * Loaded from node_modules at run time: PGlite (its WASM and data files sit beside its
 * modules) and the drivers and MikroORM packages that knex or MikroORM only name in a
 * `require` for configurations these children never use.
 */
const EXTERNAL = [
  '@electric-sql/*',
  '@mikro-orm/cli',
  '@mikro-orm/entity-generator',
  '@mikro-orm/migrations',
  '@mikro-orm/seeder',
  'better-sqlite3',
  'libsql',
  'mariadb',
  'mysql',
  'mysql2',
  'oracledb',
  'pg-native',
  'pg-query-stream',
  'sqlite3',
  'tedious',
];

/**
 * Prepended to every bundle: `require` for the CommonJS packages inside an ES module bundle,
 * and MikroORM's check that its packages share one version switched off (bundled, it reads
 * the version from the nearest package.json, this repository's, not its own).
 */
const BANNER = [
  "import { createRequire as __childRequire } from 'node:module';",
  'const require = __childRequire(import.meta.url);',
  "process.env.MIKRO_ORM_ALLOW_VERSION_MISMATCH ??= '1';",
].join('\n');

/**
 * The path of the JavaScript bundle of `script` (a path relative to the repository root, or
 * absolute), made on first use in this process.
 */
export function bundledScript(script: string): string {
  const entry = resolve(ROOT, script);
  const known = made.get(entry);
  if (known) return known;
  const result = buildSync({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: EXTERNAL,
    banner: { js: BANNER },
    write: false,
    sourcemap: SOURCE_MAPS ? 'inline' : false,
    logLevel: 'silent',
  });
  const text = result.outputFiles[0]?.contents;
  if (!text) throw new Error(`esbuild produced nothing for ${script}`);
  const hash = createHash('sha256').update(text).digest('hex').slice(0, 16);
  const file = join(OUT_DIR, `${basename(entry).replace(/\.ts$/, '')}-${hash}.mjs`);
  if (!existsSync(file)) {
    mkdirSync(OUT_DIR, { recursive: true });
    const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      writeFileSync(temp, text);
      renameSync(temp, file);
    } finally {
      rmSync(temp, { force: true });
    }
  }
  made.set(entry, file);
  return file;
}
