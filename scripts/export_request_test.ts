import assert from "node:assert/strict";
import type { DynamoDBClient, ExportDescription } from "@aws-sdk/client-dynamodb";
import { ExportRequestError, requestExport, waitForExport } from "./export_request.ts";

const ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/things";

/** A fake DynamoDB client answering each command by its name. */
function fakeClient(answers: Record<string, (input: Record<string, unknown>) => unknown>) {
  const sent: [string, Record<string, unknown>][] = [];
  const client = {
    config: { region: () => Promise.resolve("us-east-1") },
    send: (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      const name = command.constructor.name.replace(/Command$/, "");
      sent.push([name, command.input]);
      return Promise.resolve(answers[name](command.input));
    },
  };
  return { client: client as unknown as DynamoDBClient, sent };
}

const pitr = (status: string) => () => ({
  ContinuousBackupsDescription: {
    PointInTimeRecoveryDescription: { PointInTimeRecoveryStatus: status },
  },
});

Deno.test("an export is asked for as a full DynamoDB JSON export, with the caller's ClientToken", async () => {
  const { client, sent } = fakeClient({
    DescribeContinuousBackups: pitr("ENABLED"),
    DescribeTable: () => ({ Table: { TableArn: ARN } }),
    ExportTableToPointInTime: () => ({ ExportDescription: { ExportArn: `${ARN}/export/1` } }),
  });
  const arn = await requestExport(client, "things", { bucket: "b", prefix: "p" }, "job-7-things");
  assert.equal(arn, `${ARN}/export/1`);
  assert.deepEqual(sent.at(-1), ["ExportTableToPointInTime", {
    TableArn: ARN,
    S3Bucket: "b",
    S3Prefix: "p",
    ExportFormat: "DYNAMODB_JSON",
    ExportType: "FULL_EXPORT",
    ClientToken: "job-7-things",
  }]);
});

Deno.test("a token that answers an export in progress joins it; one that answers an ended export asks again", async () => {
  const inProgress = fakeClient({
    DescribeContinuousBackups: pitr("ENABLED"),
    DescribeTable: () => ({ Table: { TableArn: ARN } }),
    ExportTableToPointInTime: () => ({
      ExportDescription: {
        ExportArn: `${ARN}/export/asked-before`,
        ExportStatus: "IN_PROGRESS",
        ExportTime: new Date(Date.now() - 10 * 60_000),
      },
    }),
  });
  assert.equal(
    await requestExport(inProgress.client, "things", { bucket: "b", prefix: "" }, "tok"),
    `${ARN}/export/asked-before`,
  );
  assert.equal(inProgress.sent.filter(([n]) => n === "ExportTableToPointInTime").length, 1);

  const tokens: unknown[] = [];
  const ended = fakeClient({
    DescribeContinuousBackups: pitr("ENABLED"),
    DescribeTable: () => ({ Table: { TableArn: ARN } }),
    ExportTableToPointInTime: (input) => {
      tokens.push(input.ClientToken);
      return input.ClientToken === "tok"
        ? {
          ExportDescription: {
            ExportArn: `${ARN}/export/old`,
            ExportStatus: "COMPLETED",
            ExportTime: new Date(Date.now() - 30 * 60_000),
          },
        }
        : {
          ExportDescription: {
            ExportArn: `${ARN}/export/new`,
            ExportStatus: "IN_PROGRESS",
            ExportTime: new Date(),
          },
        };
    },
  });
  assert.equal(
    await requestExport(ended.client, "things", { bucket: "b", prefix: "" }, "tok"),
    `${ARN}/export/new`,
    "the table as of now, not as of the old export",
  );
  assert.equal(tokens[0], "tok");
  assert.match(String(tokens[1]), /^tok-[0-9a-f]{16}$/);
  // A rerun asks the same way and derives the same token: it joins the new export.
  await requestExport(ended.client, "things", { bucket: "b", prefix: "" }, "tok");
  assert.deepEqual(tokens.slice(2), ["tok", tokens[1]]);
});

Deno.test("an ended export is its own only within the clocks' skew: 30 s old, another is asked for", async () => {
  for (const [ageMs, expected] of [[2_000, "made"], [30_000, "new"]] as const) {
    const { client } = fakeClient({
      DescribeContinuousBackups: pitr("ENABLED"),
      DescribeTable: () => ({ Table: { TableArn: ARN } }),
      ExportTableToPointInTime: (input) => ({
        ExportDescription: input.ClientToken === "tok"
          ? {
            ExportArn: `${ARN}/export/made`,
            ExportStatus: "COMPLETED",
            ExportTime: new Date(Date.now() - ageMs),
          }
          : { ExportArn: `${ARN}/export/new`, ExportStatus: "IN_PROGRESS" },
      }),
    });
    assert.equal(
      await requestExport(client, "things", { bucket: "b", prefix: "" }, "tok"),
      `${ARN}/export/${expected}`,
      `${ageMs} ms old`,
    );
  }
});

Deno.test("a derived token that answers an ended export too goes on down the chain", async () => {
  const tokens: string[] = [];
  const old = new Date(Date.now() - 20 * 60_000);
  const { client } = fakeClient({
    DescribeContinuousBackups: pitr("ENABLED"),
    DescribeTable: () => ({ Table: { TableArn: ARN } }),
    ExportTableToPointInTime: (input) => {
      tokens.push(String(input.ClientToken));
      // The hour's first two backfills made these two, and both have ended.
      const n = tokens.length;
      return {
        ExportDescription: n < 3
          ? { ExportArn: `${ARN}/export/e${n}`, ExportStatus: "COMPLETED", ExportTime: old }
          : { ExportArn: `${ARN}/export/e${n}`, ExportStatus: "IN_PROGRESS" },
      };
    },
  });
  assert.equal(
    await requestExport(client, "things", { bucket: "b", prefix: "" }, "tok"),
    `${ARN}/export/e3`,
  );
  assert.equal(tokens[0], "tok");
  assert.equal(new Set(tokens).size, 3, "each ended export leads to a token of its own");
});

Deno.test("without point-in-time recovery the request is refused with the command that turns it on", async () => {
  const { client, sent } = fakeClient({ DescribeContinuousBackups: pitr("DISABLED") });
  await assert.rejects(
    requestExport(client, "things", { bucket: "b", prefix: "" }, "t"),
    (error: Error) =>
      error instanceof ExportRequestError &&
      error.message.startsWith("export of things: point-in-time recovery is DISABLED") &&
      error.message.includes(
        "aws dynamodb update-continuous-backups --region us-east-1 --table-name things",
      ),
  );
  assert.equal(sent.length, 1, "no export was asked for");
});

Deno.test("waiting polls until COMPLETED, reporting progress; FAILED is an error naming the reason", async () => {
  const statuses = ["IN_PROGRESS", "IN_PROGRESS", "COMPLETED"];
  const { client } = fakeClient({
    DescribeExport: () => ({ ExportDescription: { ExportStatus: statuses.shift(), ItemCount: 3 } }),
  });
  const seen: (ExportDescription | undefined)[] = [];
  const slept: number[] = [];
  const done = await waitForExport(client, "things", `${ARN}/export/1`, {
    progress: (d) => seen.push(d),
    sleep: (ms) => Promise.resolve(void slept.push(ms)),
    pollMs: 1500,
  });
  assert.equal(done.ItemCount, 3);
  assert.deepEqual([seen.length, slept], [2, [1000, 1500]], "waits double up to pollMs");

  const failing = fakeClient({
    DescribeExport: () => ({
      ExportDescription: {
        ExportStatus: "FAILED",
        FailureCode: "S3NoSuchBucket",
        FailureMessage: "The specified bucket does not exist",
      },
    }),
  });
  await assert.rejects(
    waitForExport(failing.client, "things", `${ARN}/export/2`),
    {
      name: "ExportRequestError",
      message:
        `export of things: export ${ARN}/export/2 failed: S3NoSuchBucket: The specified bucket does not exist`,
    },
  );
});

Deno.test("waiting gives up at its deadline, saying the export's state", async () => {
  let clock = 0;
  const { client } = fakeClient({
    DescribeExport: () => ({ ExportDescription: { ExportStatus: "IN_PROGRESS" } }),
  });
  await assert.rejects(
    waitForExport(client, "things", "arn", {
      now: () => clock,
      sleep: (ms) => Promise.resolve(void (clock += ms)),
      pollMs: 600_000,
      timeoutMs: 1_800_000,
    }),
    {
      name: "ExportStillRunning",
      message: "export of things: export arn is still IN_PROGRESS after 37 minutes of waiting",
    },
  );
});
