import { createServer as createHttpServer } from "node:http";
import { createServer, connect, type Socket } from "node:net";

/**
 * A TCP proxy in front of Postgres that a test can cut: while down it resets every open
 * connection and refuses new ones, which is what a crashed or unreachable database looks like to
 * the driver. Tests inside workerd switch it through a small HTTP control endpoint.
 */
export type TcpProxy = { port: number; controlUrl: string; setDown: (down: boolean) => void; stop: () => Promise<void> };

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let down = false;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    if (down) return client.destroy();
    const upstream = connect(target.port, target.host);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  const setDown = (value: boolean) => {
    down = value;
    if (down) for (const s of sockets) s.destroy();
  };
  const control = createHttpServer((req, res) => {
    if (req.method === "POST" && (req.url === "/down" || req.url === "/up")) setDown(req.url === "/down");
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ down }));
  });
  await Promise.all([
    new Promise<void>((r) => server.listen(0, "127.0.0.1", r)),
    new Promise<void>((r) => control.listen(0, "127.0.0.1", r)),
  ]);
  return {
    port: (server.address() as { port: number }).port,
    controlUrl: `http://127.0.0.1:${(control.address() as { port: number }).port}`,
    setDown,
    stop: async () => {
      for (const s of sockets) s.destroy();
      control.closeAllConnections();
      await Promise.all([new Promise((r) => server.close(r)), new Promise((r) => control.close(r))]);
    },
  };
}
