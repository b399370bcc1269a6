/**
 * Compiling a pipeline's steps into the plan the engine runs: nested pipelines are flattened
 * recursively, every step keeps its own options, and runs of item steps are grouped into stages.
 * @module
 */

import type { MonoTypeOperatorFunction } from 'rxjs';
import { type AnyStep, type BatchFn, STEP, type StepFn } from './step.js';

/**
 * A nested pipeline as seen from the plan: it starts at one node and ends after another. Only
 * telemetry needs it (the nested pipeline's span and duration, as a step of its parent).
 * @internal
 */
export interface Scope {
  /** The nested pipeline's name (its step name in the parent). */
  readonly name: string;
  /** The parent pipeline's name. */
  readonly parent: string;
}

/** What item and batch nodes share. */
interface NodeBase {
  /** The step's name. */
  readonly name: string;
  /** The name of the pipeline the step belongs to (the innermost, for a nested step). */
  readonly pipeline: string;
  /** The step's own concurrency, if it set one. */
  readonly concurrency: number | undefined;
  /** The step's policy composed into one operator (innermost first), if it has one. */
  readonly policy: MonoTypeOperatorFunction<unknown> | undefined;
  /** Nested pipelines that start at this node, outermost first. */
  readonly enter: readonly Scope[];
  /** Nested pipelines that end after this node, innermost first. */
  readonly exit: readonly Scope[];
}

/**
 * One step that runs per item.
 * @internal
 */
export interface ItemNode extends NodeBase {
  readonly kind: 'item';
  readonly fn: StepFn<unknown, unknown>;
}

/**
 * One step that runs per batch of items.
 * @internal
 */
export interface BatchNode extends NodeBase {
  readonly kind: 'batch';
  readonly fn: BatchFn<unknown, unknown>;
  readonly size: number;
  readonly timeMs: number;
  readonly weight: ((input: unknown) => number) | undefined;
  readonly maxWeight: number;
}

/**
 * A step of the flattened plan.
 * @internal
 */
export type PlanNode = ItemNode | BatchNode;

/**
 * A unit of scheduling: consecutive item steps with no concurrency of their own run as one
 * stage under the stream's concurrency; a step with its own concurrency, and a batch step, are
 * stages of their own.
 * @internal
 */
export type Stage =
  | {
      readonly kind: 'item';
      readonly nodes: readonly ItemNode[];
      readonly concurrency: number | undefined;
    }
  | {
      readonly kind: 'batch';
      readonly node: BatchNode;
    };

/**
 * What the engine runs: the stages of a pipeline with every nested pipeline flattened.
 * @internal
 */
export interface Plan {
  /** The root pipeline's name. */
  readonly pipeline: string;
  /** The stages, in order. */
  readonly stages: readonly Stage[];
  /** Every node, in order. */
  readonly nodes: readonly PlanNode[];
  /** The largest batch size of any batch step (0 when none). */
  readonly largestBatch: number;
}

/**
 * Flattens `steps` (recursively through nested pipelines) into a {@link Plan}.
 *
 * @param pipeline - the root pipeline's name
 * @param steps - its steps
 * @returns the plan
 * @internal
 */
export function compile(pipeline: string, steps: readonly AnyStep[]): Plan {
  const flat: Array<{ step: AnyStep; owner: string; scopes: readonly Scope[] }> = [];
  const visit = (owner: string, list: readonly AnyStep[], scopes: readonly Scope[]): void => {
    for (const s of list) {
      const def = s[STEP];
      if (def.kind === 'pipeline') {
        visit(s.name, def.steps, [...scopes, { name: s.name, parent: owner }]);
      } else {
        flat.push({ step: s, owner, scopes });
      }
    }
  };
  visit(pipeline, steps, []);

  const nodes: PlanNode[] = flat.map(({ step: s, owner, scopes }, i) => {
    const before = i > 0 ? (flat[i - 1]?.scopes ?? []) : [];
    const after = flat[i + 1]?.scopes ?? [];
    const enter = scopes.slice(common(before, scopes));
    const exit = scopes.slice(common(scopes, after)).reverse();
    const def = s[STEP];
    const policy = compose(
      def.options.policy as ReadonlyArray<MonoTypeOperatorFunction<unknown>> | undefined,
    );
    const base = {
      name: s.name,
      pipeline: owner,
      concurrency: def.options.concurrency,
      policy,
      enter,
      exit,
    };
    if (def.kind === 'batch') {
      const o = def.options;
      return {
        ...base,
        kind: 'batch' as const,
        fn: def.fn,
        size: o.size,
        timeMs: o.timeMs,
        weight: o.weight,
        maxWeight: o.maxWeight ?? Number.POSITIVE_INFINITY,
      };
    }
    if (def.kind !== 'item') throw new TypeError(`step '${s.name}' has an unknown kind`);
    return { ...base, kind: 'item' as const, fn: def.fn };
  });

  const stages: Stage[] = [];
  let run: ItemNode[] = [];
  const flush = (): void => {
    if (run.length > 0) stages.push({ kind: 'item', nodes: run, concurrency: undefined });
    run = [];
  };
  for (const node of nodes) {
    if (node.kind === 'batch') {
      flush();
      stages.push({ kind: 'batch', node });
    } else if (node.concurrency !== undefined) {
      flush();
      stages.push({ kind: 'item', nodes: [node], concurrency: node.concurrency });
    } else {
      run.push(node);
    }
  }
  flush();
  const largestBatch = Math.max(0, ...nodes.map((n) => (n.kind === 'batch' ? n.size : 0)));
  return { pipeline, stages, nodes, largestBatch };
}

/** Length of the common prefix of two scope chains (compared by identity). */
function common(a: readonly Scope[], b: readonly Scope[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

function compose(
  policy: ReadonlyArray<MonoTypeOperatorFunction<unknown>> | undefined,
): MonoTypeOperatorFunction<unknown> | undefined {
  if (policy === undefined || policy.length === 0) return undefined;
  if (policy.length === 1) return policy[0];
  const ops = [...policy];
  return (source) => {
    let out = source;
    for (const op of ops) out = op(out);
    return out;
  };
}
