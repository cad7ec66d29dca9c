import assert from "node:assert/strict";
import { answerHeaders, releasingBody, small } from "./gateway_bodies.ts";

Deno.test("a body passed on tells its end once, read to the end or cancelled", async () => {
  let ends = 0;
  const read = releasingBody(new Blob(["abc"]).stream(), () => ends++);
  assert.equal(await new Response(read).text(), "abc");
  assert.equal(ends, 1);
  const cancelled = releasingBody(new Blob(["abc"]).stream(), () => ends++);
  await cancelled.cancel("gone");
  await cancelled.cancel("again").catch(() => {});
  assert.equal(ends, 2);
});

Deno.test("a body that fails tells its end, and the failure reaches the reader", async () => {
  let ends = 0;
  const failing = new ReadableStream<Uint8Array>({
    pull() {
      throw new Error("connection reset");
    },
  });
  const read = releasingBody(failing, () => ends++);
  await assert.rejects(new Response(read).text(), /connection reset/);
  assert.equal(ends, 1);
});

Deno.test("only a declared length of at most 1 MiB is passed on whole", () => {
  assert.equal(small(new Headers({ "content-length": "7000" })), true);
  assert.equal(small(new Headers({ "content-length": String(1024 * 1024) })), true);
  assert.equal(small(new Headers({ "content-length": String(1024 * 1024 + 1) })), false);
  assert.equal(small(new Headers()), false);
});

Deno.test("an HTML answer to a GET reaches the caller as plain text, as hosted without a custom domain", () => {
  const html = new Headers({ "content-type": "text/html; charset=utf-8", "x-kept": "1" });
  const got = answerHeaders("GET", html);
  assert.equal(got.get("content-type"), "text/plain; charset=utf-8");
  assert.equal(got.get("x-kept"), "1");
  assert.equal(
    answerHeaders("GET", new Headers({ "content-type": "TEXT/HTML" })).get("content-type"),
    "text/plain",
  );
  // Not a GET, or not HTML: as the function set it.
  assert.equal(answerHeaders("POST", html).get("content-type"), "text/html; charset=utf-8");
  const json = new Headers({ "content-type": "application/json" });
  assert.equal(answerHeaders("GET", json), json);
  assert.equal(
    answerHeaders("GET", new Headers({ "content-type": "text/htmlx" })).get("content-type"),
    "text/htmlx",
  );
});
