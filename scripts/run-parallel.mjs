// Runs npm test's checks side by side (the machine has two cores; each check is mostly one):
// every argument is one shell command line, its steps joined by `&&` run in order. Output of
// each command is printed whole when it ends, so lines never interleave. Exits with the first
// non-zero status, after every command has ended.
//   node scripts/run-parallel.mjs "npm run lint" "npm run build && npm run check:package"
import { spawn } from 'node:child_process';

const commands = process.argv.slice(2);
if (commands.length === 0) {
  console.error('usage: node scripts/run-parallel.mjs "<command>" ["<command>" ...]');
  process.exit(2);
}
const started = Date.now();
const results = await Promise.all(
  commands.map(
    (command) =>
      new Promise((resolve) => {
        const child = spawn(command, { shell: true, stdio: ['ignore', 'pipe', 'pipe'] });
        const chunks = [];
        child.stdout.on('data', (d) => chunks.push(d));
        child.stderr.on('data', (d) => chunks.push(d));
        child.on('close', (code, signal) => {
          const seconds = ((Date.now() - started) / 1000).toFixed(1);
          const status = code === 0 ? 'ok' : `FAILED (${signal ?? code})`;
          process.stdout.write(`\n> ${command}: ${status} after ${seconds} s\n`);
          process.stdout.write(Buffer.concat(chunks));
          resolve(code ?? 1);
        });
      }),
  ),
);
process.exit(results.find((code) => code !== 0) ?? 0);
