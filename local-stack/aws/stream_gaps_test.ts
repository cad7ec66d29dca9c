import assert from "node:assert/strict";
import { gapIterator, GAPS_PATH, parseGapIterator, StreamGaps } from "./stream_gaps.ts";

const ARN = "arn:aws:dynamodb:ddblocal:000000000000:table/t/stream/2026-12-01T00:00:00.000";
const TARGET = "DynamoDBStreams_20120810.";

/** A stream of one shard: records 1 and 2, then its end; iterators `<ARN>|<place>`. */
function upstream() {
  const asked: string[] = [];
  const next = async (request: Request) => {
    const operation = (request.headers.get("x-amz-target") ?? "").slice(TARGET.length);
    const body = await request.json();
    if (operation === "GetShardIterator") {
      return Response.json({ ShardIterator: `${ARN}|0` });
    }
    asked.push(body.ShardIterator);
    const place = Number(body.ShardIterator.split("|")[1]);
    if (place >= 2) return Response.json({ Records: [] });
    return Response.json({
      Records: [{ dynamodb: { SequenceNumber: String(place + 1) } }],
      NextShardIterator: `${ARN}|${place + 1}`,
    });
  };
  return { next, asked };
}

const call = (operation: string, body: unknown) =>
  new Request("http://proxy/", {
    method: "POST",
    headers: { "x-amz-target": TARGET + operation },
    body: JSON.stringify(body),
  });

/** The records' sequence numbers of each page read from a new iterator to the end. */
async function pages(gaps: StreamGaps, next: (r: Request) => Promise<Response>) {
  const seen: string[][] = [];
  let iterator: string | undefined = (await (await gaps.handle(
    call("GetShardIterator", { StreamArn: ARN, ShardId: "s", ShardIteratorType: "TRIM_HORIZON" }),
    next,
  )).json()).ShardIterator;
  while (iterator) {
    const page = await (await gaps.handle(call("GetRecords", { ShardIterator: iterator }), next))
      .json();
    seen.push(
      page.Records.map((r: { dynamodb: { SequenceNumber: string } }) => r.dynamodb.SequenceNumber),
    );
    iterator = page.NextShardIterator;
  }
  return seen;
}

Deno.test("a gapped stream answers its empty pages before each page it reads, then reads on where it stood", async () => {
  const gaps = new StreamGaps();
  const { next, asked } = upstream();
  const control = await gaps.handle(
    new Request(`http://proxy${GAPS_PATH}`, {
      method: "POST",
      body: JSON.stringify({ streamArn: ARN, emptyPages: 2 }),
    }),
    next,
  );
  assert.equal(control.status, 200);
  assert.deepEqual(await pages(gaps, next), [[], [], ["1"], [], [], ["2"], [], [], []]);
  assert.deepEqual(asked, [`${ARN}|0`, `${ARN}|1`, `${ARN}|2`], "each real page read once");
});

Deno.test("with no gap, requests pass through untouched; a gap's iterator reads on once it is off", async () => {
  const gaps = new StreamGaps();
  const { next } = upstream();
  assert.deepEqual(await pages(gaps, next), [["1"], ["2"], []]);
  gaps.set(ARN, 3);
  const kept = gapIterator(`${ARN}|1`, 3, Date.now());
  gaps.set(ARN, 0);
  const page = await (await gaps.handle(call("GetRecords", { ShardIterator: kept }), next)).json();
  assert.deepEqual(page.Records.length, 1);
  assert.equal(page.NextShardIterator, `${ARN}|2`, "unmarked");
});

Deno.test("a gap's iterator expires 15 minutes after it was given", async () => {
  let now = Date.parse("2026-12-04T12:00:00Z");
  const gaps = new StreamGaps({ now: () => now });
  gaps.set(ARN, 5);
  const { next } = upstream();
  const old = gapIterator(`${ARN}|0`, 4, now);
  now += 15 * 60_000 + 1;
  const answer = await gaps.handle(call("GetRecords", { ShardIterator: old }), next);
  assert.equal(answer.status, 400);
  assert.match((await answer.json()).__type, /#ExpiredIteratorException$/);
});

Deno.test("the control path refuses what is not a stream and a count that is not whole", async () => {
  const gaps = new StreamGaps();
  const { next } = upstream();
  for (
    const [body, error] of [
      [{ streamArn: "t", emptyPages: 1 }, "streamArn must be a stream's ARN"],
      [{ streamArn: ARN, emptyPages: 1.5 }, "emptyPages must be a whole number, 0 or more"],
      [{ streamArn: ARN, emptyPages: -1 }, "emptyPages must be a whole number, 0 or more"],
    ] as const
  ) {
    const answer = await gaps.handle(
      new Request(`http://proxy${GAPS_PATH}`, { method: "POST", body: JSON.stringify(body) }),
      next,
    );
    assert.equal(answer.status, 400);
    assert.deepEqual(await answer.json(), { error });
  }
  assert.equal(parseGapIterator(`${ARN}|0`), undefined);
});

Deno.test("a body that is not JSON goes on as it came, for DynamoDB Local to refuse, gap or none", async () => {
  for (const gapped of [false, true]) {
    const gaps = new StreamGaps();
    if (gapped) gaps.set(ARN, 2);
    const seen: Uint8Array[] = [];
    const next = async (request: Request) => {
      seen.push(new Uint8Array(await request.arrayBuffer()));
      return Response.json({ __type: "x#SerializationException" }, { status: 400 });
    };
    const body = new Uint8Array([0x7b, 0xff, 0xfe]); // "{" then bytes that are not UTF-8
    const answer = await gaps.handle(
      new Request("http://proxy/", {
        method: "POST",
        headers: { "x-amz-target": TARGET + "GetRecords" },
        body,
      }),
      next,
    );
    assert.equal(answer.status, 400);
    assert.deepEqual(seen, [body], gapped ? "gapped" : "no gap");
  }
});
