import { connect } from "node:net";
import { WebSocketServer } from "ws";

/**
 * What Neon runs in front of its Postgres, in miniature: each WebSocket carries one Postgres
 * connection's bytes over TCP to `target`. The driver's `?address=` is ignored, so this proxy
 * reaches one database only. Local tests and benchmarks only: no TLS, no authentication.
 */
export type WsProxy = { port: number; connections: () => number; stop: () => Promise<void> };

export async function startWsProxy(target: { host: string; port: number }): Promise<WsProxy> {
  let connections = 0;
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  server.on("connection", (ws) => {
    connections++;
    const tcp = connect(target.port, target.host).setNoDelay(true);
    // Frames that arrive before the TCP connect completes wait in the socket's write queue.
    ws.on("message", (data) => tcp.write(data as Buffer));
    tcp.on("data", (chunk) => ws.send(chunk));
    const close = () => {
      ws.terminate();
      tcp.destroy();
    };
    for (const s of [ws, tcp]) s.on("close", close).on("error", close);
  });
  await new Promise<void>((resolve, reject) => server.once("listening", resolve).once("error", reject));
  return {
    port: (server.address() as { port: number }).port,
    connections: () => connections,
    stop: async () => {
      for (const ws of server.clients) ws.terminate();
      await new Promise((r) => server.close(r));
    },
  };
}
