// The benchmarks' command lines: every option a string, checked by a zod schema; a bad one prints why and exits 2.
import { parseArgs } from "node:util";
import { z } from "zod";

export function cliArgs<S extends z.ZodType>(names: string[], schema: S): z.infer<S> {
  const strings = Object.fromEntries(names.map((k) => [k, { type: "string" as const }]));
  const parsed = schema.safeParse(parseArgs({ options: strings, strict: true }).values);
  if (!parsed.success) {
    console.error(z.prettifyError(parsed.error));
    process.exit(2);
  }
  return parsed.data;
}
