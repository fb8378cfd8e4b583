import { getAgentByName } from "agents";

/** A thread's agent, by thread id (canonical, lower case), started: the stub every caller uses. */
export const threadAgent = (env: Env, threadId: string) => getAgentByName(env.ThreadAgent, threadId);

/** Removes deleted threads' Durable Object storage; Postgres has already cascaded. */
export async function wipeThreadAgents(env: Env, threadIds: string[]) {
  await Promise.all(threadIds.map(async (id) => (await threadAgent(env, id)).wipe()));
}
