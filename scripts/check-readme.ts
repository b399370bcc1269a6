/**
 * The README runs: every TypeScript block of README.md is type-checked against the BUILT
 * package (`@hartonomous/pipelines` resolves to dist/ through the package's own exports), and
 * every block not marked otherwise is run to completion. A broken block is named by its
 * heading and README line.
 *
 *   npm run check:readme                       build, type-check every block, run the runnable ones
 *   npm run check:readme -- --no-run           type-check only (what `npm test` does)
 *   npm run check:readme -- --only "Sagas"     only blocks under headings containing the text
 *   npm run check:readme -- --show             print what each block printed
 *   tsx scripts/check-readme.ts --file X.md    another Markdown file (run `npm run build` first)
 *
 * Markers, on the line before a block (see scripts/readme-blocks.ts): `<!-- fragment: why -->`
 * (neither checked nor run; at most MAX_FRAGMENTS of them) and `<!-- no-run: why -->`
 * (type-checked only).
 *
 * What a running block gets, as a user's program would read it from its environment:
 * - `DATABASE_URL`: a fresh database of its own on the server named by this process's
 *   DATABASE_URL (dropped afterwards); without one, no DATABASE_URL, so `openDatabase()` opens
 *   an embedded PGlite in the block's own temporary working directory;
 * - `OPENAI_BASE_URL`, `OPENAI_API_KEY`: a local OpenAI-compatible embeddings server;
 * - `SERVICEBUS_CONNECTION_STRING`: a local AMQP 1.0 peer standing in for Service Bus;
 * - `MODELS_URL`: a local model server: `POST <MODELS_URL>/<name>/predict` (the library's JSON
 *   protocol) and `POST <MODELS_URL>/v1/chat/completions` (OpenAI chat), answering `positive`;
 * - `SMOKE=1`.
 * Each block must exit by itself within `--timeout` seconds (default 120).
 */

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type ReadmeBlock, readmeBlocks } from './readme-blocks.js';

/** Most fragments a README may hold. */
export const MAX_FRAGMENTS = 5;

const root = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({
  options: {
    file: { type: 'string', default: join(root, 'README.md') },
    'no-run': { type: 'boolean', default: false },
    only: { type: 'string' },
    timeout: { type: 'string', default: '120' },
    'max-fragments': { type: 'string', default: String(MAX_FRAGMENTS) },
    show: { type: 'boolean', default: false },
  },
});
const file = resolve(values.file);
const shown = relative(process.cwd(), file) || file;
const timeoutMs = Number(values.timeout) * 1000;
const maxFragments = Number(values['max-fragments']);

const all = readmeBlocks(readFileSync(file, 'utf8'));
const selected = all.filter((b) => !values.only || b.heading.includes(values.only));
const where = (b: ReadmeBlock, line = 1, col?: number): string =>
  `${shown}:${b.fenceLine + line}${col !== undefined ? `:${col}` : ''} [${b.heading}, block ${b.n}]`;

const problems: string[] = [];
const fragments = all.filter((b) => b.kind === 'fragment');
if (fragments.length > maxFragments) {
  problems.push(
    `${shown}: ${fragments.length} blocks are marked fragment (at most ${maxFragments}): ${fragments
      .map((b) => where(b, 0))
      .join(', ')}`,
  );
}

// one folder per run, inside the package so that the package's name resolves to itself (dist/)
const work = join(root, '.tmp', `readme-${process.pid}-${randomBytes(3).toString('hex')}`);
await mkdir(work, { recursive: true });
const checked = selected.filter((b) => b.kind !== 'fragment');
const fileOf = (b: ReadmeBlock): string => join(work, `block-${String(b.n).padStart(2, '0')}.ts`);
try {
  for (const b of checked) await writeFile(fileOf(b), `${b.code}\nexport {};\n`);
  await writeFile(
    join(work, 'tsconfig.json'),
    JSON.stringify({
      extends: relative(work, join(root, 'tsconfig.json')),
      compilerOptions: { paths: {}, noEmit: true, rootDir: '.', types: ['node'] },
      include: ['*.ts'],
    }),
  );
  if (checked.length > 0) await typeCheck(checked);
  if (!values['no-run'] && problems.length === 0)
    await runBlocks(checked.filter((b) => b.kind === 'run'));
} finally {
  await rm(work, { recursive: true, force: true });
}

const ran = values['no-run'] ? 0 : checked.filter((b) => b.kind === 'run').length;
if (problems.length > 0) {
  console.error(problems.join('\n'));
  console.error(
    `\n${shown}: ${problems.length} problem${problems.length === 1 ? '' : 's'} in ${selected.length} TypeScript blocks`,
  );
  process.exit(1);
}
console.log(
  `${shown}: ${selected.length} TypeScript blocks: ${checked.length} type-checked against dist/, ${
    values['no-run'] ? 'none run (--no-run)' : `${ran} ran to completion`
  }, ${fragments.length} fragment${fragments.length === 1 ? '' : 's'} (at most ${maxFragments})`,
);

async function typeCheck(blocks: readonly ReadmeBlock[]): Promise<void> {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const out = await exec(
    process.execPath,
    [tsc, '-p', join(work, 'tsconfig.json'), '--pretty', 'false'],
    {
      cwd: work,
      timeoutMs: 300_000,
    },
  );
  const byFile = new Map(blocks.map((b) => [fileOf(b), b]));
  let unmapped = '';
  for (const line of `${out.stdout}${out.stderr}`.split('\n')) {
    const m = /^(.+?\.ts)\((\d+),(\d+)\): error (TS\d+): (.*)$/.exec(line);
    const b = m ? byFile.get(resolve(work, m[1] as string)) : undefined;
    if (m && b) {
      problems.push(`${where(b, Number(m[2]), Number(m[3]))}: error ${m[4]}: ${m[5]}`);
    } else if (line.trim() !== '' && !line.startsWith(' ')) unmapped += `${line}\n`;
  }
  if (out.code !== 0 && problems.length === 0) problems.push(`tsc failed:\n${unmapped}`);
  if (problems.some((p) => /Cannot find module '@hartonomous\/pipelines/.test(p))) {
    problems.push('(the package resolves to dist/: run `npm run build` first)');
  }
}

async function runBlocks(blocks: readonly ReadmeBlock[]): Promise<void> {
  if (blocks.length === 0) return;
  const { startEmbeddingServer } = await import('../test/support/embedding-server.js');
  const { startAmqpPeer } = await import('../test/support/amqp-peer.js');
  const embeddings = await startEmbeddingServer({ dimensions: 384 });
  const peer = await startAmqpPeer();
  const models = await startModelServer();
  const serverUrl = process.env.DATABASE_URL || undefined;
  try {
    for (const b of blocks) {
      const cwd = await mkdtemp(join(tmpdir(), `readme-block-${b.n}-`));
      const database = serverUrl
        ? await createDatabase(serverUrl, `readme_${process.pid}_${b.n}`)
        : undefined;
      try {
        const env: Record<string, string | undefined> = {
          ...process.env,
          SMOKE: '1',
          OPENAI_BASE_URL: embeddings.baseUrl,
          OPENAI_API_KEY: 'sk-local-test',
          SERVICEBUS_CONNECTION_STRING: peer.connectionString,
          MODELS_URL: models.url,
          TSX_TSCONFIG_PATH: join(work, 'tsconfig.json'),
          DATABASE_URL: database?.url,
        };
        if (!database) delete env.DATABASE_URL;
        const started = Date.now();
        const r = await exec(
          process.execPath,
          ['--import', import.meta.resolve('tsx'), fileOf(b)],
          {
            cwd,
            env,
            timeoutMs,
          },
        );
        const tail = `${r.stdout}${r.stderr}`.trimEnd().split('\n').slice(-15).join('\n    ');
        if (r.timedOut) {
          problems.push(
            `${where(b)}: did not exit within ${timeoutMs / 1000} s (a handle left open? close the database, stop the worker)\n    ${tail}`,
          );
        } else if (r.code !== 0) {
          problems.push(`${where(b)}: exited with status ${r.code}\n    ${tail}`);
        } else {
          console.log(`ok ${where(b)} ${((Date.now() - started) / 1000).toFixed(1)} s`);
          if (values.show)
            console.log(`    ${`${r.stdout}${r.stderr}`.trimEnd().split('\n').join('\n    ')}`);
        }
      } finally {
        await database?.drop();
        await rm(cwd, { recursive: true, force: true });
      }
    }
  } finally {
    await embeddings.close();
    await peer.close();
    await models.close();
  }
}

/** A fresh database on the server, for one block. */
async function createDatabase(
  serverUrl: string,
  name: string,
): Promise<{ url: string; drop(): Promise<void> }> {
  const { knex } = await import('@mikro-orm/postgresql');
  const admin = async (sql: string): Promise<void> => {
    const client = knex({ client: 'pg', connection: serverUrl, pool: { min: 0, max: 1 } });
    try {
      await client.raw(sql);
    } finally {
      await client.destroy();
    }
  };
  await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return { url: url.href, drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

/** A model server on 127.0.0.1 answering `positive` in both protocols the library speaks. */
async function startModelServer(): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      if (req.method === 'POST' && req.url?.endsWith('/chat/completions')) {
        res.end(
          JSON.stringify({
            id: 'chat-1',
            object: 'chat.completion',
            choices: [
              {
                index: 0,
                message: { role: 'assistant', content: 'positive' },
                finish_reason: 'stop',
              },
            ],
          }),
        );
      } else if (req.method === 'POST' && req.url?.endsWith('/predict')) {
        res.end(JSON.stringify({ answer: 'positive', confidence: 0.9 }));
      } else {
        res.statusCode = 404;
        res.end('{}');
      }
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

interface ExecResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

function exec(
  command: string,
  args: readonly string[],
  options: { cwd: string; env?: Record<string, string | undefined>; timeoutMs: number },
): Promise<ExecResult> {
  return new Promise((done, fail) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      stdout += s;
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.once('error', fail);
    child.once('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr, timedOut });
    });
  });
}
