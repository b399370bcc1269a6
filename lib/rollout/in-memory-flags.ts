import { type Client, InMemoryProvider, OpenFeature } from '@openfeature/server-sdk';

/**
 * Flags held in memory behind OpenFeature's in-memory provider: the default flag source of a
 * {@link rollout}. Change a value with `set` and the next item evaluated sees it.
 *
 * @example
 * ```ts
 * import { inMemoryFlags, type RolloutFlags } from '@hartonomous/pipelines/rollout';
 * const flags: RolloutFlags = await inMemoryFlags({ 'ingest-v2': 10 });
 * await flags.set('ingest-v2', 50);
 * ```
 */
export interface RolloutFlags {
  /** The OpenFeature client to pass as a rollout's `flags`. */
  readonly client: Client;
  /** The OpenFeature domain the provider is bound to. */
  readonly domain: string;
  /**
   * The current value of a flag.
   * @param flag - the flag key
   * @returns its value, or undefined when not set
   */
  get(flag: string): number | undefined;
  /**
   * Sets a flag (a percentage for a rollout); evaluations from now on see it.
   * @param flag - the flag key
   * @param value - the new value
   */
  set(flag: string, value: number): void;
}

let domains = 0;

/**
 * Creates flags held in memory, served through OpenFeature's `InMemoryProvider` bound to a
 * domain of their own (the global default provider, and every other domain, are left alone).
 * Use it as a rollout's flag source in tests and single-process deployments, or replace it
 * with any OpenFeature provider (flagd, LaunchDarkly, Azure App Configuration, ...) by passing
 * that provider's client as the rollout's `flags`.
 *
 * @param initial - flag keys and their starting values
 * @returns the flags; their `client` is ready when the promise resolves
 *
 * @example
 * ```ts
 * import { inMemoryFlags } from '@hartonomous/pipelines/rollout';
 *
 * const flags = await inMemoryFlags({ 'ingest-v2': 0 });
 * console.log(await flags.client.getNumberValue('ingest-v2', 0)); // 0
 * flags.set('ingest-v2', 25);
 * console.log(await flags.client.getNumberValue('ingest-v2', 0)); // 25
 * ```
 */
export async function inMemoryFlags(initial: Record<string, number> = {}): Promise<RolloutFlags> {
  const values = new Map<string, number>();
  const configuration = () =>
    Object.fromEntries(
      [...values].map(([flag, value]) => [
        flag,
        { variants: { value }, defaultVariant: 'value', disabled: false },
      ]),
    );
  for (const [flag, value] of Object.entries(initial)) {
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new TypeError(`inMemoryFlags: '${flag}' must be a finite number, got ${String(value)}`);
    }
    values.set(flag, value);
  }
  const provider = new InMemoryProvider(configuration());
  const domain = `@hartonomous/pipelines/rollout#${++domains}`;
  await OpenFeature.setProviderAndWait(domain, provider);
  return {
    client: OpenFeature.getClient(domain),
    domain,
    get: (flag) => values.get(flag),
    set(flag, value) {
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new TypeError(`RolloutFlags.set: '${flag}' must be a finite number, got ${value}`);
      }
      values.set(flag, value);
      provider.putConfiguration(configuration());
    },
  };
}
