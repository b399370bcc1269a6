#!/usr/bin/env node
// `npm run cli -- <command>`: the command line from a clone. Runs the built JavaScript
// (dist/cli/main.js) when it is at least as new as every source file under lib/, and the
// TypeScript sources through tsx otherwise (a clone that was never built, or was edited since).
// tsx compiles each module on the fly: about 1 s of CPU per run on a 2-core machine, more
// than a whole `search` of the built bin costs beyond opening the database (bench/RESULTS.md,
// section 10). `HARTONOMOUS_CLI_SOURCE=1` forces the sources.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const built = join(root, 'dist', 'cli', 'main.js');

/** The newest modification time of the TypeScript sources under `dir` (ms). */
function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const t = statSync(join(entry.parentPath ?? entry.path, entry.name)).mtimeMs;
    if (t > newest) newest = t;
  }
  return newest;
}

/** Whether dist/ holds a build of the current sources. */
function builtIsCurrent() {
  if (process.env.HARTONOMOUS_CLI_SOURCE === '1' || !existsSync(built)) return false;
  return statSync(built).mtimeMs >= newestSource(join(root, 'lib'));
}

if (builtIsCurrent()) {
  await import(pathToFileURL(built).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(join(root, 'lib', 'cli', 'main.ts')).href);
}
