import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { itemText, watchedBytes } from "./export_bytes.ts";

async function gzip(text: string): Promise<Uint8Array> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

Deno.test("the bytes read are counted and hashed as they pass, and their end is seen", async () => {
  const bytes = new TextEncoder().encode("some bytes of a file");
  const watched = watchedBytes(new Blob([bytes]).stream());
  assert.equal(watched.ended, false);
  const read = new Uint8Array(await new Response(watched.stream).arrayBuffer());
  assert.deepEqual(read, bytes);
  assert.equal(watched.count, bytes.length);
  assert.equal(watched.ended, true);
  assert.equal(watched.broken, undefined);
  assert.equal(watched.digest(), createHash("md5").update(bytes).digest("base64"));
});

Deno.test("a read that waits past the quiet time breaks the stream and cancels the bytes", async () => {
  let cancelled: unknown;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new Uint8Array([1, 2, 3]));
    },
    cancel(reason) {
      cancelled = reason;
    },
  });
  const watched = watchedBytes(body, 20);
  const error = await new Response(watched.stream).arrayBuffer().then(() => undefined, (e) => e);
  assert.equal((error as { code?: string }).code, "ETIMEDOUT");
  assert.match((error as Error).message, /no byte from S3 for 0.02 s/);
  assert.equal(watched.broken?.error, error);
  assert.equal(cancelled, error);
  assert.equal(watched.count, 3);
  assert.equal(watched.ended, false);
});

Deno.test("a read that inflates to many MB comes out as text a few MB at a time", async () => {
  // 16 MB of text that gzip makes some 16 KB of, handed over in one read.
  const line = JSON.stringify({ Item: { id: { S: "k" }, blob: { S: "x".repeat(1_000_000) } } });
  const bytes = await gzip(`${line}\n`.repeat(16));
  assert.ok(bytes.length < 100_000, `${bytes.length} bytes`);
  let longest = 0;
  let total = 0;
  await itemText(new Blob([new Uint8Array(bytes)]).stream()).pipeTo(
    new WritableStream({
      write(chunk) {
        longest = Math.max(longest, chunk.length);
        total += chunk.length;
      },
    }),
  );
  assert.equal(total, (line.length + 1) * 16, "every character, in order");
  // A 4 KB piece inflates to about 4 MB at most (gzip's limit is about 1,000 to 1);
  // inflated whole, the read was one chunk of 16 MB.
  assert.ok(longest <= 4.2 * 2 ** 20, `a chunk of ${longest} characters`);
});
