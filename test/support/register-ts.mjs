// ava's worker processes load the test suite's TypeScript through ./ts-hooks.mjs (see there).
import { register } from 'node:module';

process.setSourceMapsEnabled(true);
register('./ts-hooks.mjs', import.meta.url);
