import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { documentScope, idParam } from "../auth/access.ts";
import { getDocument, listDocuments, type Scope } from "../db/documents.ts";
import type { DocumentRow } from "../db/schema.ts";
import { AppError } from "../errors.ts";
import { ingestDocuments, removeDocument } from "../search/search.ts";
import { searchDeps } from "../search/deps.ts";
import { findUnstorable } from "../validation/storable.ts";
import { decodeCursor, encodeCursor } from "./cursor.ts";
import { apiRouter, bearerAuth, errors, json, jsonBody, takeUserRate, type AppEnv } from "./http.ts";

export const MAX_BATCH_DOCUMENTS = 50;
export const MAX_METADATA_BYTES = 8 * 1024;
// Every value takes at least a byte of JSON, so the byte bound is the one that binds.
const METADATA_LIMITS = { maxDepth: 32, maxNodes: MAX_METADATA_BYTES };

// Stored as jsonb: bounded in depth and size, whoever calls (the admin's global documents too).
const Metadata = z.record(z.string(), z.unknown()).superRefine((m, ctx) => {
  const bad = findUnstorable(m, METADATA_LIMITS);
  if (bad?.problem === "depth") ctx.addIssue({ code: "custom", message: `metadata is nested deeper than ${METADATA_LIMITS.maxDepth} levels` });
  else if (bad) ctx.addIssue({ code: "custom", message: "metadata contains a character that cannot be stored (U+0000 or an unpaired surrogate)" });
  else if (new TextEncoder().encode(JSON.stringify(m)).length > MAX_METADATA_BYTES)
    ctx.addIssue({ code: "custom", message: `metadata exceeds ${MAX_METADATA_BYTES} bytes as JSON` });
});

const DocumentInput = z
  .strictObject({
    title: z.string().trim().min(1).max(500),
    text: z.string().trim().min(1),
    source: z.string().trim().min(1).max(2000).optional(),
    metadata: Metadata.optional().openapi({ description: `Any JSON object, at most ${MAX_METADATA_BYTES} bytes and ${METADATA_LIMITS.maxDepth} levels deep` }),
  })
  .openapi("DocumentInput");

const CreateDocuments = z.union([DocumentInput, z.strictObject({ documents: z.array(DocumentInput).min(1).max(MAX_BATCH_DOCUMENTS) })]).openapi("CreateDocuments");

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
const callerScope = (c: Context<AppEnv>): Scope => documentScope(c.get("principal"));

const notFound = () => new AppError("not_found", "document not found");
const IdParam = z.object({ id: z.string() });
const validId = (id: string) => idParam(id, notFound);

export const documents = apiRouter()
  .openapi(
    createRoute({
      method: "post",
      path: "/",
      summary: "Ingest one document or a batch: chunked, embedded and stored in one transaction; per-user rate limit and document and chunk quotas",
      security: bearerAuth,
      request: jsonBody(CreateDocuments),
      responses: {
        201: json(z.object({ documents: z.array(z.object({ id: z.uuid(), title: z.string(), chunkCount: z.number().int() })) }), "Stored"),
        ...errors(400, 401, 413, 422, 429, 503),
      },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const docs = "documents" in body ? body.documents : [body];
      const flags = await takeUserRate(c, "ingest");
      const quota = flags && { documents: flags.max_documents_per_user, chunks: flags.max_chunks_per_user };
      const rows = await ingestDocuments(searchDeps(c.env), callerScope(c).ownerId, docs, quota);
      return c.json({ documents: rows.map((r) => ({ id: r.id, title: r.title, chunkCount: r.chunkCount })) }, 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/",
      summary: "The documents the caller can see (their own and the global ones), newest first",
      security: bearerAuth,
      request: { query: z.object({ limit: z.coerce.number().int().min(1).max(100).default(50), cursor: z.string().max(200).optional() }) },
      responses: { 200: json(z.object({ items: z.array(DocumentSchema), nextCursor: z.string().nullable() }), "A page of documents"), ...errors(401, 422, 503) },
    }),
    async (c) => {
      const { limit, cursor } = c.req.valid("query");
      const page = await searchDeps(c.env).db((db) => listDocuments(db, callerScope(c), { limit, cursor: cursor ? decodeCursor(cursor) : undefined }));
      return c.json({ items: page.items.map(documentJson), nextCursor: page.next ? encodeCursor(page.next) : null }, 200);
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
