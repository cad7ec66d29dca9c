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

Deno.test("an attempt cut off by the deadline does not hide the failures before it", async () => {
  // Answers 500 at once twice, then takes longer than the invocation has left.
  let calls = 0;
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    await req.body?.cancel();
    if (++calls <= 2) return new Response('{"error":"boom"}', { status: 500 });
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    return new Response("late", { status: 200 });
  });
  try {
    const outcome = await deliver(
      `http://127.0.0.1:${server.addr.port}/`,
      SECRET,
      [record("7"), record("8")],
      Date.now() + 1_000,
      () => {},
    );
    assert.equal(outcome, "refused", "the body failed every time it was answered");
  } finally {
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
