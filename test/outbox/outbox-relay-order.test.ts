import fc from 'fast-check';
import {
  MessageTooLargeError,
  type OutgoingMessage,
  type Publisher,
  PublishFailedError,
} from '../../lib/broker/publisher.js';
import { outboxHealth } from '../../lib/outbox/outbox-health.js';
import { outboxRelay } from '../../lib/outbox/outbox-relay.js';
import { replayDeadOutbox } from '../../lib/outbox/replay-dead-outbox.js';
import { databaseSuite } from '../support/databases.js';
import { clearOutbox, insertRows } from '../support/outbox-helpers.js';

const suite = await databaseSuite('outbox_order');

/** What a publish call does: succeed, fail before sending, fail after `n`, or reject one message. */
type Fault =
  | { kind: 'ok' }
  | { kind: 'down' }
  | { kind: 'partial'; n: number }
  | { kind: 'too-large'; pick: number };

const fault: fc.Arbitrary<Fault> = fc.oneof(
  { weight: 4, arbitrary: fc.constant<Fault>({ kind: 'ok' }) },
  { weight: 2, arbitrary: fc.constant<Fault>({ kind: 'down' }) },
  { weight: 2, arbitrary: fc.nat(20).map<Fault>((n) => ({ kind: 'partial', n })) },
  { weight: 1, arbitrary: fc.nat(50).map<Fault>((pick) => ({ kind: 'too-large', pick })) },
);

suite.serial(
  'property: whatever the broker does, every row is published exactly once and each key in id order',
  async (t, db) => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 40 }),
        fc.array(fault, { maxLength: 30 }).map((f) => [...f, { kind: 'ok' } as Fault]),
        fc.integer({ min: 1, max: 12 }),
        async (keys, faults, batchSize) => {
          await clearOutbox(db);
          const ids = await insertRows(
            db,
            keys.map((k) => ({ key: `k${k}` })),
          );
          const accepted: OutgoingMessage[] = [];
          let call = 0;
          const publisher: Publisher = {
            async publish(messages) {
              const f = faults[call++ % faults.length] as Fault;
              if (f.kind === 'down') {
                throw new PublishFailedError('p', messages.length, 0, true, new Error('down'));
              }
              if (f.kind === 'too-large' && messages.length > 0) {
                const m = messages[f.pick % messages.length] as OutgoingMessage;
                throw new MessageTooLargeError(m.messageId, 'p', 1);
              }
              if (f.kind === 'partial' && f.n < messages.length) {
                accepted.push(...messages.slice(0, f.n));
                throw new PublishFailedError('p', messages.length, f.n, true, new Error('cut'));
              }
              accepted.push(...messages);
            },
          };
          const relay = outboxRelay({
            db,
            publisher,
            batchSize,
            maxAttempts: 3,
            backoff: { strategy: 'constant', baseMs: 0, maxMs: 0 },
          });
          // Run rounds, replaying dead rows, until nothing is left (bounded).
          for (let round = 0; round < 400; round++) {
            const r = await relay.runOnce();
            if (r.claimed === 0) {
              if ((await replayDeadOutbox(db)) === 0) break;
            }
          }
          await relay.stop();
          const health = await outboxHealth(db);
          if (health.pending !== 0 || health.dead !== 0) return false;
          const published = accepted.map((m) => String(m.applicationProperties?.outboxId));
          // exactly once
          if (published.length !== ids.length || new Set(published).size !== ids.length) {
            return false;
          }
          // each key in id order
          const last = new Map<string, number>();
          for (const m of accepted) {
            const key = String(m.applicationProperties?.aggregateKey);
            const id = Number(m.applicationProperties?.outboxId);
            if ((last.get(key) ?? -1) > id) return false;
            last.set(key, id);
          }
          return true;
        },
      ),
      {
        numRuns: 120,
        // shapes that once broke ordering: a dead row between a retried head and a due row,
        // and a dead head followed by its key's next row
        examples: [
          [[1, 1, 1, 0], [{ kind: 'too-large', pick: 4 }, { kind: 'down' }, { kind: 'ok' }], 4],
          [[0, 0], [{ kind: 'down' }, { kind: 'down' }, { kind: 'down' }, { kind: 'ok' }], 1],
        ],
      },
    );
    t.pass();
  },
);
