import test from 'ava';
import fc from 'fast-check';
import { Fifo } from '../../lib/core/fifo.js';

test('push and shift keep FIFO order across growth and wrap-around', (t) => {
  const q = new Fifo<number>(2);
  const out: number[] = [];
  let next = 0;
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 7; i++) q.push(next++);
    for (let i = 0; i < 5; i++) out.push(q.shift()!);
  }
  while (q.size > 0) out.push(q.shift()!);
  t.deepEqual(
    out,
    Array.from({ length: next }, (_, i) => i),
  );
  t.is(q.shift(), undefined);
  t.is(q.peek(), undefined);
});

test('behaves like an array used as a queue (property)', (t) => {
  type Op =
    | { op: 'push'; v: number }
    | { op: 'shift' }
    | { op: 'unshift'; v: number }
    | { op: 'delete'; v: number };
  const ops = fc.array(
    fc.oneof(
      fc.record({ op: fc.constant('push' as const), v: fc.integer({ min: 0, max: 20 }) }),
      fc.record({ op: fc.constant('shift' as const) }),
      fc.record({ op: fc.constant('unshift' as const), v: fc.integer({ min: 0, max: 20 }) }),
      fc.record({ op: fc.constant('delete' as const), v: fc.integer({ min: 0, max: 20 }) }),
    ) as fc.Arbitrary<Op>,
    { maxLength: 300 },
  );
  fc.assert(
    fc.property(ops, (list) => {
      const q = new Fifo<number>();
      const model: number[] = [];
      for (const o of list) {
        switch (o.op) {
          case 'push':
            q.push(o.v);
            model.push(o.v);
            break;
          case 'unshift':
            q.unshift(o.v);
            model.unshift(o.v);
            break;
          case 'shift':
            if (q.shift() !== model.shift()) return false;
            break;
          case 'delete': {
            const i = model.indexOf(o.v);
            if (i >= 0) model.splice(i, 1);
            if (q.delete(o.v) !== i >= 0) return false;
            break;
          }
        }
        if (q.size !== model.length || q.peek() !== model[0]) return false;
      }
      return JSON.stringify([...q]) === JSON.stringify(model);
    }),
  );
  t.pass();
});

test('clear empties the queue', (t) => {
  const q = new Fifo<string>();
  for (let i = 0; i < 100; i++) q.push(String(i));
  q.clear();
  t.is(q.size, 0);
  q.push('a');
  t.deepEqual([...q], ['a']);
});
