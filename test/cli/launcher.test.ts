/**
 * scripts/cli.mjs, what `npm run cli` runs from a clone: the built dist/cli/main.js when it is
 * current with lib/, the sources through tsx otherwise (or when `HARTONOMOUS_CLI_SOURCE=1`).
 * Either way the same command line answers.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';

const root = fileURLToPath(new URL('../../', import.meta.url));
const launcher = join(root, 'scripts', 'cli.mjs');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  version: string;
  scripts: Record<string, string>;
};
const run = promisify(execFile);

test('npm run cli runs the launcher', (t) => {
  t.is(pkg.scripts.cli, 'node scripts/cli.mjs');
});

for (const source of [true, false]) {
  test(`the launcher answers --version (${source ? 'sources forced' : 'built when current'})`, async (t) => {
    const { stdout } = await run(process.execPath, [launcher, '--version'], {
      cwd: root,
      env: { ...process.env, HARTONOMOUS_CLI_SOURCE: source ? '1' : '' },
      timeout: 120_000,
    });
    t.true(stdout.includes(pkg.version), stdout);
  });
}
