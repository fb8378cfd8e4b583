import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { getDocument, type Scope } from "../db/documents";
import type { DocumentRow } from "../db/schema";
import { AppError } from "../errors";
import { ingestDocuments, removeDocument } from "../search/search";
import { searchDeps } from "../search/worker";
import { apiRouter, bearerAuth, errors, json, jsonBody, type AppEnv } from "./http";

export const MAX_BATCH_DOCUMENTS = 50;

const DocumentInput = z
  .strictObject({
    title: z.string().trim().min(1).max(500),
    text: z.string().trim().min(1),
    source: z.string().trim().min(1).max(2000).optional(),
    metadata: z.record(z.string(), z.unknown()).optional(),
  })
  .openapi("DocumentInput");

const CreateDocuments = z
  .union([DocumentInput, z.strictObject({ documents: z.array(DocumentInput).min(1).max(MAX_BATCH_DOCUMENTS) })])
  .openapi("CreateDocuments");

const DocumentSchema = z
  .object({
    id: z.uuid(),
    title: z.string(),
    source: z.string().nullable(),
    metadata: z.unknown().nullable(),
    chunkCount: z.number().int(),
    global: z.boolean().openapi({ description: "Ingested by the admin: every user's searches see it" }),
    createdAt: z.iso.datetime(),
  })
  .openapi("Document");

const documentJson = (d: DocumentRow): z.infer<typeof DocumentSchema> => ({
  id: d.id,
  title: d.title,
  source: d.source,
  metadata: d.metadata,
  chunkCount: d.chunkCount,
  global: d.ownerId === null,
  createdAt: d.createdAt.toISOString(),
});

/** A user's documents are theirs; the admin's are global. */
export const callerScope = (c: Context<AppEnv>): Scope => {
  const p = c.get("principal");
  return { ownerId: p.kind === "user" ? p.user.id : null };
};

const notFound = () => new AppError("not_found", "document not found");
const IdParam = z.object({ id: z.string() });
const validId = (id: string) => {
  if (!z.uuid().safeParse(id).success) throw notFound();
  return id;
};

export const documents = apiRouter()
  .openapi(
    createRoute({
      method: "post",
      path: "/",
      summary: "Ingest one document or a batch: chunked, embedded and stored in one transaction",
      security: bearerAuth,
      request: jsonBody(CreateDocuments),
      responses: {
        201: json(z.object({ documents: z.array(z.object({ id: z.uuid(), title: z.string(), chunkCount: z.number().int() })) }), "Stored"),
        ...errors(400, 401, 413, 422, 503),
      },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const docs = "documents" in body ? body.documents : [body];
      const rows = await ingestDocuments(searchDeps(c.env), callerScope(c).ownerId, docs);
      return c.json({ documents: rows.map((r) => ({ id: r.id, title: r.title, chunkCount: r.chunkCount })) }, 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/{id}",
      summary: "A document the caller can see (their own, or a global one)",
      security: bearerAuth,
      request: { params: IdParam },
      responses: { 200: json(z.object({ document: DocumentSchema }), "The document"), ...errors(401, 404, 503) },
    }),
    async (c) => {
      const id = validId(c.req.valid("param").id);
      const doc = await searchDeps(c.env).db((db) => getDocument(db, id, callerScope(c)));
      if (!doc) throw notFound();
      return c.json({ document: documentJson(doc) }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/{id}",
      summary: "Delete a document the caller owns (the admin: a global one) with its chunks",
      security: bearerAuth,
      request: { params: IdParam },
      responses: { 204: { description: "Deleted" }, ...errors(401, 404, 503) },
    }),
    async (c) => {
      const id = validId(c.req.valid("param").id);
      if (!(await removeDocument(searchDeps(c.env), id, callerScope(c)))) throw notFound();
      return c.body(null, 204);
    },
  );
