/**
 * The Lambda's runtime and provider, on the Terraform's parsed HCL (parsed_hcl.ts): every
 * aws_lambda_function runs on a Node.js runtime AWS has not deprecated as of the day the
 * test runs (NODE_RUNTIMES, AWS's published schedule), and both configurations require
 * the AWS provider version the checks run with.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { AWS_PROVIDER_MIN, mirroredVersions, versionAtLeast } from "./terraform_cli.ts";
import { type Hcl, module, only, root } from "./parsed_hcl.ts";

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
    return `${runtime} is not in NODE_RUNTIMES (infrastructure/terraform/lambda_runtime_test.ts): ` +
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
  // AWS_PROVIDER_MIN (terraform_cli.ts) is 5.100.0: `>= 5.100` in versions.tf.
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
  assert.ok(
    !versionAtLeast("5.99.9", AWS_PROVIDER_MIN),
    "5.x releases before it may refuse nodejs22.x",
  );
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
