import type { LimiterStorage } from "../../authority/sliding-window.ts";
import type { Flags } from "../../flags/index.ts";
import type { CacheVersions } from "../../search/cache.ts";

/**
 * What a thread's tools know about the thread they serve; `flags`: the turn's feature flags
 * (configuration when absent); `versions`: the turn's search cache versions (src/search/cache.ts's
 * turnVersions), shared by its tools that search and those that change what search reads.
 */
export type ToolContext = { env: Env; threadId: string; storage: LimiterStorage; ownerId: () => Promise<string>; flags?: Partial<Flags>; versions?: CacheVersions };
