import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';

const lib = fileURLToPath(new URL('../../lib/', import.meta.url));

/** The lib folders each lower layer may import from (itself included). */
const allowed: Record<string, readonly string[]> = {
  core: ['core', 'observability'],
  flow: ['flow', 'core', 'observability'],
  operators: ['operators', 'flow', 'core', 'observability'],
  chunking: ['chunking', 'core'],
};

/** The lib folders a file imports from (relative imports only). */
function importedFolders(folder: string, file: string): string[] {
  const text = readFileSync(join(lib, folder, file), 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
    const spec = m[1] as string;
    out.push(spec.startsWith('./') ? folder : (spec.split('/')[1] ?? ''));
  }
  return out;
}

for (const [folder, may] of Object.entries(allowed)) {
  test(`lib/${folder} imports only from ${may.join(', ')}`, (t) => {
    const files = readdirSync(join(lib, folder)).filter((f) => f.endsWith('.ts'));
    t.true(files.length > 0);
    const wrong = files.flatMap((f) =>
      importedFolders(folder, f)
        .filter((target) => !may.includes(target))
        .map((target) => `${folder}/${f} imports ${target}/`),
    );
    t.deepEqual(wrong, []);
  });
}
