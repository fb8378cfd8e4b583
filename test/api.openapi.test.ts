import { describe, expect, it } from "vitest";
import { fetchApp } from "./support/helpers.ts";

type Operation = { summary?: string; security?: unknown[]; responses: Record<string, unknown>; requestBody?: unknown; parameters?: { name: string; in: string }[] };
type Document = {
  openapi: string;
  info: { title: string };
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
};

const v1Routes = [
  "post /api/v1/users",
  "get /api/v1/users/me",
  "get /api/v1/users/me/usage",
  "post /api/v1/users/me/api-key",
  "delete /api/v1/users/{id}",
  "post /api/v1/threads",
  "get /api/v1/threads",
  "get /api/v1/threads/{id}",
  "patch /api/v1/threads/{id}",
  "delete /api/v1/threads/{id}",
  "get /api/v1/threads/{id}/messages",
  "post /api/v1/threads/{id}/messages",
  "get /api/v1/threads/{id}/export",
  "post /api/v1/chat",
  "get /api/v1/chat/{id}/stream",
];

describe("GET /api/v1/openapi.json", () => {
  it("describes every v1 route, generated from the schemas that validate them", async () => {
    const res = await fetchApp("/api/v1/openapi.json", {}, null);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as Document;
    expect(doc.openapi).toBe("3.1.0");
    const operations = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((method) => `${method} ${path}`));
    expect(operations).toEqual(expect.arrayContaining(v1Routes));
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        expect(op.summary, `${method} ${path}`).toBeTruthy();
        expect(Object.keys(op.responses).length, `${method} ${path}`).toBeGreaterThan(0);
        // Every path parameter is declared.
        for (const name of path.match(/\{(\w+)\}/g) ?? [])
          expect(
            op.parameters?.some((p) => p.in === "path" && `{${p.name}}` === name),
            `${method} ${path} ${name}`,
          ).toBe(true);
        if (path.startsWith("/api/v1/")) {
          expect(op.security, `${method} ${path}`).toEqual([{ bearerAuth: [] }]);
          expect(op.responses["401"], `${method} ${path}`).toBeDefined();
        }
      }
    }
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: "http", scheme: "bearer" });
    // The request schemas are the validators themselves: their constraints show up.
    const createUser = doc.components.schemas.CreateUser as { properties: Record<string, { maxLength?: number }>; required: string[] };
    expect(createUser.required).toEqual(["email"]);
    const send = doc.paths["/api/v1/threads/{id}/messages"]!.post!;
    expect(JSON.stringify(send.requestBody)).toContain("SendMessage");
    expect(JSON.stringify(doc.components.schemas.SendMessage)).toContain('"maxLength":32000');
  });
});
