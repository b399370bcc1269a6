/**
 * `@hartonomous/pipelines/config`: one validated configuration for the worker and the
 * command line, from the environment and an optional JSON file ({@link loadConfig}), and its
 * description with secrets redacted ({@link describeConfig}).
 *
 * @example
 * ```ts
 * import { describeConfig, formatConfig, loadConfig } from '@hartonomous/pipelines/config';
 *
 * const loaded = loadConfig({ env: { HARTONOMOUS_WORKER_CONCURRENCY: '32' } });
 * console.log(loaded.config.worker.concurrency); // 32
 * process.stdout.write(formatConfig(describeConfig(loaded)));
 * ```
 *
 * @module
 */

export { type ConfigRow, describeConfig, formatConfig } from './describe-config.js';
export {
  ConfigError,
  type ConfigProblem,
  type ConfigSource,
  type HartonomousConfig,
  isConfigError,
  type LoadConfigOptions,
  type LoadedConfig,
  loadConfig,
} from './load-config.js';
export { redactSetting } from './redact-setting.js';
