/** The verdict on an MCP server URL: the parsed URL, or why it is refused. */
export type UrlVerdict = { ok: true; url: URL } | { ok: false; reason: string };

export const MAX_MCP_URL_LENGTH = 2048;

// [network, prefix length]: this host, private (RFC 1918), shared (CGNAT), loopback, link-local (cloud
// metadata), IETF protocol assignments, documentation, 6to4 relay, benchmarking, multicast, reserved, broadcast.
const BLOCKED_V4: readonly [string, number][] = [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.88.99.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
];
const v4Number = (dotted: string) => dotted.split(".").reduce((n, octet) => n * 256 + Number(octet), 0);
const BLOCKED_V4_RANGES = BLOCKED_V4.map(([net, bits]) => ({ start: v4Number(net), size: 2 ** (32 - bits) }));
const isBlockedV4 = (n: number) => BLOCKED_V4_RANGES.some((r) => n >= r.start && n < r.start + r.size);

/** The 8 groups of an IPv6 address as the URL parser serializes it (hex groups, at most one `::`). */
function v6Groups(addr: string): number[] | undefined {
  const [head, tail, extra] = addr.split("::");
  if (extra !== undefined) return undefined;
  const parse = (s: string | undefined) => (s ? s.split(":").map((g) => parseInt(g, 16)) : []);
  const h = parse(head);
  const t = parse(tail);
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill(0), ...t];
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}

const v4Of = (hi: number, lo: number) => hi * 65536 + lo;

/** Why an IPv6 address is not a public unicast one (undefined: it is). IPv4 embedded in it is judged as IPv4. */
function blockedV6(groups: number[]): string | undefined {
  const [a, b] = groups as [number, number];
  const zeros = (from: number, to: number) => groups.slice(from, to).every((g) => g === 0);
  if (zeros(0, 6)) return "an unspecified, loopback or IPv4-compatible address";
  if (zeros(0, 5) && groups[5] === 0xffff) return isBlockedV4(v4Of(groups[6]!, groups[7]!)) ? "an IPv4-mapped private address" : undefined;
  if (a === 0x64 && b === 0xff9b) return zeros(2, 6) && !isBlockedV4(v4Of(groups[6]!, groups[7]!)) ? undefined : "a NAT64 address of a private network";
  if (a === 0x2002) return isBlockedV4(v4Of(b, groups[2]!)) ? "a 6to4 address of a private network" : undefined;
  if ((a & 0xfe00) === 0xfc00) return "a unique-local address";
  if ((a & 0xffc0) === 0xfe80 || (a & 0xffc0) === 0xfec0) return "a link-local or site-local address";
  if ((a & 0xff00) === 0xff00) return "a multicast address";
  if (a === 0x100 && zeros(1, 4)) return "a discard-only address";
  if (a === 0x2001 && (b === 0 || b === 0xdb8)) return "a Teredo or documentation address";
  return undefined;
}

const LOCAL_SUFFIXES = [".localhost", ".local", ".internal", ".home.arpa", ".lan", ".intranet"];

/** Why a host must not be reached (undefined: it may). `host` is URL.hostname, already canonical (IPv4 numbers in dotted decimal, IPv6 bracketed). */
export function blockedHost(host: string): string | undefined {
  const name = host.toLowerCase().replace(/\.+$/, "");
  if (name.startsWith("[")) {
    const groups = v6Groups(name.slice(1, -1));
    return groups ? blockedV6(groups) : "an IPv6 address that cannot be read";
  }
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) return isBlockedV4(v4Number(name)) ? "a private, loopback, link-local or reserved IPv4 address" : undefined;
  if (name === "localhost" || LOCAL_SUFFIXES.some((s) => name.endsWith(s))) return "a local host name";
  // One label resolves through the resolver's search domains: an intranet name.
  if (!name.includes(".")) return "a single-label (intranet) host name";
  return undefined;
}

/**
 * May the service connect to this MCP server URL? An origin on the allow-list (MCP_ALLOWED_ORIGINS:
 * local servers, tests) may; otherwise only https, without credentials in the URL, to a host that is
 * not this machine or a private network (see blockedHost). Names are judged as written: Workers
 * cannot resolve them first, and a deployed Worker's fetch does not reach private networks anyway.
 */
export function checkMcpUrl(raw: string, allowedOrigins: readonly string[]): UrlVerdict {
  if (raw.length > MAX_MCP_URL_LENGTH) return { ok: false, reason: `a URL is at most ${MAX_MCP_URL_LENGTH} characters` };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: "not a URL" };
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return { ok: false, reason: "only http(s) URLs" };
  if (url.username || url.password) return { ok: false, reason: "credentials do not belong in the URL: send a token" };
  if (url.hash) return { ok: false, reason: "a URL with a #fragment" };
  if (allowedOrigins.includes(url.origin)) return { ok: true, url };
  if (url.protocol !== "https:") return { ok: false, reason: "https only (http just for origins in MCP_ALLOWED_ORIGINS)" };
  const blocked = blockedHost(url.hostname);
  return blocked ? { ok: false, reason: `the host is ${blocked}` } : { ok: true, url };
}

/** MCP_ALLOWED_ORIGINS: comma-separated origins (`http://127.0.0.1:8788`), each normalized; anything with a path is refused. */
export function parseAllowedOrigins(raw: string): string[] | string {
  const origins: string[] = [];
  for (const item of raw
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    let url: URL;
    try {
      url = new URL(item);
    } catch {
      return `not an origin: ${item}`;
    }
    if (!/^https?:$/.test(url.protocol) || url.pathname !== "/" || url.search || url.hash || url.username) return `not an origin (scheme://host[:port] only): ${item}`;
    origins.push(url.origin);
  }
  return origins;
}
