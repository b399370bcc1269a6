/**
 * Runs a test-support script in a child process (`node <bundle of the script>`, see
 * {@link bundleArgs}) and collects its
 * output lines, for the crash and scale-out tests. The child's stdin is a pipe the parent holds
 * open: the support scripts exit when it closes, so a child never outlives a crashed test.
 *
 * @internal
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { bundleArgs } from './child-bundle.js';

/** A running child script. */
export interface ChildScript {
  readonly process: ChildProcess;
  /** Every stdout line so far, and stderr chunks prefixed `stderr: `. */
  readonly lines: string[];
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** Resolves with the first stdout line starting with `prefix` (rejects after `timeoutMs`, default 240 s: a guard, generous for a child starting on a loaded machine). */
  line(prefix: string, timeoutMs?: number): Promise<string>;
  /** SIGKILL, then waits for the exit. */
  kill(): Promise<void>;
}

/**
 * Starts `script` with `env` added to this process's environment: its bundle run by plain
 * `node` (the same source, a second less CPU per child than `node --import tsx`), or with
 * `bundle: false` the script itself through tsx (for a test of which modules a process loads:
 * a bundle hoists the external imports of modules the source only imports dynamically).
 */
export function runScript(
  script: string,
  env: Record<string, string>,
  options: { bundle?: boolean } = {},
): ChildScript {
  const args = options.bundle === false ? ['--import', 'tsx', script] : bundleArgs(script);
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let buffered = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    lines.push(...parts);
  });
  child.stderr?.on('data', (chunk: Buffer) => lines.push(`stderr: ${chunk.toString('utf8')}`));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return {
    process: child,
    lines,
    exited,
    async line(prefix, timeoutMs = 240_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = lines.find((l) => l.startsWith(prefix));
        if (found) return found;
        if (child.exitCode !== null || Date.now() > deadline) {
          throw new Error(`no '${prefix}' line from ${script}:\n${lines.join('\n')}`);
        }
        await delay(20);
      }
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
