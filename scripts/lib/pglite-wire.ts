import { createServer, type Socket } from "node:net";
import type { PGlite } from "@electric-sql/pglite";

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;

/**
 * Serves one PGlite database on the Postgres wire protocol to any number of clients. PGlite has a
 * single session, so clients take turns: a client holds the session from the first message of an
 * extended-protocol unit until its Sync (or a simple Query) has been answered, and for as long as
 * it has a transaction open. (pglite-socket interleaves clients message by message, which breaks
 * the unnamed statements and portals of concurrent clients: "portal does not exist".)
 */
export async function servePglite(db: PGlite, port: number, host = "127.0.0.1"): Promise<{ close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  let tail = Promise.resolve();
  const lock = () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const acquired = tail.then(() => release);
    tail = tail.then(() => held);
    return acquired;
  };

  const server = createServer((socket: Socket) => {
    sockets.add(socket);
    // Replies are small writes; Nagle's algorithm would hold each one back ~40 ms.
    socket.setNoDelay(true);
    socket.on("close", () => sockets.delete(socket));
    let buffer = Buffer.alloc(0);
    let started = false;
    let release: (() => void) | null = null;
    let work = Promise.resolve();
    const exec = async (message: Buffer) => {
      const out = await db.execProtocolRaw(new Uint8Array(message));
      if (out.length && !socket.destroyed) socket.write(out);
    };
    const drain = async () => {
      for (;;) {
        if (!started) {
          if (buffer.length < 8) return;
          const length = buffer.readInt32BE(0);
          if (buffer.length < length) return;
          const code = buffer.readInt32BE(4);
          const message = buffer.subarray(0, length);
          buffer = buffer.subarray(length);
          if (code === SSL_REQUEST || code === GSSENC_REQUEST) socket.write("N");
          else if (code === CANCEL_REQUEST) return void socket.end();
          else {
            const done = await lock();
            try {
              await exec(message);
            } finally {
              done();
            }
            started = true;
          }
          continue;
        }
        if (buffer.length < 5) return;
        const length = 1 + buffer.readInt32BE(1);
        if (buffer.length < length) return;
        const type = String.fromCharCode(buffer[0]!);
        const message = buffer.subarray(0, length);
        buffer = buffer.subarray(length);
        if (type === "X") return void socket.end();
        release ??= await lock();
        await exec(message);
        if ((type === "S" || type === "Q") && !db.isInTransaction()) {
          release();
          release = null;
        }
      }
    };
    socket.on("data", (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      work = work.then(drain).catch(() => void socket.destroy());
    });
    const cleanup = () => {
      work = work.then(async () => {
        if (!release) return;
        // A client that vanished inside a transaction must not leave it open for the next one.
        if (db.isInTransaction()) await db.exec("ROLLBACK").catch(() => {});
        release();
        release = null;
      });
    };
    socket.on("close", cleanup);
    socket.on("error", () => socket.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolve);
  });
  return {
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}
