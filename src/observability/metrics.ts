import { getConfig } from "../config.ts";

/** One finished (or refused) turn, as numbers an operator aggregates. */
export type TurnPoint = {
  kind: "turn";
  threadId: string;
  userId: string | null;
  transport: "ws" | "http";
  status: "ok" | "error" | "aborted" | "refused";
  model: string | null;
  durationMs: number;
  /** From the turn's arrival to the model stream's first chunk; null when none came. */
  firstChunkMs: number | null;
  inputTokens: number;
  outputTokens: number;
  toolCalls: number;
  toolErrors: number;
  /** Total time spent in hybrid_search calls during the turn, and how many were answered from the cache. */
  searchMs: number;
  searchCalls: number;
  searchCacheHits: number;
};

/** A thread's outbox backlog whenever it changes (0 once drained). */
export type OutboxPoint = { kind: "outbox"; threadId: string; backlog: number };

export type MetricPoint = TurnPoint | OutboxPoint;

/** The one way code writes metrics. Writes never throw and never wait. */
export interface Metrics {
  write(point: MetricPoint): void;
}

/**
 * Workers Analytics Engine: one data point per event, blobs and doubles in a fixed order (the
 * README lists them for SQL API queries), indexed by thread so sampling keeps a thread's points together.
 */
export function analyticsEngineMetrics(dataset: AnalyticsEngineDataset): Metrics {
  return {
    write(p) {
      try {
        if (p.kind === "outbox") dataset.writeDataPoint({ indexes: [p.threadId], blobs: ["outbox", p.threadId], doubles: [p.backlog] });
        else
          dataset.writeDataPoint({
            indexes: [p.threadId],
            blobs: ["turn", p.threadId, p.userId ?? "", p.transport, p.status, p.model ?? ""],
            doubles: [p.durationMs, p.firstChunkMs ?? -1, p.inputTokens, p.outputTokens, p.toolCalls, p.toolErrors, p.searchMs, p.searchCalls, p.searchCacheHits],
          });
      } catch {
        /* metrics are best effort: a full buffer must not fail a turn */
      }
    },
  };
}

const RECENT_LIMIT = 1000;
const recent: MetricPoint[] = [];

/** Development and tests: points kept in this isolate's memory (the last 1,000), readable with recentMetrics(). */
export const localMetrics: Metrics = {
  write(point) {
    recent.push(point);
    if (recent.length > RECENT_LIMIT) recent.splice(0, recent.length - RECENT_LIMIT);
  },
};

export const recentMetrics = (): readonly MetricPoint[] => recent;

/** The configured sink (METRICS_SINK): Analytics Engine when METRICS is bound, else local. */
export function metrics(env: Env): Metrics {
  return getConfig(env).metricsSink === "analytics-engine" && env.METRICS ? analyticsEngineMetrics(env.METRICS) : localMetrics;
}
