import { createServer as createHttpServer } from "node:http";
import { createServer, connect, type Socket } from "node:net";

/**
 * A TCP proxy in front of Postgres that a test can cut: while down it resets every open
 * connection and refuses new ones, which is what a crashed or unreachable database looks like to
 * the driver; while hung it accepts connections and answers nothing (a database that is there but
 * stuck), holding them until it is up again. Tests inside workerd switch it through a small HTTP
 * control endpoint, which also says how many connections it holds and how many it has passed on.
 */
export type TcpProxy = { port: number; controlUrl: string; setDown: (down: boolean) => void; stop: () => Promise<void> };

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let down = false;
  let hung = false;
  let abandoned = 0;
  let opened = 0;
  const held = new Set<Socket>();
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    if (down) return client.destroy();
    if (hung) {
      held.add(client);
      // Closed by its client (a connect timeout) rather than released here: whoever opened it gave up waiting.
      client.on("close", () => held.delete(client) && abandoned++);
      client.on("error", () => client.destroy());
      return;
    }
    opened++;
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
    hung = false;
    const release = [...held];
    held.clear();
    for (const s of release) s.destroy();
    if (down) for (const s of sockets) s.destroy();
  };
  const control = createHttpServer((req, res) => {
    if (req.method === "POST" && (req.url === "/down" || req.url === "/up")) setDown(req.url === "/down");
    if (req.method === "POST" && req.url === "/hang") {
      setDown(false);
      hung = true;
      abandoned = 0;
      for (const s of sockets) s.destroy();
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ down, hung, held: held.size, abandoned, opened }));
  });
  await Promise.all([new Promise<void>((r) => server.listen(0, "127.0.0.1", r)), new Promise<void>((r) => control.listen(0, "127.0.0.1", r))]);
  return {
    port: (server.address() as { port: number }).port,
    controlUrl: `http://127.0.0.1:${(control.address() as { port: number }).port}`,
    setDown,
    stop: async () => {
      for (const s of [...sockets, ...held]) s.destroy();
      control.closeAllConnections();
      await Promise.all([new Promise((r) => server.close(r)), new Promise((r) => control.close(r))]);
    },
  };
}
