import { connect, createServer, type Server, type Socket } from 'node:net';

/** A TCP proxy on 127.0.0.1 whose `cut()` drops every connection and refuses new ones. */
export interface TcpProxy {
  readonly port: number;
  /** Destroys every open connection and stops accepting: the far side "goes away". */
  cut(): Promise<void>;
  close(): Promise<void>;
}

/** Starts a proxy from 127.0.0.1:<random port> to `target`. */
export async function tcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(target);
    sockets.add(client);
    sockets.add(upstream);
    client.pipe(upstream).pipe(client);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('proxy did not bind');
  const closeServer = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return {
    port: address.port,
    cut: async () => {
      const closing = closeServer();
      for (const s of sockets) s.destroy();
      sockets.clear();
      await closing;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      if (server.listening) await closeServer();
    },
  };
}
