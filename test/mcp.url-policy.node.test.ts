import { describe, expect, it } from "vitest";
import { blockedHost, checkMcpUrl, parseAllowedOrigins } from "../src/mcp/url-policy.ts";

const verdict = (url: string, allowed: string[] = []) => {
  const v = checkMcpUrl(url, allowed);
  return v.ok ? "ok" : v.reason;
};

describe("the MCP URL policy", () => {
  it("takes https URLs on public hosts, names and addresses", () => {
    for (const url of [
      "https://mcp.example.com/mcp",
      "https://example.com:8443/a/b?c=d",
      "https://8.8.8.8/mcp",
      "https://[2606:4700:4700::1111]/mcp",
      "https://[::ffff:8.8.8.8]/mcp",
      "https://[64:ff9b::808:808]/mcp",
      "https://[2002:808:808::1]/mcp",
      "https://172.32.0.1/",
      "https://100.128.0.1/",
      "https://xn--bcher-kva.example/",
    ])
      expect([url, verdict(url)]).toEqual([url, "ok"]);
  });

  it("refuses loopback, private, link-local, shared, multicast and reserved IPv4, in any spelling the URL parser reads", () => {
    for (const url of [
      "https://127.0.0.1/",
      "https://127.255.0.9/",
      "https://0.0.0.0/",
      "https://10.0.0.1/",
      "https://172.16.0.1/",
      "https://172.31.255.255/",
      "https://192.168.1.1/",
      "https://169.254.169.254/",
      "https://100.64.0.1/",
      "https://192.0.0.8/",
      "https://198.18.0.1/",
      "https://224.0.0.1/",
      "https://255.255.255.255/",
      "https://240.0.0.1/",
      // Decimal, hex, octal and short forms: the WHATWG parser turns them into dotted decimal first.
      "https://2130706433/",
      "https://0x7f000001/",
      "https://0177.0.0.1/",
      "https://127.1/",
      "https://10.1/",
    ])
      expect([url, verdict(url)]).toEqual([url, "the host is a private, loopback, link-local or reserved IPv4 address"]);
  });

  it("refuses loopback, unique-local, link-local, multicast and private-embedding IPv6", () => {
    const cases: Record<string, RegExp> = {
      "https://[::1]/": /unspecified, loopback/,
      "https://[::]/": /unspecified, loopback/,
      "https://[0:0:0:0:0:0:0:1]/": /unspecified, loopback/,
      "https://[::127.0.0.1]/": /IPv4-compatible/,
      "https://[::ffff:127.0.0.1]/": /IPv4-mapped private/,
      "https://[::ffff:a9fe:a9fe]/": /IPv4-mapped private/,
      "https://[fc00::1]/": /unique-local/,
      "https://[fdff:ffff::1]/": /unique-local/,
      "https://[fe80::1]/": /link-local/,
      "https://[febf::1]/": /link-local/,
      "https://[fec0::1]/": /site-local/,
      "https://[ff02::1]/": /multicast/,
      "https://[64:ff9b::7f00:1]/": /NAT64/,
      "https://[64:ff9b:1::1]/": /NAT64/,
      "https://[2002:a00:1::]/": /6to4/,
      "https://[2001:db8::1]/": /documentation/,
      "https://[2001::1]/": /Teredo/,
      "https://[100::1]/": /discard/,
    };
    for (const [url, reason] of Object.entries(cases)) expect([url, verdict(url)]).toEqual([url, expect.stringMatching(reason)]);
  });

  it("refuses local and intranet names", () => {
    for (const url of [
      "https://localhost/",
      "https://LOCALHOST./",
      "https://api.localhost/",
      "https://printer.local/",
      "https://metadata.google.internal/",
      "https://nas.home.arpa/",
      "https://box.lan/",
    ])
      expect([url, verdict(url)]).toEqual([url, "the host is a local host name"]);
    expect(verdict("https://intranet/")).toBe("the host is a single-label (intranet) host name");
  });

  it("refuses http, other schemes, credentials, fragments, what is not a URL, and the overlong", () => {
    expect(verdict("http://mcp.example.com/")).toMatch(/^https only/);
    expect(verdict("ws://mcp.example.com/")).toBe("only http(s) URLs");
    expect(verdict("file:///etc/passwd")).toBe("only http(s) URLs");
    expect(verdict("https://user:pw@mcp.example.com/")).toMatch(/credentials/);
    expect(verdict("https://mcp.example.com/#x")).toMatch(/fragment/);
    expect(verdict("mcp.example.com")).toBe("not a URL");
    expect(verdict(`https://mcp.example.com/${"a".repeat(2100)}`)).toMatch(/at most 2048/);
  });

  it("lets allow-listed origins through, http and loopback included, and only those exact origins", () => {
    const allowed = ["http://127.0.0.1:8788"];
    expect(verdict("http://127.0.0.1:8788/s/x/mcp", allowed)).toBe("ok");
    expect(verdict("http://127.0.0.1:8789/mcp", allowed)).toMatch(/^https only/);
    expect(verdict("https://127.0.0.1:8788/mcp", allowed)).toMatch(/IPv4/);
    expect(verdict("http://localhost:8788/mcp", allowed)).toMatch(/^https only/);
  });

  it("reads MCP_ALLOWED_ORIGINS: origins only, normalized", () => {
    expect(parseAllowedOrigins(" http://127.0.0.1:8788 , https://MCP.Example.com:443 ,")).toEqual(["http://127.0.0.1:8788", "https://mcp.example.com"]);
    expect(parseAllowedOrigins("")).toEqual([]);
    expect(parseAllowedOrigins("http://127.0.0.1:8788/mcp")).toMatch(/^not an origin/);
    expect(parseAllowedOrigins("127.0.0.1:8788")).toMatch(/^not an origin/);
    expect(parseAllowedOrigins("ftp://x.example")).toMatch(/^not an origin/);
  });

  it("judges hosts as URL.hostname spells them", () => {
    expect(blockedHost(new URL("https://[0:0::1]/").hostname)).toMatch(/loopback/);
    expect(blockedHost("[not:an:address::x]")).toBe("an IPv6 address that cannot be read");
    expect(blockedHost("mcp.example.com")).toBeUndefined();
  });
});
