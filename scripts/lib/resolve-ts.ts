// src/ imports local modules without extensions (the Worker's bundler resolves them); Node needs the
// file name, so extensionless relative imports are tried with ".ts" for Node scripts (benchmarks, cleanup).
import { registerHooks } from "node:module";

registerHooks({
  resolve(specifier, context, next) {
    if (/^\.\.?\//.test(specifier) && !/\.[cm]?[jt]s$/.test(specifier)) {
      try {
        return next(`${specifier}.ts`, context);
      } catch {}
    }
    return next(specifier, context);
  },
});
