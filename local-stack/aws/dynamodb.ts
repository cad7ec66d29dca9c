/**
 * AWS's DynamoDB Local (its jar, installed by local-stack/aws/dynamodb_local_install.ts),
 * in memory, on an internal port (DYNAMODB_INTERNAL_PORT): clients reach it through the
 * DynamoDB proxy at DYNAMODB_ENDPOINT (local-stack/aws/proxy.ts), which is as strict as
 * the real service where DynamoDB Local is kinder; only the demo data set's load fills
 * new tables straight into it, before their streams are on, as DynamoDB's import from S3
 * does (fillNewTable, local-stack/aws/source_tables.ts). Streams are built in.
 *
 * In memory because its disk mode (SQLite) writes a few dozen items a second here, far
 * too slow for the report's 48,124 items; the source data is demo data that `npm start`
 * loads again, and a fresh DynamoDB Local means fresh streams, so the stack forgets the
 * stream poller's checkpoints when it starts one.
 *
 * Started without `-sharedDb`, so that DynamoDB Local keeps one database per access key
 * and region as AWS keeps tables per region: us-east-1 and us-east-2 stay apart.
 *
 * @module
 */

import { join } from "node:path";
import { DYNAMODB_INTERNAL_PORT, HOST } from "../config.ts";
import { DYNAMODB_LOCAL_DIR as EMULATOR_DIR } from "./dynamodb_local_install.ts";
import {
  logFile,
  portOpen,
  portTaken,
  runningPid,
  startDetached,
  stopDetached,
  waitFor,
} from "../processes.ts";

const NAME = "dynamodb";

/** Starts DynamoDB Local unless it already runs; resolves once it accepts requests. */
export async function startDynamo(): Promise<"started" | "reused"> {
  if (runningPid(NAME) !== undefined && await portOpen(HOST, DYNAMODB_INTERNAL_PORT)) {
    return "reused";
  }
  // One of ours on another port (before the proxy came, it listened where the proxy does).
  await stopDetached(NAME);
  if (await portOpen(HOST, DYNAMODB_INTERNAL_PORT)) {
    throw portTaken(DYNAMODB_INTERNAL_PORT, "DynamoDB Local");
  }
  startDetached({
    name: NAME,
    command: "java",
    args: [
      "-Xmx1g",
      // Its own CPU, not what it answers: C1 alone compiles far less than C1 then C2, and
      // the serial collector runs no concurrent GC threads beside the stack on two cores.
      // Measured over `npm start`: DynamoDB Local used 62-68 s of CPU with the JVM's
      // defaults and 48-51 s with these (three runs each); the run's wall time, bound by
      // the read budgets, moved less than its spread (61-64 s against 57-65 s).
      "-XX:TieredStopAtLevel=1",
      "-XX:+UseSerialGC",
      `-Djava.library.path=${join(EMULATOR_DIR, "DynamoDBLocal_lib")}`,
      "-jar",
      join(EMULATOR_DIR, "DynamoDBLocal.jar"),
      "-port",
      String(DYNAMODB_INTERNAL_PORT),
      "-inMemory",
    ],
    cwd: EMULATOR_DIR,
  });
  await waitFor(
    "DynamoDB Local",
    () => portOpen(HOST, DYNAMODB_INTERNAL_PORT),
    60_000,
    logFile(NAME),
  );
  return "started";
}

/** The process id of the running DynamoDB Local, if one runs. */
export function dynamoLocalPid(): number | undefined {
  return runningPid(NAME);
}

/** Stops DynamoDB Local; returns whether it was running. */
export async function stopDynamo(): Promise<boolean> {
  return await stopDetached(NAME);
}
