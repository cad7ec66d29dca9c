import assert from "node:assert/strict";
import { crc32 } from "../../functions-shared/crc32.ts";
import {
  foreignArn,
  inwardText,
  isRegionName,
  namedRegion,
  outwardText,
  regionArn,
  regionEdge,
} from "./region_arns.ts";

const LOCAL_TABLE = "arn:aws:dynamodb:ddblocal:000000000000:table/t";
const LOCAL_STREAM = `${LOCAL_TABLE}/stream/2026-12-01T00:00:00.000`;
const TABLE = "arn:aws:dynamodb:us-east-2:000000000000:table/t";
const STREAM = `${TABLE}/stream/2026-12-01T00:00:00.000`;

Deno.test("region names are AWS's spellings, never DynamoDB Local's", () => {
  for (
    const region of ["us-east-1", "us-east-2", "eu-central-2", "us-gov-west-1", "il-central-1"]
  ) {
    assert.ok(isRegionName(region), region);
  }
  for (const region of ["ddblocal", "", "local", "us-east", "US-EAST-1"]) {
    assert.ok(!isRegionName(region), region);
  }
  assert.equal(regionArn(LOCAL_STREAM, "us-east-2"), STREAM);
});

Deno.test("an answer names the region it was asked in, its item data as it was", () => {
  const answer = JSON.stringify({
    Table: {
      TableArn: LOCAL_TABLE,
      LatestStreamArn: LOCAL_STREAM,
      TableName: "t",
    },
  });
  assert.deepEqual(JSON.parse(outwardText(answer, "us-east-2")), {
    Table: { TableArn: TABLE, LatestStreamArn: STREAM, TableName: "t" },
  });
  const records = JSON.stringify({
    Records: [{
      eventSource: "aws:dynamodb",
      awsRegion: "ddblocal",
      dynamodb: {
        Keys: { id: { S: LOCAL_TABLE } },
        NewImage: {
          id: { S: LOCAL_TABLE },
          tags: { SS: [LOCAL_STREAM] },
          nested: { M: { awsRegion: { S: "ddblocal" } } },
          list: { L: [{ S: LOCAL_STREAM }] },
        },
      },
    }],
    NextShardIterator: `${LOCAL_STREAM}|001|c2hhcmQ=`,
  });
  const out = JSON.parse(outwardText(records, "us-east-2"));
  assert.equal(out.Records[0].awsRegion, "us-east-2");
  assert.equal(out.NextShardIterator, `${STREAM}|001|c2hhcmQ=`);
  assert.deepEqual(out.Records[0].dynamodb, JSON.parse(records).Records[0].dynamodb);
  // An error's message names the ARN as AWS would.
  const error = JSON.stringify({
    __type: "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
    message: `Requested resource not found: Stream: ${LOCAL_STREAM} not found`,
  });
  assert.match(
    JSON.parse(outwardText(error, "us-east-2")).message,
    /Stream: arn:aws:dynamodb:us-east-2:/,
  );
  // Not JSON: the text itself.
  assert.equal(
    outwardText(`x ${LOCAL_TABLE}`, "us-east-1"),
    `x ${regionArn(LOCAL_TABLE, "us-east-1")}`,
  );
});

Deno.test("an answer with nothing to rewrite keeps its bytes", () => {
  const spaced =
    '{ "Items" : [ {"id": {"S": "arn:aws:dynamodb:ddblocal:000000000000:table/t"}} ] }';
  assert.equal(outwardText(spaced, "us-east-1"), spaced);
  assert.equal(outwardText('{"Count": 1.50}', "us-east-1"), '{"Count": 1.50}');
  assert.equal(inwardText('{ "StreamArn" : "x" }', "us-east-1"), '{ "StreamArn" : "x" }');
});

Deno.test("a request's ARNs of its own region become DynamoDB Local's; another region's stay", () => {
  const request = JSON.stringify({
    StreamArn: STREAM,
    ShardIterator: `${STREAM}|001|c2hhcmQ=`,
    Other: STREAM.replace("us-east-2", "us-east-1"),
    Item: { id: { S: STREAM } },
  });
  assert.deepEqual(JSON.parse(inwardText(request, "us-east-2")), {
    StreamArn: LOCAL_STREAM,
    ShardIterator: `${LOCAL_STREAM}|001|c2hhcmQ=`,
    Other: STREAM.replace("us-east-2", "us-east-1"),
    Item: { id: { S: STREAM } },
  });
  // And back: what went out comes in as it was.
  const answer = JSON.stringify({ NextShardIterator: `${LOCAL_STREAM}|001|abc|reader|3` });
  assert.equal(inwardText(outwardText(answer, "us-east-2"), "us-east-2"), answer);
});

Deno.test("a control request names its region by the ARN it gives", () => {
  assert.equal(namedRegion(JSON.stringify({ streamArn: STREAM })), "us-east-2");
  assert.equal(namedRegion(JSON.stringify({ streamArn: LOCAL_STREAM })), undefined);
  assert.equal(namedRegion(`${LOCAL_STREAM} ${STREAM}`), "us-east-2");
  assert.equal(namedRegion("{}"), undefined);
});

Deno.test("the edge hands DynamoDB Local's ARNs in and the region's out, its checksum recomputed", async () => {
  const seen: string[] = [];
  const handler = regionEdge(async (request) => {
    const text = await request.text();
    seen.push(text);
    assert.equal(request.headers.get("content-length"), null);
    const body = JSON.stringify({ StreamDescription: { StreamArn: LOCAL_STREAM }, Asked: text });
    return new Response(body, {
      headers: { "x-amz-crc32": String(crc32(body)), "x-amzn-requestid": "r" },
    });
  }, () => "us-east-2");
  const response = await handler(
    new Request("http://proxy/", {
      method: "POST",
      headers: { "content-length": "999" },
      body: JSON.stringify({ StreamArn: STREAM }),
    }),
  );
  assert.deepEqual(seen, [JSON.stringify({ StreamArn: LOCAL_STREAM })]);
  const text = await response.text();
  assert.equal(JSON.parse(text).StreamDescription.StreamArn, STREAM);
  assert.equal(response.headers.get("x-amz-crc32"), String(crc32(text)));
  assert.equal(response.headers.get("x-amzn-requestid"), "r");
});

Deno.test("with no region named, the edge passes the request and its answer as they are", async () => {
  const handler = regionEdge(async (request) => {
    assert.equal(await request.text(), JSON.stringify({ streamArn: LOCAL_STREAM }));
    return Response.json({ streamArn: LOCAL_STREAM });
  }, (_, body) => namedRegion(body));
  const response = await handler(
    new Request("http://proxy/", {
      method: "POST",
      body: JSON.stringify({ streamArn: LOCAL_STREAM }),
    }),
  );
  assert.deepEqual(await response.json(), { streamArn: LOCAL_STREAM });
  const get = regionEdge(() => Promise.resolve(new Response("ok")), () => undefined);
  assert.equal(await (await get(new Request("http://proxy/x"))).text(), "ok");
});

Deno.test("a body with nothing to change passes as the bytes that came, UTF-8 or not", async () => {
  const odd = new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]); // "{", two bytes no UTF-8 has, "}"
  let seen: Uint8Array | undefined;
  const handler = regionEdge(async (request) => {
    seen = new Uint8Array(await request.arrayBuffer());
    return new Response(odd);
  }, () => "us-east-1");
  const response = await handler(new Request("http://proxy/", { method: "POST", body: odd }));
  assert.deepEqual(seen, odd);
  assert.deepEqual(new Uint8Array(await response.arrayBuffer()), odd);
});

Deno.test("the edge refuses an ARN of another region, or DynamoDB Local's own, which would be served; item data and attribute names are the client's", async () => {
  let called = 0;
  const handler = regionEdge(() => {
    called++;
    return Promise.resolve(Response.json({}));
  }, () => "us-east-2");
  const post = (body: unknown) =>
    handler(new Request("http://proxy/", { method: "POST", body: JSON.stringify(body) }));
  const east1 = STREAM.replace("us-east-2", "us-east-1");
  for (
    const [body, arn] of [
      [{ StreamArn: LOCAL_STREAM }, LOCAL_STREAM],
      [{ StreamArn: east1 }, east1],
      [{ ShardIterator: `${east1}|001|c2hhcmQ=` }, east1],
    ] as const
  ) {
    const answer = await post(body);
    assert.equal(answer.status, 400);
    assert.deepEqual(await answer.json(), {
      __type: "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
      message: `Requested resource not found: ${arn} is not of this region (us-east-2)`,
    });
  }
  assert.equal(called, 0, "none reached DynamoDB Local");
  assert.equal(foreignArn(JSON.stringify({ StreamArn: STREAM }), "us-east-2"), undefined);

  // An item's strings and the client's attribute names stay as they came, whatever they say.
  const update = {
    TableName: "t",
    Key: { id: { S: east1 } },
    UpdateExpression: "SET #a = :v",
    ExpressionAttributeNames: { "#a": STREAM },
    ExpressionAttributeValues: { ":v": { SS: [LOCAL_STREAM] } },
    AttributesToGet: [STREAM],
  };
  assert.equal(foreignArn(JSON.stringify(update), "us-east-2"), undefined);
  assert.deepEqual(JSON.parse(inwardText(JSON.stringify(update), "us-east-2")), update);
  assert.equal((await post(update)).status, 200);
});
