import { config } from "zod/v4/core";

// Zod (in the chat clients) tries eval the first time it builds a parser, for a faster one; the page's
// CSP forbids eval, so the try only raises a violation report. Told first thing, it does not try.
config({ jitless: true });
