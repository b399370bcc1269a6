import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import {
  ALERT_RULES,
  ALERT_TESTS,
  alertExpressions,
  dashboardQueries,
  metricNamesIn,
} from '../support/deploy-files.js';
import { parsePrometheusText, seriesNames } from '../support/prometheus-text.js';

const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
const missing = promtool.error !== undefined || promtool.status !== 0;
// In CI (.ci/run installs Debian's prometheus package) promtool must be there.
const promtoolTest = missing && process.env.CI !== 'true' ? test.skip : test;
const why = missing ? ' (promtool not installed: apt-get install prometheus)' : '';

promtoolTest(`promtool check rules accepts deploy/prometheus/alerts.yml${why}`, (t) => {
  const r = spawnSync('promtool', ['check', 'rules', fileURLToPath(ALERT_RULES)], {
    encoding: 'utf8',
  });
  t.is(r.status, 0, `${r.stdout}${r.stderr}`);
  t.regex(r.stdout, /SUCCESS: 6 rules found/);
});

promtoolTest(
  `promtool test rules: every alert fires within 2 minutes of its condition on synthetic series${why}`,
  (t) => {
    const r = spawnSync('promtool', ['test', 'rules', fileURLToPath(ALERT_TESTS)], {
      encoding: 'utf8',
    });
    t.is(r.status, 0, `${r.stdout}${r.stderr}`);
    t.regex(r.stdout, /SUCCESS/);
  },
);

test('every alert rule has a for: of at most 1m and is covered by a promtool unit test', async (t) => {
  const { readFile } = await import('node:fs/promises');
  const rules = await readFile(ALERT_RULES, 'utf8');
  const tests = await readFile(ALERT_TESTS, 'utf8');
  const names = [...rules.matchAll(/- alert: (\S+)/g)].map((m) => m[1] as string);
  t.is(names.length, 6);
  const fors = [...rules.matchAll(/^\s+for: (\S+)/gm)].map((m) => m[1]);
  t.deepEqual(
    fors,
    names.map(() => '1m'),
  );
  for (const name of names) {
    t.regex(tests, new RegExp(`eval_time: 12m\\s+alertname: ${name}\\b`), name);
  }
});

test('the dashboard and the rules reference metrics by their exported names', async (t) => {
  const queries = [...(await dashboardQueries()), ...(await alertExpressions())];
  t.true(queries.length >= 20);
  for (const q of queries) {
    // OpenTelemetry names use dots; the Prometheus exporter writes underscores
    t.notRegex(q, /hartonomous\.|messaging\.|db\.client/, q);
  }
  t.deepEqual(
    metricNamesIn(
      'sum by (messaging_operation_name) (rate(x_total{messaging_destination_name="a"}[5m]))',
    ),
    [],
  );
  t.deepEqual(metricNamesIn('rate(hartonomous_outbox_published_total{outbox_relay="r"}[1m])'), [
    'hartonomous_outbox_published_total',
  ]);
});

test('a name is emitted only as the series a scrape holds: a histogram by its suffixes, never bare', (t) => {
  const scrape = [
    '# TYPE hartonomous_pipeline_step_duration histogram',
    'hartonomous_pipeline_step_duration_bucket{pipeline_step="hash",le="+Inf"} 3',
    'hartonomous_pipeline_step_duration_sum{pipeline_step="hash"} 0.1',
    'hartonomous_pipeline_step_duration_count{pipeline_step="hash"} 3',
    '# TYPE db_client_connection_count gauge',
    'db_client_connection_count{db_client_connection_state="idle"} 1',
  ].join('\n');
  const emitted = seriesNames(parsePrometheusText(scrape));
  const referenced = metricNamesIn(
    'histogram_quantile(0.95, sum by (le) (rate(hartonomous_pipeline_step_duration[5m]))) + db_client_connection + hartonomous_pipeline_step_duration_bucket + db_client_connection_count',
  );
  t.deepEqual(
    referenced.filter((n) => !emitted.has(n)),
    ['hartonomous_pipeline_step_duration', 'db_client_connection'],
  );
});
