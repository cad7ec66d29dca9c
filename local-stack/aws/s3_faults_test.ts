import assert from "node:assert/strict";
import {
  cutBody,
  DEFAULT_S3_FAULTS,
  describeS3Faults,
  faultyS3,
  parseS3Faults,
  quietBody,
  slowDown,
} from "./s3_faults.ts";

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

Deno.test("S3_FAULTS: unset means the defaults; named settings go over them; bad values are named", () => {
  assert.deepEqual(parseS3Faults(undefined), DEFAULT_S3_FAULTS);
  assert.deepEqual(parseS3Faults(" "), DEFAULT_S3_FAULTS);
  assert.deepEqual(parseS3Faults("none"), { errorRate: 0, cutRate: 0 });
  const quiet = parseS3Faults("quiet_reads=2, quiet_ms=65000");
  assert.deepEqual(quiet, { errorRate: 0.02, cutRate: 0.05, quietReads: 2, quietMs: 65000 });
  assert.equal(
    describeS3Faults(quiet),
    "error_rate=0.02,cut_rate=0.05,quiet_reads=2,quiet_ms=65000",
  );
  assert.deepEqual(parseS3Faults(describeS3Faults(quiet)), quiet, "its own text parses back");
  assert.equal(describeS3Faults(DEFAULT_S3_FAULTS), "error_rate=0.02,cut_rate=0.05");
  assert.equal(parseS3Faults("cut_rate=0").cutRate, 0);
  assert.throws(
    () => parseS3Faults("quiet_reads=1"),
    /^Error: S3_FAULTS: quiet_reads=1 needs quiet_ms/,
  );
  assert.throws(
    () => parseS3Faults("quiet_ms=5"),
    /S3_FAULTS: quiet_ms=5 quiets nothing without quiet_reads/,
  );
  assert.throws(
    () => parseS3Faults("quiet_reads=1.5,quiet_ms=5"),
    /S3_FAULTS: quiet_reads="1.5" is not a whole number of each data file's first reads from 0 to 10$/,
  );
  assert.throws(() => parseS3Faults("quiet_reads=11,quiet_ms=5"), /quiet_reads="11"/);
  assert.throws(
    () => parseS3Faults("quiet_reads=1,quiet_ms=soon"),
    /S3_FAULTS: quiet_ms="soon" is not a whole number of milliseconds from 1 to 600000$/,
  );
  assert.throws(() => parseS3Faults("quiet_reads=1,quiet_ms=0"), /quiet_ms="0"/);
  assert.throws(() => parseS3Faults("cut_rate=1"), /S3_FAULTS: cut_rate="1" is not a share/);
  assert.throws(() => parseS3Faults("error_rate="), /error_rate="" is not/);
  assert.throws(() => parseS3Faults("quiet=1"), /unknown setting "quiet".*known: error_rate/);
  assert.throws(() => parseS3Faults("cut_rate=0,cut_rate=0"), /cut_rate is given twice/);
});

/** Reads `body` whole: its chunks with the time each came, in ms from the start. */
async function timed(body: ReadableStream<Uint8Array>) {
  const start = performance.now();
  const chunks: { bytes: number; at: number }[] = [];
  for await (const chunk of body) {
    chunks.push({ bytes: chunk.byteLength, at: performance.now() - start });
  }
  return chunks;
}

Deno.test("a quiet body gives its bytes up to the quiet byte, then nothing for a while, then the rest", async () => {
  const body = new Blob([new Uint8Array(100).fill(1)]).stream();
  const chunks = await timed(quietBody(body, 40, 80));
  assert.equal(chunks.reduce((n, c) => n + c.bytes, 0), 100);
  assert.equal(chunks[0].bytes, 40);
  assert.ok(chunks[0].at < 40, `the first bytes at once (${chunks[0].at} ms)`);
  assert.ok(chunks[1].at >= 75, `the rest after the quiet (${chunks[1].at} ms)`);
  // Quiet from its first byte (a resume from the middle on).
  const resumed = await timed(quietBody(new Blob([new Uint8Array(10)]).stream(), 0, 50));
  assert.equal(resumed[0].bytes, 10);
  assert.ok(resumed[0].at >= 45);
});

Deno.test("a quiet body's reader that goes away ends the quiet and the upstream body", async () => {
  let upstreamCancelled = false;
  const upstreamBody = new ReadableStream<Uint8Array>({
    pull: (controller) => controller.enqueue(new Uint8Array(10)),
    cancel: () => {
      upstreamCancelled = true;
    },
  });
  const reader = quietBody(upstreamBody, 10, 60_000).getReader();
  assert.equal((await reader.read()).value?.byteLength, 10);
  const next = reader.read(); // quiet now
  await new Promise((resolve) => setTimeout(resolve, 10));
  await reader.cancel(new Error("gone"));
  assert.equal((await next).done, true);
  assert.ok(upstreamCancelled);
});

Deno.test("the first quiet_reads reads of each data file go quiet at its middle byte; a resume past it at once", async () => {
  const up = upstream();
  const lines: string[] = [];
  try {
    const handler = faultyS3(
      up.url,
      { errorRate: 0, cutRate: 0, quietReads: 1, quietMs: 60 },
      () => 0.9,
      (line) => lines.push(line),
    );
    const file = "http://s3/b/p/AWSDynamoDB/01-x/data/f.json.gz";
    const first = await timed((await handler(new Request(file))).body!);
    assert.deepEqual(first[0].bytes, 500);
    assert.ok(first.at(-1)!.at >= 55);
    assert.equal(first.reduce((n, c) => n + c.bytes, 0), 1000);
    const second = await timed((await handler(new Request(file))).body!);
    assert.ok(second.at(-1)!.at < 50, "the second read is whole at once");
    const manifest = await timed(
      (await handler(new Request("http://s3/b/p/AWSDynamoDB/01-x/manifest-files.json"))).body!,
    );
    assert.ok(manifest.at(-1)!.at < 50, "no quiet for a manifest");
    assert.deepEqual(lines, [
      "/b/p/AWSDynamoDB/01-x/data/f.json.gz: read 1 goes quiet 60 ms after 500 bytes",
    ]);
  } finally {
    await up.server.shutdown();
  }
});

Deno.test("a ranged read from the middle on goes quiet before its first byte", async () => {
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: () => {} },
    () =>
      new Response(new Uint8Array(400), {
        status: 206,
        headers: { "content-range": "bytes 600-999/1000" },
      }),
  );
  const lines: string[] = [];
  try {
    const handler = faultyS3(
      `http://127.0.0.1:${server.addr.port}`,
      { errorRate: 0, cutRate: 0, quietReads: 2, quietMs: 50 },
      () => 0.9,
      (line) => lines.push(line),
    );
    const resumed = await timed(
      (await handler(new Request("http://s3/b/p/AWSDynamoDB/01-x/data/g.json.gz"))).body!,
    );
    assert.ok(resumed[0].at >= 45);
    assert.match(lines[0], /read 1 goes quiet 50 ms after 0 bytes$/);
  } finally {
    await server.shutdown();
  }
});
