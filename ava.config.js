/**
 * ava's configuration (a file, not package.json, so that it can order the test files).
 *
 * The slow files (child processes, crash trials, scale-out) start first: with one file per
 * CPU at a time, a slow file started last would run alone at the end and set the suite's wall
 * time. Each is a guard-railed, event-driven test; none asserts on speed.
 */
const SLOW_FIRST = [
  'test/saga/crash-forward.test.ts',
  'test/scale-out/scale-out.test.ts',
  'test/outbox/crash.test.ts',
  'test/service-bus/atom-worker.test.ts',
  'test/saga/start-once.test.ts',
  'test/cli/main.test.ts',
  'test/saga/crash-backward.test.ts',
  'test/scripts/check-readme.test.ts',
];

/** Position of a file in SLOW_FIRST (files not listed keep their order after them). */
const rank = (file) => {
  const i = SLOW_FIRST.findIndex((slow) => file.endsWith(slow));
  return i === -1 ? SLOW_FIRST.length : i;
};

export default {
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  workerThreads: false,
  files: ['test/**/*.test.ts'],
  timeout: '2m',
  sortTestFiles: (a, b) => rank(a) - rank(b) || a.localeCompare(b, [], { numeric: true }),
};
