import test from 'ava';
import {
  type InvalidDatabaseUrlError,
  isInvalidDatabaseUrlError,
} from '../../lib/postgres/check-database-url.js';
import { openDatabase } from '../../lib/postgres/open-database.js';

const SECRET = 's3cr%zzet';

const cases: [string, string][] = [
  [`postgres://app:${SECRET}@127.0.0.1:5432/app`, 'encoding'],
  ['postgres://app%E0%A4%A@127.0.0.1/app', 'encoding'],
  ['postgres://127.0.0.1/%E0%A4%A', 'encoding'],
  ['not a url', 'syntax'],
  [`postgres://app:${SECRET}@[::1/app`, 'syntax'],
  [`postgres://app:${SECRET}@127.0.0.1:99999/app`, 'syntax'],
  ['mysql://app:s3cret@127.0.0.1/app', 'protocol'],
  ['postgres://app:s3cret@127.0.0.1:5432', 'no-database'],
  ['postgresql://app:s3cret@127.0.0.1:5432/', 'no-database'],
];

for (const [url, reason] of cases) {
  test(`a malformed database URL is InvalidDatabaseUrlError '${reason}', without the password: ${url.replace(/s3cr[^@]*/, '…')}`, async (t) => {
    const e = await t.throwsAsync<InvalidDatabaseUrlError>(openDatabase({ url }));
    t.true(isInvalidDatabaseUrlError(e), String(e));
    t.is(e?.reason as string | undefined, reason);
    t.false(String(e?.message).includes('s3cr'), 'the password is not in the message');
    t.false(JSON.stringify(e).includes('s3cr'), 'nor in its JSON');
  });
}

test.serial('a malformed DATABASE_URL is InvalidDatabaseUrlError too', async (t) => {
  const saved = process.env.DATABASE_URL;
  process.env.DATABASE_URL = `postgres://app:${SECRET}@127.0.0.1/app`;
  t.teardown(() => {
    if (saved === undefined) delete process.env.DATABASE_URL;
    else process.env.DATABASE_URL = saved;
  });
  const e = await t.throwsAsync(openDatabase());
  t.true(isInvalidDatabaseUrlError(e));
});
