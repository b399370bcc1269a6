// Checks the built package (run `npm run build` first):
// 1. `import { pipeline } from '@hartonomous/pipelines'` loads neither MikroORM, PGlite, pg,
//    knex nor @azure/service-bus, and prints nothing;
// 2. CommonJS: `require()` of every subpath works from a .cjs file (Node 20.19+ loads the ESM
//    build through require(esm)) and prints no warning;
// 3. the executable's `--help` and `--version` work with the optional peers hidden.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

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
  { encoding: 'utf8', cwd: root },
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

// 2. CommonJS: a .cjs file inside the package (so the package name resolves to itself)
const probes = {
  '@hartonomous/pipelines': 'pipeline',
  '@hartonomous/pipelines/atoms': 'ingest',
  '@hartonomous/pipelines/postgres': 'openDatabase',
  '@hartonomous/pipelines/inference': 'ensemble',
  '@hartonomous/pipelines/outbox': 'outboxRelay',
  '@hartonomous/pipelines/service-bus': 'serviceBusPublisher',
  '@hartonomous/pipelines/cli': 'run',
  '@hartonomous/pipelines/ops': 'serveOperations',
  '@hartonomous/pipelines/config': 'loadConfig',
  '@hartonomous/pipelines/rollout': 'rollout',
  '@hartonomous/pipelines/testing': 'memoryPublisher',
};
const missingSubpaths = Object.keys(pkg.exports).filter(
  (k) => k !== './package.json' && !(`@hartonomous/pipelines${k.slice(1)}` in probes),
);
if (missingSubpaths.length > 0)
  problems.push(`no CommonJS probe for ${missingSubpaths.join(', ')}`);
for (const [key, value] of Object.entries(pkg.exports)) {
  if (typeof value === 'object' && value.default !== value.import)
    problems.push(`exports["${key}"] has no "default" condition equal to "import"`);
}
mkdirSync(join(root, '.tmp'), { recursive: true });
const cjs = join(root, '.tmp', 'check-require.cjs');
writeFileSync(
  cjs,
  `'use strict';
const probes = ${JSON.stringify(probes)};
for (const [name, symbol] of Object.entries(probes)) {
  const m = require(name);
  if (typeof m[symbol] !== 'function') throw new Error(name + ' has no function ' + symbol);
}
`,
);
const required = spawnSync(process.execPath, [cjs], { encoding: 'utf8', cwd: root });
if (required.status !== 0 || required.stderr !== '' || required.stdout !== '')
  problems.push(
    `require() from a .cjs file failed (status ${required.status}): ${required.stdout}${required.stderr}`,
  );

// 3. --help and --version of the built executable with the optional peers hidden
const hide = join(dir, 'hide.mjs');
writeFileSync(
  hide,
  `const hidden = /^(@mikro-orm|@electric-sql|@azure)\\/|^(pg|knex)(\\/|$)/;
export async function resolve(specifier, context, next) {
  if (hidden.test(specifier)) {
    const e = new Error("Cannot find package '" + specifier + "'");
    e.code = 'ERR_MODULE_NOT_FOUND';
    throw e;
  }
  return next(specifier, context);
}`,
);
const registerHide = `import { register } from 'node:module'; register(${JSON.stringify(`file://${hide}`)});`;
for (const [flag, expected] of [
  ['--help', /^Usage: hartonomous <command>/],
  ['--version', new RegExp(`^${pkg.version.replace(/\./g, '\\.')}\n$`)],
]) {
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      `data:text/javascript,${encodeURIComponent(registerHide)}`,
      join(root, pkg.bin.hartonomous),
      flag,
    ],
    { encoding: 'utf8', cwd: dir },
  );
  if (r.status !== 0 || !expected.test(r.stdout))
    problems.push(
      `hartonomous ${flag} without the optional peers: status ${r.status}: ${r.stdout}${r.stderr}`,
    );
}

if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(
  `core import ok: ${resolved.length} modules resolved, none of MikroORM, PGlite, pg or Azure`,
);
console.log(`require() ok from a .cjs file: ${Object.keys(probes).length} subpaths`);
console.log('hartonomous --help and --version ok without the optional peers');
