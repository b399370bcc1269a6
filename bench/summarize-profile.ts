/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`): share of samples by self time, per
 * function (top 25) and per coarse category (GC, idle, program, our library, node-postgres,
 * got/http, JSON, other), so RESULTS.md can say what a run's time is made of.
 *
 *   npx tsx bench/summarize-profile.ts /tmp/prof/<file>.cpuprofile
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
const file = process.argv[2];
if (!file) throw new Error('usage: summarize-profile <file.cpuprofile>');
const profile = JSON.parse(readFileSync(file, 'utf8')) as {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
};
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i]!;
  self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
const total = [...self.values()].reduce((a, b) => a + b, 0);
const category = (n: Node): string => {
  const { functionName: f, url } = n.callFrame;
  if (f === '(garbage collector)') return 'GC';
  if (f === '(idle)') return 'idle (waiting for I/O)';
  if (f === '(program)') return 'V8/native (program)';
  if (/\/lib\/|\/dist\//.test(url) && !url.includes('node_modules')) return 'library';
  if (url.includes('node_modules/pg') || url.includes('pg-protocol')) return 'node-postgres';
  if (url.includes('node_modules/knex') || url.includes('mikro-orm')) return 'knex/MikroORM';
  if (url.includes('pglite')) return 'PGlite (WASM + JS)';
  if (url.includes('node_modules/got') || url.startsWith('node:http') || url.includes('_http'))
    return 'HTTP (got, node:http)';
  if (url.includes('rxjs')) return 'RxJS';
  if (f === 'parse' || f === 'stringify') return 'JSON';
  if (url.startsWith('node:') || url === '') return `node internals/native`;
  if (url.includes('/bench/')) return 'bench harness';
  return 'other';
};
const cats = new Map<string, number>();
const fns = new Map<string, number>();
for (const [id, t] of self) {
  const n = byId.get(id)!;
  const c = category(n);
  cats.set(c, (cats.get(c) ?? 0) + t);
  const key = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber + 1}`;
  fns.set(key, (fns.get(key) ?? 0) + t);
}
const pct = (t: number) => `${((t / total) * 100).toFixed(1).padStart(5)}%`;
console.log(`total ${(total / 1e6).toFixed(2)} s of samples`);
for (const [c, t] of [...cats].sort((a, b) => b[1] - a[1])) console.log(`${pct(t)}  ${c}`);
console.log('\ntop functions by self time:');
for (const [f, t] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, 25))
  console.log(`${pct(t)}  ${f}`);
