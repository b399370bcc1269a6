/**
 * Helpers shared by the resilience operator tests (not a test file itself).
 */
import { getEventListeners } from 'node:events';
import type { Attributes } from '@opentelemetry/api';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import type { ExecutionContext } from 'ava';
import { TestScheduler } from 'rxjs/testing';

/** A TestScheduler whose assertions go through ava's deepEqual. */
export function testScheduler(t: ExecutionContext): TestScheduler {
  const scheduler = new TestScheduler((actual, expected) => t.deepEqual(actual, expected));
  // flush() outside run() stops at frame 750 by default; long schedules must run to the end
  scheduler.maxFrames = Number.POSITIVE_INFINITY;
  return scheduler;
}

class CollectingReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

/**
 * A meter on a private MeterProvider (nothing registered globally, no export timer) and a
 * way to read the sum of a counter's points, optionally only those with matching attributes.
 */
export function collectingMeter(): {
  meter: ReturnType<MeterProvider['getMeter']>;
  sum: (name: string, attributes?: Attributes) => Promise<number>;
  points: (name: string) => Promise<Array<{ attributes: Attributes; value: number }>>;
} {
  const reader = new CollectingReader();
  const provider = new MeterProvider({ readers: [reader] });
  const points = async (name: string) => {
    const { resourceMetrics } = await reader.collect();
    const out: Array<{ attributes: Attributes; value: number }> = [];
    for (const scope of resourceMetrics.scopeMetrics) {
      for (const metric of scope.metrics) {
        if (metric.descriptor.name !== name) continue;
        for (const p of metric.dataPoints) {
          out.push({ attributes: p.attributes, value: p.value as number });
        }
      }
    }
    return out;
  };
  return {
    meter: provider.getMeter('test'),
    points,
    sum: async (name, attributes = {}) => {
      let total = 0;
      for (const p of await points(name)) {
        if (Object.entries(attributes).every(([k, v]) => p.attributes[k] === v)) total += p.value;
      }
      return total;
    },
  };
}

/** Node timers currently alive in this process. */
export function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

/** Abort listeners currently on `signal`. */
export function abortListeners(signal: AbortSignal): number {
  return getEventListeners(signal, 'abort').length;
}

/** Resolves after the pending promise callbacks and one macrotask. */
export function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Waits (real time, short polls) until `condition` holds; fails after `ms`. */
export async function until(condition: () => boolean, ms = 2_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}
