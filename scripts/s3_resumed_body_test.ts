import assert from "node:assert/strict";
import { type ObjectPart, resumedBody, RESUMES_IN_A_ROW } from "./s3_resumed_body.ts";

const OBJECT = new Uint8Array(Array.from({ length: 1000 }, (_, i) => i % 251));

/**
 * `bytes` in reads of 100, then `end`: an error ("reset"), a clean close ("close"), or
 * the object's end ("whole").
 */
function body(bytes: Uint8Array, end: "reset" | "close" | "whole" = "whole") {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at < bytes.length) {
        controller.enqueue(bytes.slice(at, at += 100));
      } else if (end === "reset") {
        controller.error(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }));
      } else controller.close();
    },
  }, { highWaterMark: 0 });
}

/** S3 answering ranged reads: `answer(offset)` decides each part; the offsets asked are kept. */
function s3(answer: (offset: number) => ObjectPart | Promise<ObjectPart>) {
  const asked: number[] = [];
  const lines: string[] = [];
  const slept: number[] = [];
  const deps = {
    readFrom: (offset: number) => (asked.push(offset), Promise.resolve(answer(offset))),
    sleep: (ms: number) => (slept.push(ms), Promise.resolve()),
    log: (line: string) => lines.push(line),
  };
  return { deps, asked, lines, slept };
}

const read = async (stream: ReadableStream<Uint8Array>) =>
  new Uint8Array(await new Response(stream).arrayBuffer());

Deno.test("a read that breaks mid-object goes on from the byte it broke at: the bytes are the object's", async () => {
  const { deps, asked, lines } = s3((offset) => ({
    body: body(OBJECT.slice(offset)),
    etag: '"e1"',
    start: offset,
  }));
  const first = { body: body(OBJECT.slice(0, 300), "reset"), etag: '"e1"', start: 0 };
  const bytes = await read(resumedBody("s3://b/data/1.json.gz", first, OBJECT.length, deps));
  assert.deepEqual(bytes, OBJECT);
  assert.deepEqual(asked, [300]);
  assert.deepEqual(lines, [
    "s3://b/data/1.json.gz: read ECONNRESET; reading on from byte 300 of 1000 (resume 1 of 3)",
  ]);
});

Deno.test("a read that ends cleanly before the object's length goes on too, as often as each resume brings bytes", async () => {
  // Every part ends after 200 bytes: four breaks, each followed by progress.
  const { deps, asked, slept } = s3((offset) => ({
    body: body(OBJECT.slice(offset, offset + 200), "close"),
    etag: "e1",
    start: offset,
  }));
  const first = { body: body(OBJECT.slice(0, 200), "close"), etag: "e1", start: 0 };
  assert.deepEqual(await read(resumedBody("o", first, OBJECT.length, deps)), OBJECT);
  assert.deepEqual(asked, [200, 400, 600, 800]);
  assert.deepEqual(slept, [250, 250, 250, 250], "each the first resume since progress");
});

Deno.test("a part of an object written over mid-read ends the read, naming both ETags", async () => {
  const { deps } = s3((offset) => ({
    body: body(OBJECT.slice(offset)),
    etag: "e2",
    start: offset,
  }));
  const first = { body: body(OBJECT.slice(0, 500), "reset"), etag: "e1", start: 0 };
  await assert.rejects(
    read(resumedBody("o", first, OBJECT.length, deps)),
    /its ETag is now e2, not e1: written over mid-read/,
  );
});

Deno.test("a part that does not start at the byte asked for ends the read (a server ignoring the range)", async () => {
  const { deps } = s3(() => ({ body: body(OBJECT), etag: "e1", start: 0 }));
  const first = { body: body(OBJECT.slice(0, 500), "reset"), etag: "e1", start: 0 };
  await assert.rejects(
    read(resumedBody("o", first, OBJECT.length, deps)),
    /the read of its bytes from 500 on was answered from byte 0/,
  );
});

Deno.test("breaks with no byte between them, past the resumes allowed, are passed on as the last one", async () => {
  let calls = 0;
  const { deps, asked, slept } = s3((offset) => {
    // The second resume's request itself fails; the others answer no byte.
    if (++calls === 2) throw Object.assign(new Error("connect ECONNREFUSED"), { code: "x" });
    return { body: body(new Uint8Array(), "reset"), etag: "e1", start: offset };
  });
  const first = { body: body(OBJECT.slice(0, 300), "reset"), etag: "e1", start: 0 };
  const stream = resumedBody("o", first, OBJECT.length, deps);
  await assert.rejects(read(stream), /read ECONNRESET/);
  assert.equal(asked.length, RESUMES_IN_A_ROW);
  assert.deepEqual(asked, [300, 300, 300]);
  assert.deepEqual(slept, [250, 500, 1000]);
});

Deno.test("empty reads are no progress: resumes that bring only those end the read", async () => {
  const empty = () =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array());
        controller.error(new Error("read ECONNRESET"));
      },
    });
  const { deps, asked } = s3((offset) => ({ body: empty(), etag: "e1", start: offset }));
  const first = { body: body(OBJECT.slice(0, 300), "reset"), etag: "e1", start: 0 };
  await assert.rejects(read(resumedBody("o", first, OBJECT.length, deps)), /read ECONNRESET/);
  assert.deepEqual(asked, [300, 300, 300]);
});

Deno.test("a read that waits too long for a byte is a break: the read goes on from its byte", async () => {
  let cancelled = false;
  const stalled = new ReadableStream<Uint8Array>({
    start: (controller) => controller.enqueue(OBJECT.slice(0, 400)),
    cancel: () => void (cancelled = true),
  });
  const { deps, asked, lines } = s3((offset) => ({
    body: body(OBJECT.slice(offset)),
    etag: "e1",
    start: offset,
  }));
  const first = { body: stalled, etag: "e1", start: 0 };
  const stream = resumedBody("o", first, OBJECT.length, { ...deps, quietMs: 5 });
  assert.deepEqual(await read(stream), OBJECT);
  assert.deepEqual(asked, [400]);
  assert.ok(cancelled, "the stalled read given up");
  assert.match(lines[0], /^o: no byte for 0\.005 s; reading on from byte 400 of 1000/);
});

Deno.test("a read cancelled by its reader cancels the part being read", async () => {
  let cancelled: unknown;
  const part = new ReadableStream<Uint8Array>({
    pull: (c) => c.enqueue(OBJECT.slice(0, 100)),
    cancel: (reason) => void (cancelled = reason),
  });
  const { deps } = s3(() => ({ body: part, etag: "e1", start: 0 }));
  const stream = resumedBody("o", { body: part, etag: "e1", start: 0 }, OBJECT.length, deps);
  const reader = stream.getReader();
  await reader.read();
  await reader.cancel("enough");
  assert.equal(cancelled, "enough");
});

Deno.test("a read cancelled while a resume is on its way lets go of the part it brings", async () => {
  let partCancelled = false;
  const answered = Promise.withResolvers<ObjectPart>();
  const asked = Promise.withResolvers<void>();
  const deps = {
    readFrom: () => (asked.resolve(), answered.promise),
    sleep: () => Promise.resolve(),
  };
  const first = { body: body(OBJECT.slice(0, 100), "reset"), etag: "e1", start: 0 };
  const reader = resumedBody("o", first, OBJECT.length, deps).getReader();
  await reader.read();
  const pending = reader.read();
  await asked.promise;
  await reader.cancel("enough");
  answered.resolve({
    body: new ReadableStream({ cancel: () => void (partCancelled = true) }),
    etag: "e1",
    start: 100,
  });
  assert.deepEqual(await pending, { done: true, value: undefined });
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.ok(partCancelled);
});
