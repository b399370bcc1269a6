import test from 'ava';
import fc from 'fast-check';
import { pgvectorArray, pgvectorValue } from '../../lib/postgres/binary.js';

/** pgvector's binary form written value by value: int16 dims, int16 0, float4 big-endian. */
function reference(v: Float32Array): Buffer {
  const buf = Buffer.alloc(4 + 4 * v.length);
  buf.writeInt16BE(v.length, 0);
  for (let i = 0; i < v.length; i++) buf.writeFloatBE(v[i]!, 4 + 4 * i);
  return buf;
}

const floats = fc.array(fc.float({ noNaN: true }), { maxLength: 64 });

test('pgvectorValue equals the value-by-value big-endian encoding, also for views at an offset', (t) => {
  fc.assert(
    fc.property(floats, fc.nat({ max: 7 }), (values, skip) => {
      const backing = Float32Array.from([...Array(skip).fill(1.5), ...values]);
      const v = backing.subarray(skip);
      t.deepEqual(pgvectorValue(v), reference(v));
      t.deepEqual(Array.from(v), Array.from(backing.subarray(skip)), 'the input is not touched');
    }),
  );
});

test('pgvectorArray holds each vector in that encoding', (t) => {
  fc.assert(
    fc.property(fc.array(floats, { minLength: 1, maxLength: 6 }), (rows) => {
      const vectors = rows.map((r) => Float32Array.from(r));
      const buf = pgvectorArray(12345, vectors);
      let o = 20;
      for (const v of vectors) {
        const size = buf.readInt32BE(o);
        t.deepEqual(buf.subarray(o + 4, o + 4 + size), reference(v));
        o += 4 + size;
      }
      t.is(o, buf.length);
    }),
  );
});
