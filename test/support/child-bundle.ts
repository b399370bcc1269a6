/**
 * Test-support child scripts as one plain JavaScript file each, for the crash and scale-out
 * tests that start dozens of short-lived processes. `node --import tsx <script>` pays, in
 * every child, for tsx's loader and for resolving and transforming each TypeScript module of
 * the library one by one (about 1 CPU second per child here); the bundle of the same source
 * (esbuild, packages left external and loaded from node_modules as usual) starts with plain
 * `node`. The bundle is made from the current source by each test process the first time it
 * asks (about 0.1 s), so it can never be stale, and is stored under a name that hashes its
 * content (written to a file of its own, then renamed into place), so parallel test files
 * share it safely.
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
    packages: 'external',
    write: false,
    sourcemap: 'inline',
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
