import assert from "node:assert/strict";
import { type Stalled, StallEpisodes, stallLine, watchStalls } from "./bench_stall_watch.ts";
import { connectAdminDb, connectDb } from "./stack_clients.ts";

const idleOnRead: Stalled = {
  pid: 4242,
  application: "dynamo-supabase-sync",
  state: "idle in transaction",
  wait: "Client/ClientRead",
  seconds: 61.4,
  since: "2026-12-05 14:20:54.1+13:45",
  query: "select sync.check_checksum_page($1, $2, $3)",
};

Deno.test("a stalled backend is named with its state, its wait and its statement", () => {
  assert.equal(
    stallLine(idleOnRead),
    "bench: stall watch: pid 4242 (dynamo-supabase-sync) idle in transaction for 61 s, " +
      "waiting on Client/ClientRead: select sync.check_checksum_page($1, $2, $3)",
  );
  assert.equal(
    stallLine({ ...idleOnRead, application: "", state: "active", wait: null, seconds: 5.2 }),
    "bench: stall watch: pid 4242 (no application name) active for 5 s: " +
      "select sync.check_checksum_page($1, $2, $3)",
  );
});

Deno.test("each episode is named once, however many times it is seen", () => {
  const episodes = new StallEpisodes();
  assert.deepEqual(episodes.fresh([idleOnRead]), [idleOnRead]);
  // The next second: the same backend, the same episode, longer.
  assert.deepEqual(episodes.fresh([{ ...idleOnRead, seconds: 62.4 }]), []);
  // The same backend in a new state (its next statement) is a new episode.
  const next = { ...idleOnRead, state: "active", since: "2026-12-05 14:21:55.0+13:45" };
  assert.deepEqual(episodes.fresh([{ ...idleOnRead, seconds: 63.4 }, next]), [next]);
  assert.equal(episodes.count, 2);
});

Deno.test("a transaction left idle is named once, by its pid, with its wait; a measurement not", async () => {
  const lines: string[] = [];
  const watch = watchStalls(connectDb(), (line) => lines.push(line), {
    everyMs: 100,
    overSeconds: 0.5,
  });
  const sql = connectDb();
  const admin = connectAdminDb();
  try {
    const held = await sql.reserve();
    try {
      const [{ pid }] = await held`select pg_backend_pid() as pid`;
      const [{ pid: measuring }] = await admin`select pg_backend_pid() as pid`;
      await held`begin`;
      await held`select 1 as stand_still`;
      // Idle in its transaction, waiting for the client's next statement, while a
      // measurement (the superuser's) runs as long.
      await admin`select pg_sleep(1.2) as a_measurement`;
      await held`commit`;
      const ours = lines.filter((line) => line.includes(`pid ${pid} `));
      assert.equal(ours.length, 1, lines.join("\n"));
      assert.match(
        ours[0],
        /idle in transaction for \d+ s, waiting on Client\/ClientRead: select 1 as stand_still/,
      );
      assert.deepEqual(
        lines.filter((line) => line.includes(`pid ${measuring} `) || /a_measurement/.test(line)),
        [],
      );
    } finally {
      held.release();
    }
  } finally {
    await sql.end();
    await admin.end();
    assert.ok((await watch.stop()) >= 1);
  }
});
