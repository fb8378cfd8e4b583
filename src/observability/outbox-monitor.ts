import { DurableObject } from "cloudflare:workers";

export type ThreadBacklog = { backlog: number; quarantined: number; oldestAt: number | null; attempt: number; nextRetryAt: number | null };
export type BacklogSummary = { threads: number; messages: number; oldestAt: number | null; quarantined: { threads: number; rows: number }; failing: number };

/**
 * One for the whole service: which thread agents hold changes Postgres has not taken yet (waiting
 * in their outbox, or quarantined). Agents report on every change and on every failed retry;
 * /health and the admin stats read the summary. Kept in its storage, so a restart forgets nothing.
 */
export class OutboxMonitor extends DurableObject<Env> {
  async report(threadId: string, state: ThreadBacklog): Promise<void> {
    const key = `t:${threadId}`;
    if (state.backlog <= 0 && state.quarantined <= 0) return void (await this.ctx.storage.delete(key));
    await this.ctx.storage.put(key, { ...state, reportedAt: Date.now() });
  }

  async summary(): Promise<BacklogSummary> {
    const all = [...(await this.ctx.storage.list<ThreadBacklog>({ prefix: "t:" })).values()];
    const waiting = all.filter((t) => t.backlog > 0);
    const quarantined = all.filter((t) => t.quarantined > 0);
    const oldest = waiting.flatMap((t) => (t.oldestAt === null ? [] : [t.oldestAt]));
    return {
      threads: waiting.length,
      messages: waiting.reduce((n, t) => n + t.backlog, 0),
      oldestAt: oldest.length ? Math.min(...oldest) : null,
      quarantined: { threads: quarantined.length, rows: quarantined.reduce((n, t) => n + t.quarantined, 0) },
      failing: all.filter((t) => t.attempt > 0).length,
    };
  }

  /** Thread ids with quarantined changes, for the admin. */
  async quarantinedThreads(): Promise<string[]> {
    return [...(await this.ctx.storage.list<ThreadBacklog>({ prefix: "t:" })).entries()].filter(([, t]) => t.quarantined > 0).map(([k]) => k.slice(2));
  }
}

export const outboxMonitor = (env: Env) => env.OutboxMonitor.get(env.OutboxMonitor.idFromName("global"));
