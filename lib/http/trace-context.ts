import { type Context, isSpanContextValid, propagation, trace } from '@opentelemetry/api';

/**
 * Writes W3C trace context (`traceparent`, `tracestate`) of `ctx` into outgoing HTTP headers.
 * The registered propagator is used when the application has one (so B3, baggage or any
 * composite propagator it chose applies); with none registered (the API's default propagator
 * writes nothing) the headers are written from the context's span. Every HTTP client of the
 * library (the embedder, the model client) goes through this one function.
 *
 * @param ctx - the context whose span is the parent of the request
 * @param headers - the request's headers, written in place
 *
 * @example
 * ```ts
 * import { context } from '@opentelemetry/api';
 * import { injectTraceContext } from '@hartonomous/pipelines';
 * const headers: Record<string, string> = {};
 * injectTraceContext(context.active(), headers); // no span active: headers stay empty
 * ```
 */
export function injectTraceContext(
  ctx: Context,
  headers: Record<string, string | string[] | undefined>,
): void {
  propagation.inject(ctx, headers);
  if (headers.traceparent) return;
  const sc = trace.getSpanContext(ctx);
  if (!sc || !isSpanContextValid(sc)) return;
  headers.traceparent = `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 1) === 1 ? '01' : '00'}`;
  const state = sc.traceState?.serialize();
  if (state) headers.tracestate = state;
}
