/**
 * A process that commits atoms (with their outbox rows) and is then killed, for the
 * "killed between commit and publish" tests. Run as a child
 * (`node --import tsx test/support/outbox-crash.ts`) with env `DATABASE_URL`, `DB_SCHEMA`,
 * `ITEMS` (a JSON array of atom contents), and `CRASH_AT`:
 *
 * - `CRASH_AT=before-publish`: ingests the items with the ingestion pipeline (`ingest`), prints
 *   `COMMITTED <report json>`, then hangs: its relay never runs.
 * - `CRASH_AT=after-send`: ingests likewise, then runs an outbox relay whose publisher sends to
 *   Service Bus (env `SERVICEBUS_CONNECTION_STRING`, `OUT_QUEUE`) and then hangs, so the
 *   broker has the messages but the rows are never marked; prints `SENT <count>` once the
 *   broker accepted them.
 *
 * The parent kills it with SIGKILL when it reads the line.
 *
 * @internal
 * @module
 */
import { ingest } from '../../lib/atoms/ingest.js';
import type { Publisher } from '../../lib/broker/publisher.js';
import { outboxRelay } from '../../lib/outbox/outbox-relay.js';
import { openDatabase } from '../../lib/postgres/open-database.js';
import { serviceBusPublisher } from '../../lib/service-bus/publisher.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};

const hang = (): Promise<never> => new Promise(() => setInterval(() => {}, 60_000));

async function main(): Promise<void> {
  process.stdin.on('end', () => process.exit(2)); // the parent died
  process.stdin.resume();
  const db = await openDatabase({ url: env('DATABASE_URL'), schema: env('DB_SCHEMA') });
  const items = (JSON.parse(env('ITEMS')) as string[]).map((content, i) => ({
    content,
    sourceId: `item-${i}`,
  }));
  const report = await ingest(items, { db, batchSize: 64 });
  const { processed, added, duplicates, failed } = report;
  console.log(`COMMITTED ${JSON.stringify({ processed, added, duplicates, failed })}`);
  if (env('CRASH_AT') === 'before-publish') await hang();

  const real = serviceBusPublisher({
    connectionString: env('SERVICEBUS_CONNECTION_STRING'),
    queueOrTopic: env('OUT_QUEUE'),
  });
  const sendThenHang: Publisher = {
    async publish(messages, signal) {
      await real.publish(messages, signal);
      console.log(`SENT ${messages.length}`);
      await hang();
    },
  };
  const relay = outboxRelay({ db, publisher: sendThenHang, batchSize: 10_000 });
  await relay.runOnce();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
