/**
 * CPU seconds the PostgreSQL server's backends spend on a piece of work: every backend connected
 * to the database (except the monitor's own) is sampled from /proc/<pid>/stat while the work
 * runs, so backends that come and go are counted too. On a machine shared with other work, CPU
 * seconds are steadier than wall-clock rates. Needs the server on this machine and read access
 * to its /proc entries (root, or the postgres user).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { SERVER_URL } from './postgres.js';

/** The part of a node-postgres client the monitor uses (pg ships no types here). */
interface MonitorClient {
  connect(): Promise<void>;
  query<R>(text: string, values?: unknown[]): Promise<{ rows: R[] }>;
  end(): Promise<void>;
}
const { Client } = createRequire(import.meta.url)('pg') as {
  Client: new (config: { connectionString: string }) => MonitorClient;
};

/** utime + stime of a process, in seconds; undefined once it is gone. */
function cpuOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/** A monitor connection and `serverCpu(fn)`: the server CPU seconds `fn` used. */
export async function serverCpuMonitor(): Promise<{
  serverCpu<T>(fn: () => Promise<T>): Promise<{ value: T; server: number }>;
  end(): Promise<void>;
}> {
  const monitor = new Client({ connectionString: SERVER_URL });
  await monitor.connect();
  const self = (await monitor.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!
    .pid;
  const serverCpu = async <T>(fn: () => Promise<T>): Promise<{ value: T; server: number }> => {
    const last = new Map<number, number>();
    const sample = async () => {
      const { rows } = await monitor.query<{ pid: number }>(
        'SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> $1',
        [self],
      );
      for (const { pid } of rows) {
        const c = cpuOf(pid);
        if (c !== undefined) last.set(pid, c);
      }
    };
    await sample();
    // backends present before the work count from here; new ones from their first sample
    const before = new Map(last);
    let done = false;
    const loop = (async () => {
      while (!done) {
        await sample();
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    try {
      const value = await fn();
      await sample();
      let server = 0;
      for (const [pid, c] of last) server += c - (before.get(pid) ?? 0);
      return { value, server };
    } finally {
      done = true;
      await loop;
    }
  };
  return { serverCpu, end: () => monitor.end() };
}
