import { tool, zodSchema } from "ai";
import { z } from "zod";
import { toAppError } from "../../errors.ts";
import type { Flags } from "../../flags/index.ts";
import { log } from "../../observability/log.ts";
import { ingestDocuments, removeDocument, type SearchDeps } from "../../search/search.ts";
import { searchDeps } from "../../search/deps.ts";
import type { ToolContext } from "./context.ts";

/** How a tool that acts ends: done, or a failure the model can read and explain (never a thrown error that ends the turn). */
type Acted = { status: "ok"; [k: string]: unknown } | { status: "not_found" | "quota_exceeded" | "unavailable" | "invalid"; message: string };

const failure = (threadId: string, tool: string, err: unknown): Acted => {
  const e = toAppError(err);
  if (e.code === "quota_exceeded" || e.code === "validation_failed") return { status: e.code === "quota_exceeded" ? "quota_exceeded" : "invalid", message: e.message };
  log("warn", "tool_failed", { threadId, tool, code: e.code });
  return { status: "unavailable", message: "The knowledge base cannot be reached right now; say so and try later." };
};

// Wrapped once, at load (./index.ts says why).
const saveNoteInput = zodSchema(
  z.strictObject({
    title: z.string().trim().min(1).max(200).describe("A short title for the note"),
    text: z.string().trim().min(1).max(20_000).describe("The note's text, as the user would want to find it again"),
  }),
);
const deleteDocumentInput = zodSchema(z.strictObject({ documentId: z.uuid().describe("The id of the document to delete") }));

/**
 * Tools that change the user's knowledge base. Both act on the thread owner's own documents only,
 * and both wait for the owner's approval unless a flag says otherwise (see ./index.ts).
 */
export function noteTools(ctx: ToolContext & { flags: Pick<Flags, "max_documents_per_user" | "max_chunks_per_user"> }, deps: SearchDeps = searchDeps(ctx.env, ctx.versions)) {
  return {
    save_note: tool({
      description:
        "Save a note to the user's knowledge base (a document only they can see, which later searches find). Use it when the user asks to save, note or remember something.",
      inputSchema: saveNoteInput,
      execute: async ({ title, text }): Promise<Acted> => {
        try {
          const quota = { documents: ctx.flags.max_documents_per_user, chunks: ctx.flags.max_chunks_per_user };
          const [doc] = await ingestDocuments(deps, await ctx.ownerId(), [{ title, text, source: "note" }], quota);
          return { status: "ok", documentId: doc!.id, title: doc!.title, chunkCount: doc!.chunkCount };
        } catch (err) {
          return failure(ctx.threadId, "save_note", err);
        }
      },
    }),
    delete_document: tool({
      description: "Delete one of the user's own documents (or notes) from their knowledge base, by its document id (as hybrid_search returns it).",
      inputSchema: deleteDocumentInput,
      execute: async ({ documentId }): Promise<Acted> => {
        try {
          const removed = await removeDocument(deps, documentId.toLowerCase(), { ownerId: await ctx.ownerId() });
          return removed
            ? { status: "ok", documentId, deleted: true }
            : { status: "not_found", message: "No document of the user's has that id; shared documents cannot be deleted." };
        } catch (err) {
          return failure(ctx.threadId, "delete_document", err);
        }
      },
    }),
  };
}
