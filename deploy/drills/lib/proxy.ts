// A TCP proxy that stands for CloudNativePG's `<cluster>-rw` Service: clients connect to one
// address, the proxy forwards to whichever server is the primary now. switchTo() is what the
// operator's endpoint update does after a promotion: new connections go to the new primary and
// the ones still open to the old one are cut (as kube-proxy's conntrack flush cuts them).
// node-postgres takes one host only (no multi-host URL, no target_session_attrs), so a client
// cannot follow a promotion by itself.
import { connect, createServer, type Server, type Socket } from 'node:net';

export class PrimaryProxy {
  readonly #server: Server;
  #target: number;
  #open = new Set<Socket>();
  /** Connections accepted, and those whose upstream refused or failed to connect. */
  readonly counts = { accepted: 0, upstreamFailed: 0 };

  private constructor(server: Server, target: number) {
    this.#server = server;
    this.#target = target;
  }

  static async start(targetPort: number): Promise<PrimaryProxy> {
    let proxy: PrimaryProxy | undefined;
    const server = createServer((client) => proxy?.accept(client));
    proxy = new PrimaryProxy(server, targetPort);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  get port(): number {
    const address = this.#server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy not listening');
    return address.port;
  }

  url(database: string): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  accept(client: Socket): void {
    this.counts.accepted++;
    const upstream = connect({ host: '127.0.0.1', port: this.#target });
    const pair = [client, upstream];
    for (const s of pair) {
      this.#open.add(s);
      s.setNoDelay(true);
      s.on('close', () => {
        this.#open.delete(s);
        for (const other of pair) other.destroy();
      });
      s.on('error', () => {
        for (const other of pair) other.destroy();
      });
    }
    upstream.once('error', () => this.counts.upstreamFailed++);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Points new connections at `port` and cuts every connection open now. */
  switchTo(port: number): void {
    this.#target = port;
    for (const s of this.#open) s.destroy();
  }

  async close(): Promise<void> {
    for (const s of this.#open) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
