// The demo user `npm run dev` makes so a newcomer can chat at once: created through the running
// Worker's admin API with a few documents for hybrid_search to cite; its key is kept in .data/.
// A document's `metadata.questions` are what the web chat suggests asking on an empty thread.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { callApi } from "./dev-server.ts";

export const DEMO_FILE = new URL("../../.data/demo.json", import.meta.url).pathname;
const DEMO_EMAIL = "demo@threadline.example";

export const DEMO_DOCUMENTS = [
  {
    title: "Office espresso machine: daily care",
    source: "facilities/espresso.md",
    metadata: { questions: ["How many grams of coffee for a double shot?", "When is the espresso machine descaled?"] },
    text:
      "The espresso machine on the third floor is a dual-boiler model. Turn it on at the rocker switch and wait about twenty minutes for the group head to heat through before pulling a shot. " +
      "Use 18 grams of finely ground coffee for a double shot and aim for 36 grams of espresso in 25 to 30 seconds. If the shot runs faster, grind finer; if it runs slower, grind coarser. " +
      "Purge the steam wand before and after frothing milk, and wipe it with the blue cloth. At the end of the day, backflush the group head with the blind basket and clean water. " +
      "Descaling is done by facilities on the first Monday of each month. If the pressure gauge stays below 8 bar, report it in the #facilities channel.",
  },
  {
    title: "Travel and expense policy",
    source: "handbook/expenses.md",
    metadata: { questions: ["What is the daily meal allowance in Europe?"] },
    text:
      "Book flights and hotels through the company travel portal at least fourteen days ahead where possible. Economy class is the default for flights under six hours; premium economy is allowed for longer flights. " +
      "The daily meal allowance is 60 euros within Europe and 75 US dollars in North America. Keep itemised receipts for every expense over 25 euros and submit them within thirty days of your trip. " +
      "Taxis are fine late at night or when public transport would take more than twice as long. Your manager approves expense reports; reports above 2,000 euros also need finance approval.",
  },
  {
    title: "Incident response runbook",
    source: "engineering/incidents.md",
    metadata: { questions: ["What do I do when an alert pages me?"] },
    text:
      "When an alert pages you, acknowledge it within five minutes and open an incident channel named after the date and the affected service. " +
      "Declare a severity: SEV1 means customers cannot use the product, SEV2 means a major feature is degraded, SEV3 is a minor issue with a workaround. " +
      "For SEV1 and SEV2 incidents, name an incident commander and post status updates every thirty minutes on the status page. " +
      "Prefer rolling back the last deploy over debugging in production. After the incident, write a blameless postmortem within five working days that lists the timeline, the root cause and the follow-up actions.",
  },
  {
    title: "Onboarding checklist for new engineers",
    source: "handbook/onboarding.md",
    metadata: { questions: ["What should I do in my first week?"] },
    text:
      "In your first week, set up your laptop with the bootstrap script, request access to the code repositories and join the on-call shadow rotation. " +
      "Pair with your onboarding buddy on a small bug fix and ship it to production by Friday. " +
      "In your second week, read the architecture overview, attend the weekly design review and pick a starter project from the onboarding board. " +
      "By the end of your first month you should have joined the on-call rotation as a secondary and presented your starter project at the engineering demo.",
  },
];

type Stored = { email: string; userId: string; apiKey: string };

function readStored(): Stored | undefined {
  try {
    return JSON.parse(readFileSync(DEMO_FILE, "utf8")) as Stored;
  } catch {
    return undefined;
  }
}

/**
 * The demo user's key: the stored one while it still works; otherwise a new user with the demo
 * documents. A demo user whose key was lost (another database, a deleted file) is left alone and a
 * new demo address is used.
 */
export async function ensureDemoUser(base: string, adminToken: string): Promise<Stored & { created: boolean }> {
  const stored = readStored();
  if (stored && (await callApi(base, stored.apiKey, "GET", "/api/v1/users/me")).status === 200) return { ...stored, created: false };
  for (let n = 1; n <= 20; n++) {
    const email = n === 1 ? DEMO_EMAIL : DEMO_EMAIL.replace("@", `+${n}@`);
    const made = await callApi(base, adminToken, "POST", "/api/v1/users", { email, name: "Demo user" });
    if (made.status === 409) continue;
    if (made.status !== 201) throw new Error(`creating the demo user failed: ${made.status} ${JSON.stringify(made.json)}`);
    const demo: Stored = { email, userId: made.json.user.id, apiKey: made.json.apiKey };
    const docs = await callApi(base, demo.apiKey, "POST", "/api/v1/documents", { documents: DEMO_DOCUMENTS });
    if (docs.status !== 201) throw new Error(`adding the demo documents failed: ${docs.status} ${JSON.stringify(docs.json)}`);
    await callApi(base, demo.apiKey, "POST", "/api/v1/threads", { title: "Welcome to Threadline" });
    mkdirSync(dirname(DEMO_FILE), { recursive: true });
    writeFileSync(DEMO_FILE, JSON.stringify(demo, null, 2));
    chmodSync(DEMO_FILE, 0o600);
    return { ...demo, created: true };
  }
  throw new Error("no free demo email address");
}
