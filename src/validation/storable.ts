/**
 * What Postgres will store. `text` and `jsonb` refuse U+0000 and `jsonb` refuses unpaired UTF-16
 * surrogates (SQLSTATE 22P05 / 22021), though JavaScript strings carry both happily. Walks are
 * iterative: a client can nest 30,000 levels in 64 KiB, which would overflow a recursive walk.
 */

// Without the `u` flag a regex matches UTF-16 code units, so a lone surrogate is visible to it.
const UNSTORABLE = /\0|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const UNSTORABLE_ALL = new RegExp(UNSTORABLE.source, "g");

export const isStorableString = (s: string): boolean => !UNSTORABLE.test(s);

export type Unstorable = { path: string; problem: "character" | "depth" | "size" };
export type Limits = { maxDepth: number; maxNodes: number };

/** Deep enough for any UI message with tool output; the 64 KiB body limit already bounds the count. */
export const DEFAULT_LIMITS: Limits = { maxDepth: 64, maxNodes: 100_000 };

const isContainer = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null;

/** Where a value sits: built only when a problem is reported, so the walk stays linear. */
type Place = { key: string | number; parent?: Place } | undefined;
function pathOf(place: Place): string {
  const keys: (string | number)[] = [];
  for (let p = place; p; p = p.parent) keys.push(p.key);
  let path = "";
  for (const key of keys.reverse()) path += typeof key === "number" ? `[${key}]` : /^[A-Za-z_$][\w$]*$/.test(key) ? (path ? `.${key}` : key) : `[${JSON.stringify(key)}]`;
  return path;
}

/**
 * The first thing in `value` Postgres would refuse or that is out of bounds: a string or key with
 * NUL or a lone surrogate, nesting deeper than `maxDepth` containers, or more than `maxNodes` values.
 * The path reads like `documents[0].metadata.note`; JSON.stringify escapes a bad key, so the path
 * itself is storable.
 */
export function findUnstorable(value: unknown, limits: Limits = DEFAULT_LIMITS): Unstorable | undefined {
  const stack: { value: unknown; depth: number; place: Place }[] = [{ value, depth: 0, place: undefined }];
  let nodes = 0;
  const found = (place: Place, problem: Unstorable["problem"]) => ({ path: pathOf(place), problem });
  while (stack.length) {
    const { value, depth, place } = stack.pop()!;
    if (++nodes > limits.maxNodes) return found(place, "size");
    if (typeof place?.key === "string" && !isStorableString(place.key)) return found(place, "character");
    if (typeof value === "string") {
      if (!isStorableString(value)) return found(place, "character");
    } else if (isContainer(value)) {
      if (depth >= limits.maxDepth) return found(place, "depth");
      const keys: (string | number)[] = Array.isArray(value) ? [...value.keys()] : Object.keys(value);
      if (nodes + stack.length + keys.length > limits.maxNodes) return found(place, "size");
      // Pushed last to first, so that the first problem in document order is the one reported.
      for (let i = keys.length - 1; i >= 0; i--) stack.push({ value: value[keys[i]!], depth: depth + 1, place: { key: keys[i]!, parent: place } });
    }
  }
  return undefined;
}

/** What a refusal says, for a 422: `invalid body: ... at documents[0].metadata.note`. */
export function describeUnstorable(u: Unstorable, where: string, limits: Limits = DEFAULT_LIMITS): string {
  const what = {
    character: "text contains a character that cannot be stored (U+0000 or an unpaired surrogate)",
    depth: `nested deeper than ${limits.maxDepth} levels`,
    size: `more than ${limits.maxNodes} values`,
  }[u.problem];
  return `invalid ${where}: ${what}${u.path ? ` at ${u.path}` : ""}`;
}

const storableString = (s: string) => (isStorableString(s) ? s : s.replace(UNSTORABLE_ALL, "\ufffd"));
const isPlain = (v: object) => Array.isArray(v) || Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null;

/**
 * `value` with every NUL and lone surrogate (in strings and keys) replaced by U+FFFD. Unchanged
 * parts are returned as they are (the same objects), so a value that needed nothing is returned
 * itself. Only arrays and plain objects are entered; anything else is kept, as is a cycle.
 */
export function toStorable<T>(value: T): T {
  if (typeof value === "string") return storableString(value) as T;
  if (!isContainer(value) || !isPlain(value)) return value;
  type Frame = { source: object; keys: (string | number)[]; out: unknown[]; next: number; changed: boolean };
  const enter = (source: object): Frame => ({ source, keys: Array.isArray(source) ? [...source.keys()] : Object.keys(source), out: [], next: 0, changed: false });
  const open = new Set<object>([value]);
  const stack = [enter(value)];
  let done: unknown;
  while (stack.length) {
    const frame = stack.at(-1)!;
    if (frame.next < frame.keys.length) {
      const child = (frame.source as Record<string | number, unknown>)[frame.keys[frame.next]!];
      if (isContainer(child) && isPlain(child) && !open.has(child)) {
        open.add(child);
        stack.push(enter(child));
        continue;
      }
      const out = typeof child === "string" ? storableString(child) : child;
      frame.changed ||= out !== child;
      frame.out.push(out);
      frame.next++;
      continue;
    }
    stack.pop();
    open.delete(frame.source);
    const newKeys = frame.keys.map((k) => (typeof k === "string" ? storableString(k) : k));
    const changed = frame.changed || newKeys.some((k, i) => k !== frame.keys[i]);
    const result = !changed ? frame.source : Array.isArray(frame.source) ? frame.out : Object.fromEntries(newKeys.map((k, i) => [k, frame.out[i]]));
    const parent = stack.at(-1);
    if (!parent) done = result;
    else {
      parent.changed ||= result !== frame.source;
      parent.out.push(result);
      parent.next++;
    }
  }
  return done as T;
}
