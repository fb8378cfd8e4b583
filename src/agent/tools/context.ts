import type { LimiterStorage } from "../../authority/sliding-window.ts";
import type { Flags } from "../../flags/index.ts";

/** What a thread's tools know about the thread they serve; `flags`: the turn's feature flags (configuration when absent). */
export type ToolContext = { env: Env; threadId: string; storage: LimiterStorage; ownerId: () => Promise<string>; flags?: Partial<Flags> };
