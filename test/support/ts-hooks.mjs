/**
 * Module hooks that run the test suite's TypeScript in ava's worker processes (registered by
 * `test/support/register-ts.mjs`, ava's `nodeArguments`). They do the two things the suite
 * needs and nothing else: a relative `./x.js` imported from a `.ts` file resolves to `./x.ts`
 * when no `x.js` exists, and a `.ts` file is turned into JavaScript by esbuild's `transform`
 * (types stripped, inline source map), cached on disk by content hash so the ~100 worker
 * processes transform each file once. Every other module (node_modules included) goes
 * through Node's own loaders untouched.
 *
 * Why not tsx, as `npm run demo` and the scripts use: tsx also hooks every CommonJS `require`
 * of the process, which MikroORM, knex and pg are made of. Loading the same packages cost 1.7
 * CPU s under `--import tsx` against 0.85 s with plain `node` here, and a test file's worker
 * paid it before its first test. Measured on the suite: see README, "Working on this
 * repository".
 *
 * @internal
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transformSync } from 'esbuild';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CACHE = join(ROOT, 'node_modules', '.cache', '@hartonomous', 'pipelines', 'ts');

const relative = (specifier) =>
  specifier.startsWith('./') || specifier.startsWith('../') || specifier.startsWith('/');

export async function resolve(specifier, context, next) {
  const parent = context.parentURL;
  if (parent?.endsWith('.ts') && specifier.endsWith('.js') && relative(specifier)) {
    const js = new URL(specifier, parent);
    if (!existsSync(js)) {
      const ts = new URL(`${js.href.slice(0, -3)}.ts`);
      if (existsSync(ts)) return { url: ts.href, format: 'module', shortCircuit: true };
    }
  }
  return next(specifier, context);
}

export async function load(url, context, next) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return next(url, context);
  const file = fileURLToPath(url);
  const source = readFileSync(file, 'utf8');
  const key = createHash('sha256').update(file).update('\0').update(source).digest('hex');
  const cached = join(CACHE, `${key.slice(0, 32)}.js`);
  let code;
  try {
    code = readFileSync(cached, 'utf8');
  } catch {
    code = transformSync(source, {
      loader: 'ts',
      format: 'esm',
      target: 'node20',
      sourcemap: 'inline',
      sourcefile: file,
    }).code;
    mkdirSync(CACHE, { recursive: true });
    const temp = `${cached}.${process.pid}.tmp`;
    writeFileSync(temp, code);
    renameSync(temp, cached);
  }
  return { format: 'module', source: code, shortCircuit: true };
}
