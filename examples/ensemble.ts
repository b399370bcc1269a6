/**
 * Ensemble inference end to end: three local model servers (one slow, one that fails some
 * calls), registered in an embedded PostgreSQL (PGlite); a stream of requests answered by a
 * weighted vote with per-model timeout, retry and circuit breaker; every answer stored in one
 * saga, and a compensation when the step after storing fails.
 *
 * Run: npx tsx examples/ensemble.ts          (200 requests, PGlite in .data/ensemble)
 *      SMOKE=1 npx tsx examples/ensemble.ts  (20 requests, in-memory PGlite: a few seconds)
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { lastValueFrom, toArray } from 'rxjs';
import { isStepError } from '../lib/core/errors.js';
import {
  type EnsembleAnswer,
  ensemble,
  InferenceInvocationRecord,
  InferenceRequestRecord,
  type ModelInvocation,
  registerModels,
  weightedVote,
} from '../lib/inference/index.js';
import { loadSaga, resumeSagas } from '../lib/postgres/index.js';
import { openDatabase } from '../lib/postgres/open-database.js';
import { isSagaFailedError } from '../lib/saga/errors.js';

const SMOKE = process.env.SMOKE === '1';
const REQUESTS = SMOKE ? 20 : 200;

// --- three model endpoints speaking the library's JSON protocol -----------------------------
// POST { requestId, model, input, parameters } -> 200 { answer, confidence }

type Behaviour = (n: number) => { delayMs: number; status?: number };

async function modelServer(classify: (text: string) => string, behaviour: Behaviour) {
  let n = 0;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => {
      body += chunk.toString();
    });
    req.on('end', () => {
      const { delayMs, status = 200 } = behaviour(++n);
      const timer = setTimeout(() => {
        if (status !== 200) {
          res.writeHead(status).end('temporarily unavailable');
          return;
        }
        const { input } = JSON.parse(body) as { input: string };
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ answer: classify(input), confidence: 0.8 }));
      }, delayMs);
      res.on('close', () => clearTimeout(timer)); // the client gave up (timeout, cancellation)
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/predict`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const keywords = (text: string): string =>
  /great|love|good|excellent/i.test(text)
    ? 'positive'
    : /bad|awful|hate|slow/i.test(text)
      ? 'negative'
      : 'neutral';

const servers = await Promise.all([
  // fast and reliable
  modelServer(keywords, () => ({ delayMs: 2 })),
  // slow: 50, 100, 150 ms, and every 4th call 1 s, beyond its 300 ms limit (then retried)
  modelServer(keywords, (n) => ({ delayMs: n % 4 === 0 ? 1_000 : 50 * (n % 4) })),
  // flaky: every 3rd call answers 503 (retried); it also has its own opinion on short texts
  modelServer(
    (text) => (text.length < 20 ? 'neutral' : keywords(text)),
    (n) => ({ delayMs: 5, ...(n % 3 === 0 ? { status: 503 } : {}) }),
  ),
]);

// --- the registry, in an embedded PostgreSQL ------------------------------------------------
const db = await openDatabase({
  dataDir: process.env.ENSEMBLE_DATA_DIR ?? (SMOKE ? 'memory://' : '.data/ensemble'),
});
await registerModels(db, [
  { name: 'fast', endpoint: servers[0].url, weight: 1.5, timeoutMs: 500 },
  { name: 'slow', endpoint: servers[1].url, weight: 2, timeoutMs: 300 },
  { name: 'flaky', endpoint: servers[2].url, weight: 1, timeoutMs: 500 },
]);

// --- the ensemble: a pipeline load-models -> invoke-models -> aggregate -> persist -----------
let publishes = 0;
const sentiment = ensemble({
  name: 'sentiment',
  models: db,
  strategy: weightedVote(),
  retry: { maxAttempts: 2, baseDelayMs: 10 },
  breaker: { strategy: { type: 'consecutive', failures: 5 }, breakDuration: 5_000 },
  persist: {
    db,
    // the step after storing: every 7th "publish" fails, and the stored rows are compensated
    afterPersist: () => {
      if (++publishes % 7 === 0) throw new Error('message broker unavailable');
    },
  },
});

// finish what a previous crash may have left half-done (nothing, on a fresh database)
const resumed = await resumeSagas(db, [sentiment.persistSaga!], { staleAfterMs: 60_000 });
if (resumed.length > 0) console.log(`resumed ${resumed.length} interrupted saga(s)`);

const texts = [
  'The food was great',
  'Service was slow and the soup was bad',
  'It was fine',
  'I love this place, excellent staff',
  'Awful parking',
  'Good value for money overall',
];
const requests = Array.from({ length: REQUESTS }, (_, i) => ({
  id: `req-${Date.now()}-${String(i).padStart(3, '0')}`,
  input: texts[i % texts.length] as string,
}));

const started = performance.now();
const outcomes = await lastValueFrom(
  sentiment.stream(requests, { concurrency: 4, ordered: true }).pipe(toArray()),
);
const elapsed = performance.now() - started;

// --- the answers ------------------------------------------------------------------------------
console.log(`\n${REQUESTS} requests in ${elapsed.toFixed(0)} ms (concurrency 4)\n`);
const shown = SMOKE ? outcomes : outcomes.slice(0, 12);
for (const o of shown) {
  if (o.ok) {
    const a = o.value;
    console.log(
      `  ${a.requestId.slice(-3)}  ${JSON.stringify(o.input.input).padEnd(42)} -> ${String(a.answer).padEnd(8)}` +
        ` support ${a.support} from ${a.agreeing.join('+')}`,
    );
  } else {
    const cause = isStepError(o.error) ? o.error.cause : o.error;
    console.log(
      `  ${String(o.input.id).slice(-3)}  ${JSON.stringify(o.input.input).padEnd(42)} -> FAILED at '${o.failedStep}': ` +
        (isSagaFailedError(cause)
          ? `${String((cause.cause as Error).message)}; undone: ${cause.compensated.join(', ')}`
          : String(cause)),
    );
  }
}
if (shown.length < outcomes.length) console.log(`  ... and ${outcomes.length - shown.length} more`);

// --- per-model latency and outcomes -------------------------------------------------------
const invocations: ModelInvocation[] = outcomes.flatMap((o) => (o.ok ? o.value.invocations : []));
const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
console.log('\nper model (answered requests):');
console.log('  model   calls   ok  timeout  error  rejected  retried   p50 ms   p95 ms');
for (const name of ['fast', 'slow', 'flaky']) {
  const mine = invocations.filter((i) => i.model === name);
  const count = (outcome: string) => mine.filter((i) => i.outcome === outcome).length;
  const latencies = mine.map((i) => i.latencyMs).sort((a, b) => a - b);
  console.log(
    `  ${name.padEnd(6)} ${String(mine.length).padStart(6)} ${String(count('ok')).padStart(4)}` +
      ` ${String(count('timeout')).padStart(8)} ${String(count('error')).padStart(6)}` +
      ` ${String(count('rejected')).padStart(9)} ${String(mine.filter((i) => i.attempts > 1).length).padStart(8)}` +
      ` ${percentile(latencies, 0.5).toFixed(1).padStart(8)} ${percentile(latencies, 0.95).toFixed(1).padStart(8)}` +
      `   breaker ${sentiment.breaker(name)?.state ?? '-'}`,
  );
}

// --- the compensations --------------------------------------------------------------------
// only a request that reached the persist saga has rows (and compensations) to show; one whose
// ensemble failed earlier (say, every model timed out on a busy machine) never wrote any
const failed = outcomes.filter((o) => !o.ok);
const compensated = failed.filter((o) => o.failedStep === 'persist');
const answered = outcomes.filter((o): o is typeof o & { ok: true; value: EnsembleAnswer } => o.ok);
console.log(
  `\nstored: ${answered.length} answered, ${compensated.length} compensated, ` +
    `${failed.length - compensated.length} failed before persisting`,
);
const em = db.orm.em.fork();
for (const o of compensated.slice(0, 3)) {
  const id = String(o.input.id);
  const request = await em.findOneOrFail(InferenceRequestRecord, { id });
  const rows = await em.count(InferenceInvocationRecord, { requestId: id });
  const saga = await loadSaga(db, request.sagaId as string);
  console.log(
    `  ${id}: request ${request.status} (${String(request.error?.message)}), ` +
      `${rows} invocation rows left, saga ${saga?.status}: ` +
      saga?.steps.map((s) => `${s.name}=${s.status}`).join(' '),
  );
}

sentiment.close();
await db.close();
await Promise.all(servers.map((s) => s.close()));
