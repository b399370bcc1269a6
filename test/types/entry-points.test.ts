// Type tests of each entry point's main functions: `tsc --noEmit` (part of `npm test`) fails when a
// signature drifts; the ava test below only keeps this file in the suite.
import test from 'ava';
import { expectTypeOf } from 'expect-type';
import type { Observable } from 'rxjs';
import {
  type Embedder,
  type IngestionReport,
  ingest,
  localEmbedder,
  type SimilarAtom,
  searchSimilar,
  type TextMatch,
} from '../../lib/atoms/index.js';
import { type LoadedConfig, loadConfig } from '../../lib/config/index.js';
import {
  type DropModelResult,
  dropModel,
  isModelNotEmbeddedError,
  type ModelNotEmbeddedError,
  type ReembedReport,
  reembed,
  setDefaultModel,
} from '../../lib/documents/index.js';
import { type Outcome, type Pipeline, pipeline, type Saga, saga, step } from '../../lib/index.js';
import { type Ensemble, ensemble } from '../../lib/inference/index.js';
import { type OutboxRelay, outboxRelay } from '../../lib/outbox/index.js';
import { type Database, openDatabase } from '../../lib/postgres/index.js';
import { rollout } from '../../lib/rollout/index.js';
import { type MemoryPublisher, memoryPublisher } from '../../lib/testing/index.js';

// atoms
expectTypeOf(ingest).returns.toEqualTypeOf<Promise<IngestionReport>>();
// the mode picks the overload: text search has no vector similarity (checked, never called)
function searchOverloads(db: Database): void {
  expectTypeOf(searchSimilar(db, 'q', 3)).toEqualTypeOf<Promise<SimilarAtom[]>>();
  expectTypeOf(searchSimilar(db, 'q', 3, { mode: 'hybrid' })).toEqualTypeOf<
    Promise<SimilarAtom[]>
  >();
  expectTypeOf(searchSimilar(db, 'q', 3, { mode: 'text' })).toEqualTypeOf<Promise<TextMatch[]>>();
}
expectTypeOf(localEmbedder(8)).toEqualTypeOf<Embedder>();
expectTypeOf<Parameters<typeof searchSimilar>[0]>().toEqualTypeOf<Database>();
// documents: model changes
expectTypeOf(reembed).returns.toEqualTypeOf<Promise<ReembedReport>>();
expectTypeOf(setDefaultModel).returns.toEqualTypeOf<Promise<void>>();
expectTypeOf(dropModel).returns.toEqualTypeOf<Promise<DropModelResult>>();
expectTypeOf(isModelNotEmbeddedError).guards.toEqualTypeOf<ModelNotEmbeddedError>();
// postgres
expectTypeOf(openDatabase).returns.toEqualTypeOf<Promise<Database>>();
// config
expectTypeOf(loadConfig).returns.toEqualTypeOf<LoadedConfig>();
// inference and outbox
expectTypeOf(ensemble).returns.toEqualTypeOf<Ensemble>();
expectTypeOf(outboxRelay).returns.toEqualTypeOf<OutboxRelay>();
// testing
expectTypeOf(memoryPublisher()).toEqualTypeOf<MemoryPublisher>();

// saga steps chain their types; a saga is usable where its input and output are known
const order = saga(
  'order',
  { name: 'reserve', action: async (sku: string) => ({ sku, reserved: true }) },
  { name: 'charge', action: async (r: { sku: string; reserved: boolean }) => r.sku.length },
);
expectTypeOf(order).toEqualTypeOf<Saga<string, number>>();
expectTypeOf(order.run('A-1')).toEqualTypeOf<Promise<number>>();

// rollout keeps the pipelines' types
const v1 = pipeline(
  'v1',
  step('len', (s: string) => s.length),
);
const v2 = pipeline(
  'v2',
  step('len2', (s: string) => s.length * 1),
);
const routed = rollout({
  name: 'len',
  stable: v1,
  candidate: v2,
  key: (s: string) => s,
  percent: 10,
});
expectTypeOf(routed).toEqualTypeOf<Pipeline<string, number>>();
expectTypeOf(routed.stream(['a'])).toEqualTypeOf<Observable<Outcome<string, number>>>();

test('entry point types compile (checked by tsc)', (t) => {
  t.is(typeof searchOverloads, 'function');
  t.is(typeof ingest, 'function');
  t.is(typeof memoryPublisher, 'function');
});
