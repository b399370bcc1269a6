/**
 * Small helpers the saga engine shares: ending a span as failed, and turning what an action
 * or compensation returned into a value.
 *
 * @internal
 * @module
 */

import { type Span, SpanStatusCode } from '@opentelemetry/api';
import { isObservable, lastValueFrom } from 'rxjs';

/** Ends a span with the error recorded. @internal */
export function endFailed(span: Span, error: unknown): void {
  if (error instanceof Error) span.recordException(error);
  span.setStatus({
    code: SpanStatusCode.ERROR,
    message: error instanceof Error ? error.message : String(error),
  });
  span.end();
}

/**
 * The value of what an action or a compensation returned: an Observable's last value (which
 * must exist unless `allowEmpty`), else the value or promise as is.
 * @internal
 */
export function toValue(out: unknown, allowEmpty: boolean): unknown {
  if (!isObservable(out)) return out;
  return allowEmpty ? lastValueFrom(out, { defaultValue: undefined }) : lastValueFrom(out);
}
