/**
 * Checking a saga's options and steps once, when it is defined, into a frozen
 * {@link SagaDefinition} the engine runs; and the link from a saga object to its definition
 * (so `resumeSaga` finds policies, codecs and actions from the saga objects it is given).
 *
 * @internal
 * @module
 */

import type { Tracer } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { MonoTypeOperatorFunction } from 'rxjs';
import { silentLogger } from '../observability/logger.js';
import { tracerOf } from '../observability/telemetry.js';
import type { SagaLog, SagaRecoveryDirection } from './log.js';
import type { AnySagaStep, SagaCodec, SagaOptions } from './types.js';

/** A validated saga definition. @internal */
export interface SagaDefinition {
  readonly name: string;
  readonly steps: readonly AnySagaStep[];
  readonly log: SagaLog | undefined;
  readonly compensationPolicy: ReadonlyArray<MonoTypeOperatorFunction<unknown>>;
  readonly compensationTimeoutMs: number | undefined;
  readonly onCompensationFailure: 'continue' | 'halt';
  readonly logger: Logger;
  readonly tracer: Tracer;
  readonly recovery: SagaRecoveryDirection;
  readonly inputCodec: SagaCodec<unknown> | undefined;
  readonly heartbeatMs: number;
}

const DEFAULT_HEARTBEAT_MS = 10_000;

const definitions = new WeakMap<object, SagaDefinition>();

/** Remembers the definition behind a saga object. @internal */
export function registerDefinition(saga: object, def: SagaDefinition): void {
  definitions.set(saga, def);
}

/** The definition behind a saga object built by `saga()`, if it is one. @internal */
export function definitionOf(saga: object): SagaDefinition | undefined {
  return definitions.get(saga);
}

/**
 * Validates options and steps (TypeError with the saga and step named) and freezes them.
 * @internal
 */
export function define(options: SagaOptions, steps: readonly AnySagaStep[]): SagaDefinition {
  const where = `saga('${options.name}')`;
  if (steps.length === 0) throw new TypeError(`${where}: give at least one step`);
  checkPolicy(where, 'compensationPolicy', options.compensationPolicy);
  checkTimeout(where, options.compensationTimeoutMs);
  const mode = options.onCompensationFailure ?? 'continue';
  if (mode !== 'continue' && mode !== 'halt') {
    throw new TypeError(`${where}: onCompensationFailure must be 'continue' or 'halt'`);
  }
  const log = options.log;
  if (log !== undefined && typeof log?.write !== 'function') {
    throw new TypeError(`${where}: log must have a write(snapshot) method`);
  }
  const recovery = options.recovery ?? 'backward';
  if (recovery !== 'backward' && recovery !== 'forward') {
    throw new TypeError(`${where}: recovery must be 'backward' or 'forward'`);
  }
  if (recovery === 'forward' && log === undefined) {
    throw new TypeError(`${where}: recovery 'forward' needs a log to resume from`);
  }
  checkCodec(where, 'inputCodec', options.inputCodec);
  const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  if (!(Number.isFinite(heartbeatMs) && heartbeatMs >= 0)) {
    throw new TypeError(`${where}: heartbeatMs must be a finite number >= 0, got ${heartbeatMs}`);
  }
  const seen = new Set<string>();
  for (const [i, s] of steps.entries()) {
    if (typeof s !== 'object' || s === null) {
      throw new TypeError(`${where}: step ${i + 1} must be an object`);
    }
    if (typeof s.name !== 'string' || s.name.trim().length === 0) {
      throw new TypeError(`${where}: step ${i + 1} needs a non-empty name`);
    }
    if (seen.has(s.name)) throw new TypeError(`${where}: two steps are named '${s.name}'`);
    seen.add(s.name);
    const at = `${where}, step '${s.name}'`;
    if (typeof s.action !== 'function') throw new TypeError(`${at}: action must be a function`);
    if (s.compensate !== undefined && typeof s.compensate !== 'function') {
      throw new TypeError(`${at}: compensate must be a function`);
    }
    if (s.compensateFailed === true && typeof s.compensate !== 'function') {
      throw new TypeError(`${at}: compensateFailed needs a compensate function`);
    }
    checkPolicy(at, 'policy', s.policy);
    checkPolicy(at, 'compensationPolicy', s.compensationPolicy);
    checkTimeout(at, s.compensationTimeoutMs);
    checkCodec(at, 'codec', s.codec);
    if (s.transactional !== undefined && typeof s.transactional !== 'boolean') {
      throw new TypeError(`${at}: transactional must be a boolean`);
    }
    if (s.transactional === true && typeof log?.transaction !== 'function') {
      throw new TypeError(
        `${at}: a transactional step needs a log with transaction() (e.g. postgresSagaLog)`,
      );
    }
  }
  return Object.freeze({
    name: options.name,
    steps: Object.freeze([...steps]),
    log,
    compensationPolicy: options.compensationPolicy ?? [],
    compensationTimeoutMs: options.compensationTimeoutMs,
    onCompensationFailure: mode,
    logger: options.logger ?? silentLogger(),
    tracer: tracerOf(options),
    recovery,
    inputCodec: options.inputCodec,
    heartbeatMs,
  });
}

function checkPolicy(where: string, key: string, policy: unknown): void {
  if (policy === undefined) return;
  if (!Array.isArray(policy) || policy.some((op) => typeof op !== 'function')) {
    throw new TypeError(`${where}: ${key} must be an array of operators`);
  }
}

function checkTimeout(where: string, ms: number | undefined): void {
  if (ms !== undefined && !(typeof ms === 'number' && ms > 0)) {
    throw new TypeError(`${where}: compensationTimeoutMs must be a number > 0, got ${String(ms)}`);
  }
}

function checkCodec(where: string, key: string, codec: SagaCodec<unknown> | undefined): void {
  if (
    codec !== undefined &&
    (typeof codec?.encode !== 'function' || typeof codec?.decode !== 'function')
  ) {
    throw new TypeError(`${where}: ${key} needs encode and decode functions`);
  }
}

/** The JSON form of a value for the log: the codec's, else a JSON copy. @internal */
export function encodeWith(codec: SagaCodec<unknown> | undefined, value: unknown): unknown {
  if (codec) return codec.encode(value);
  if (value === undefined) return null;
  return JSON.parse(JSON.stringify(value)) as unknown;
}

/** A value read back from the log: the codec's, else the JSON as is. @internal */
export function decodeWith(codec: SagaCodec<unknown> | undefined, json: unknown): unknown {
  return codec ? codec.decode(json) : json;
}
