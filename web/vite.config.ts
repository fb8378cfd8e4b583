import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The Worker serves web/dist as static assets (wrangler.toml [assets]); `npm run build:web` writes it.
const root = new URL(".", import.meta.url).pathname;

export default defineConfig({
  root,
  plugins: [react()],
  build: { outDir: `${root}dist`, emptyOutDir: true, chunkSizeWarningLimit: 1500 },
  logLevel: "warn",
});
