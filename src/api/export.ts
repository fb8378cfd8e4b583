import type { StoredMessage } from "../db/messages.ts";
import type { Thread } from "../db/schema.ts";

type Part = { type: string; text?: string; input?: unknown; output?: unknown; state?: string; errorText?: string };

/** A thread as markdown: text as written, tool calls as their input and output. */
export function exportThread(thread: Thread, messages: (StoredMessage & { createdAt: Date })[]): string {
  const lines = [`# ${thread.title ?? "Untitled thread"}`, "", `Thread \`${thread.id}\`, created ${thread.createdAt.toISOString()}.`, ""];
  for (const m of messages) {
    lines.push(`## ${m.role} · ${m.createdAt.toISOString()}`, "");
    for (const p of m.parts as Part[]) {
      if (p.type === "text" && p.text) lines.push(p.text, "");
      else if (p.type.startsWith("tool-")) {
        lines.push(
          `> tool \`${p.type.slice(5)}\` (${p.state ?? "called"})`,
          "",
          "```json",
          JSON.stringify({ input: p.input, output: p.output ?? p.errorText }, null, 2),
          "```",
          "",
        );
      }
    }
  }
  return lines.join("\n");
}
