import { readFile } from 'node:fs/promises';
import test from 'ava';
import { configTable, metricTable } from '../support/readme-tables.js';

const readme = readFile(new URL('../../README.md', import.meta.url), 'utf8');

/** The README's table whose header row is `header`, row by row. */
function tableAt(text: string, header: string): string[] {
  const lines = text.split('\n');
  const start = lines.indexOf(header);
  if (start < 0) return [];
  const end = lines.findIndex((l, i) => i > start && !l.startsWith('|'));
  return lines.slice(start, end < 0 ? undefined : end);
}

test("the README's metric table is the catalog's (every instrument, unit, attributes, series)", async (t) => {
  const expected = metricTable();
  t.deepEqual(tableAt(await readme, expected[0] as string), expected);
});

test("the README's configuration table lists every setting, its variables, what it accepts and its default", async (t) => {
  const expected = configTable();
  t.deepEqual(tableAt(await readme, expected[0] as string), expected);
});
