import { tool, zodSchema } from "ai";
import { z } from "zod";

const isTimeZone = (tz: string) => {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
};

// Wrapped once, at load (./index.ts says why).
export const currentTime = tool({
  description: "The current date and time, in UTC or in the given IANA time zone.",
  inputSchema: zodSchema(
    z.strictObject({
      timeZone: z.string().max(64).refine(isTimeZone, "unknown time zone").optional().describe("IANA time zone, e.g. Europe/Paris"),
    }),
  ),
  execute: async ({ timeZone = "UTC" }) => {
    const now = new Date();
    const local = new Intl.DateTimeFormat("en-GB", { timeZone, dateStyle: "full", timeStyle: "long" }).format(now);
    return { iso: now.toISOString(), timeZone, local };
  },
});
