import assert from "node:assert/strict";
import { IdlePolls } from "./idle_polls.ts";

Deno.test("an empty answer is given again until its table is written to", () => {
  const polls = new IdlePolls(10_000);
  assert.equal(polls.answer("ns/a", "it-1", 0), undefined, "never answered: ask DynamoDB Local");
  polls.answeredEmpty("ns/a", "it-2", polls.writesTo("ns/a"), 0);
  assert.equal(polls.answer("ns/a", "it-2", 100), "it-2");
  assert.equal(polls.answer("ns/a", "it-2", 200), "it-2", "as often as it is asked");
  polls.written(["ns/b"]);
  assert.equal(polls.answer("ns/a", "it-2", 300), "it-2", "another table's write changes nothing");
  polls.written(["ns/a"]);
  assert.equal(polls.answer("ns/a", "it-2", 400), undefined, "its table's write: ask again");
  assert.equal(polls.answer("ns/a", "it-2", 500), undefined, "and forgotten");
});

Deno.test("a write answered while the poll was out sends the next poll to DynamoDB Local", () => {
  const polls = new IdlePolls(10_000);
  const before = polls.writesTo("ns/a");
  polls.written(["ns/a"]); // answered after the poll was sent, maybe after it was read
  polls.answeredEmpty("ns/a", "it-2", before, 0);
  assert.equal(polls.answer("ns/a", "it-2", 1), undefined);
});

Deno.test("a write of unknown tables counts for every table; answers are refreshed", () => {
  const polls = new IdlePolls(1_000);
  polls.answeredEmpty("ns/a", "it-a", polls.writesTo("ns/a"), 0);
  polls.answeredEmpty("ns/b", "it-b", polls.writesTo("ns/b"), 0);
  polls.written([]);
  assert.equal(polls.answer("ns/a", "it-a", 1), undefined);
  assert.equal(polls.answer("ns/b", "it-b", 1), undefined);
  polls.answeredEmpty("ns/a", "it-c", polls.writesTo("ns/a"), 0);
  assert.equal(polls.answer("ns/a", "it-c", 999), "it-c");
  assert.equal(polls.answer("ns/a", "it-c", 1_000), undefined, "refreshMs old: ask again");
});

Deno.test("an iterator is remembered for its table only", () => {
  const polls = new IdlePolls(10_000);
  polls.answeredEmpty("key1/us-east-1/t", "it", 0, 0);
  assert.equal(polls.answer("key2/us-east-1/t", "it", 1), undefined, "another database");
  assert.equal(polls.answer("key1/us-east-1/t", "it", 1), "it");
});

Deno.test("only the newest iterators are remembered", () => {
  const polls = new IdlePolls(10_000, 2);
  for (const it of ["it-1", "it-2", "it-3"]) polls.answeredEmpty("ns/a", it, 0, 0);
  assert.equal(polls.answer("ns/a", "it-1", 1), undefined);
  assert.equal(polls.answer("ns/a", "it-3", 1), "it-3");
});

Deno.test("the counts are by table name in every database, and a watch wakes at a write", async () => {
  const polls = new IdlePolls();
  const before = polls.counts();
  assert.deepEqual({ ...before, instance: "" }, {
    instance: "",
    version: 0,
    tables: {},
    everywhere: 0,
  });
  // Differs already (another instance, or an older version): answered at once.
  assert.equal((await polls.watch({ instance: "other", version: 0 }, 60_000)).version, 0);
  const watching = polls.watch(before, 60_000);
  polls.written(["k1:us-east-1/t", "k2:us-east-2/t"]);
  polls.written([]);
  const after = await watching;
  assert.equal(after.instance, before.instance);
  assert.equal(after.version, 2, "woken by the first write, answered with the counts then");
  assert.deepEqual(polls.counts().tables, { t: 2 });
  assert.equal(polls.counts().everywhere, 1);
  assert.equal(polls.counts().version, 2);
});

Deno.test("a watch with nothing written answers after its timeout, unchanged", async () => {
  const polls = new IdlePolls();
  const seen = polls.counts();
  assert.deepEqual(await polls.watch(seen, 10), seen);
});

Deno.test("a write begun tells the poller's watch at once, and changes no idle answer", async () => {
  const polls = new IdlePolls();
  polls.answeredEmpty("k:us-east-1/t", "it-1", polls.writesTo("k:us-east-1/t"), 0);
  const watching = polls.watch(polls.counts(), 60_000);
  polls.began(["k:us-east-1/t"]);
  assert.deepEqual((await watching).tables, { t: 1 }, "woken before the write is answered");
  assert.equal(polls.writesTo("k:us-east-1/t"), 0);
  assert.equal(polls.answer("k:us-east-1/t", "it-1", 1), "it-1", "its record is not there yet");
  polls.written(["k:us-east-1/t"]);
  assert.equal(polls.counts().tables.t, 2);
  assert.equal(polls.answer("k:us-east-1/t", "it-1", 2), undefined, "answered: polled again");
});

Deno.test("a watch whose watcher went answers at once", async () => {
  const polls = new IdlePolls();
  const gone = new AbortController();
  const watching = polls.watch(polls.counts(), 60_000, gone.signal);
  gone.abort();
  assert.equal((await watching).version, 0);
});
