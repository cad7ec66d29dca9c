/**
 * Offline checks of the Terraform, on its parsed HCL (parsed_hcl.ts): they need neither
 * terraform nor AWS. Every source table of the registry has exactly one stream mapping,
 * in the Lambda of its own region, with the settings of the real-time sync; the Lambda's
 * IAM policy grants only the stream reads, the DLQ send, the one secret (and its own
 * logs); the Lambda is configured the way lambda/stream_forwarder.ts reads its settings;
 * the write-back's writer may only UpdateItem each table's registry attributes.
 * Its Node.js runtime and the AWS provider version are checked in lambda_runtime_test.ts.
 * `terraform fmt`, `validate` and `terraform test` (mocked providers) run beside these in
 * `npm test` when terraform is installed.
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
// @ts-types="./hcl2json.d.ts"
import { parse } from "@cdktf/hcl2json";
import { TABLES, writeBackAttributes } from "../../functions-shared/table_registry.ts";
import {
  EXPORTER_EXPORT_ACTIONS,
  EXPORTER_FOLLOW_ACTIONS,
  EXPORTER_TABLE_ACTIONS,
  READER_STREAM_ACTIONS,
  READER_TABLE_ACTIONS,
  WRITER_ACTIONS,
  WRITER_RETURN_VALUES,
} from "../../local-stack/aws/iam_policies.ts";
import { EXPORTER_BUCKET_ACTIONS, EXPORTER_OBJECT_ACTIONS } from "../../local-stack/aws/s3_iam.ts";
import { ZIP } from "../../lambda/build.ts";
import { LAMBDA_MEMORY_MB, LAMBDA_NODE_MAJOR, NODE_VERSION } from "../../lambda/lambda_node.ts";
import { DEPLOYED_MAPPING } from "../../local-stack/aws/mapping_settings.ts";
import { type Hcl, HERE, module, only, root, ROOT_CONFIG } from "./parsed_hcl.ts";

const locals: Hcl = Object.assign({}, ...root.locals);

/** The tables a module instance's `source_tables` may name, following `local.` references. */
function tablesOf(expression: unknown): string[] {
  if (Array.isArray(expression)) return expression.flatMap(tablesOf);
  if (typeof expression !== "string") return [];
  const references = [...expression.matchAll(/local\.(\w+)/g)].map((m) => m[1]);
  if (references.length === 0) return [expression];
  return references.flatMap((name) => {
    assert.ok(name in locals, `local.${name} is defined`);
    return tablesOf(locals[name]);
  });
}

/** Region of each module instance, from the provider alias it is given. */
function regionOf(instance: Hcl): string {
  const alias = instance.providers?.aws?.match(/^\$\{aws\.(\w+)\}$/)?.[1];
  const provider = (root.provider.aws as Hcl[]).find((p) => p.alias === alias);
  assert.ok(provider, `the provider aws.${alias} is configured`);
  return provider.region;
}

const instances = Object.entries(root.module as Record<string, Hcl[]>).map(([name, blocks]) => {
  const instance = only(blocks, `module "${name}"`);
  return { name, instance, region: regionOf(instance), tables: tablesOf(instance.source_tables) };
});

/** A module variable's declared default. */
function moduleDefault(name: string): unknown {
  return only(module.variable[name], `variable "${name}" of the module`).default;
}

Deno.test("every registry table has exactly one stream mapping, in its own region", () => {
  for (const spec of TABLES) {
    const mapped = instances.filter((i) => i.tables.includes(spec.sourceTable));
    assert.equal(mapped.length, 1, `${spec.sourceTable} is in exactly one module instance`);
    assert.equal(mapped[0].region, spec.region, `${spec.sourceTable} is synced from its region`);
    assert.equal(mapped[0].instance.source, "../modules/stream-sync");
  }
  const named = instances.flatMap((i) => i.tables);
  assert.deepEqual(
    named.toSorted(),
    TABLES.map((t) => t.sourceTable).toSorted(),
    "no table outside the registry, none twice",
  );
  assert.deepEqual(
    Object.fromEntries(instances.map((i) => [i.name, i.region])),
    { firespring_sync: "us-east-1", mmp_toledo_sync: "us-east-2" },
  );

  // Inside the module: one mapping per table of `source_tables`, and the tables distinct.
  const mappings = module.resource.aws_lambda_event_source_mapping;
  assert.deepEqual(Object.keys(mappings), ["stream"], "one mapping resource");
  assert.equal(only(mappings.stream, "mapping").for_each, "${data.aws_dynamodb_table.source}");
  assert.equal(
    only(module.data.aws_dynamodb_table.source, "table lookup").for_each,
    "${toset(var.source_tables)}",
  );
  const [distinct] = only(module.variable.source_tables, "source_tables").validation;
  assert.match(distinct.condition, /length\(var\.source_tables\) == length\(distinct\(/);
});

Deno.test("each mapping: NEW_AND_OLD_IMAGES, batch 10, partial failures, bisect, bounds, failure bucket", () => {
  const mapping = only(module.resource.aws_lambda_event_source_mapping.stream, "mapping");
  assert.deepEqual(mapping.function_response_types, ["ReportBatchItemFailures"]);
  assert.equal(mapping.bisect_batch_on_function_error, true);
  assert.equal(mapping.batch_size, "${var.batch_size}");
  assert.equal(moduleDefault("batch_size"), 10);
  assert.equal(mapping.maximum_retry_attempts, "${var.maximum_retry_attempts}");
  assert.equal(mapping.maximum_record_age_in_seconds, "${var.maximum_record_age_in_seconds}");
  const retries = moduleDefault("maximum_retry_attempts") as number;
  const age = moduleDefault("maximum_record_age_in_seconds") as number;
  // Retried until the records pass their maximum age, which bounds the retries: an hour of
  // the webhook down loses nothing, where 10 retries of a 60 s invocation spent them in
  // about 11 minutes and sent the range to the dead-letter queue.
  assert.equal(retries, -1, "retried until the records pass their maximum age");
  assert.ok(age > 0 && age < 24 * 3600, "record age bounded, under the stream's 24 h retention");
  assert.equal(
    only(only(mapping.destination_config, "destination").on_failure, "on_failure")
      .destination_arn,
    "${aws_s3_bucket.failures.arn}",
  );
  assert.equal(mapping.event_source_arn, "${each.value.stream_arn}");
  // The cutover's switch (README, "The cutover"): on by default, passed from the root.
  assert.equal(mapping.enabled, "${var.mappings_enabled}");
  assert.equal(moduleDefault("mappings_enabled"), true);
  assert.equal(only(root.variable.enable_stream_mappings, "enable_stream_mappings").default, true);
  for (const { name, instance } of instances) {
    assert.equal(instance.mappings_enabled, "${var.enable_stream_mappings}", name);
  }
  assert.equal(mapping.function_name, "${aws_lambda_function.forwarder.arn}");
  const [check] = only(mapping.lifecycle, "lifecycle").precondition;
  assert.match(check.condition, /stream_view_type == "NEW_AND_OLD_IMAGES"/);
  assert.match(check.error_message, /Table %\[2\]s has no stream with NEW_AND_OLD_IMAGES/);
  assert.deepEqual(Object.keys(module.resource.aws_sqs_queue), ["dead_letters"]);
  assert.deepEqual(Object.keys(module.resource.aws_s3_bucket), ["failures"]);

  // Only what the local stack's mapping does: from the oldest record, at once.
  assert.equal(mapping.starting_position, "${var.starting_position}");
  assert.equal(moduleDefault("starting_position"), "TRIM_HORIZON");
  const [position] = only(module.variable.starting_position, "starting_position").validation;
  assert.equal(position.condition, '${var.starting_position == "TRIM_HORIZON"}');
  assert.equal(
    mapping.maximum_batching_window_in_seconds,
    "${var.maximum_batching_window_in_seconds}",
  );
  const [window] = only(
    module.variable.maximum_batching_window_in_seconds,
    "maximum_batching_window_in_seconds",
  ).validation;
  assert.equal(window.condition, "${var.maximum_batching_window_in_seconds == 0}");

  // The local stack's emulated mappings behave as the deployed ones.
  assert.deepEqual(DEPLOYED_MAPPING, {
    batchSize: moduleDefault("batch_size"),
    maxRetryAttempts: retries,
    maxRecordAgeS: age,
    bisectBatchOnFunctionError: mapping.bisect_batch_on_function_error,
    functionTimeoutMs: (moduleDefault("lambda_timeout") as number) * 1000,
    // The module's null (no reservation) is the stand-in's undefined (no limit).
    reservedConcurrency: moduleDefault("reserved_concurrency") ?? undefined,
  });
});

Deno.test("the Lambda: Node 22, ARM64, 256 MB, no reserved concurrency, settings it reads", () => {
  const lambda = only(module.resource.aws_lambda_function.forwarder, "Lambda");
  assert.equal(lambda.runtime, "nodejs22.x");
  // The zip is built for this major (lambda/build.ts) and its tests run it on this major.
  assert.equal(lambda.runtime, `nodejs${LAMBDA_NODE_MAJOR}.x`, "lambda/lambda_node.ts agrees");
  assert.ok(
    NODE_VERSION.startsWith(`${LAMBDA_NODE_MAJOR}.`),
    `the pinned Node.js ${NODE_VERSION} is a ${LAMBDA_NODE_MAJOR}.x release`,
  );
  assert.deepEqual(lambda.architectures, ["arm64"]);
  assert.equal(lambda.handler, "index.handler", "the handler of npm run build:lambda's zip");
  assert.equal(lambda.memory_size, "${var.lambda_memory_size}");
  assert.equal(moduleDefault("lambda_memory_size"), LAMBDA_MEMORY_MB);
  assert.equal(lambda.reserved_concurrent_executions, "${var.reserved_concurrency}");
  // None by default: a reservation below the tables' count starves some tables, and AWS
  // refuses one that leaves the account under 100 unreserved (the module's variables.tf).
  assert.equal(moduleDefault("reserved_concurrency"), null);
  assert.equal(lambda.source_code_hash, "${filebase64sha256(var.lambda_zip)}");

  // The settings lambda/stream_forwarder.ts and lambda/webhook_secret.ts read.
  const env = only(lambda.environment, "environment").variables;
  assert.deepEqual(env, {
    WEBHOOK_URL: "${var.webhook_url}",
    SYNC_WEBHOOK_SECRET_ARN: "${aws_secretsmanager_secret.webhook.arn}",
  });
  const forwarder = readFileSync(join(HERE, "../../lambda/stream_forwarder.ts"), "utf8");
  const secret = readFileSync(join(HERE, "../../lambda/webhook_secret.ts"), "utf8");
  assert.match(forwarder, /process\.env\.WEBHOOK_URL/);
  assert.match(secret, /process\.env\.SYNC_WEBHOOK_SECRET_ARN/);
  // No aws_secretsmanager_secret_version: the value never enters Terraform's state.
  assert.deepEqual(Object.keys(module.resource.aws_secretsmanager_secret), ["webhook"]);
  assert.equal(module.resource.aws_secretsmanager_secret_version, undefined);

  const logs = only(module.resource.aws_cloudwatch_log_group.lambda, "log group");
  assert.equal(logs.retention_in_days, "${var.log_retention_days}");
  assert.equal(moduleDefault("log_retention_days"), 7);
  assert.equal(logs.name, "/aws/lambda/${var.name}", "the log group Lambda writes to");

  // The zip the root deploys by default is the one `npm run build:lambda` writes.
  const zip = (locals.lambda_zip as string).match(/"\$\{path\.module\}\/([^"]+)"/)![1];
  assert.equal(resolve(ROOT_CONFIG, zip), ZIP);
});

Deno.test("the IAM policy grants only the stream reads, the failure bucket's put, the secret, its logs", () => {
  const policy = only(module.data.aws_iam_policy_document.lambda, "policy document");
  const grants = (policy.statement as Hcl[]).map((s) => ({
    actions: s.actions,
    resources: s.resources,
    effect: s.effect ?? "Allow",
  }));
  assert.deepEqual(grants, [
    {
      actions: ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
      resources: "${[for table in data.aws_dynamodb_table.source : table.stream_arn]}",
      effect: "Allow",
    },
    // IAM has no resource type for ListStreams: "*" is the only way to grant it.
    { actions: ["dynamodb:ListStreams"], resources: ["*"], effect: "Allow" },
    // An S3 on-failure destination needs both of the mapping's role.
    {
      actions: ["s3:PutObject"],
      resources: ["${aws_s3_bucket.failures.arn}/*"],
      effect: "Allow",
    },
    { actions: ["s3:ListBucket"], resources: ["${aws_s3_bucket.failures.arn}"], effect: "Allow" },
    {
      actions: ["secretsmanager:GetSecretValue"],
      resources: ["${aws_secretsmanager_secret.webhook.arn}"],
      effect: "Allow",
    },
    {
      actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
      resources: ["${aws_cloudwatch_log_group.lambda.arn}:*"],
      effect: "Allow",
    },
  ]);
  // That document is the role's only policy: no inline policy besides it, no managed one.
  const rolePolicies = module.resource.aws_iam_role_policy;
  assert.deepEqual(Object.keys(rolePolicies), ["lambda"]);
  assert.equal(
    only(rolePolicies.lambda, "role policy").policy,
    "${data.aws_iam_policy_document.lambda.json}",
  );
  for (
    const kind of ["aws_iam_role_policy_attachment", "aws_iam_policy", "aws_iam_policy_attachment"]
  ) {
    assert.equal(module.resource[kind], undefined, `no ${kind}`);
  }
  const role = only(module.resource.aws_iam_role.lambda, "role");
  assert.equal(role.managed_policy_arns, undefined);
  const trust = only(module.data.aws_iam_policy_document.assume_lambda, "trust policy");
  assert.deepEqual(only(trust.statement, "trust statement").principals, [
    { type: "Service", identifiers: ["lambda.amazonaws.com"] },
  ]);
});

Deno.test("the seed report's variables, passed through to both regions", async () => {
  const tfvars = await parse(
    "terraform.tfvars",
    readFileSync(join(ROOT_CONFIG, "terraform.tfvars"), "utf8"),
  );
  assert.deepEqual(tfvars, {
    enable_leads_table_sync: true,
    enable_dashboard_table_sync: true,
    enable_firespring_sync: true,
    lambda_memory_size: LAMBDA_MEMORY_MB,
    batch_size: 10,
    log_retention_days: 7,
    enable_monitoring: true,
  });
  for (const name of Object.keys(tfvars)) assert.ok(root.variable[name], `variable ${name}`);
  for (const { name, instance } of instances) {
    for (const setting of ["lambda_memory_size", "batch_size", "log_retention_days"]) {
      assert.equal(instance[setting], `\${var.${setting}}`, `${name} gets ${setting}`);
    }
    assert.equal(instance.enable_monitoring, "${var.enable_monitoring}");
  }
  assert.match(
    instances.find((i) => i.name === "firespring_sync")!.instance.count,
    /enable_firespring_sync/,
  );
  assert.match(locals.us_east_2_tables, /enable_leads_table_sync \? \[local\.leads_table\]/);
  assert.match(
    locals.us_east_2_tables,
    /enable_dashboard_table_sync \? \[local\.dashboard_table\]/,
  );
});

Deno.test("the Edge Functions' AWS reader may only read the synced tables and their streams", () => {
  const reader = only(root.data.aws_iam_policy_document.supabase_reader, "reader policy");
  // The local stack's DynamoDB holds the functions' reader to the same lists
  // (local-stack/aws/iam_policies.ts).
  assert.deepEqual(reader.statement.map((s: Hcl) => [s.actions, s.resources]), [[
    READER_TABLE_ACTIONS,
    "${local.synced_table_arns}",
  ], [
    READER_STREAM_ACTIONS,
    "${local.synced_stream_arns}",
  ]]);
  assert.deepEqual(READER_TABLE_ACTIONS, [
    "dynamodb:Scan",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:DescribeTable",
  ]);
  const locals = Object.assign({}, ...root.locals);
  assert.equal(
    locals.synced_stream_arns,
    '${[for arn in local.synced_table_arns : "${arn}/stream/*"]}',
    "the streams of exactly the synced tables",
  );
  // No access key in Terraform: the operator creates it, so it is never in the state.
  assert.equal(root.resource.aws_iam_access_key, undefined);
});

Deno.test("the write-back's writer: UpdateItem only, per table exactly the registry's attributes", () => {
  const writer = only(root.data.aws_iam_policy_document.supabase_writer, "writer policy");
  // No static statement beside the one per table.
  assert.equal(writer.statement, undefined, "no statement outside the per-table one");
  const perTable = only(writer.dynamic.statement, "the per-table statement");
  assert.equal(perTable.for_each, "${local.synced_table_arn_by_name}");
  const content = only(perTable.content, "its content");
  assert.deepEqual(content.actions, ["dynamodb:UpdateItem"], "no other action");
  assert.deepEqual(content.actions, WRITER_ACTIONS, "the local stack's writer's");
  assert.deepEqual(content.resources, ["${statement.value}"], "that one table's ARN");
  assert.equal(content.not_actions, undefined);
  assert.equal(content.not_resources, undefined);
  assert.equal(content.effect ?? "Allow", "Allow");
  assert.deepEqual(content.condition, [
    {
      test: "ForAllValues:StringEquals",
      variable: "dynamodb:Attributes",
      values: "${local.write_back_attributes[statement.key]}",
    },
    {
      test: "StringEqualsIfExists",
      variable: "dynamodb:ReturnValues",
      values: [...WRITER_RETURN_VALUES],
    },
  ]);
  assert.deepEqual(WRITER_RETURN_VALUES, ["NONE", "UPDATED_OLD"]);

  // The table names → ARNs are the two module instances' tables, no wildcard.
  assert.equal(
    locals.synced_table_arn_by_name,
    "${merge(\n    try(module.firespring_sync[0].table_arns, {}),\n    try(module.mmp_toledo_sync[0].table_arns, {}),\n  )}",
  );
  // Every table's list is writeBackAttributes of the registry, and no table besides.
  const lists = locals.write_back_attributes as Record<string, string[]>;
  assert.deepEqual(
    Object.keys(lists).toSorted(),
    TABLES.map((t) => t.sourceTable).toSorted(),
    "one list per registry table",
  );
  for (const spec of TABLES) {
    assert.deepEqual(lists[spec.sourceTable], writeBackAttributes(spec), spec.sourceTable);
    assert.ok(!lists[spec.sourceTable].some((a) => a.includes("*")), "no wildcard");
    if (spec.deletedFlag) {
      assert.ok(!lists[spec.sourceTable].includes(spec.deletedFlag), "deletes stay denied");
    }
  }

  // The policy is the user's only one (managed: nine statements pass the 2,048 characters
  // of a user's inline policies), attached to the writer and nothing else.
  const policy = only(root.resource.aws_iam_policy.supabase_writer, "writer's policy");
  assert.equal(policy.policy, "${data.aws_iam_policy_document.supabase_writer[0].json}");
  assert.deepEqual(Object.keys(root.resource.aws_iam_policy).sort(), [
    "supabase_exporter",
    "supabase_writer",
  ]);
  const attached = only(
    root.resource.aws_iam_user_policy_attachment.supabase_writer,
    "writer's attachment",
  );
  assert.equal(attached.user, "${aws_iam_user.supabase_writer[0].name}");
  assert.equal(attached.policy_arn, "${aws_iam_policy.supabase_writer[0].arn}");
  assert.deepEqual(Object.keys(root.resource.aws_iam_user_policy_attachment).sort(), [
    "supabase_exporter",
    "supabase_writer",
  ]);
  for (const policies of Object.values(root.resource.aws_iam_user_policy) as Hcl[][]) {
    assert.notEqual(
      only(policies, "inline policy").user,
      "${aws_iam_user.supabase_writer[0].name}",
    );
  }
  assert.equal(
    only(root.variable.create_supabase_writer, "create_supabase_writer").default,
    true,
  );
  // No access key in Terraform for the writer either.
  assert.equal(root.resource.aws_iam_access_key, undefined);
});

Deno.test("exports: a private, encrypted, expiring bucket, and an exporter of its own may export only the synced tables", () => {
  const exporter = only(root.data.aws_iam_policy_document.supabase_exporter, "exporter policy");
  // The local stack's DynamoDB holds the exporter to the same lists (iam_policies.ts).
  assert.deepEqual(exporter.statement.map((s: Hcl) => [s.actions, s.resources]), [
    [EXPORTER_TABLE_ACTIONS, "${local.synced_table_arns}"],
    [EXPORTER_EXPORT_ACTIONS, "${local.synced_table_arns}"],
    [EXPORTER_FOLLOW_ACTIONS, '${[for arn in local.synced_table_arns : "${arn}/export/*"]}'],
    [EXPORTER_OBJECT_ACTIONS, ["${aws_s3_bucket.exports[0].arn}/*"]],
    [EXPORTER_BUCKET_ACTIONS, ["${aws_s3_bucket.exports[0].arn}"]],
  ]);
  const block = only(
    root.resource.aws_s3_bucket_public_access_block.exports,
    "public access block",
  );
  for (
    const setting of [
      "block_public_acls",
      "block_public_policy",
      "ignore_public_acls",
      "restrict_public_buckets",
    ]
  ) {
    assert.equal(block[setting], true, setting);
  }
  const tls = only(root.data.aws_iam_policy_document.exports_bucket, "bucket policy").statement[0];
  assert.equal(tls.effect, "Deny");
  assert.deepEqual(tls.condition[0].variable, "aws:SecureTransport");
  const lifecycle = only(root.resource.aws_s3_bucket_lifecycle_configuration.exports, "lifecycle");
  assert.equal(lifecycle.rule[0].expiration[0].days, "${var.export_expiration_days}");
  // The exporter is a user of its own with a managed policy: the functions' reader key
  // cannot export, and the reader's inline policy with this one passed the 2,048
  // characters a user's inline policies may hold.
  const policy = only(root.resource.aws_iam_policy.supabase_exporter, "exporter's policy");
  assert.equal(policy.policy, "${data.aws_iam_policy_document.supabase_exporter[0].json}");
  const attached = only(
    root.resource.aws_iam_user_policy_attachment.supabase_exporter,
    "exporter's attachment",
  );
  assert.equal(attached.user, "${aws_iam_user.supabase_exporter[0].name}");
  assert.equal(root.resource.aws_iam_user_policy?.supabase_exporter, undefined);
});

Deno.test("monitoring: alarms on the DLQ, on failed batches lost to replay and on iterator age, only when enabled", () => {
  const alarms = module.resource.aws_cloudwatch_metric_alarm;
  assert.deepEqual(Object.keys(alarms).toSorted(), [
    "dead_letters",
    "destination_failures",
    "iterator_age",
  ]);
  for (const alarm of Object.values(alarms) as Hcl[][]) {
    assert.equal(only(alarm, "alarm").count, "${var.enable_monitoring ? 1 : 0}");
  }
  assert.equal(
    only(alarms.dead_letters, "alarm").metric_name,
    "ApproximateNumberOfMessagesVisible",
  );
  assert.equal(only(alarms.iterator_age, "alarm").metric_name, "IteratorAge");
  assert.equal(
    only(alarms.destination_failures, "alarm").metric_name,
    "DestinationDeliveryFailures",
  );
  // The DLQ's depth counts the bucket's failed batches: S3 says each one to it.
  const notification = only(module.resource.aws_s3_bucket_notification.failures, "notification");
  const queue = only(notification.queue, "queue");
  assert.equal(queue.queue_arn, "${aws_sqs_queue.dead_letters.arn}");
  assert.deepEqual(queue.events, ["s3:ObjectCreated:*"]);
  assert.equal(queue.filter_prefix, "aws/lambda/");
  assert.equal(moduleDefault("enable_monitoring"), false);
});
