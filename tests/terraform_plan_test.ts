/**
 * A real `terraform plan` of the AWS side, with the real AWS provider, against the local
 * stack: the provider reads the source tables (DescribeTable) from DynamoDB Local, where
 * the nine tables have their streams, and plans everything else as new. An override file
 * in a copy of the configuration points the provider there; nothing else changes. The
 * plan shows what `terraform apply` would make: one mapping per table on that table's
 * actual stream ARN, with the sync's settings. A second plan shows the module refusing
 * a table whose stream lacks NEW_AND_OLD_IMAGES, from the table's real description.
 *
 * Skipped when terraform or its AWS provider is not available offline.
 */

import assert from "node:assert/strict";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  type StreamSpecification,
  UpdateTableCommand,
} from "@aws-sdk/client-dynamodb";
import { TABLES, writeBackAttributes } from "../functions-shared/table_registry.ts";
import {
  initArgs,
  providerMirror,
  TERRAFORM_DIR,
  terraformEnv,
  terraformInstalled,
} from "../infrastructure/terraform/terraform_cli.ts";
import { withProviderServer } from "../infrastructure/terraform/provider_server.ts";
import { buildLambda } from "../lambda/build.ts";
import { LAMBDA_MEMORY_MB } from "../lambda/lambda_node.ts";
import { dynamo, stack } from "./stack_clients.ts";

const available = (await terraformInstalled()) && providerMirror() !== undefined;
const PROJECT_REF = "abcdefghijklmnopqrst";

/** Provider settings that send the AWS provider's DynamoDB calls to DynamoDB Local. */
function localProviders(aliases: string[]): string {
  return aliases.map((alias) => `
provider "aws" {
  ${alias === "default" ? "" : `alias = "${alias}"`}
  region                      = "${alias === "us_east_2" ? "us-east-2" : "us-east-1"}"
  access_key                  = "${stack.AWS_ACCESS_KEY_ID}"
  secret_key                  = "${stack.AWS_SECRET_ACCESS_KEY}"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  endpoints {
    dynamodb = "${stack.DYNAMODB_ENDPOINT}"
  }
}
`).join("");
}

async function terraform(
  dir: string,
  args: string[],
  dataDir: string,
  env: Record<string, string> = {},
) {
  const out = await new Deno.Command("terraform", {
    args: [`-chdir=${dir}`, ...args],
    env: { ...terraformEnv(dataDir), ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, text, stdout: new TextDecoder().decode(out.stdout) };
}

/** A copy of infrastructure/terraform in a temporary folder, and a function to remove it. */
function copyOfTheConfiguration() {
  const dir = mkdtempSync(join(tmpdir(), "terraform-"));
  cpSync(TERRAFORM_DIR, join(dir, "terraform"), {
    recursive: true,
    filter: (path) => !/\/\.terraform(\.lock\.hcl)?$/.test(path),
  });
  return { dir: join(dir, "terraform"), remove: () => rmSync(dir, { recursive: true }) };
}

// deno-lint-ignore no-explicit-any
type Json = any;

Deno.test({
  name: "terraform plan, with the real AWS provider reading DynamoDB Local's tables",
  ignore: !available,
  async fn() {
    const zip = await buildLambda();
    const copy = copyOfTheConfiguration();
    try {
      const root = join(copy.dir, "mmp-toledo-sync");
      writeFileSync(
        join(root, "providers_override.tf"),
        localProviders(["us_east_1", "us_east_2"]),
      );
      const data = join(copy.dir, ".data");
      const init = await terraform(root, initArgs(), data);
      assert.equal(init.code, 0, init.text);
      const plan = await terraform(root, [
        "plan",
        "-no-color",
        "-input=false",
        `-var=supabase_project_ref=${PROJECT_REF}`,
        `-var=lambda_zip=${zip}`,
        "-out=sync.tfplan",
      ], data);
      assert.equal(plan.code, 0, plan.text);
      assert.match(plan.text, /Plan: 59 to add, 0 to change, 0 to destroy\./);
      const shown = await terraform(root, ["show", "-json", "sync.tfplan"], data);
      const planned: Json = JSON.parse(shown.stdout);
      // (The Lambda's policy document waits for the ARNs of what apply makes: a "read".)
      const changes: Json[] = planned.resource_changes.filter((c: Json) => c.mode === "managed");
      // The two regions' syncs with their alarms and the alarms' topics (terraform.tfvars
      // names no alarm_actions), the export bucket and its exporter (exports.tf), the
      // reader (supabase-reader.tf) and the write-back's writer (supabase-writer.tf).
      assert.equal(changes.length, 59);
      assert.ok(changes.every((c) => c.change.actions.join() === "create"), "only creates");

      // One mapping per registry table, on the stream DynamoDB reports for that table.
      const mappings = changes.filter((c) => c.type === "aws_lambda_event_source_mapping");
      assert.equal(mappings.length, TABLES.length);
      // Each table as DynamoDB Local describes it, read once.
      const described = await Promise.all(
        TABLES.map(async (spec) =>
          (await dynamo(spec.region).send(
            new DescribeTableCommand({ TableName: spec.sourceTable }),
          ))
            .Table!
        ),
      );
      for (const [i, spec] of TABLES.entries()) {
        const instance = spec.region === "us-east-1" ? "firespring_sync" : "mmp_toledo_sync";
        const mapping = mappings.find((m) =>
          m.address ===
            `module.${instance}[0].aws_lambda_event_source_mapping.stream["${spec.sourceTable}"]`
        );
        assert.ok(mapping, `${spec.sourceTable} is mapped by the ${spec.region} Lambda`);
        const after = mapping.change.after;
        // Named in the table's region, as AWS names it (the stack's DynamoDB answers the
        // region a request was signed for, not DynamoDB Local's `ddblocal`).
        assert.match(
          described[i].LatestStreamArn!,
          new RegExp(
            `^arn:aws:dynamodb:${spec.region}:000000000000:table/${spec.sourceTable}/stream/`,
          ),
        );
        assert.equal(after.event_source_arn, described[i].LatestStreamArn, spec.sourceTable);
        assert.equal(after.batch_size, 10);
        assert.deepEqual(after.function_response_types, ["ReportBatchItemFailures"]);
        assert.equal(after.bisect_batch_on_function_error, true);
        assert.equal(after.maximum_retry_attempts, -1);
        assert.equal(after.maximum_record_age_in_seconds, 3600);
        assert.equal(after.starting_position, "TRIM_HORIZON");
        assert.equal(after.enabled, true, "forwarding (until the cutover)");
      }

      const lambdas = changes.filter((c) => c.type === "aws_lambda_function");
      assert.deepEqual(
        lambdas.map((l) => l.change.after.function_name).toSorted(),
        ["mmp-toledo-firespring-sync-dev", "mmp-toledo-mmp-toledo-sync-dev"],
      );
      for (const lambda of lambdas) {
        const after = lambda.change.after;
        assert.equal(after.runtime, "nodejs22.x");
        assert.deepEqual(after.architectures, ["arm64"]);
        assert.equal(after.memory_size, LAMBDA_MEMORY_MB);
        // No reservation: the provider's -1 (modules/stream-sync/variables.tf says why).
        assert.equal(after.reserved_concurrent_executions, -1);
        assert.equal(after.handler, "index.handler");
      }
      // The environment waits for the secret's ARN; the URL it gets is the output's.
      assert.equal(
        planned.output_changes.webhook_url.after,
        `https://${PROJECT_REF}.supabase.co/functions/v1/mmp-toledo-sync`,
      );
      const logs = changes.filter((c) => c.type === "aws_cloudwatch_log_group");
      assert.deepEqual(logs.map((l) => l.change.after.retention_in_days), [7, 7]);
      // Monitoring is on (terraform.tfvars): each region's sync alarms on its dead-letter
      // queue and its iterator age.
      const alarms = changes.filter((c) => c.type === "aws_cloudwatch_metric_alarm");
      assert.deepEqual(alarms.map((a) => a.change.after.alarm_name).toSorted(), [
        "mmp-toledo-firespring-sync-dev-dead-letters",
        "mmp-toledo-firespring-sync-dev-destination-failures",
        "mmp-toledo-firespring-sync-dev-iterator-age",
        "mmp-toledo-mmp-toledo-sync-dev-dead-letters",
        "mmp-toledo-mmp-toledo-sync-dev-destination-failures",
        "mmp-toledo-mmp-toledo-sync-dev-iterator-age",
      ]);
      // Each region's failed batches go to a bucket of its own, named within S3's limits
      // (a prefix of at most 37 characters).
      assert.deepEqual(
        changes.filter((c) => c.type === "aws_s3_bucket" && c.name === "failures")
          .map((c) => c.change.after.bucket_prefix).toSorted(),
        ["mmp-toledo-firespring-sync-failures-", "mmp-toledo-mmp-toledo-sync-failures-"],
      );
      // terraform.tfvars names no alarm_actions: each region's alarms notify a topic of
      // their own, for the operator to subscribe to (an alarm with no action tells nobody).
      assert.deepEqual(
        changes.filter((c) => c.type === "aws_sns_topic").map((c) => c.change.after.name)
          .toSorted(),
        ["mmp-toledo-firespring-sync-dev-alarms", "mmp-toledo-mmp-toledo-sync-dev-alarms"],
      );

      // The Edge Functions' reader: read actions on exactly the nine tables' ARNs.
      const reader = planned.prior_state.values.root_module.resources
        .find((r: Json) => r.address === "data.aws_iam_policy_document.supabase_reader[0]");
      const [statement, streams] = JSON.parse(reader.values.json).Statement;
      const arns = described.map((table) => table.TableArn);
      assert.deepEqual(statement.Action.toSorted(), [
        "dynamodb:DescribeTable",
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:Scan",
      ]);
      assert.deepEqual(statement.Resource.toSorted(), arns.toSorted());
      // The lost-record check reads their streams, and no other stream.
      assert.deepEqual(streams.Action.toSorted(), [
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
      ]);
      assert.deepEqual(
        streams.Resource.toSorted(),
        arns.map((arn) => `${arn}/stream/*`).toSorted(),
      );

      // The write-back's writer: UpdateItem of each table, on that table's ARN only, of
      // exactly its registry attributes, returning nothing or the updated old values.
      const writer = planned.prior_state.values.root_module.resources
        .find((r: Json) => r.address === "data.aws_iam_policy_document.supabase_writer[0]");
      const document = JSON.parse(writer.values.json);
      assert.equal(document.Statement.length, TABLES.length);
      for (const [i, spec] of TABLES.entries()) {
        const granted = document.Statement.find((s: Json) => s.Resource === described[i].TableArn);
        assert.ok(granted, `${spec.sourceTable} has its statement`);
        assert.equal(granted.Effect, "Allow");
        assert.equal(granted.Action, "dynamodb:UpdateItem");
        assert.deepEqual(
          [granted.Condition["ForAllValues:StringEquals"]["dynamodb:Attributes"]].flat().toSorted(),
          writeBackAttributes(spec),
          spec.sourceTable,
        );
        assert.deepEqual(
          [granted.Condition.StringEqualsIfExists["dynamodb:ReturnValues"]].flat().toSorted(),
          ["NONE", "UPDATED_OLD"],
        );
      }
      const policy = changes.find((c) => c.address === "aws_iam_policy.supabase_writer[0]");
      assert.equal(policy.change.after.name, "mmp-toledo-write-back-dev");
      // A managed policy holds 6,144 characters, whitespace not counted
      // (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html).
      const size = writer.values.json.replace(/\s/g, "").length;
      assert.ok(size <= 6144, `the writer's policy has ${size} characters, at most 6,144`);
      assert.deepEqual(
        changes.filter((c) => c.type === "aws_iam_user").map((c) => c.change.after.name)
          .toSorted(),
        [
          "mmp-toledo-supabase-exporter-dev",
          "mmp-toledo-supabase-reader-dev",
          "mmp-toledo-supabase-writer-dev",
        ],
      );
      // The reader's one inline policy within the 2,048 characters a user's inline policies
      // may hold in all (the same quotas page). With the export rights inline on the reader
      // too, about 4,100, apply would have been refused.
      const documentSize = (address: string) =>
        planned.prior_state.values.root_module.resources
          .find((r: Json) => r.address === address).values.json.replace(/\s/g, "").length;
      const readerSize = documentSize("data.aws_iam_policy_document.supabase_reader[0]");
      assert.ok(
        readerSize <= 2048,
        `the reader's inline policy has ${readerSize} characters, at most 2,048`,
      );
      assert.deepEqual(
        changes.filter((c) => c.type === "aws_iam_user_policy").map((c) => c.address),
        ["aws_iam_user_policy.supabase_reader[0]"],
        "the reader's only inline policy",
      );
      // (The exporter's document names the bucket, unknown until apply: it is read then,
      // about 2,500 characters against a managed policy's 6,144.)
    } finally {
      copy.remove();
    }
  },
});

Deno.test({
  name:
    "terraform plan refuses a table whose stream lacks NEW_AND_OLD_IMAGES, naming the fix for each",
  ignore: !available,
  async fn() {
    const zip = await buildLambda();
    const run = crypto.randomUUID().slice(0, 8);
    const table = `terraform-keys-only-${run}`;
    const streamless = `terraform-no-stream-${run}`;
    const client = dynamo("us-east-1");
    const create = (name: string, stream?: StreamSpecification) =>
      client.send(
        new CreateTableCommand({
          TableName: name,
          KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
          AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
          BillingMode: "PAY_PER_REQUEST",
          StreamSpecification: stream,
        }),
      );
    await create(table, { StreamEnabled: true, StreamViewType: "KEYS_ONLY" });
    await create(streamless);
    const copy = copyOfTheConfiguration();
    try {
      const root = join(copy.dir, "keys-only");
      Deno.mkdirSync(root);
      writeFileSync(
        join(root, "main.tf"),
        `${localProviders(["default"])}
module "sync" {
  source        = "../modules/stream-sync"
  name          = "keys-only"
  source_tables = ["${table}", "${streamless}"]
  webhook_url   = "https://${PROJECT_REF}.supabase.co/functions/v1/mmp-toledo-sync"
  lambda_zip    = "${zip}"
}
`,
      );
      const data = join(copy.dir, ".data");
      const init = await terraform(root, initArgs(), data);
      assert.equal(init.code, 0, init.text);
      // One provider block: one AWS provider serves the whole plan, where terraform would
      // start three (infrastructure/terraform/provider_server.ts).
      const plan = await withProviderServer(
        data,
        { env: terraformEnv(data) },
        (reattach) => terraform(root, ["plan", "-no-color", "-input=false"], data, reattach),
      );
      assert.equal(plan.code, 1, plan.text);
      const message = plan.text.replace(/\s+/g, " ");
      const updateTable = `aws dynamodb update-table --region us-east-1 --table-name ${table} ` +
        "--stream-specification StreamEnabled=";
      assert.ok(
        message.includes(
          `Table ${table} has no stream with NEW_AND_OLD_IMAGES (stream_view_type: KEYS_ONLY). ` +
            "DynamoDB turns on no second stream, so turn this one off, then on with both images",
        ),
        message,
      );
      assert.ok(
        message.includes(
          `and plan again: ${updateTable}false && aws dynamodb wait table-exists --region ` +
            `us-east-1 --table-name ${table} && ${updateTable}true,StreamViewType=NEW_AND_OLD_IMAGES`,
        ),
        message,
      );
      assert.ok(
        message.includes(
          `Table ${streamless} has no stream with NEW_AND_OLD_IMAGES (stream_view_type: none). ` +
            `Turn it on: aws dynamodb update-table --region us-east-1 --table-name ${streamless} ` +
            "--stream-specification StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES",
        ),
        message,
      );
      // Why two steps: the one step is refused on a table with a stream; the two are taken.
      const turn = (spec: StreamSpecification) =>
        client.send(new UpdateTableCommand({ TableName: table, StreamSpecification: spec }));
      await assert.rejects(
        turn({ StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" }),
        /already has an enabled stream/,
      );
      await turn({ StreamEnabled: false });
      const { TableDescription } = await turn({
        StreamEnabled: true,
        StreamViewType: "NEW_AND_OLD_IMAGES",
      });
      assert.equal(TableDescription?.StreamSpecification?.StreamViewType, "NEW_AND_OLD_IMAGES");
    } finally {
      copy.remove();
      for (const name of [table, streamless]) {
        await client.send(new DeleteTableCommand({ TableName: name }));
      }
    }
  },
});
