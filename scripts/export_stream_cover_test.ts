import assert from "node:assert/strict";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { bySourceTable } from "../functions-shared/table_registry.ts";
import { streamBegan, waitForStreamToCover } from "./export_stream_cover.ts";

const spec = bySourceTable("firespring-backdoor-segments-dev")!;
const NOW = Date.parse("2026-12-01T12:00:00Z");

/** DynamoDB answering DescribeTable with `table`. */
const describing = (table: Record<string, unknown>) =>
  ({ send: () => Promise.resolve({ Table: table }) }) as unknown as DynamoDBClient;

/** Waits for a stream begun `ageMs` ago: the pauses taken and the lines logged. */
async function waitFor(table: Record<string, unknown>) {
  const pauses: number[] = [];
  const lines: string[] = [];
  await waitForStreamToCover(describing(table), spec, (l) => void lines.push(l), {
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

Deno.test("a new export waits until the stream has run a minute and the clocks' margin", async () => {
  // Begun 10 s ago: an export now could hold items 50 s older than the stream.
  const young = await waitFor(streamOn("2026-12-01T11:59:50.000"));
  assert.deepEqual(young.pauses, [55_000]);
  assert.match(
    young.lines[0],
    /^firespring_segments: its stream began at 2026-12-01T11:59:50\.000; an export's items may be a minute older than its time, so the export is asked for in 55 s, once the stream covers that minute$/,
  );
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
