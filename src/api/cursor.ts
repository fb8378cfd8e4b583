import { z } from "zod";
import { AppError } from "../errors.ts";

import type { ThreadCursor } from "../db/threads.ts";

/** The thread list's keyset cursor: opaque to clients, base64 of [createdAt, id]. */
export const encodeCursor = (c: ThreadCursor) => btoa(JSON.stringify([c.createdAt.toISOString(), c.id]));

// JavaScript dates reach ±275760 years, Postgres timestamptz 4713 BC..294276 AD: a cursor outside these years is not one we made.
const CURSOR_DATES = [Date.UTC(1970, 0, 1), Date.UTC(10_000, 0, 1)] as const;

export function decodeCursor(cursor: string): ThreadCursor {
  try {
    const [at, id] = JSON.parse(atob(cursor)) as [string, string];
    const createdAt = new Date(at);
    const time = createdAt.getTime();
    if (typeof at !== "string" || !(time >= CURSOR_DATES[0] && time < CURSOR_DATES[1]) || !z.uuid().safeParse(id).success) throw new Error();
    return { createdAt, id };
  } catch {
    throw new AppError("validation_failed", "invalid cursor");
  }
}
