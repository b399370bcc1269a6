import { pathToFileURL } from 'node:url';
import { lastValueFrom, toArray } from 'rxjs';
import { pipeline } from '../../lib/core/pipeline.js';
import { step } from '../../lib/core/step.js';
import { rollout } from '../../lib/rollout/rollout.js';

/** The variant that served each key `key-0 .. key-(n-1)` through a real rollout at `percent`. */
export async function servedVariants(n: number, percent: number): Promise<string[]> {
  const stable = pipeline(
    'v1',
    step('tag', (k: string) => `stable:${k}`),
  );
  const candidate = pipeline(
    'v2',
    step('tag', (k: string) => `candidate:${k}`),
  );
  const r = rollout({ name: 'two-processes', stable, candidate, key: (k: string) => k, percent });
  const keys = Array.from({ length: n }, (_, i) => `key-${i}`);
  const outcomes = await lastValueFrom(r.stream(keys, { ordered: true }).pipe(toArray()));
  return outcomes.map((o) => (o.ok ? String(o.value).split(':')[0] : 'failed') as string);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [n, percent] = process.argv.slice(2).map(Number);
  servedVariants(n as number, percent as number).then(
    (variants) => process.stdout.write(JSON.stringify(variants)),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
