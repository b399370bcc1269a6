/**
 * The real executable: lib/cli/main.ts spawned through tsx (`node --import tsx`), as the
 * built dist/cli/main.js runs. Proves the entry point parses, exits by itself when done (no
 * handle left open) and turns Ctrl-C (SIGINT) into a clean stop with a partial report and 130.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import type { IngestCommandReport } from '../../lib/cli/ingest-command.js';
import { postgresTarget, tempDir } from '../support/cli-helpers.js';
import { SERVER_URL, serverUnavailableReason } from '../support/databases.js';
import { startEmbeddingServer } from '../support/embedding-server.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const main = join(root, 'lib', 'cli', 'main.ts');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
const unavailable = await serverUnavailableReason();
const serverTest = unavailable ? test.skip : test;
const GUARD_MS = 240_000;

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Spawns the CLI; `onStderr` sees stderr as it arrives. Killed after 240 s: a guard against a
 * process that never exits, generous enough for a first PGlite start on a very busy machine.
 */
function spawnCli(
  argv: readonly string[],
  onStderr?: (text: string, child: ChildProcess) => void,
): Promise<Exit> {
  const child = spawn(process.execPath, ['--import', 'tsx', main, ...argv], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    stdout += s;
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
    onStderr?.(stderr, child);
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), GUARD_MS);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

test('the entry point runs under tsx: --help, --version, bad usage', async (t) => {
  const help = await spawnCli(['--help']);
  t.is(help.code, 0, help.stderr);
  t.regex(help.stdout, /^Usage: hartonomous <command> \[options\]\n/);
  t.is(help.stderr, '');
  const version = await spawnCli(['--version']);
  t.is(version.code, 0);
  t.is(version.stdout, `${pkg.version}\n`);
  const bad = await spawnCli(['frob']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /^error: unknown command 'frob'\n\nUsage:/);
});

test('the executable starts with a node shebang', (t) => {
  t.true(readFileSync(main, 'utf8').startsWith('#!/usr/bin/env node\n'));
});

test('the process exits by itself after using an embedded database', async (t) => {
  t.timeout(GUARD_MS + 60_000);
  const r = await spawnCli(['migrate', '--data-dir', 'memory://', '--json']);
  t.is(r.signal, null, 'not killed by the guard: the process exits by itself');
  t.is(r.code, 0, r.stderr);
  t.like(JSON.parse(r.stdout), { backend: 'pglite', from: 0 });
});

serverTest('Ctrl-C stops an ingest cleanly: partial report on stdout, exit 130', async (t) => {
  const target = postgresTarget('sigint');
  const corpus = await tempDir('sigint');
  const server = await startEmbeddingServer({ dimensions: 384, latencyMs: 300 });
  try {
    await writeFile(
      join(corpus.dir, 'big.txt'),
      Array.from({ length: 5000 }, (_, i) => `entry number ${i}`).join('\n'),
    );
    let sent = false;
    const r = await spawnCli(
      [
        'ingest',
        corpus.dir,
        '--split',
        'line',
        '--batch-size',
        '50',
        '--json',
        '--embedder',
        'openai',
        '--embed-url',
        server.baseUrl,
        '--embed-model',
        'slow',
        ...target.args,
      ],
      (stderr, child) => {
        if (!sent && /^progress: .* [1-9][\d,]* items/m.test(stderr)) {
          sent = true;
          child.kill('SIGINT');
        }
      },
    );
    t.true(sent, r.stderr);
    t.is(r.code, 130, r.stderr);
    t.regex(r.stderr, /\ninterrupt: stopping after the work in flight/);
    t.notRegex(r.stderr, /^\s+at /m);
    const report = JSON.parse(r.stdout) as IngestCommandReport;
    t.true(report.interrupted);
    t.true(report.processed > 0 && report.processed < 5000, String(report.processed));
    t.is(report.location, SERVER_URL.replace(/:[^:@/]*@/, ':***@'));
  } finally {
    await server.close();
    await corpus.remove();
    await target.dispose();
  }
});
