/**
 * The demo data set: the nine source tables with the volumes and shapes of the seed
 * report (docs/source-tables.md), deterministic from a seed value and
 * scalable. Items are made in DynamoDB JSON, ready for BatchWriteItem.
 *
 * At scale 1: 48,124 items over 35,817 distinct keys (28,936 actions; 13,804 visitor
 * observations of 2,247 visitors; 1,915 states of 1,165 extraction jobs; 1,734 traffic
 * sources; 1,728 segments; 5 leads; 2 dashboard items; no searches, no network state).
 *
 * @module
 */

import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import {
  ACTION_TYPES,
  hex,
  type Item,
  JOB_TYPES,
  M,
  N,
  PAGES,
  pick,
  PLACES,
  random,
  REFERRERS,
  S,
  scaled,
  session,
  START,
} from "./demo_shapes.ts";

export { random } from "./demo_shapes.ts";

/**
 * The report's volumes: items and distinct keys per source table at scale 1; `fixed`: the
 * report's own few, never more than at scale 1 ({@link tableScale}).
 */
export const REPORT_VOLUMES: Record<string, { items: number; keys: number; fixed?: true }> = {
  "firespring-backdoor-actions-dev": { items: 28_936, keys: 28_936 },
  "firespring-backdoor-visitors-dev": { items: 13_804, keys: 2_247 },
  "firespring-backdoor-extraction-jobs-dev": { items: 1_915, keys: 1_165 },
  "firespring-backdoor-traffic-sources-dev": { items: 1_734, keys: 1_734 },
  "firespring-backdoor-segments-dev": { items: 1_728, keys: 1_728 },
  "firespring-backdoor-searches-dev": { items: 0, keys: 0 },
  "firespring-backdoor-network-state-dev": { items: 0, keys: 0 },
  "Lead-sqiqbtbugvfabolqwdt4rz3dla-NONE": { items: 5, keys: 5, fixed: true },
  "toledo-consulting-dashboard-data": { items: 2, keys: 2, fixed: true },
};

/** The scale `table`'s items are made at: `scale`, but never past 1 for a `fixed` table. */
function tableScale(table: string, scale: number): number {
  return REPORT_VOLUMES[table].fixed ? Math.min(scale, 1) : scale;
}

/**
 * The distinct keys of the data set at `scale`, per source table: the rows a complete
 * copy of it leaves in each target table. As {@link demoItems} makes them: every table
 * scaled as REPORT_VOLUMES, rounded ({@link tableScale}).
 */
export function dataSetKeys(scale: number): Record<string, number> {
  const keys: Record<string, number> = {};
  for (const [table, volume] of Object.entries(REPORT_VOLUMES)) {
    keys[table] = scaled(volume.keys, tableScale(table, scale));
  }
  return keys;
}

/**
 * The data set's `--scale` and `--seed` as a command got them, checked before anything
 * is reset: a scale is a positive number (1: the report's volumes), a seed a whole number
 * from 0. Throws naming the flag, the value and what it must be.
 */
export function dataSetArgs(scaleText: string, seedText: string): { scale: number; seed: number } {
  const scale = Number(scaleText);
  if (scaleText.trim() === "" || !Number.isFinite(scale) || scale <= 0) {
    throw new Error(
      `--scale must be a positive number (1 is the report's volumes), not ${
        JSON.stringify(scaleText)
      }`,
    );
  }
  const seed = Number(seedText);
  if (seedText.trim() === "" || !Number.isSafeInteger(seed) || seed < 0) {
    throw new Error(`--seed must be a whole number from 0, not ${JSON.stringify(seedText)}`);
  }
  return { scale, seed };
}

/** Every item of the demo data set, per source table. */
export function demoItems(seed: number, scale: number): Record<string, Item[]> {
  const rnd = random(seed);
  const visitors = scaled(2_247, scale);
  const visitorIds = Array.from({ length: visitors }, () => `sess-${hex(rnd, 16)}`);

  const actions: Item[] = Array.from({ length: scaled(28_936, scale) }, (_, i) => {
    const t = START + Math.floor(rnd() * 40 * 86400);
    const item: Item = {
      action_id: S(`act-${hex(rnd, 20)}`),
      session_id: S(pick(rnd, visitorIds)),
      timestamp: N(t),
      url: S(`https://toledoconsulting.example${pick(rnd, PAGES)}`),
      title: S(pick(rnd, ["Home", "Services", "About us", "Contact", "Blog", "Pricing"])),
      data: M({
        x: N(Math.floor(rnd() * 1920)),
        y: N(Math.floor(rnd() * 1080)),
        element: S(pick(rnd, ["a", "button", "form", "video"])),
      }),
      created_at: S(new Date(t * 1000).toISOString()),
    };
    // Older items carry `type` instead of `action_type`.
    item[i % 10 === 0 ? "type" : "action_type"] = S(pick(rnd, ACTION_TYPES));
    return item;
  });

  // Observations: each visitor at least once, the rest spread at random.
  const observations = scaled(13_804, scale);
  const perVisitor = visitorIds.map(() => 1);
  for (let i = visitors; i < observations; i++) perVisitor[Math.floor(rnd() * visitors)]++;
  const visitorItems: Item[] = [];
  visitorIds.forEach((id, v) => {
    let t = START + Math.floor(rnd() * 30 * 86400);
    const sessions: AttributeValue[] = [];
    for (let k = 0; k < perVisitor[v]; k++) {
      t += 60 + Math.floor(rnd() * 86400);
      sessions.push(session(rnd, `${id}-${k}`, t));
      const [geo] = pick(rnd, PLACES);
      visitorItems.push({
        session_id: S(id),
        timestamp: N(t),
        pages_viewed: N(k + 1 + Math.floor(rnd() * 5)),
        ip_address: S(`203.0.113.${v % 250}`),
        country: S(geo.split(",").at(-1)!.trim() || "Unknown"),
        city: S(geo.split(",")[0]),
        referrer: S(pick(rnd, REFERRERS)[1]),
        created_at: S(new Date(t * 1000).toISOString()),
        // The visitor's recent sessions, newest last (at most eight, as Firespring keeps).
        sessions: { L: sessions.slice(-8) },
      });
    }
  });

  // Extraction jobs: pending -> running -> complete | failed, a state per item.
  const jobs = scaled(1_165, scale);
  const jobStates = scaled(1_915, scale);
  const statesPerJob = Array.from({ length: jobs }, () => 1);
  for (let i = jobs; i < jobStates; i++) {
    const j = Math.floor(rnd() * jobs);
    if (statesPerJob[j] < 3) statesPerJob[j]++;
    else i--;
  }
  const jobItems: Item[] = [];
  for (let j = 0; j < jobs; j++) {
    const id = `job-${hex(rnd, 12)}`;
    const type = pick(rnd, JOB_TYPES);
    let ms = (START + Math.floor(rnd() * 40 * 86400)) * 1000;
    const started = new Date(ms).toISOString();
    const final = rnd() < 0.9 ? "complete" : "failed";
    const states = statesPerJob[j] === 1
      ? [final]
      : statesPerJob[j] === 2
      ? ["running", final]
      : ["pending", "running", final];
    for (const status of states) {
      ms += 1000 + Math.floor(rnd() * 600_000);
      const item: Item = {
        job_id: S(id),
        updated_at: N(ms),
        status: S(status),
        job_type: S(type),
        started_at: S(started),
        params: M({ since: S("2026-01-01"), batch: N(500), source: S(type) }),
      };
      if (status === "complete" || status === "failed") {
        item.completed_at = S(new Date(ms).toISOString());
        item.records_extracted = N(Math.floor(rnd() * 50_000));
      }
      if (status === "failed") {
        item.error_message = S("DynamoDB ProvisionedThroughputExceededException");
      }
      jobItems.push(item);
    }
  }

  const traffic: Item[] = Array.from({ length: scaled(1_734, scale) }, () => {
    const [type, domain] = pick(rnd, REFERRERS);
    return {
      source_id: S(`src-${hex(rnd, 14)}`),
      name: S(domain || "(direct)"),
      source_type: S(type),
      visitors: N(Math.floor(rnd() * 10_000)),
      period: S(`2026-${String(1 + Math.floor(rnd() * 2)).padStart(2, "0")}`),
      data: M({
        bounce_rate: N((rnd() * 100).toFixed(2)),
        pages_per_visit: N((1 + rnd() * 6).toFixed(1)),
      }),
    };
  });

  const segments: Item[] = Array.from({ length: scaled(1_728, scale) }, (_, i) => ({
    segment_id: S(`seg-${hex(rnd, 14)}`),
    name: S(`${pick(rnd, ["Returning", "New", "High intent", "Mobile", "Ohio"])} visitors ${i}`),
    // Some counters exceed what a double holds: every digit must arrive.
    value: N(
      i % 97 === 0
        ? `${1 + Math.floor(rnd() * 9)}${"0123456789".repeat(3)}7`
        : Math.floor(rnd() * 5_000),
    ),
    raw: M({
      rules: {
        L: [M({ field: S("country_code"), op: S("="), value: S(pick(rnd, PLACES)[1] || "us") })],
      },
      tags: { SS: ["demo", pick(rnd, ["a", "b", "c"])] },
    }),
  }));

  const leadNames = [
    "Ada Lovelace",
    "Grace Hopper",
    "Katherine Johnson",
    "Alan Turing",
    "Edsger Dijkstra",
  ];
  const leads: Item[] = leadNames.slice(
    0,
    scaled(5, tableScale("Lead-sqiqbtbugvfabolqwdt4rz3dla-NONE", scale)),
  ).map((name, i) => {
    const at = new Date((START + i * 86400) * 1000).toISOString();
    return {
      id: S(`${hex(rnd, 8)}-${hex(rnd, 4)}-4${hex(rnd, 3)}-8${hex(rnd, 3)}-${hex(rnd, 12)}`),
      __typename: S("Lead"),
      name: S(name),
      email: S(`${name.split(" ")[0].toLowerCase()}@example.com`),
      phone: S(`+1-419-555-01${String(i).padStart(2, "0")}`),
      company: S(pick(rnd, ["Toledo Glass", "Maumee Logistics", "Lake Erie Analytics"])),
      message: S("We would like to talk about moving our analytics to Postgres."),
      source: S(pick(rnd, ["website", "referral", "event"])),
      status: S(pick(rnd, ["new", "contacted", "qualified"])),
      createdAt: S(at),
      updatedAt: S(at),
      _version: N(1),
      _lastChangedAt: N(Date.parse(at)),
      _deleted: { BOOL: false },
    };
  });

  const dashboard: Item[] = [
    {
      pk: S("dashboard#toledo"),
      sk: S("metrics#2026-01"),
      metrics: M({ visitors: N(2247), leads: N(5), conversion: N("0.0022") }),
      updated_at: S("2026-02-01T00:00:00Z"),
    },
    {
      pk: S("dashboard#toledo"),
      sk: S("metrics#2026-02"),
      metrics: M({ visitors: N(1893), leads: N(3), conversion: N("0.0016") }),
      updated_at: S("2026-02-06T00:00:00Z"),
    },
  ].slice(0, scaled(2, tableScale("toledo-consulting-dashboard-data", scale)));

  return {
    "firespring-backdoor-actions-dev": actions,
    "firespring-backdoor-visitors-dev": visitorItems,
    "firespring-backdoor-extraction-jobs-dev": jobItems,
    "firespring-backdoor-traffic-sources-dev": traffic,
    "firespring-backdoor-segments-dev": segments,
    "firespring-backdoor-searches-dev": [],
    "firespring-backdoor-network-state-dev": [],
    "Lead-sqiqbtbugvfabolqwdt4rz3dla-NONE": leads,
    "toledo-consulting-dashboard-data": dashboard,
  };
}
