import assert from "node:assert/strict";
import { backfillArgs, UsageError } from "./backfill_args.ts";

Deno.test("the command line: what would be ignored is refused, naming why", () => {
  const ARN =
    "arn:aws:dynamodb:us-east-1:123456789012:table/firespring-backdoor-actions-dev/export/01";
  const refused: [string[], RegExp][] = [
    [["--export-arn", ARN], /--export-arn is for a backfill from an export: add --from-export/],
    [["firespring_actions", "--workers", "2"], /--workers is for a backfill from an export/],
    [
      ["--from-export", "firespring_actions", "--segments", "3"],
      /--segments is for a Scan backfill/,
    ],
    [["--from-export", "--export-arn", ARN, "firespring_visitors"], /--export-arn names its table/],
    [["--all", "firespring_actions"], /name tables or --all, not both/],
    ...["0", "2.5", "0x10", "1e3", "0b11", "2.0", ""].map((n): [string[], RegExp] => [
      ["firespring_actions", "--segments", n],
      /--segments must be a whole number from 1/,
    ]),
    ...[["--bucket", "other"], ["--prefix", "p/"]].map((flag): [string[], RegExp] => [
      ["--from-export", "--export-arn", ARN, ...flag],
      /--export-arn names its export, whose files are where it says: no --bucket or --prefix/,
    ]),
    ...["0", "2.5", "0x10", "1e9", "Infinity", "65", ""].map((n): [string[], RegExp] => [
      ["--from-export", "firespring_actions", "--workers", n],
      /--workers must be a whole number from 1 to 64/,
    ]),
    [["nope"], /nope is neither a DynamoDB source nor a target table; known: firespring_actions/],
    [[], /name the tables to backfill/],
    [["--tabel", "x"], /Unknown option '--tabel'/],
  ];
  for (const [args, message] of refused) {
    assert.throws(() => backfillArgs(args), (error: Error) => {
      assert.ok(error instanceof UsageError, args.join(" "));
      assert.match(error.message, message, args.join(" "));
      return true;
    });
  }
  const ok = backfillArgs([
    "firespring_actions",
    "firespring-backdoor-actions-dev",
    "--segments",
    "4",
  ]);
  assert.deepEqual(
    ok.tables.map((t) => t.targetTable),
    ["firespring_actions"],
    "named twice, one backfill",
  );
  assert.equal(ok.segments, 4);
  const fromArn = backfillArgs(["--from-export", "--export-arn", ARN]);
  assert.deepEqual(fromArn.tables.map((t) => t.targetTable), ["firespring_actions"]);
  // An ARN of the table in another region, or no ARN at all, is refused before AWS is asked.
  assert.throws(
    () => backfillArgs(["--from-export", "--export-arn", ARN.replace("us-east-1", "us-west-2")]),
    /--export-arn: firespring-backdoor-actions-dev in us-west-2 is not the registered table, which is in us-east-1/,
  );
  assert.throws(
    () => backfillArgs(["--from-export", "--export-arn", "not-an-arn"]),
    /--export-arn not-an-arn is not an export's ARN \(arn:aws:dynamodb:<region>/,
  );
});

Deno.test("--without-stream is an export backfill's, and says so when given alone", () => {
  assert.equal(
    backfillArgs(["--from-export", "firespring_segments", "--without-stream"]).withoutStream,
    true,
  );
  assert.equal(backfillArgs(["--from-export", "firespring_segments"]).withoutStream, false);
  assert.throws(
    () => backfillArgs(["firespring_segments", "--without-stream"]),
    /--without-stream is for a backfill from an export: add --from-export/,
  );
});
