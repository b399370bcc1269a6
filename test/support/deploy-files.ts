import { readFile } from 'node:fs/promises';

const root = new URL('../../', import.meta.url);
/** Where the dashboard and the alert rules live. */
export const DASHBOARD = new URL('deploy/grafana/pipelines.json', root);
export const ALERT_RULES = new URL('deploy/prometheus/alerts.yml', root);
export const ALERT_TESTS = new URL('deploy/prometheus/alerts.test.yml', root);

const METRIC = /\b(?:hartonomous|messaging|db_client|gen_ai)_[a-zA-Z0-9_]+\b/g;

/** The metric names a PromQL expression reads (label matchers and grouping lists removed). */
export function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  return stripped.match(METRIC) ?? [];
}

/** Every string under a key named `expr` or `query` (Grafana targets and template variables). */
function queriesOf(node: unknown, out: string[]): string[] {
  if (Array.isArray(node)) for (const n of node) queriesOf(n, out);
  else if (typeof node === 'object' && node !== null) {
    for (const [k, v] of Object.entries(node)) {
      if ((k === 'expr' || k === 'query' || k === 'definition') && typeof v === 'string') {
        out.push(v);
      } else queriesOf(v, out);
    }
  }
  return out;
}

/** The PromQL expressions of the dashboard. */
export async function dashboardQueries(): Promise<string[]> {
  return queriesOf(JSON.parse(await readFile(DASHBOARD, 'utf8')) as unknown, []);
}

/** The `expr` values of the alert rules file (single-line or folded YAML scalars). */
export async function alertExpressions(): Promise<string[]> {
  const lines = (await readFile(ALERT_RULES, 'utf8')).split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)expr:\s*(.*)$/.exec(lines[i] as string);
    if (!m) continue;
    const indent = (m[1] as string).length;
    let text = (m[2] as string).replace(/^[|>]-?\s*$/, '');
    while (i + 1 < lines.length) {
      const next = lines[i + 1] as string;
      const nextIndent = next.length - next.trimStart().length;
      if (next.trim() !== '' && nextIndent <= indent) break;
      text += ` ${next.trim()}`;
      i++;
    }
    out.push(text.trim());
  }
  return out;
}

/** Every metric name the dashboard and the alert rules reference. */
export async function metricNamesInDeployFiles(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const q of [...(await dashboardQueries()), ...(await alertExpressions())]) {
    for (const n of metricNamesIn(q)) names.add(n);
  }
  return names;
}
