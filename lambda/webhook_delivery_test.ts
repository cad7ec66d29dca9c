import assert from "node:assert/strict";
import process from "node:process";
import { errorLines, fakeWebhook, record, SECRET } from "./forwarder_fakes.ts";
import { deliver } from "./webhook_delivery.ts";

Deno.test("a secret read again after a 401 gives way to the invocation's deadline", async () => {
  const webhook = fakeWebhook([]);
  let release = () => {};
  const slowSecret = () =>
    new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve(SECRET), 5_000);
      release = () => {
        clearTimeout(timer);
        resolve(SECRET);
      };
    });
  try {
    const outcome = await deliver(
      process.env.WEBHOOK_URL!,
      slowSecret,
      [record("1")],
      Date.now() + 200,
      () => {},
    );
    assert.equal(outcome, "later");
    assert.equal(webhook.received.length, 0, "nothing sent past the deadline");
  } finally {
    release();
    await webhook.close();
  }
});

// The deadlines below are seconds where the answers take milliseconds: the unit tests run
// beside the whole suite on two cores, where a first answer once took over a second, and
// a delivery whose deadline came before any answer ends "later", whatever it tests.

Deno.test("an attempt cut off by the deadline does not hide the failures before it", async () => {
  // Answers 500 at once twice, then not before the invocation's deadline (held until the
  // test ends).
  let calls = 0;
  let release = () => {};
  const held = new Promise<void>((resolve) => release = resolve);
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    await req.body?.cancel();
    if (++calls <= 2) return new Response('{"error":"boom"}', { status: 500 });
    await held;
    return new Response("late", { status: 200 });
  });
  try {
    const outcome = await deliver(
      `http://127.0.0.1:${server.addr.port}/`,
      SECRET,
      [record("7"), record("8")],
      // Room for the two answers and their backoffs (0.1–0.6 s) on a starved machine, so
      // that a third attempt is made and cut off.
      Date.now() + 5_000,
      () => {},
    );
    assert.equal(outcome, "refused", "the body failed every time it was answered");
    assert.equal(calls, 3, "the third attempt was cut off by the deadline");
  } finally {
    release();
    await server.shutdown();
  }
});

Deno.test("a delivery's failure never prints the URL it was sent to", async () => {
  const { lines, result } = await errorLines(() =>
    deliver(
      "https://user:SEKRET456@127.0.0.1:1/hook",
      SECRET,
      [record("3")],
      Date.now() + 300,
      () => {},
    )
  );
  assert.equal(result, "later");
  assert.ok(lines.length > 0);
  assert.ok(lines.every((line) => !/SEKRET/.test(line)), lines.join("\n"));
});

Deno.test("a secret that fails to be read again does not hide the webhook's failures before it", async () => {
  // The first attempt is answered 500; the secret's read for the next one fails (Secrets
  // Manager down while its cache ran out): that says nothing of the body, which the
  // webhook failed on every time it was answered, so it is bisected as before.
  const webhook = fakeWebhook([500, 500, 500, 500, 500, 500]);
  let reads = 0;
  const secret = () =>
    ++reads === 1 ? Promise.resolve(SECRET) : Promise.reject(new Error("Secrets Manager down"));
  try {
    const { lines, result } = await errorLines(() =>
      deliver(
        process.env.WEBHOOK_URL!,
        secret,
        [record("7"), record("8")],
        Date.now() + 3_000,
        () => {},
      )
    );
    assert.equal(result, "refused");
    assert.ok(
      lines.includes('records of t from 7, key [id="xxxxxxxxxx"] not sent: Secrets Manager down'),
      lines.join("\n"),
    );
    assert.equal(webhook.received.length, 1, "one attempt answered, none sent unsigned");
  } finally {
    await webhook.close();
  }
});

Deno.test("a delivery's failures go to its logError, its success to its log", async () => {
  const webhook = fakeWebhook([400, 200]);
  try {
    const logged: string[] = [];
    const failed: string[] = [];
    const { lines } = await errorLines(async () => {
      const url = process.env.WEBHOOK_URL!;
      const push = (to: string[]) => (line: string) => void to.push(line);
      assert.equal(
        await deliver(url, SECRET, [record("1")], Date.now() + 30_000, push(logged), push(failed)),
        "refused",
      );
      assert.equal(
        await deliver(url, SECRET, [record("2")], Date.now() + 30_000, push(logged), push(failed)),
        "delivered",
      );
    });
    assert.deepEqual(lines, [], "nothing of it on the error log itself");
    assert.equal(failed.length, 1);
    assert.match(failed[0], /^webhook answered 400 for records of t from 1, key /);
    assert.equal(logged.length, 1);
    assert.match(logged[0], /^delivered 1 records of /);
  } finally {
    await webhook.close();
  }
});

/**
 * One record delivered within `withinMs` to a server that gives every request `answer`:
 * the outcome, and the failure lines logged.
 */
async function deliverTo(answer: () => Response, withinMs: number) {
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, answer);
  try {
    const failed: string[] = [];
    const outcome = await deliver(
      `http://127.0.0.1:${server.addr.port}/`,
      SECRET,
      [record("1")],
      Date.now() + withinMs,
      () => {},
      (line) => void failed.push(line),
    );
    return { outcome, failed };
  } finally {
    await server.shutdown();
  }
}

Deno.test("a long answer that is not the webhook's is logged cut, with its length", async () => {
  // WEBHOOK_URL pointing at another server: its whole page, on every attempt, would be.
  const page = "<html>" + "x".repeat(10_000) + "</html>";
  const { outcome, failed } = await deliverTo(() => new Response(page, { status: 404 }), 30_000);
  assert.equal(outcome, "later");
  assert.equal(failed.length, 1);
  assert.match(
    failed[0],
    /^webhook answered 404 for records of t from 1, key .*: <html>x+\.\.\. \(10013 characters\)$/,
  );
  assert.ok(failed[0].length < 700, `${failed[0].length} characters logged`);
});

Deno.test("a failure the Supabase gateway names is logged with its sb-error-code", async () => {
  const { failed } = await deliverTo(
    () =>
      new Response('{"code":"WORKER_LIMIT"}', {
        status: 546,
        headers: { "sb-error-code": "WORKER_RESOURCE_LIMIT" },
      }),
    300,
  );
  assert.match(
    failed[0],
    /^webhook answered 546 \(sb-error-code WORKER_RESOURCE_LIMIT\) for records of t from 1, key .*: \{"code":"WORKER_LIMIT"\}$/,
  );
});
