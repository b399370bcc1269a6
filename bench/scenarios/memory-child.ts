/**
 * Child process of the memory scenario: streams N items (small objects with a 64-byte string)
 * from an async generator through three trivial async steps at concurrency 16, with no warm-up,
 * then prints the process's peak RSS (the kernel's high-water mark) as JSON.
 *
 *   memory-child.ts <pipeline|rxjs|loop|array> <N>
 *
 * `loop` is the floor: a sequential `for await` loop doing the same three awaits, no framework.
 * `array` materialises first (every item read into an array, as code that loads a whole result
 * set before processing it does), then runs the same three awaits over the array.
 */
import { pipeline, step } from '@hartonomous/pipelines';
import { count, from, lastValueFrom, mergeMap } from 'rxjs';

interface Item {
  readonly id: number;
  readonly payload: string;
}

const mode = process.argv[2];
const n = Number(process.argv[3]);
const startRss = process.memoryUsage.rss();

async function* source(total: number): AsyncGenerator<Item> {
  for (let i = 0; i < total; i++) yield { id: i, payload: `item-${i}-${'x'.repeat(64)}` };
}
const s1 = async (item: Item): Promise<Item> => ({ id: item.id + 1, payload: item.payload });
const s2 = async (item: Item): Promise<number> => item.payload.length + item.id;
const s3 = async (x: number): Promise<number> => x * 2;

const t = performance.now();
let done: number;
if (mode === 'pipeline') {
  const p = pipeline('memory', step('a', s1), step('b', s2), step('c', s3));
  done = await lastValueFrom(p.stream(source(n), { concurrency: 16 }).pipe(count((o) => o.ok)));
} else if (mode === 'rxjs') {
  done = await lastValueFrom(
    from(source(n)).pipe(mergeMap(s1, 16), mergeMap(s2, 16), mergeMap(s3, 16), count()),
  );
} else if (mode === 'loop') {
  done = 0;
  for await (const item of source(n)) {
    await s3(await s2(await s1(item)));
    done++;
  }
} else if (mode === 'array') {
  const all: Item[] = [];
  for await (const item of source(n)) all.push(item);
  done = 0;
  for (const item of all) {
    await s3(await s2(await s1(item)));
    done++;
  }
} else {
  throw new Error(`unknown mode ${mode}`);
}
const ms = performance.now() - t;
process.stdout.write(
  JSON.stringify({
    mode,
    n,
    done,
    ms,
    startMiB: startRss / 2 ** 20,
    peakMiB: process.resourceUsage().maxRSS / 2 ** 10,
    heapMiB: process.memoryUsage().heapUsed / 2 ** 20,
  }),
);
