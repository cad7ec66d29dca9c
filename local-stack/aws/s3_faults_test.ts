import assert from "node:assert/strict";
import { cutBody, DEFAULT_S3_FAULTS, faultyS3, slowDown } from "./s3_faults.ts";

/** A server answering every path with its own bytes; the requests it saw. */
function upstream() {
  const seen: string[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, (req) => {
    seen.push(`${req.method} ${new URL(req.url).pathname}`);
    return new Response(new Uint8Array(1000).fill(7));
  });
  return { server, seen, url: `http://127.0.0.1:${server.addr.port}` };
}

Deno.test("a share of requests is answered 503 SlowDown, as S3 asks a caller to slow down", async () => {
  const up = upstream();
  try {
    const handler = faultyS3(up.url, { errorRate: 0.5, cutRate: 0 }, () => 0.1);
    const answer = await handler(new Request("http://s3/bucket/key"));
    assert.equal(answer.status, 503);
    assert.match(await answer.text(), /<Code>SlowDown<\/Code>/);
    assert.deepEqual(up.seen, [], "the request went no further");
    const passed = await faultyS3(up.url, { errorRate: 0.5, cutRate: 0 }, () => 0.9)(
      new Request("http://s3/bucket/key"),
    );
    assert.equal((await passed.bytes()).length, 1000);
  } finally {
    await up.server.shutdown();
  }
});

Deno.test("a share of data file reads stops part-way; other objects are whole", async () => {
  const up = upstream();
  try {
    const handler = faultyS3(up.url, { errorRate: 0, cutRate: 0.5 }, () => 0.1);
    const data = await handler(new Request("http://s3/b/p/AWSDynamoDB/01-x/data/f.json.gz"));
    await assert.rejects(data.bytes(), /connection reset by peer/);
    const manifest = await handler(
      new Request("http://s3/b/p/AWSDynamoDB/01-x/manifest-files.json"),
    );
    assert.equal((await manifest.bytes()).length, 1000, "a manifest is read whole");
  } finally {
    await up.server.shutdown();
  }
});

Deno.test("a cut body gives its first bytes, then fails", async () => {
  const body = new Blob([new Uint8Array(100).fill(1)]).stream();
  const reader = cutBody(body, 40).getReader();
  const first = await reader.read();
  assert.equal(first.value?.byteLength, 40);
  await assert.rejects(reader.read(), /connection reset by peer/);
  assert.equal(slowDown().status, 503);
});

Deno.test("SlowDown and cuts come at exactly their rates; by default 2% and 5%", async () => {
  assert.deepEqual(DEFAULT_S3_FAULTS, { errorRate: 0.02, cutRate: 0.05 });
  const up = upstream();
  const dataFile = "http://s3/b/p/AWSDynamoDB/01-x/data/f.json.gz";
  try {
    const status = async (draw: number) =>
      (await faultyS3(up.url, { errorRate: 0.02, cutRate: 0 }, () => draw)(
        new Request("http://s3/bucket/key"),
      )).status;
    assert.equal(await status(0.0199), 503);
    const passed = await faultyS3(up.url, { errorRate: 0.02, cutRate: 0 }, () => 0.02)(
      new Request("http://s3/bucket/key"),
    );
    assert.equal((await passed.bytes()).length, 1000);
    const cut = await faultyS3(up.url, { errorRate: 0, cutRate: 0.05 }, () => 0.0499)(
      new Request(dataFile),
    );
    await assert.rejects(cut.bytes(), /connection reset by peer/);
    const whole = await faultyS3(up.url, { errorRate: 0, cutRate: 0.05 }, () => 0.05)(
      new Request(dataFile),
    );
    assert.equal((await whole.bytes()).length, 1000);
  } finally {
    await up.server.shutdown();
  }
});
