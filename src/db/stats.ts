import { sql } from "drizzle-orm";
import type { Db } from "./client.ts";

export type ModelTotals = { model: string; turns: number; inputTokens: number; outputTokens: number };
export type ToolTotals = { name: string; calls: number; errors: number };
export type Stats = {
  users: { total: number; created: number; active: number };
  threads: { total: number; created: number; active: number };
  messages: { user: number; assistant: number };
  tokens: { input: number; output: number };
  models: ModelTotals[];
  tools: ToolTotals[];
  search: { calls: number; cached: number; cacheHitRatio: number | null };
  documents: { total: number; chunks: number };
  /** Tool calls held for the owner's approval, and how they were decided (denied includes expired). */
  approvals: { requested: number; approved: number; denied: number };
};

/**
 * Service totals since a moment, read from the system of record; tokens from the spend ledger (every model call, kept when messages go). Tool calls and their outcomes
 * come from the persisted assistant messages' tool parts: a part in state `output-error`, or whose
 * output reports a `status` other than "ok" (our tools' structured failures), is an error.
 */
export async function statsSince(db: Db, since: Date): Promise<Stats> {
  const at = since.toISOString();
  const [overview, models, tools, approvals] = await Promise.all([
    db.execute<Record<string, number>>(sql`
      select
        (select count(*)::int from users) as users_total,
        (select count(*)::int from users where created_at >= ${at}) as users_created,
        (select count(distinct t.user_id)::int from messages m join threads t on t.id = m.thread_id where m.created_at >= ${at}) as users_active,
        (select count(*)::int from threads) as threads_total,
        (select count(*)::int from threads where created_at >= ${at}) as threads_created,
        (select count(distinct thread_id)::int from messages where created_at >= ${at}) as threads_active,
        (select count(*)::int from messages where created_at >= ${at} and role = 'user') as messages_user,
        (select count(*)::int from messages where created_at >= ${at} and role = 'assistant') as messages_assistant,
        (select coalesce(sum(input_tokens), 0)::float8 from spend_ledger where created_at >= ${at}) as tokens_input,
        (select coalesce(sum(output_tokens), 0)::float8 from spend_ledger where created_at >= ${at}) as tokens_output,
        (select count(*)::int from documents) as documents_total,
        (select count(*)::int from chunks) as chunks_total`),
    db.execute<ModelTotals>(sql`
      select model, count(distinct coalesce(turn_id, entry_id))::int as "turns", coalesce(sum(input_tokens), 0)::float8 as "inputTokens", coalesce(sum(output_tokens), 0)::float8 as "outputTokens"
      from spend_ledger where created_at >= ${at}
      group by model order by 2 desc`),
    db.execute<ToolTotals & { cached: number }>(sql`
      select substr(p->>'type', 6) as name, count(*)::int as calls,
        count(*) filter (where p->>'state' = 'output-error' or coalesce(p->'output'->>'status', 'ok') <> 'ok')::int as errors,
        count(*) filter (where p->'output'->>'cached' = 'true')::int as cached
      from messages, jsonb_array_elements(parts) as p
      where created_at >= ${at} and role = 'assistant' and p->>'type' like 'tool-%' and p->>'state' in ('output-available', 'output-error')
      group by 1 order by 2 desc`),
    db.execute<{ requested: number; approved: number; denied: number }>(sql`
      select count(*)::int as requested,
        count(*) filter (where p->'approval'->>'approved' = 'true')::int as approved,
        count(*) filter (where p->>'state' = 'output-denied' or p->'approval'->>'approved' = 'false')::int as denied
      from messages, jsonb_array_elements(parts) as p
      where created_at >= ${at} and role = 'assistant' and p->'approval' is not null`),
  ]);
  const o = overview.rows[0]!;
  const search = tools.rows.find((t) => t.name === "hybrid_search");
  return {
    users: { total: o.users_total!, created: o.users_created!, active: o.users_active! },
    threads: { total: o.threads_total!, created: o.threads_created!, active: o.threads_active! },
    messages: { user: o.messages_user!, assistant: o.messages_assistant! },
    tokens: { input: o.tokens_input!, output: o.tokens_output! },
    models: models.rows,
    tools: tools.rows.map(({ name, calls, errors }) => ({ name, calls, errors })),
    search: { calls: search?.calls ?? 0, cached: search?.cached ?? 0, cacheHitRatio: search?.calls ? search.cached / search.calls : null },
    documents: { total: o.documents_total!, chunks: o.chunks_total! },
    approvals: approvals.rows[0] ?? { requested: 0, approved: 0, denied: 0 },
  };
}
