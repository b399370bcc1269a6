// Runs npm test's checks side by side (the machine has two cores; each check is mostly one):
// every argument is one shell command line, its steps joined by `&&` run in order. Output of
// each command is printed whole when it ends, so lines never interleave; with `--live` the
// LAST command's output streams as it comes instead (npm test: ava's progress), and the others'
// whole blocks appear between its lines. Exits with the first non-zero status, after every
// command has ended.
//   node scripts/run-parallel.mjs "npm run lint" "npm run build && npm run check:package"
//   node scripts/run-parallel.mjs --live "npm run lint" "ava"
import { spawn } from 'node:child_process';

const args = process.argv.slice(2);
const live = args[0] === '--live';
const commands = live ? args.slice(1) : args;
if (commands.length === 0) {
  console.error('usage: node scripts/run-parallel.mjs [--live] "<command>" ["<command>" ...]');
  process.exit(2);
}
const started = Date.now();
const results = await Promise.all(
  commands.map(
    (command, i) =>
      new Promise((resolve) => {
        const streamed = live && i === commands.length - 1;
        const child = spawn(command, {
          shell: true,
          stdio: streamed ? ['ignore', 'inherit', 'inherit'] : ['ignore', 'pipe', 'pipe'],
        });
        const chunks = [];
        child.stdout?.on('data', (d) => chunks.push(d));
        child.stderr?.on('data', (d) => chunks.push(d));
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
