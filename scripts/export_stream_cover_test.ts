import assert from "node:assert/strict";
import type { DescribeTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { bySourceTable } from "../functions-shared/table_registry.ts";
import { streamBegan, waitForStreamToCover } from "./export_stream_cover.ts";

const spec = bySourceTable("firespring-backdoor-segments-dev")!;
const NOW = Date.parse("2026-12-01T12:00:00Z");

/**
 * DynamoDB answering DescribeTable with `table`, through the command's middleware (as the
 * SDK does), with an HTTP `Date` of `date` when given.
 */
const describing = (table: Record<string, unknown>, date?: string) =>
  ({
    send: (command: DescribeTableCommand) =>
      command.middlewareStack.resolve(
        (() =>
          Promise.resolve({
            response: { headers: date ? { Date: date } : {} },
            output: { Table: table },
          })) as never,
        {} as never,
      )({ input: command.input } as never).then((answer) => answer.output),
  }) as unknown as DynamoDBClient;

/**
 * Waits for a stream of `table`; DynamoDB's clock at `date`, this machine's at NOW: the
 * pauses taken and the lines logged.
 */
async function waitFor(table: Record<string, unknown>, date?: string) {
  const pauses: number[] = [];
  const lines: string[] = [];
  await waitForStreamToCover(describing(table, date), spec, (l) => void lines.push(l), {
    now: () => NOW,
    sleep: (ms) => Promise.resolve(void pauses.push(ms)),
  });
  return { pauses, lines };
}

const streamOn = (label: string) => ({
  StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" },
  LatestStreamLabel: label,
});

Deno.test("a stream's label is a UTC time without a zone; one that is no time is NaN", () => {
  assert.equal(streamBegan("2026-12-01T11:59:50.000"), NOW - 10_000);
  assert.equal(streamBegan("2026-12-01T11:59:50.000Z"), NOW - 10_000);
  assert.ok(Number.isNaN(streamBegan("not-a-time")));
});

Deno.test("a new export waits until the stream has run the export window and a margin, on DynamoDB's clock", async () => {
  // Begun 10 s ago: an export now could hold items 110 s older than the stream.
  const young = await waitFor(streamOn("2026-12-01T11:59:50.000"));
  assert.deepEqual(young.pauses, [115_000]);
  assert.match(
    young.lines[0],
    /^firespring_segments: its stream began at 2026-12-01T11:59:50\.000; an export's items may be up to 120 s older than its time, so the export is asked for in 115 s, once the stream covers them$/,
  );
  // DynamoDB's clock, from its answer's Date, not this machine's: 30 s behind it here.
  const behind = await waitFor(
    streamOn("2026-12-01T11:59:50.000"),
    "Tue, 01 Dec 2026 11:59:30 GMT",
  );
  assert.deepEqual(behind.pauses, [145_000]);
  // Begun a day ago, off, or with a label that is no time: no pause (the last two are
  // refused, named, by streamCoversExport once the export is made).
  for (
    const table of [
      streamOn("2026-11-30T12:00:00.000"),
      { StreamSpecification: { StreamEnabled: false } },
      streamOn("not-a-time"),
    ]
  ) {
    assert.deepEqual((await waitFor(table)).pauses, [], JSON.stringify(table));
  }
});
