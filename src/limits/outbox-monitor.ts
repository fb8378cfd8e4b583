import { DurableObject } from "cloudflare:workers";

export type BacklogSummary = { threads: number; messages: number; oldestAt: number | null };

/**
 * One for the whole service: which thread agents hold outbox rows Postgres has not taken yet.
 * Agents report when their backlog changes; /health reads the summary. In memory: after an
 * eviction the picture rebuilds as agents report on their next retry.
 */
export class OutboxMonitor extends DurableObject<Env> {
  #backlogs = new Map<string, { rows: number; since: number }>();

  async report(threadId: string, rows: number): Promise<void> {
    if (rows <= 0) this.#backlogs.delete(threadId);
    else this.#backlogs.set(threadId, { rows, since: this.#backlogs.get(threadId)?.since ?? Date.now() });
  }

  async summary(): Promise<BacklogSummary> {
    let messages = 0;
    let oldestAt: number | null = null;
    for (const { rows, since } of this.#backlogs.values()) {
      messages += rows;
      oldestAt = oldestAt === null ? since : Math.min(oldestAt, since);
    }
    return { threads: this.#backlogs.size, messages, oldestAt };
  }
}

export const outboxMonitor = (env: Env) => env.OutboxMonitor.get(env.OutboxMonitor.idFromName("global"));
