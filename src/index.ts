import { routeToThreadAgent } from "./agent/route.ts";
import { admin } from "./api/admin.ts";
import { chat } from "./api/chat.ts";
import { cors } from "./api/cors.ts";
import { documents } from "./api/documents.ts";
import { health } from "./api/health.ts";
import { mcpServers } from "./api/mcp-servers.ts";
import { notFound, onError, router } from "./api/http.ts";
import { search } from "./api/search.ts";
import { threads } from "./api/threads.ts";
import { users } from "./api/users.ts";
import { mcpEndpoint } from "./mcp/server.ts";
import { requestLog } from "./observability/request-log.ts";

export { ThreadAgent } from "./agent/thread-agent.ts";
export { OutboxMonitor } from "./observability/outbox-monitor.ts";
export { UserAuthority } from "./authority/user-authority.ts";

const app = router();
app.use("*", requestLog);
app.use("/api/*", cors);
app.route("/health", health);
app.route("/api/v1/users", users);
app.route("/api/v1/threads", threads);
app.route("/api/v1/chat", chat);
app.route("/api/v1/documents", documents);
app.route("/api/v1/search", search);
app.route("/api/v1/admin", admin);
app.route("/api/v1/mcp-servers", mcpServers);
app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", { type: "http", scheme: "bearer", description: "A user's API key, or the admin token" });
app.doc31("/api/v1/openapi.json", { openapi: "3.1.0", info: { title: "Threadline API", version: "1.0.0" } });
app.all("/agents/*", routeToThreadAgent);
app.route("/mcp", mcpEndpoint);
app.onError(onError);
app.notFound(notFound);

export default app;
