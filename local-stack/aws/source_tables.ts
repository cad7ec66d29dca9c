/**
 * The nine source tables in DynamoDB Local, made from the table registry with streams
 * on (NEW_AND_OLD_IMAGES), each in its own region as on AWS. On AWS the tables exist
 * already; this is the local stand-in for them.
 *
 * @module
 */

import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceNotFoundException,
  ScanCommand,
  UpdateTableCommand,
} from "@aws-sdk/client-dynamodb";
import { TABLES, type TableSpec } from "../../functions-shared/table_registry.ts";
import { awsClientConfig } from "../../functions-shared/dynamo_client.ts";
import { DYNAMODB_INTERNAL_PORT, HOST } from "../config.ts";
import { type StackEnv, stackEnvReader } from "../stack_env.ts";

/** A source table: its name and region. */
type SourceTable = Pick<TableSpec, "sourceTable" | "region">;

/** A DynamoDB client of the stack's DynamoDB (through its proxy) in `region`; `maxAttempts` when given. */
export function localDynamo(
  env: StackEnv,
  region: string,
  maxAttempts?: number,
): DynamoDBClient {
  const config = awsClientConfig(stackEnvReader(env), region);
  return new DynamoDBClient(maxAttempts ? { ...config, maxAttempts } : config);
}

/**
 * Attempts of the stack's own calls through the proxy, which must ride out the faults it
 * injects for the code under test: with a fifth of the requests failing (as
 * write_back_test.ts sets them), five attempts of one of the nine DescribeTables of
 * `stack:up` all failed in about one start in 350; ten, in one in a million.
 */
const SETUP_ATTEMPTS = 10;

/**
 * A client of DynamoDB Local itself in `region`, past the proxy: for filling a new table
 * whose stream is still off, as DynamoDB's import from S3 fills one. That import writes a
 * new table outside the request path: it "does not consume write capacity on the new
 * table" (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataImport.HowItWorks.html),
 * so neither the proxy's throttling nor its faults apply, and the items are older than
 * any read, so no stale read can return an earlier image of them. Nothing else may write
 * through it ({@link fillNewTable} checks the table is empty and its stream off).
 */
function importingDynamo(env: StackEnv, region: string): DynamoDBClient {
  const endpoint = `http://${HOST}:${DYNAMODB_INTERNAL_PORT}`;
  return new DynamoDBClient(
    awsClientConfig(stackEnvReader({ ...env, DYNAMODB_ENDPOINT: endpoint }), region),
  );
}

/**
 * Fills `spec`'s table, new (empty, its stream off), by `write` (given a client past the
 * proxy: {@link importingDynamo}), as DynamoDB's import from S3 fills a new table, then
 * turns its stream on through the proxy; answers what `write` answered. Refuses a table
 * that holds items or whose stream is on, before writing, and fails if its stream was
 * turned on while it was filled: stream records of writes the proxy never saw would have
 * no stream times, and the proxy's idle polls would not know of them.
 */
export async function fillNewTable<T>(
  env: StackEnv,
  spec: SourceTable,
  write: (client: DynamoDBClient) => Promise<T>,
): Promise<T> {
  const client = localDynamo(env, spec.region);
  const where = `${spec.sourceTable} (${spec.region})`;
  const refuse = (why: string) =>
    new Error(
      `${where}: ${why}; only a new table, empty and without a stream, is filled past the ` +
        `proxy, as DynamoDB's import from S3 fills one`,
    );
  if (await streamOn(client, where, spec)) throw refuse("its stream is on");
  const { Count } = await client.send(
    new ScanCommand({ TableName: spec.sourceTable, Limit: 1, Select: "COUNT" }),
  );
  if (Count) throw refuse("it holds items");
  const importer = importingDynamo(env, spec.region);
  try {
    const answer = await write(importer);
    if (await streamOn(client, where, spec)) throw refuse("its stream was turned on meanwhile");
    // The stream goes on after the load, as one turns it on on AWS before a backfill (and
    // DynamoDB Local writes items a hundred times slower once a stream keeps records).
    await client.send(
      new UpdateTableCommand({ TableName: spec.sourceTable, StreamSpecification: STREAM }),
    );
    return answer;
  } finally {
    importer.destroy();
    client.destroy();
  }
}

/** Whether `spec`'s stream is on; an error names the table and region (`where`). */
async function streamOn(client: DynamoDBClient, where: string, spec: SourceTable) {
  try {
    const { Table } = await client.send(
      new DescribeTableCommand({ TableName: spec.sourceTable }),
    );
    return Table?.StreamSpecification?.StreamEnabled === true;
  } catch (error) {
    throw new Error(`${where}: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Creates a table unless it exists (with its stream unless `stream` is false); returns
 * whether it made it.
 */
export async function ensureSourceTable(
  client: DynamoDBClient,
  spec: TableSpec,
  stream = true,
): Promise<boolean> {
  try {
    await client.send(new DescribeTableCommand({ TableName: spec.sourceTable }));
    return false;
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException)) throw error;
  }
  await client.send(
    new CreateTableCommand({
      TableName: spec.sourceTable,
      KeySchema: spec.sourceKey.map((key, i) => ({
        AttributeName: key.name,
        KeyType: i === 0 ? "HASH" : "RANGE",
      })),
      AttributeDefinitions: spec.sourceKey.map((key) => ({
        AttributeName: key.name,
        AttributeType: key.type,
      })),
      BillingMode: "PAY_PER_REQUEST",
      ...(stream ? { StreamSpecification: STREAM } : {}),
    }),
  );
  return true;
}

const STREAM = { StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" } as const;

/**
 * Makes sure all nine tables exist (those it makes with their streams unless `streams` is
 * false), all at once; returns the names it created, in the registry's order.
 */
export async function ensureSourceTables(env: StackEnv, streams = true): Promise<string[]> {
  const made = await Promise.all(
    TABLES.map((spec) =>
      ensureSourceTable(localDynamo(env, spec.region, SETUP_ATTEMPTS), spec, streams)
    ),
  );
  return TABLES.filter((_, i) => made[i]).map((spec) => spec.sourceTable);
}
