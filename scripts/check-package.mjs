// Checks the built package: `import { pipeline } from '@hartonomous/pipelines'` must load
// neither MikroORM, PGlite, pg, knex nor @azure/service-bus, and must print nothing.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = mkdtempSync(join(tmpdir(), 'pkg-check-'));
const log = join(dir, 'resolved.txt');
const hooks = join(dir, 'hooks.mjs');
writeFileSync(
  hooks,
  `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(${JSON.stringify(log)}, r.url + '\\n');
  return r;
}`,
);
writeFileSync(log, '');
const register = `import { register } from 'node:module'; register(${JSON.stringify(`file://${hooks}`)});`;
const run = spawnSync(
  process.execPath,
  [
    '--import',
    `data:text/javascript,${encodeURIComponent(register)}`,
    '--input-type=module',
    '-e',
    "const m = await import('@hartonomous/pipelines'); if (typeof m.pipeline !== 'function') process.exit(3);",
  ],
  { encoding: 'utf8' },
);
const resolved = readFileSync(log, 'utf8').split('\n').filter(Boolean);
const forbidden = resolved.filter((u) =>
  /@mikro-orm|@azure|pglite|\/knex\/|\/pg\/|node_modules\/pg-/.test(u),
);
const problems = [];
if (run.status !== 0) problems.push(`import failed with status ${run.status}: ${run.stderr}`);
if (run.stdout !== '' || run.stderr !== '')
  problems.push(`import printed output: ${run.stdout}${run.stderr}`);
if (forbidden.length > 0) problems.push(`core import loaded: ${forbidden.join(', ')}`);
if (!resolved.some((u) => u.includes('/dist/index.js')))
  problems.push('the built dist/index.js was not loaded');
if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(
  `core import ok: ${resolved.length} modules resolved, none of MikroORM, PGlite, pg or Azure`,
);
