import { threadAgent } from "../agent/client.ts";
import { AppError, type Refusal } from "../errors.ts";
import type { TurnAdmissions } from "./turn-admission.ts";

type Agent = Awaited<ReturnType<typeof threadAgent>>;

/**
 * What a user's authority knows of their thread agents, and how it reaches them: the sockets open on
 * each (`live:<threadId>`, counted against the user's cap), and, on a revocation or a change of
 * budgets, the call to every agent with a socket or a lease, so each closes what it must and drops its lease.
 */
export class ThreadReach {
  private readonly storage: DurableObjectStorage;
  private readonly env: Env;
  private readonly admissions: TurnAdmissions;
  private readonly userId: string;
  constructor(storage: DurableObjectStorage, env: Env, admissions: TurnAdmissions, userId: string) {
    this.storage = storage;
    this.env = env;
    this.admissions = admissions;
    this.userId = userId;
  }

  /** A socket opening on `threadId`: counted at once, when the user has fewer than `max` open. */
  async open(threadId: string, max: number): Promise<Refusal | undefined> {
    const live = await this.storage.list<number>({ prefix: "live:" });
    const open = [...live.values()].reduce((n, v) => n + v, 0);
    if (open >= max) return new AppError("too_many_connections", `too many open connections: at most ${max} per user`).toRefusal();
    await this.storage.put(`live:${threadId}`, (live.get(`live:${threadId}`) ?? 0) + 1);
  }

  /** A thread agent's count of the user's open sockets on it. */
  async set(threadId: string, open: number): Promise<void> {
    if (open > 0) await this.storage.put(`live:${threadId}`, open);
    else await this.storage.delete(`live:${threadId}`);
  }

  /** Closes the sockets opened with these keys on every thread with one open, and has every thread holding a lease drop it. */
  async revoke(keyHashes: string[] | "all", reason: string): Promise<void> {
    const live = [...(await this.storage.list<number>({ prefix: "live:" })).keys()].map((key) => key.slice("live:".length));
    await Promise.all(
      [...new Set([...live, ...(await this.admissions.threads())])].map(async (threadId) => {
        const open = await this.#dropLeases(threadId, (agent) => agent.revoke(this.userId, keyHashes, reason));
        if (open !== undefined && live.includes(threadId)) await this.set(threadId, open);
      }),
    );
  }

  /** Leases were granted under old budgets: every thread holding one drops it, and its next turn asks the authority. */
  async dropLeases(): Promise<void> {
    await Promise.all([...(await this.admissions.threads())].map((threadId) => this.#dropLeases(threadId, (agent) => agent.dropLease())));
  }

  /**
   * Has a thread's agent drop its lease (`drop`, over RPC), then frees what the leases granted before
   * the call held: one granted after it was asked for after the drop, and the agent may hold it.
   */
  async #dropLeases<T>(threadId: string, drop: (agent: Agent) => Promise<T>): Promise<T | undefined> {
    const before = Date.now();
    const outcome = await threadAgent(this.env, threadId)
      .then(drop)
      .then(
        (result) => ({ result }),
        () => undefined,
      );
    // An agent that did not answer may still hold its lease: it stays counted until its time is up.
    if (!outcome) return undefined;
    await this.admissions.free(threadId, before);
    return outcome.result;
  }
}
