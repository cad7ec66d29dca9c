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
  UpdateTableCommand,
} from "@aws-sdk/client-dynamodb";
import { TABLES, type TableSpec } from "../functions-shared/table_registry.ts";
import { awsClientConfig } from "../functions-shared/dynamo_client.ts";
import { type StackEnv, stackEnvReader } from "./stack_env.ts";

/** A DynamoDB client of the stack's DynamoDB (through its proxy) in `region`. */
export function localDynamo(env: StackEnv, region: string): DynamoDBClient {
  return new DynamoDBClient(awsClientConfig(stackEnvReader(env), region));
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
 * Turns a table's stream on, as one does on AWS before a backfill. Bulk loads go in
 * before it: DynamoDB Local writes items a hundred times slower once a stream keeps
 * records of them.
 */
export async function enableStream(client: DynamoDBClient, spec: TableSpec): Promise<void> {
  const { Table } = await client.send(new DescribeTableCommand({ TableName: spec.sourceTable }));
  if (Table?.StreamSpecification?.StreamEnabled) return;
  await client.send(
    new UpdateTableCommand({ TableName: spec.sourceTable, StreamSpecification: STREAM }),
  );
}

/**
 * Makes sure all nine tables exist (those it makes with their streams unless `streams` is
 * false), all at once; returns the names it created, in the registry's order.
 */
export async function ensureSourceTables(env: StackEnv, streams = true): Promise<string[]> {
  const made = await Promise.all(
    TABLES.map((spec) => ensureSourceTable(localDynamo(env, spec.region), spec, streams)),
  );
  return TABLES.filter((_, i) => made[i]).map((spec) => spec.sourceTable);
}
