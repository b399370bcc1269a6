import test from 'ava';
import fc from 'fast-check';
import type { ModelResponse } from '../../lib/inference/aggregation.js';
import {
  type Answer,
  firstK,
  isEnsembleFailedError,
  isTieError,
  majorityVote,
  mean,
  median,
  quorum,
  trimmedMean,
  weightedVote,
} from '../../lib/inference/index.js';

/** Responses from [model, answer, weight?, confidence?] tuples, arrival in order. */
function r(...specs: Array<[string, Answer, number?, number?]>): ModelResponse[] {
  return specs.map(([model, answer, weight = 1, confidence], arrival) => ({
    model,
    answer,
    weight,
    arrival,
    ...(confidence === undefined ? {} : { confidence }),
  }));
}

test('majorityVote: the most common answer wins, support = votes, agreeing = its voters', (t) => {
  const out = majorityVote().aggregate(r(['a', 'pos'], ['b', 'neg'], ['c', 'pos']), 'r1');
  t.deepEqual(out, { answer: 'pos', support: 2, agreeing: ['a', 'c'] });
});

test('majorityVote tie: broken by total weight, then lexical order; or TieError', (t) => {
  // 1-1 tie, 'neg' has more weight
  const byWeight = majorityVote().aggregate(r(['a', 'pos', 1], ['b', 'neg', 3]), 'r1');
  t.is(byWeight.answer, 'neg');
  // 1-1 tie, same weight: lexical ('neg' < 'pos')
  const lexical = majorityVote().aggregate(r(['a', 'pos'], ['b', 'neg']), 'r1');
  t.is(lexical.answer, 'neg');
  // order of arrival does not matter
  t.is(majorityVote().aggregate(r(['b', 'neg'], ['a', 'pos']), 'r1').answer, 'neg');
  const e = t.throws(() =>
    majorityVote({ tie: 'error' }).aggregate(r(['a', 'pos', 1], ['b', 'neg', 3]), 'r9'),
  );
  t.true(isTieError(e));
  if (isTieError(e)) {
    t.deepEqual(e.candidates, ['neg', 'pos']);
    t.is(e.requestId, 'r9');
    t.is(e.strategy, 'majority-vote');
  }
  // no tie, no error
  t.is(
    majorityVote({ tie: 'error' }).aggregate(r(['a', 'x'], ['b', 'x'], ['c', 'y']), 'r').answer,
    'x',
  );
});

test('weightedVote: highest total weight wins; confidence optionally scales; ties by votes then lexical', (t) => {
  const responses = r(['a', 'pos', 1], ['b', 'pos', 1], ['c', 'neg', 3]);
  t.deepEqual(weightedVote().aggregate(responses, 'r'), {
    answer: 'neg',
    support: 3,
    agreeing: ['c'],
  });
  // with confidence: pos 0.9 + 0.9 = 1.8 beats neg 3 * 0.5 = 1.5
  const exact = weightedVote({ useConfidence: true }).aggregate(
    r(['a', 'pos', 1, 0.9], ['b', 'pos', 1, 0.9], ['c', 'neg', 3, 0.5]),
    'r',
  );
  t.is(exact.answer, 'pos');
  t.true(Math.abs(exact.support - 1.8) < 1e-9);
  // equal weight 2-2: 'x' has two voters, 'y' one: votes break the tie
  t.is(weightedVote().aggregate(r(['a', 'x', 1], ['b', 'x', 1], ['c', 'y', 2]), 'r').answer, 'x');
  // equal weight and votes: lexical
  t.is(weightedVote().aggregate(r(['a', 'y', 2], ['b', 'x', 2]), 'r').answer, 'x');
  t.true(
    isTieError(
      t.throws(() =>
        weightedVote({ tie: 'error' }).aggregate(r(['a', 'y', 2], ['b', 'x', 2]), 'r'),
      ),
    ),
  );
});

test('mean, weighted mean, median (odd and even) and trimmed mean', (t) => {
  const nums = r(['a', 1, 1], ['b', 2, 1], ['c', 6, 2]);
  t.is(mean().aggregate(nums, 'r').answer, 3);
  t.is(mean({ weighted: true }).aggregate(nums, 'r').answer, (1 + 2 + 12) / 4);
  t.is(mean().name, 'mean');
  t.is(mean({ weighted: true }).name, 'weighted-mean');
  t.is(median().aggregate(nums, 'r').answer, 2);
  t.is(median().aggregate(r(['a', 4], ['b', 1], ['c', 3], ['d', 2]), 'r').answer, 2.5);
  const five = r(['a', 100], ['b', 1], ['c', 2], ['d', 3], ['e', -50]);
  const trimmed = trimmedMean({ trim: 0.2 }).aggregate(five, 'r');
  t.is(trimmed.answer, 2);
  t.is(trimmed.support, 3);
  t.deepEqual([...trimmed.agreeing].sort(), ['b', 'c', 'd']);
  t.is(trimmedMean({ trim: 0 }).aggregate(five, 'r').answer, 56 / 5);
  for (const s of [mean(), median(), trimmedMean()]) {
    t.false(s.accepts?.('positive'));
    t.false(s.accepts?.(Number.NaN));
    t.true(s.accepts?.(1.5));
  }
  t.is(majorityVote().accepts, undefined);
});

test('firstK: enough after k answers, combines the first k with the inner strategy', (t) => {
  const s = firstK({ k: 2 });
  t.is(s.minSuccesses, 2);
  t.false(s.enough?.(r(['a', 'x']), 2));
  t.true(s.enough?.(r(['a', 'x'], ['b', 'y']), 1));
  // first two arrivals: 'y', 'y' -> y, even though 'x' would win among all three
  t.deepEqual(s.aggregate(r(['a', 'y'], ['b', 'y'], ['c', 'x'], ['d', 'x'], ['e', 'x']), 'r'), {
    answer: 'y',
    support: 2,
    agreeing: ['a', 'b'],
  });
  const m = firstK({ k: 2, combine: median() });
  t.is(m.aggregate(r(['a', 1], ['b', 3], ['c', 100]), 'r').answer, 2);
  t.false(m.accepts?.('x'));
  t.is(firstK({ k: 3, minSuccesses: 1 }).minSuccesses, 1);
});

test('quorum: enough once k agree, or once no answer can reach k; no quorum is EnsembleFailedError', (t) => {
  const q = quorum({ k: 2 });
  t.false(q.enough?.(r(['a', 'x']), 2));
  t.true(q.enough?.(r(['a', 'x'], ['b', 'x']), 1));
  t.false(q.enough?.(r(['a', 'x'], ['b', 'y']), 1)); // the last one could still agree
  t.true(q.enough?.(r(['a', 'x'], ['b', 'y']), 0));
  t.true(quorum({ k: 3 }).enough?.(r(['a', 'x'], ['b', 'y']), 1)); // 1 + 1 < 3: impossible
  t.deepEqual(q.aggregate(r(['a', 'x'], ['b', 'y'], ['c', 'x']), 'r'), {
    answer: 'x',
    support: 2,
    agreeing: ['a', 'c'],
  });
  // both reach 2 when every answer is in: the first to reach it wins
  t.is(q.aggregate(r(['a', 'y'], ['b', 'x'], ['c', 'x'], ['d', 'y']), 'r').answer, 'x');
  const e = t.throws(() => q.aggregate(r(['a', 'x'], ['b', 'y'], ['c', 'z']), 'r7'));
  t.true(isEnsembleFailedError(e) && e.reason === 'no-quorum' && e.requestId === 'r7');
});

test('property: votes do not depend on the order answers arrive in', (t) => {
  const answer = fc.constantFrom<Answer>('a', 'b', 'c', 1, 2);
  fc.assert(
    fc.property(
      fc.array(fc.tuple(answer, fc.integer({ min: 0, max: 3 })), { minLength: 1, maxLength: 9 }),
      fc.func(fc.integer()),
      (specs, key) => {
        const responses = specs.map(([a, w], i) => ({
          model: `m${i}`,
          answer: a,
          weight: w,
          arrival: i,
        }));
        const shuffled = [...responses].sort((x, y) => key(x.arrival) - key(y.arrival));
        for (const s of [majorityVote(), weightedVote()]) {
          if (s.aggregate(responses, 'r').answer !== s.aggregate(shuffled, 'r').answer)
            return false;
        }
        return true;
      },
    ),
  );
  t.pass();
});

test('invalid strategy options throw TypeError', (t) => {
  t.throws(() => majorityVote({ minSuccesses: 0 }), { instanceOf: TypeError });
  t.throws(() => majorityVote({ tie: 'coin' as never }), { instanceOf: TypeError });
  t.throws(() => trimmedMean({ trim: 0.5 }), { instanceOf: TypeError });
  t.throws(() => firstK({ k: 0 }), { instanceOf: TypeError });
  t.throws(() => firstK({ k: 2, minSuccesses: 3 }), { instanceOf: TypeError });
  t.throws(() => quorum({ k: 1.5 }), { instanceOf: TypeError });
});
