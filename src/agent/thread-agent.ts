import { AIChatAgent, type OnChatMessageOptions } from "@cloudflare/ai-chat";
import type { Connection, WSMessage } from "agents";
import { convertToModelMessages, isStepCount, streamText, type UIMessage } from "ai";
import { getConfig } from "../config";
import { withDb } from "../db/client";
import { applyMessageOps } from "../db/messages";
import { toAppError } from "../errors";
import { errorFrame, refuseFrame } from "./frames";
import { chatModel } from "./model";
import { Outbox } from "./outbox";
import { agentTools } from "./tools";

const SYSTEM_PROMPT =
  "You are Threadline, a helpful assistant in a chat thread. Answer concisely. Use the tools you are given when they help, and say so when a tool fails.";

/** Metadata the agent stamps on every assistant message. */
export type AssistantMetadata = {
  model: string;
  offline: boolean;
  usage?: { inputTokens?: number; outputTokens?: number; totalTokens?: number };
};

/**
 * One Durable Object per chat thread (its name is the thread id). AIChatAgent keeps the thread's
 * hot transcript and streams; every durable write of that transcript also lands in an outbox that
 * drains to Postgres, the system of record.
 */
export class ThreadAgent extends AIChatAgent<Env> {
  readonly outbox: Outbox;
  #retryAttempt = 0;
  #retryScheduled = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.outbox = new Outbox(ctx.storage.sql, (ops) => withDb(this.env, (db) => applyMessageOps(db, this.name, ops)));
    this.sessions.subscribe((event) => {
      this.outbox.record(event);
      // Deferred: the feed may dispatch inside the session's own write.
      queueMicrotask(() => void this.flushOutbox());
    });
    const handle = this.onMessage.bind(this);
    this.onMessage = async (connection: Connection, message: WSMessage) => {
      const refusal = refuseFrame(message);
      if (refusal) return connection.send(refusal);
      return handle(connection, message);
    };
  }

  override async onStart() {
    if (this.outbox.backlog > 0) await this.flushOutbox();
  }

  /** Frames no protocol layer claimed. */
  override async onMessage(connection: Connection, message: WSMessage) {
    const type = typeof message === "string" ? (JSON.parse(message) as { type?: string }).type : undefined;
    connection.send(errorFrame({ code: "unknown_frame", message: `unknown frame type: ${String(type)}` }));
  }

  override async persistMessages(messages: UIMessage[], excludeBroadcastIds?: string[], options?: { _deleteStaleRows?: boolean }) {
    await super.persistMessages(messages, excludeBroadcastIds, options);
    // Rows reach Postgres before the turn's terminal frame goes out; an outage only delays them.
    await this.flushOutbox();
  }

  override async onChatMessage(_onFinish: unknown, options?: OnChatMessageOptions) {
    const config = getConfig(this.env);
    const { model, id, offline } = chatModel(config);
    const tools = agentTools();
    const result = streamText({
      model,
      system: SYSTEM_PROMPT,
      messages: await convertToModelMessages(this.messages, { tools, ignoreIncompleteToolCalls: true }),
      tools,
      stopWhen: isStepCount(5),
      abortSignal: options?.abortSignal,
    });
    return result.toUIMessageStreamResponse({
      messageMetadata: ({ part }): AssistantMetadata | undefined => {
        if (part.type === "start") return { model: id, offline };
        if (part.type === "finish")
          return {
            model: id,
            offline,
            usage: { inputTokens: part.totalUsage.inputTokens, outputTokens: part.totalUsage.outputTokens, totalTokens: part.totalUsage.totalTokens },
          };
        return undefined;
      },
      onError: (error) => {
        console.error(JSON.stringify({ level: "error", event: "model_error", thread: this.name, error: String(error) }));
        return `The model request failed: ${error instanceof Error ? error.message : String(error)}`;
      },
    });
  }

  /** Drains the outbox now; on failure schedules a retry with jittered exponential backoff. */
  async flushOutbox(): Promise<void> {
    try {
      await this.outbox.flush();
      this.#retryAttempt = 0;
    } catch (err) {
      const error = toAppError(err);
      if (error.code === "thread_not_found") {
        // The thread was deleted in Postgres: its messages would be cascaded away anyway.
        this.outbox.discard();
        return;
      }
      console.error(JSON.stringify({ level: "warn", event: "outbox_flush_failed", thread: this.name, code: error.code, backlog: this.outbox.backlog }));
      if (!this.#retryScheduled) {
        this.#retryScheduled = true;
        const seconds = Math.min(300, 2 ** this.#retryAttempt++) * (0.5 + Math.random() / 2);
        await this.schedule(Math.max(1, Math.round(seconds)), "retryOutbox");
      }
    }
  }

  async retryOutbox() {
    this.#retryScheduled = false;
    await this.flushOutbox();
  }
}
