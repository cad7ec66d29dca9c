/**
 * `stream-check`: the lost-record check (docs/interfaces.md, "stream-check";
 * docs/sync-semantics.md, "Lost stream records"). pg_cron calls it hourly; it reads each
 * table's DynamoDB stream, compares it with what the webhook applied and marks a table
 * stale when records were or may be lost. See functions-shared/stream_check_run.ts.
 * Its settings are read and checked once, here (functions-shared/settings.ts).
 */

import { isolateCpuMeter } from "../../../functions-shared/cpu_meter.ts";
import { dynamoClients } from "../../../functions-shared/dynamo_client.ts";
import { RunGate } from "../../../functions-shared/run_gate.ts";
import { acceptedServiceKeys } from "../../../functions-shared/service_auth.ts";
import { readSettings } from "../../../functions-shared/settings.ts";
import { STREAM_CHECK_SETTINGS } from "../../../functions-shared/function_settings.ts";
import { awsStreamReader, latestStreamArn } from "../../../functions-shared/stream_check_aws.ts";
import { handleStreamCheckRequest } from "../../../functions-shared/stream_check_run.ts";
import { describeDbTarget } from "../../../functions-shared/db_url.ts";
import {
  connectDb,
  dbPool,
  survivePooledConnectionLoss,
} from "../../../functions-shared/sync_db.ts";

// Created at cold start: the isolate's CPU, boot included (functions-shared/cpu_meter.ts).
const cpu = isolateCpuMeter();
const env = (name: string) => Deno.env.get(name);
const settings = readSettings(env, STREAM_CHECK_SETTINGS);
const serviceKeys = acceptedServiceKeys(env);
const sql = connectDb(settings.db, dbPool(settings));
survivePooledConnectionLoss();
console.log(`stream-check: database ${describeDbTarget(settings.db)}`);
// One client per region, for DynamoDB and its Streams alike.
const dynamo = dynamoClients(env);
const gate = new RunGate(1);

Deno.serve((req) =>
  handleStreamCheckRequest(req, {
    sql,
    serviceKeys,
    streamArnOf: (spec) => latestStreamArn(dynamo(spec.region), spec.sourceTable),
    readerOf: (spec, arn) => awsStreamReader(dynamo(spec.region), arn),
    cpu,
    budget: { cpuMs: settings.cpuBudgetMs, wallMs: settings.wallBudgetMs },
    gate,
    log: (line) => console.log(line),
  })
);
