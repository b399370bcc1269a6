/**
 * Starts this machine's PostgreSQL for the benchmarks that need it when it is not running (and
 * stops it again afterwards); leaves a server that was already running, or a remote one, alone.
 */
import { execFileSync } from 'node:child_process';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { SERVER_URL } from './postgres.js';

function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Makes sure the server the benchmarks use answers.
 * @returns a function that stops the server if this call started it
 */
export async function ensureLocalPostgres(log: (line: string) => void): Promise<() => void> {
  const url = new URL(SERVER_URL);
  const port = Number(url.port || 5432);
  if (await reachable(url.hostname, port)) return () => {};
  if (!['127.0.0.1', 'localhost', '::1'].includes(url.hostname)) {
    throw new Error(`the PostgreSQL server at ${url.hostname}:${port} is not reachable`);
  }
  log(`PostgreSQL is not running on ${url.hostname}:${port}: starting the local cluster`);
  const script = fileURLToPath(new URL('../../scripts/ensure-postgres.sh', import.meta.url));
  execFileSync('bash', [script], { stdio: 'inherit' });
  return () => {
    log('stopping the PostgreSQL cluster the benchmark started');
    try {
      const version = execFileSync('ls', ['/etc/postgresql'], { encoding: 'utf8' })
        .trim()
        .split('\n')
        .pop();
      if (version) {
        execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'stop'], {
          stdio: 'inherit',
        });
      }
    } catch (e) {
      log(`could not stop PostgreSQL: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
}
