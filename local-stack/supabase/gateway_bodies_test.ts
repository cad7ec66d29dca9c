import assert from "node:assert/strict";
import { releasingBody, small } from "./gateway_bodies.ts";

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
