import { AppError } from "../errors.ts";

type Store = { get<T>(key: string): Promise<T | undefined>; put(key: string, value: unknown): Promise<void> };
type Host = { storage: Store; recorded: () => Promise<string | undefined> };

const KEY = "tl_owner";

/**
 * A thread's owner, kept in its agent's storage: the Worker's gate names the owner on first contact
 * and that first claim stands; an agent that was never told reads the thread's record once.
 */
export class Owner {
  #id: string | undefined;

  private readonly host: Host;
  constructor(host: Host) {
    this.host = host;
  }

  /** The owner as far as this instance knows without a read (for logs). */
  get known(): string | undefined {
    return this.#id;
  }

  async id(): Promise<string> {
    this.#id ??= await this.host.storage.get<string>(KEY);
    if (this.#id) return this.#id;
    const recorded = await this.host.recorded();
    if (recorded === undefined) throw new AppError("thread_not_found", "thread not found");
    return this.claim(recorded);
  }

  /** The owner: `claimed` when none is stored yet. */
  async claim(claimed: string): Promise<string> {
    this.#id ??= await this.host.storage.get<string>(KEY);
    if (!this.#id) await this.host.storage.put(KEY, (this.#id = claimed));
    return this.#id;
  }
}
