import {
  type Context,
  context,
  createTraceState,
  propagation,
  ROOT_CONTEXT,
  type SpanContext,
  TraceFlags,
  trace,
} from '@opentelemetry/api';

/**
 * Application property that carries the W3C `traceparent` on Service Bus messages.
 *
 * @example
 * ```ts
 * import { DIAGNOSTIC_ID } from '@hartonomous/pipelines/service-bus';
 * const traceparentOf = (m: { applicationProperties?: Record<string, unknown> }) => m.applicationProperties?.[DIAGNOSTIC_ID];
 * ```
 */
export const DIAGNOSTIC_ID = 'Diagnostic-Id';
/**
 * Application property that carries the W3C `tracestate` beside {@link DIAGNOSTIC_ID}.
 *
 * @example
 * ```ts
 * import { TRACESTATE } from '@hartonomous/pipelines/service-bus';
 * const tracestateOf = (m: { applicationProperties?: Record<string, unknown> }) => m.applicationProperties?.[TRACESTATE];
 * ```
 */
export const TRACESTATE = 'tracestate';

const TRACEPARENT = /^([\da-f]{2})-([\da-f]{32})-([\da-f]{16})-([\da-f]{2})$/;

/**
 * The OpenTelemetry context of the span that produced a message, read from its
 * `Diagnostic-Id` (W3C `traceparent`) and `tracestate` application properties. The global
 * propagator is used when one is registered; a plain W3C parse is the fallback, so it works
 * without any OpenTelemetry SDK. Use the result to LINK a consumer span to the producer span
 * (or as its parent). A message without trace context gives `ROOT_CONTEXT`.
 *
 * @param applicationProperties - the received message's application properties
 * @returns a context holding the producer's remote span context, or `ROOT_CONTEXT`
 *
 * @example
 * ```ts
 * import { trace } from '@opentelemetry/api';
 * import { extractTraceContext } from '@hartonomous/pipelines/service-bus';
 *
 * const producer = trace.getSpanContext(extractTraceContext(message.applicationProperties));
 * const span = trace.getTracer('worker').startSpan('process', {
 *   links: producer ? [{ context: producer }] : [],
 * });
 * ```
 */
export function extractTraceContext(
  applicationProperties: Readonly<Record<string, unknown>> | undefined,
): Context {
  const traceparent = applicationProperties?.[DIAGNOSTIC_ID];
  if (typeof traceparent !== 'string') return ROOT_CONTEXT;
  const tracestate = applicationProperties?.[TRACESTATE];
  const carrier: Record<string, string> = { traceparent };
  if (typeof tracestate === 'string') carrier.tracestate = tracestate;
  const viaPropagator = propagation.extract(ROOT_CONTEXT, carrier);
  if (trace.getSpanContext(viaPropagator)) return viaPropagator;
  const parsed = parseTraceparent(traceparent, carrier.tracestate);
  return parsed ? trace.setSpanContext(ROOT_CONTEXT, parsed) : ROOT_CONTEXT;
}

/**
 * The `Diagnostic-Id` / `tracestate` application properties for a message: the given
 * `traceparent` (and `tracestate`) when present, else the span context of `ctx` (the active
 * context by default), injected with the global propagator or, without one, formatted as W3C.
 * Empty when there is no valid span context.
 * @internal
 */
export function diagnosticProperties(
  traceparent: string | undefined,
  tracestate: string | undefined,
  ctx: Context = context.active(),
): Record<string, string> {
  if (traceparent) {
    return tracestate
      ? { [DIAGNOSTIC_ID]: traceparent, [TRACESTATE]: tracestate }
      : { [DIAGNOSTIC_ID]: traceparent };
  }
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  if (!carrier.traceparent) {
    const sc = trace.getSpanContext(ctx);
    if (!sc || !trace.isSpanContextValid(sc)) return {};
    carrier.traceparent = `00-${sc.traceId}-${sc.spanId}-0${(sc.traceFlags & 0xff).toString(16)}`;
    const state = sc.traceState?.serialize();
    if (state) carrier.tracestate = state;
  }
  const out: Record<string, string> = { [DIAGNOSTIC_ID]: carrier.traceparent };
  if (carrier.tracestate) out[TRACESTATE] = carrier.tracestate;
  return out;
}

function parseTraceparent(value: string, tracestate: string | undefined): SpanContext | undefined {
  const m = TRACEPARENT.exec(value.trim().toLowerCase());
  if (!m || m[1] === 'ff') return undefined;
  const sc: SpanContext = {
    traceId: m[2] as string,
    spanId: m[3] as string,
    traceFlags: Number.parseInt(m[4] as string, 16) & TraceFlags.SAMPLED,
    isRemote: true,
  };
  if (tracestate) sc.traceState = createTraceState(tracestate);
  return trace.isSpanContextValid(sc) ? sc : undefined;
}
