import { routeToThreadAgent } from "./agent/route";
import { admin } from "./api/admin";
import { chat } from "./api/chat";
import { cors } from "./api/cors";
import { documents } from "./api/documents";
import { health } from "./api/health";
import { mcpServers } from "./api/mcp-servers";
import { notFound, onError, router } from "./api/http";
import { search } from "./api/search";
import { threads } from "./api/threads";
import { users } from "./api/users";
import { mcpEndpoint } from "./mcp/server";
import { requestLog } from "./observability/request-log";

export { ThreadAgent } from "./agent/thread-agent";
export { OutboxMonitor } from "./observability/outbox-monitor";
export { UserAuthority } from "./authority/user-authority";

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
