import assert from "node:assert/strict";
import type { WriteCounts } from "./idle_polls.ts";
import { IDLE_REFRESH_MS, StreamWatch } from "./stream_watch.ts";

const counts = (tables: Record<string, number>, everywhere = 0, instance = "i1"): WriteCounts => ({
  instance,
  version: Object.values(tables).reduce((a, b) => a + b, everywhere),
  tables,
  everywhere,
});

/**
 * A watch run against a proxy that gives `answers` in turn and then cannot be asked (the
 * watch is stopped then); returns the watch and what it asked with.
 */
async function watched(answers: WriteCounts[]) {
  const seen: (WriteCounts | undefined)[] = [];
  const watch = new StreamWatch({
    ask(last) {
      seen.push(last);
      const answer = answers[seen.length - 1];
      if (answer) return Promise.resolve(answer);
      watch.stop();
      return Promise.reject(new Error("connection refused"));
    },
    sleep: () => Promise.resolve(),
  });
  await watch.run();
  return { watch, seen };
}

/** The watch's view after one answer of the proxy. */
async function after(answer: WriteCounts): Promise<StreamWatch> {
  let asked = false;
  const watch = new StreamWatch({
    ask() {
      if (asked) {
        watch.stop();
        return new Promise(() => {}); // a long poll that never ends
      }
      asked = true;
      return Promise.resolve(answer);
    },
    sleep: () => Promise.resolve(),
  });
  watch.run();
  await new Promise((resolve) => setTimeout(resolve, 0));
  return watch;
}

Deno.test("a shard's poll is left out while its table had no write since its last empty poll", async () => {
  const watch = await after(counts({ t: 1 }));
  const mark = watch.mark("t")!;
  assert.equal(mark, "i1 1 0");
  assert.equal(watch.mayLeaveOut("t", undefined, 1), false, "no empty poll yet");
  assert.equal(watch.mayLeaveOut("t", { mark, sentAt: 0 }, IDLE_REFRESH_MS - 1), true);
  assert.equal(watch.mayLeaveOut("t", { mark, sentAt: 0 }, IDLE_REFRESH_MS), false, "refreshed");
  assert.equal(watch.mayLeaveOut("t", { mark: "i1 0 0", sentAt: 0 }, 1), false, "written since");
  assert.equal(watch.mark("u"), "i1 0 0", "a table never written");
});

Deno.test("before the proxy answers, and once it cannot be asked, every poll is sent", async () => {
  const waiting = new StreamWatch({
    ask: () => new Promise(() => {}),
    sleep: () => Promise.resolve(),
  });
  waiting.run();
  assert.equal(waiting.mark("t"), undefined);
  assert.equal(waiting.mayLeaveOut("t", { mark: "i1 0 0", sentAt: 0 }, 1), false);

  const first = counts({ t: 1 });
  const { watch, seen } = await watched([first, counts({ t: 1, u: 1 })]);
  assert.deepEqual(seen, [undefined, first, counts({ t: 1, u: 1 })], "asks with what it saw");
  assert.equal(watch.mark("t"), undefined, "the proxy went");
});

Deno.test("the mark changes with a write to the table, to every table, and with a new proxy", async () => {
  const marks = await Promise.all([
    counts({ t: 1 }),
    counts({ t: 1, u: 5 }),
    counts({ t: 2 }),
    counts({ t: 2 }, 1),
    counts({ t: 2 }, 1, "i2"),
  ].map(async (answer) => (await after(answer)).mark("t")));
  assert.deepEqual(marks, ["i1 1 0", "i1 1 0", "i1 2 0", "i1 2 1", "i2 2 1"]);
});

Deno.test("nextChange resolves at the proxy's next answer, and when it cannot be asked", async () => {
  const answers: ((counts: WriteCounts) => void)[] = [];
  const failures: ((error: Error) => void)[] = [];
  const watch = new StreamWatch({
    ask: () =>
      new Promise((resolve, reject) => {
        answers.push(resolve);
        failures.push(reject);
      }),
    sleep: () => new Promise(() => {}), // the retry after a failure never comes
  });
  watch.run();
  let changes = 0;
  const counted = () => watch.nextChange().then(() => changes++);
  const first = counted();
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(changes, 0, "nothing answered yet");
  answers[0](counts({ t: 1 }));
  await first;
  assert.equal(watch.mark("t"), "i1 1 0", "the view is current when it resolves");
  const second = counted();
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(changes, 1, "a new wait waits for the next answer");
  failures[1](new Error("connection refused"));
  await second;
  assert.equal(watch.mark("t"), undefined, "unknown: every poll is sent");
  const third = counted();
  watch.stop();
  await third;
  assert.equal(changes, 3);
});
