/**
 * Offline checks of the Terraform, on its parsed HCL (`@cdktf/hcl2json`, HashiCorp's own
 * parser built to WebAssembly): they need neither terraform nor AWS. Every source table of
 * the registry has exactly one stream mapping, in the Lambda of its own region, with the
 * settings of the real-time sync; the Lambda's IAM policy grants only the stream reads,
 * the DLQ send, the one secret (and its own logs); the Lambda is configured the way
 * lambda/stream_forwarder.ts reads its settings, on a Node.js runtime AWS has not
 * deprecated as of the day the test runs. `terraform fmt`, `validate` and
 * `terraform test` (mocked providers) run beside these in `npm test` when terraform is
 * installed.
 */

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
// @ts-types="./hcl2json.d.ts"
import { parse } from "@cdktf/hcl2json";
import { TABLES } from "../../functions-shared/table_registry.ts";
import { ZIP } from "../../lambda/build.ts";
import { LAMBDA_NODE_MAJOR, NODE_VERSION } from "../../lambda/lambda_node.ts";
import { AWS_PROVIDER_MIN, mirroredVersions, versionAtLeast } from "./terraform_cli.ts";
import { DEPLOYED_MAPPING } from "../../local-stack/event_source_mapping.ts";

const HERE = new URL(".", import.meta.url).pathname;
const ROOT_CONFIG = join(HERE, "mmp-toledo-sync");
const MODULE = join(HERE, "modules", "stream-sync");

// deno-lint-ignore no-explicit-any
type Hcl = Record<string, any>;

/** Parses every .tf file of a directory into one object, as terraform reads them together. */
async function loadConfig(dir: string): Promise<Hcl> {
  const merged: Hcl = {};
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".tf")).sort()) {
    const parsed = await parse(file, readFileSync(join(dir, file), "utf8"));
    for (const [kind, blocks] of Object.entries(parsed)) {
      if (Array.isArray(blocks)) merged[kind] = [...(merged[kind] ?? []), ...blocks];
      else {
        merged[kind] ??= {};
        // `module.NAME: [..]`, `variable.NAME: [..]`, or `resource.TYPE.NAME: [..]`.
        for (const [key, value] of Object.entries(blocks as Hcl)) {
          merged[kind][key] = Array.isArray(value)
            ? [...(merged[kind][key] ?? []), ...value]
            : { ...merged[kind][key], ...value };
        }
      }
    }
  }
  return merged;
}

const root = await loadConfig(ROOT_CONFIG);
const module = await loadConfig(MODULE);
const locals: Hcl = Object.assign({}, ...root.locals);

/** The value of a block that appears once (hcl2json gives every block as a list). */
function only<T = Hcl>(blocks: T[] | undefined, what: string): T {
  assert.equal(blocks?.length, 1, `exactly one ${what}`);
  return blocks![0];
}

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

Deno.test("each mapping: NEW_AND_OLD_IMAGES, batch 10, partial failures, bisect, bounds, DLQ", () => {
  const mapping = only(module.resource.aws_lambda_event_source_mapping.stream, "mapping");
  assert.deepEqual(mapping.function_response_types, ["ReportBatchItemFailures"]);
  assert.equal(mapping.bisect_batch_on_function_error, true);
  assert.equal(mapping.batch_size, "${var.batch_size}");
  assert.equal(moduleDefault("batch_size"), 10);
  assert.equal(mapping.maximum_retry_attempts, "${var.maximum_retry_attempts}");
  assert.equal(mapping.maximum_record_age_in_seconds, "${var.maximum_record_age_in_seconds}");
  const retries = moduleDefault("maximum_retry_attempts") as number;
  const age = moduleDefault("maximum_record_age_in_seconds") as number;
  assert.ok(retries >= 0 && retries <= 10_000, "retries bounded (never -1, infinite)");
  assert.ok(age > 0 && age < 24 * 3600, "record age bounded, under the stream's 24 h retention");
  assert.equal(
    only(only(mapping.destination_config, "destination").on_failure, "on_failure")
      .destination_arn,
    "${aws_sqs_queue.dead_letters.arn}",
  );
  assert.equal(mapping.event_source_arn, "${each.value.stream_arn}");
  assert.equal(mapping.function_name, "${aws_lambda_function.forwarder.arn}");
  const [check] = only(mapping.lifecycle, "lifecycle").precondition;
  assert.match(check.condition, /stream_view_type == "NEW_AND_OLD_IMAGES"/);
  assert.match(check.error_message, /Table \$\{each\.key\} has no stream with NEW_AND_OLD_IMAGES/);
  assert.deepEqual(Object.keys(module.resource.aws_sqs_queue), ["dead_letters"]);

  // The local stack's emulated mappings behave as the deployed ones.
  assert.deepEqual(DEPLOYED_MAPPING, {
    batchSize: moduleDefault("batch_size"),
    maxRetryAttempts: retries,
    bisectBatchOnFunctionError: mapping.bisect_batch_on_function_error,
    functionTimeoutMs: (moduleDefault("lambda_timeout") as number) * 1000,
  });
});

Deno.test("the Lambda: Node 22, ARM64, 128 MB, reserved concurrency 5, settings it reads", () => {
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
  assert.equal(moduleDefault("lambda_memory_size"), 128);
  assert.equal(lambda.reserved_concurrent_executions, "${var.reserved_concurrency}");
  assert.equal(moduleDefault("reserved_concurrency"), 5);
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

/** Where AWS publishes the schedule of the Lambda runtimes. */
const RUNTIMES_PAGE = "https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html";

/** AWS's schedule for one Node.js runtime of Lambda (dates as YYYY-MM-DD, UTC). */
interface NodeRuntimeSchedule {
  /** The runtime identifier, as `runtime` of an aws_lambda_function. */
  runtime: string;
  /** "Deprecation date": no more security patches or support; the test refuses it from then. */
  deprecated: string;
  /** "Block function create": Lambda refuses to create a function on it from this day. */
  blockCreate: string;
  /** "Block function update": Lambda refuses to update a function on it from this day. */
  blockUpdate: string;
}

/**
 * The Node.js runtimes of AWS Lambda with their deprecation dates, from the "Supported
 * runtimes" and "Deprecated runtimes" tables of
 * https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html (also
 * https://docs.aws.amazon.com/lambda/latest/dg/lambda-nodejs.html), as published in July
 * 2026. AWS has moved the block dates of deprecated runtimes more than once (nodejs20.x:
 * Jun 1 / Jul 1 2026, then Aug 31 / Sep 30 2026, then Feb 1 / Mar 3 2027); the deprecation
 * dates have not moved, and they are what the test below keys on. Add the next runtime
 * here when AWS publishes it.
 */
const NODE_RUNTIMES: readonly NodeRuntimeSchedule[] = [
  {
    runtime: "nodejs18.x",
    deprecated: "2025-09-01",
    blockCreate: "2027-02-01",
    blockUpdate: "2027-03-03",
  },
  {
    runtime: "nodejs20.x",
    deprecated: "2026-04-30",
    blockCreate: "2027-02-01",
    blockUpdate: "2027-03-03",
  },
  {
    runtime: "nodejs22.x",
    deprecated: "2027-04-30",
    blockCreate: "2027-06-01",
    blockUpdate: "2027-07-01",
  },
  {
    runtime: "nodejs24.x",
    deprecated: "2028-04-30",
    blockCreate: "2028-06-01",
    blockUpdate: "2028-07-01",
  },
];

/**
 * Why `runtime` must not be deployed on `today` (YYYY-MM-DD), or undefined when it may:
 * a runtime missing from {@link NODE_RUNTIMES}, or one whose deprecation date has come,
 * named with its dates and the runtime of the table to move to.
 */
function runtimeProblem(runtime: string, today: string): string | undefined {
  const schedule = NODE_RUNTIMES.find((entry) => entry.runtime === runtime);
  if (schedule === undefined) {
    return `${runtime} is not in NODE_RUNTIMES (infrastructure/terraform/terraform_test.ts): ` +
      `add its dates from ${RUNTIMES_PAGE}`;
  }
  if (today < schedule.deprecated) return undefined;
  const supported = NODE_RUNTIMES.filter((entry) => today < entry.deprecated)
    .toSorted((a, b) => a.deprecated.localeCompare(b.deprecated));
  const newest = supported.at(-1);
  const moveTo = newest === undefined
    ? `none of NODE_RUNTIMES is supported any more: add the newest nodejsNN.x from ` +
      `${RUNTIMES_PAGE} to the table and move to it`
    : `move to ${newest.runtime} (deprecated on ${newest.deprecated})`;
  return `${runtime} was deprecated by AWS Lambda on ${schedule.deprecated} (no security ` +
    `patches; creating functions blocked from ${schedule.blockCreate}, updating them from ` +
    `${schedule.blockUpdate}; ${RUNTIMES_PAGE}): ${moveTo}: the runtime in ` +
    `infrastructure/terraform/modules/stream-sync/main.tf, LAMBDA_NODE_MAJOR and ` +
    `NODE_VERSION in lambda/lambda_node.ts (the build target follows), the README`;
}

/** The runtime an aws_lambda_function sets: a literal, or the default of `var.NAME`. */
function runtimeOf(config: Hcl, lambda: Hcl): string {
  const reference = typeof lambda.runtime === "string"
    ? lambda.runtime.match(/^\$\{var\.(\w+)\}$/)?.[1]
    : undefined;
  if (reference === undefined) return lambda.runtime;
  return only(config.variable?.[reference], `variable "${reference}"`).default;
}

Deno.test("every Lambda runs on a Node.js runtime that AWS has not deprecated as of today", () => {
  const today = new Date().toISOString().slice(0, 10);
  const checked: string[] = [];
  const configs: [string, Hcl][] = [["mmp-toledo-sync", root], ["modules/stream-sync", module]];
  for (const [where, config] of configs) {
    const functions: Record<string, Hcl[]> = config.resource?.aws_lambda_function ?? {};
    for (const [name, blocks] of Object.entries(functions)) {
      const runtime = runtimeOf(config, only(blocks, `aws_lambda_function.${name}`));
      const problem = runtimeProblem(runtime, today);
      assert.equal(problem, undefined, `${where}: aws_lambda_function.${name}: ${problem}`);
      checked.push(`${where}: ${name}: ${runtime}`);
    }
  }
  assert.ok(checked.length > 0, "the Terraform has Lambdas to check");
});

Deno.test("both configurations require the AWS provider the checks run with", () => {
  // AWS_PROVIDER_MIN (terraform_cli.ts) is 5.40.0: `>= 5.40` in versions.tf.
  const minimum = AWS_PROVIDER_MIN.replace(/\.0$/, "");
  for (const config of [root, module]) {
    const required = only(
      only(config.terraform, "terraform block").required_providers,
      "providers",
    );
    assert.deepEqual(required.aws, { source: "hashicorp/aws", version: `>= ${minimum}, < 7.0` });
  }
  assert.ok(versionAtLeast("5.100.0", AWS_PROVIDER_MIN), "the image's mirror has 5.100.0");
  assert.ok(versionAtLeast("6.42.1", AWS_PROVIDER_MIN));
  assert.ok(!versionAtLeast("5.39.9", AWS_PROVIDER_MIN));
  assert.ok(versionAtLeast("6.19.0", "6.19.0") && !versionAtLeast("6.18.9", "6.19.0"));

  // A mirror's versions, in either layout of `terraform providers mirror`.
  const dir = Deno.makeTempDirSync();
  try {
    const aws = join(dir, "registry.terraform.io", "hashicorp", "aws");
    Deno.mkdirSync(join(aws, "5.100.0", "linux_amd64"), { recursive: true });
    Deno.writeTextFileSync(join(aws, "terraform-provider-aws_6.42.0_linux_amd64.zip"), "");
    Deno.writeTextFileSync(join(aws, "6.40.0.json"), "{}");
    assert.deepEqual(mirroredVersions(dir).toSorted(), ["5.100.0", "6.42.0"]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("the runtime check refuses a runtime from its deprecation date, naming what to use", () => {
  assert.equal(runtimeProblem("nodejs24.x", "2026-11-28"), undefined);
  assert.equal(runtimeProblem("nodejs24.x", "2028-04-29"), undefined);
  assert.equal(runtimeProblem("nodejs20.x", "2026-04-29"), undefined);

  const node20 = runtimeProblem("nodejs20.x", "2026-11-28");
  assert.match(node20!, /^nodejs20\.x was deprecated by AWS Lambda on 2026-04-30 /);
  assert.match(
    node20!,
    /creating functions blocked from 2027-02-01, updating them from 2027-03-03/,
  );
  assert.match(node20!, /move to nodejs24\.x \(deprecated on 2028-04-30\)/);
  assert.match(
    node20!,
    /https:\/\/docs\.aws\.amazon\.com\/lambda\/latest\/dg\/lambda-runtimes\.html/,
  );

  const node24 = runtimeProblem("nodejs24.x", "2028-04-30");
  assert.match(node24!, /^nodejs24\.x was deprecated by AWS Lambda on 2028-04-30 /);
  assert.match(node24!, /none of NODE_RUNTIMES is supported any more/);

  assert.match(runtimeProblem("nodejs16.x", "2026-11-28")!, /not in NODE_RUNTIMES/);

  // The table itself: one entry per runtime, each block after its deprecation.
  const names = NODE_RUNTIMES.map((entry) => entry.runtime);
  assert.deepEqual(names, [...new Set(names)]);
  for (const entry of NODE_RUNTIMES) {
    for (const date of [entry.deprecated, entry.blockCreate, entry.blockUpdate]) {
      assert.match(date, /^\d{4}-\d{2}-\d{2}$/);
      assert.equal(new Date(`${date}T00:00:00Z`).toISOString().slice(0, 10), date);
    }
    assert.ok(entry.deprecated < entry.blockCreate, `${entry.runtime}: create blocked later`);
    assert.ok(entry.blockCreate < entry.blockUpdate, `${entry.runtime}: update blocked later`);
  }
});

Deno.test("the IAM policy grants only the stream reads, the DLQ send, the secret, its logs", () => {
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
    {
      actions: ["sqs:SendMessage"],
      resources: ["${aws_sqs_queue.dead_letters.arn}"],
      effect: "Allow",
    },
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
    lambda_memory_size: 128,
    batch_size: 10,
    log_retention_days: 7,
    enable_monitoring: false,
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

Deno.test("the Edge Functions' AWS reader may only read the synced tables", () => {
  const reader = only(root.data.aws_iam_policy_document.supabase_reader, "reader policy");
  assert.deepEqual(reader.statement.map((s: Hcl) => [s.actions, s.resources]), [[
    ["dynamodb:Scan", "dynamodb:GetItem", "dynamodb:Query", "dynamodb:DescribeTable"],
    "${local.synced_table_arns}",
  ]]);
  // No access key in Terraform: the operator creates it, so it is never in the state.
  assert.equal(root.resource.aws_iam_access_key, undefined);
});

Deno.test("monitoring: alarms on the DLQ and on iterator age, only when enabled", () => {
  const alarms = module.resource.aws_cloudwatch_metric_alarm;
  assert.deepEqual(Object.keys(alarms).toSorted(), ["dead_letters", "iterator_age"]);
  for (const alarm of Object.values(alarms) as Hcl[][]) {
    assert.equal(only(alarm, "alarm").count, "${var.enable_monitoring ? 1 : 0}");
  }
  assert.equal(
    only(alarms.dead_letters, "alarm").metric_name,
    "ApproximateNumberOfMessagesVisible",
  );
  assert.equal(only(alarms.iterator_age, "alarm").metric_name, "IteratorAge");
  assert.equal(moduleDefault("enable_monitoring"), false);
});
