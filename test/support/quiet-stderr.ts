// Vite warns, on every run, that two dependencies (@workflow/serde of the AI SDK's provider utils,
// cron-schedule of agents) ship source maps naming source files they do not ship. Nothing here can
// fix that, and on a green run it reads like a fault: these lines, for files under node_modules, are dropped.
// Imported by vitest.config.ts first. (The README's Tests section says what output remains.)
const THIRD_PARTY_SOURCEMAP = /^Sourcemap for "[^"]*\/node_modules\/[^"]*" points to missing source files\n?$/;

const write = process.stderr.write.bind(process.stderr);
process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => THIRD_PARTY_SOURCEMAP.test(String(chunk)) || write(chunk, ...rest)) as typeof process.stderr.write;
