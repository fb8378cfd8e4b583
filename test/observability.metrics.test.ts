import { env } from "./support/env.ts";
import { describe, expect, it } from "vitest";
import { analyticsEngineMetrics, localMetrics, metrics, recentMetrics, type TurnPoint } from "../src/observability/metrics.ts";

/** Analytics Engine has no local query side, so its writes are checked through its binding's interface. */
const recorder = () => {
  const points: AnalyticsEngineDataPoint[] = [];
  return { points, dataset: { writeDataPoint: (p?: AnalyticsEngineDataPoint) => void points.push(p!) } as AnalyticsEngineDataset };
};

const turn: TurnPoint = {
  kind: "turn",
  threadId: "00000000-0000-4000-8000-000000000001",
  userId: "00000000-0000-4000-8000-000000000002",
  transport: "ws",
  status: "ok",
  model: "gpt-4o-mini",
  durationMs: 812,
  firstChunkMs: 240,
  inputTokens: 120,
  outputTokens: 40,
  toolCalls: 2,
  toolErrors: 1,
  searchMs: 35,
  searchCalls: 1,
  searchCacheHits: 1,
};

describe("metrics sinks", () => {
  it("writes a turn to Analytics Engine as blobs and doubles in the documented order, indexed by thread", () => {
    const { points, dataset } = recorder();
    analyticsEngineMetrics(dataset).write(turn);
    analyticsEngineMetrics(dataset).write({ kind: "outbox", threadId: turn.threadId, backlog: 7 });
    analyticsEngineMetrics(dataset).write({ ...turn, firstChunkMs: null, model: null, userId: null, status: "refused" });
    expect(points).toEqual([
      { indexes: [turn.threadId], blobs: ["turn", turn.threadId, turn.userId, "ws", "ok", "gpt-4o-mini"], doubles: [812, 240, 120, 40, 2, 1, 35, 1, 1] },
      { indexes: [turn.threadId], blobs: ["outbox", turn.threadId], doubles: [7] },
      { indexes: [turn.threadId], blobs: ["turn", turn.threadId, "", "ws", "refused", ""], doubles: [812, -1, 120, 40, 2, 1, 35, 1, 1] },
    ]);
  });

  it("never lets a failing Analytics Engine write reach the turn", () => {
    const failing = {
      writeDataPoint: () => {
        throw new Error("buffer full");
      },
    } as unknown as AnalyticsEngineDataset;
    expect(() => analyticsEngineMetrics(failing).write(turn)).not.toThrow();
  });

  it("picks the sink from METRICS_SINK: Analytics Engine when bound, local otherwise", () => {
    const { points, dataset } = recorder();
    metrics({ ...env, METRICS: dataset, METRICS_SINK: "analytics-engine" }).write(turn);
    expect(points).toHaveLength(1);
    expect(metrics({ ...env, METRICS: dataset, METRICS_SINK: "local" })).toBe(localMetrics);
    expect(metrics({ ...env, METRICS: undefined, METRICS_SINK: "analytics-engine" })).toBe(localMetrics);
    // Development defaults to local, a deployment to Analytics Engine.
    expect(metrics({ ...env, METRICS: dataset, METRICS_SINK: undefined, ENVIRONMENT: "development" })).toBe(localMetrics);
    expect(metrics({ ...env, METRICS: dataset, METRICS_SINK: undefined, ENVIRONMENT: "production" })).not.toBe(localMetrics);
  });

  it("keeps the last 1,000 points locally", () => {
    const tag = crypto.randomUUID();
    for (let i = 0; i < 1005; i++) localMetrics.write({ kind: "outbox", threadId: tag, backlog: i });
    const mine = recentMetrics().filter((p) => p.kind === "outbox" && p.threadId === tag);
    expect(recentMetrics().length).toBeLessThanOrEqual(1000);
    expect(mine.at(-1)).toMatchObject({ backlog: 1004 });
  });
});
