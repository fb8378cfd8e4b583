// A CPU profile of a wrangler dev Worker (its workerd isolate, Durable Objects included) through the
// inspector wrangler serves, and where its self time goes by bundled module: esbuild marks each
// module's start in the bundle with a `// path` comment line, and the profile's line numbers are the bundle's.
type Node = { id: number; callFrame: Frame; children?: number[] };
export type CpuProfile = { nodes: Node[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] };

type Frame = { functionName: string; url: string; lineNumber: number; scriptId: string };
export type Profiled = { profile: CpuProfile; bundle?: string };

/** Starts sampling; the function it returns stops, and brings the profile and the bundle's source (asked of the inspector: wrangler keeps no copy). */
export async function startProfile(inspectorPort: number, intervalUs = 500): Promise<() => Promise<Profiled>> {
  const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json()) as { webSocketDebuggerUrl: string }[];
  if (!targets[0]) throw new Error(`no inspector target on :${inspectorPort}`);
  // Wrangler's inspector proxy wants an Origin (a local one will do); undici's WebSocket takes headers.
  const ws = new WebSocket(targets[0].webSocketDebuggerUrl, { headers: { origin: "http://127.0.0.1" } } as unknown as string[]);
  await new Promise((ok, fail) => {
    ws.addEventListener("open", ok, { once: true });
    ws.addEventListener("error", () => fail(new Error(`inspector :${inspectorPort} refused`)), { once: true });
  });
  let id = 0;
  // The proxy answers some calls with an echo of the call and no result: a call is done at its first
  // message unless `until` wants more.
  const waiting = new Map<number, (m: { result?: unknown; error?: { message: string } }) => void>();
  ws.addEventListener("message", (e) => {
    const m = JSON.parse(String(e.data)) as { id?: number; result?: unknown; error?: { message: string } };
    if (m.id !== undefined) waiting.get(m.id)?.(m);
  });
  const call = (method: string, params?: object, until = (_r: unknown) => true) =>
    new Promise<unknown>((ok, fail) => {
      const n = ++id;
      waiting.set(n, (m) => {
        if (!m.error && !until(m.result)) return;
        waiting.delete(n);
        if (m.error) fail(new Error(`${method}: ${m.error.message}`));
        else ok(m.result);
      });
      ws.send(JSON.stringify({ id: n, method, params }));
    });
  await call("Profiler.enable");
  await call("Profiler.setSamplingInterval", { interval: intervalUs });
  await call("Profiler.start");
  return async () => {
    const { profile } = (await call("Profiler.stop", undefined, (r) => Boolean((r as { profile?: unknown })?.profile))) as { profile: CpuProfile };
    const script = bundleFrame(profile)?.scriptId;
    let bundle: string | undefined;
    if (script) {
      await call("Debugger.enable");
      bundle = ((await call("Debugger.getScriptSource", { scriptId: script }, (r) => Boolean(r))) as { scriptSource: string }).scriptSource;
      await call("Debugger.disable");
    }
    ws.close();
    return { profile, bundle };
  };
}

/** The Worker's bundle (worker.js, index.js: wrangler names it): the script with the most frames that is not the runtime's (`node:…`, `cloudflare:…`). */
function bundleFrame(p: CpuProfile): Frame | undefined {
  const count = new Map<string, { n: number; f: Frame }>();
  for (const { callFrame: f } of p.nodes) if (f.url && !f.url.includes(":")) count.set(f.url, { n: (count.get(f.url)?.n ?? 0) + 1, f });
  return [...count.values()].sort((x, y) => y.n - x.n)[0]?.f;
}

/**
 * Self time per function and per module, in ms over the profile; `bundle` maps bundle lines to
 * modules. `ours`: the time under each of the project's own functions (src/), its callees included
 * (a recursion or a call between two of them counts once per function).
 */
export function selfTimes({ profile: p, bundle }: Profiled) {
  const starts: { line: number; module: string }[] = [];
  if (bundle)
    bundle.split("\n").forEach((l, i) => {
      const m = /^\/\/ ((?:\.\.\/)*(?:node_modules\/)?(.+\.[cm]?[jt]sx?))$/.exec(l);
      if (m) starts.push({ line: i, module: m[2]!.replace(/^.*node_modules\//, "") });
    });
  const main = bundleFrame(p)?.url;
  const moduleOf = (f: Frame) => {
    if (!f.url) return `(${f.functionName || "native"})`;
    if (!bundle || f.url !== main) return f.url;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]!.line <= f.lineNumber) lo = mid;
      else hi = mid - 1;
    }
    return starts[lo]?.module ?? "bundle";
  };
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const key = (f: Frame, m: string) => `${f.functionName || "(anonymous)"} ${m}:${f.lineNumber + 1}`;
  const ours = new Map<string, number>();
  const fn = new Map<string, number>();
  const mod = new Map<string, number>();
  let total = 0;
  p.samples.forEach((s, i) => {
    const f = byId.get(s)!.callFrame;
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000;
    total += dt;
    const m = moduleOf(f);
    mod.set(m, (mod.get(m) ?? 0) + dt);
    const k = key(f, m);
    fn.set(k, (fn.get(k) ?? 0) + dt);
    const seen = new Set<string>();
    for (let id: number | undefined = s; id !== undefined; id = parent.get(id)) {
      const g = byId.get(id)!.callFrame;
      const gm = moduleOf(g);
      if (gm.startsWith("src/")) seen.add(key(g, gm));
    }
    for (const o of seen) ours.set(o, (ours.get(o) ?? 0) + dt);
  });
  const top = (m: Map<string, number>) => [...m].sort((x, y) => y[1] - x[1]);
  return { totalMs: total, byModule: top(mod), byFunction: top(fn), ours: top(ours) };
}
