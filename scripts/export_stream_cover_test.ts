import assert from "node:assert/strict";
import type { DescribeTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { bySourceTable } from "../functions-shared/table_registry.ts";
import { streamBegan, streamCoversExport, waitForStreamToCover } from "./export_stream_cover.ts";

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

Deno.test("an export older than the stream's 24 h, less an hour, needs the webhook's notes from before its read time", async () => {
  const table = {
    ...streamOn("2026-11-01T00:00:00.000"),
    LatestStreamArn: "arn:aws:dynamodb:us-east-1:1:table/t/stream/2026-11-01T00:00:00.000",
  };
  const date = "Tue, 01 Dec 2026 12:00:00 GMT"; // DynamoDB's clock: NOW
  const asked: [string, string][] = [];
  const cover = (hoursAgo: number, delivered: boolean) =>
    streamCoversExport(
      describing(table, date),
      spec,
      "arn:export",
      new Date(NOW - hoursAgo * 3600_000),
      () => {},
      (arn, at) => (asked.push([arn, at.toISOString()]), Promise.resolve(delivered)),
    );
  await cover(22.9, false);
  assert.deepEqual(asked, [], "younger than 23 h: the stream still holds what came after it");
  await assert.rejects(
    cover(30, false),
    new RegExp(
      "^Error: export backfill of firespring-backdoor-segments-dev: export arn:export holds " +
        "items as they were from 2026-11-30T06:00:00\\.000Z, 30\\.0 h ago, and the table's " +
        "stream keeps its records 24 h: the changes made just after that have left it, and " +
        "the webhook applied no record of the stream arn:aws:dynamodb:.* at or before that " +
        "time \\(sync\\.stream_batches_applied, kept 48 h\\), so they may be in neither; ask " +
        "for a new export \\(without --export-arn\\)$",
    ),
  );
  assert.deepEqual(asked.at(-1), [table.LatestStreamArn, "2026-11-30T06:00:00.000Z"]);
  await cover(30, true); // the mapping delivered the stream back then
});
