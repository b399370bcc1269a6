/**
 * The README's reference tables rendered from the code they describe: the metric catalog and
 * the configuration keys. `test/scripts/readme-tables.test.ts` checks the README holds them
 * as rendered here; `npx tsx test/support/readme-tables.ts` prints them.
 */
import { pathToFileURL } from 'node:url';
import { CONFIG_KEYS } from '../../lib/config/config-keys.js';
import {
  METRICS,
  type MetricKind,
  prometheusNames,
} from '../../lib/observability/metric-catalog.js';

const KIND: Record<MetricKind, string> = {
  counter: 'counter',
  updowncounter: 'up-down counter',
  histogram: 'histogram',
  gauge: 'gauge',
  'observable-updowncounter': 'up-down counter (observed)',
};

const code = (s: string): string => `\`${s}\``;
const cell = (s: string): string => s.replace(/\|/g, '\\|');

/** The rows of the README's metric table (header included), one per instrument. */
export function metricTable(): string[] {
  const rows = ['| instrument | kind | unit | attributes | Prometheus |', '|---|---|---|---|---|'];
  for (const m of Object.values(METRICS)) {
    const names = prometheusNames(m);
    const prom =
      m.kind === 'histogram'
        ? code(`${(names[0] as string).replace(/_bucket$/, '')}_{bucket,sum,count}`)
        : code(names[0] as string);
    const attributes = m.attributes.length ? m.attributes.map(code).join(', ') : '-';
    rows.push(`| ${code(m.name)} | ${KIND[m.kind]} | ${code(m.unit)} | ${attributes} | ${prom} |`);
  }
  return rows;
}

/** The rows of the README's configuration table (header included), one per setting. */
export function configTable(): string[] {
  const rows = ['| key | environment | accepts | default |', '|---|---|---|---|'];
  for (const k of CONFIG_KEYS) {
    const key = `${code(k.path)}${k.secret ? ' (secret)' : ''}`;
    const env = k.env.map(code).join(' or ');
    const def = k.default === undefined ? '-' : code(String(k.default));
    rows.push(`| ${key} | ${env} | ${cell(k.accepts)} | ${def} |`);
  }
  return rows;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(`${metricTable().join('\n')}\n\n${configTable().join('\n')}\n`);
}
