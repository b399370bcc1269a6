#!/usr/bin/env node
/**
 * The `hartonomous` executable: a thin wrapper running {@link run} with the process's streams,
 * environment and a signal that Ctrl-C (SIGINT) or SIGTERM aborts. A second Ctrl-C exits at
 * once with status 130. It loads only the parser until a command runs, so `--help` and
 * `--version` work without the optional peer dependencies.
 *
 * @module
 */

import { CancelledError } from '../core/errors.js';
import { run } from './run.js';

const controller = new AbortController();
let interrupts = 0;
const onSignal = (signal: NodeJS.Signals): void => {
  interrupts++;
  if (interrupts > 1) {
    process.stderr.write('\nforced exit\n');
    process.exit(130);
  }
  process.stderr.write(
    `\n${signal === 'SIGINT' ? 'interrupt' : signal}: stopping after the work in flight (Ctrl-C again to force)\n`,
  );
  controller.abort(new CancelledError('the command'));
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
// `hartonomous search x | head -1`: a closed pipe ends the output, not in a crash
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') throw e;
  process.exit(process.exitCode ?? 0);
});

try {
  // run() never throws: every error is already an exit status and a message
  process.exitCode = await run(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    signal: controller.signal,
  });
} finally {
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
}
