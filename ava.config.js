/**
 * ava's configuration (a file, not package.json, so that it can order the test files).
 *
 * The files that run longest (child processes, crash trials, scale-out, PGlite folders and
 * template builds, message lock timers) start first: with three files at a time, a long file
 * started last would run alone at the end and set the suite's wall time. Each is a
 * guard-railed, event-driven test; none asserts on speed.
 */
const SLOW_FIRST = [
  'test/saga/crash-forward.test.ts',
  'test/cli/commands.test.ts',
  'test/service-bus/atom-worker.test.ts',
  'test/scale-out/scale-out.test.ts',
  'test/postgres/pglite-template.test.ts',
  'test/documents/reembed-crash.test.ts',
  'test/outbox/crash.test.ts',
  'test/postgres/open-current.test.ts',
  // waits out message lock durations: its time is timers, best spent beside others' CPU work
  'test/service-bus/source.test.ts',
  'test/scripts/check-readme.test.ts',
  'test/saga/start-once.test.ts',
  'test/cli/main.test.ts',
  'test/saga/crash-backward.test.ts',
];

/** Position of a file in SLOW_FIRST (files not listed keep their order after them). */
const rank = (file) => {
  const i = SLOW_FIRST.findIndex((slow) => file.endsWith(slow));
  return i === -1 ? SLOW_FIRST.length : i;
};

export default {
  extensions: { ts: 'module' },
  // the suite's TypeScript through two small module hooks (test/support/ts-hooks.mjs), not
  // tsx: tsx also hooks every CommonJS require, which doubled the cost of loading MikroORM,
  // knex and pg in each of the ~100 worker processes
  nodeArguments: [`--import=${new URL('./test/support/register-ts.mjs', import.meta.url).href}`],
  workerThreads: false,
  // three files at a time on two cores: most files wait on a database, a child process or a
  // server for part of their run, so with one file per core a quarter of the CPU sat idle;
  // four at a time made every file slower (more CPU for the same work). `npm test` on the idle
  // 2-core machine: 406 s at 2, 358-387 s at 4, 342 s at 3.
  concurrency: 3,
  files: ['test/**/*.test.ts'],
  // ava's timeout is per file without progress: a guard against a hang, not a speed check. At a
  // load of 30 on 2 cores one PGlite-backed test of a file can run alone for over 2 minutes.
  timeout: '5m',
  sortTestFiles: (a, b) => rank(a) - rank(b) || a.localeCompare(b, [], { numeric: true }),
};
