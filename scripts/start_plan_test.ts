import assert from "node:assert/strict";
import { TABLES } from "../functions-shared/table_registry.ts";
import { LIVE_TABLES } from "./live_changes.ts";
import {
  atMost,
  liveGroups,
  loadOrder,
  segmentsFor,
  settleLater,
  validationPlaces,
} from "./start_plan.ts";

Deno.test("the visitors load first, then the actions, then the small tables", () => {
  const order = loadOrder(TABLES).map((t) => t.targetTable);
  assert.deepEqual(order.slice(0, 2), ["firespring_visitors", "firespring_actions"]);
  assert.equal(order.length, 9);
  assert.deepEqual([...order].sort(), TABLES.map((t) => t.targetTable).sort());
});

Deno.test("small tables get one segment, large ones four", () => {
  assert.equal(segmentsFor(0), 1);
  assert.equal(segmentsFor(1_915), 1);
  assert.equal(segmentsFor(13_804), 4);
  assert.equal(segmentsFor(28_936), 4);
});

Deno.test("work given to atMost(1) runs one at a time, in order, past a failure", async () => {
  const oneAtATime = atMost(1);
  const log: string[] = [];
  let running = 0;
  const job = (name: string, fail = false) => async () => {
    running++;
    assert.equal(running, 1, `${name} ran beside another`);
    log.push(`${name} begins`);
    await new Promise((resolve) => setTimeout(resolve, 5));
    log.push(`${name} ends`);
    running--;
    if (fail) throw new Error(`${name} failed`);
    return name;
  };
  const results = await Promise.allSettled([
    oneAtATime(job("a")),
    oneAtATime(job("b", true)),
    oneAtATime(job("c")),
  ]);
  assert.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
  assert.deepEqual(log, ["a begins", "a ends", "b begins", "b ends", "c begins", "c ends"]);
});

Deno.test("atMost(2) runs two at a time, starting each in order as a place frees, past a failure", async () => {
  const twoAtATime = atMost(2);
  const log: string[] = [];
  let running = 0;
  let most = 0;
  const ends = new Map<string, () => void>();
  const job = (name: string, fail = false) => async () => {
    running++;
    most = Math.max(most, running);
    log.push(`${name} begins`);
    await new Promise<void>((resolve) => ends.set(name, resolve));
    running--;
    if (fail) throw new Error(`${name} failed`);
    return name;
  };
  const until = async (name: string) => {
    while (!ends.has(name)) await new Promise((resolve) => setTimeout(resolve, 1));
  };
  const results = Promise.allSettled(
    [job("a", true), job("b"), job("c"), job("d")].map((work) => twoAtATime(work)),
  );
  await until("b");
  assert.deepEqual(log, ["a begins", "b begins"]);
  ends.get("b")!();
  await until("c");
  ends.get("a")!(); // its failure frees its place too
  await until("d");
  assert.deepEqual(log, ["a begins", "b begins", "c begins", "d begins"]);
  ends.get("c")!();
  ends.get("d")!();
  assert.deepEqual((await results).map((r) => r.status), [
    "rejected",
    "fulfilled",
    "fulfilled",
    "fulfilled",
  ]);
  assert.equal(most, 2);
  assert.throws(() => atMost(0), /atMost takes 1 or more, not 0/);
});

Deno.test("a promise settled later keeps its first settling", async () => {
  const ok = settleLater();
  ok.resolve();
  ok.reject(new Error("too late"));
  await ok.promise;
  const failed = settleLater();
  failed.reject(new Error("the load of firespring_actions failed"));
  failed.resolve();
  await assert.rejects(failed.promise, /the load of firespring_actions failed/);
});

Deno.test("the live phase goes in two parts: the big tables', then the small tables'", () => {
  const groups = liveGroups(LIVE_TABLES).map((g) => [...g].sort());
  assert.deepEqual(groups, [
    ["firespring_actions", "firespring_visitors"],
    ["firespring_traffic_sources", "mmp_toledo_leads", "toledo_dashboard"],
  ]);
  assert.deepEqual(liveGroups(new Set(["toledo_dashboard"])).map((g) => [...g]), [[
    "toledo_dashboard",
  ]]);
});

Deno.test("the visitors' validation has a place of its own; the other tables share the rest", async () => {
  const placeOf = validationPlaces(TABLES, 2);
  const log: string[] = [];
  const ends = new Map<string, () => void>();
  const job = (name: string) => () =>
    new Promise<void>((resolve) => {
      log.push(`${name} begins`);
      ends.set(name, resolve);
    });
  const actions = placeOf("firespring_actions")(job("actions"));
  const traffic = placeOf("firespring_traffic_sources")(job("traffic"));
  const visitors = placeOf("firespring_visitors")(job("visitors"));
  await new Promise((resolve) => setTimeout(resolve, 5));
  // The visitors start beside the actions; the admin's table waits for the shared place.
  assert.deepEqual(log, ["actions begins", "visitors begins"]);
  ends.get("actions")!();
  await actions;
  await new Promise((resolve) => setTimeout(resolve, 5));
  assert.deepEqual(log, ["actions begins", "visitors begins", "traffic begins"]);
  ends.get("traffic")!();
  ends.get("visitors")!();
  await Promise.all([traffic, visitors]);

  // With one place, every table shares it.
  const one = validationPlaces(TABLES, 1);
  assert.equal(one("firespring_visitors"), one("firespring_actions"));
});
