import { Hono } from "hono";
import { routeToThreadAgent } from "./agent/route";
import { health } from "./api/health";
import { notFound, onError, type AppEnv } from "./api/http";
import { threads } from "./api/threads";
import { users } from "./api/users";

export { ThreadAgent } from "./agent/thread-agent";

const app = new Hono<AppEnv>()
  .route("/health", health)
  .route("/api/v1/users", users)
  .route("/api/v1/threads", threads)
  .all("/agents/*", routeToThreadAgent);

app.onError(onError);
app.notFound(notFound);

export default app;
