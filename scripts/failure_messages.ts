/**
 * Lambda's on-failure messages as `npm run stream:replay` reads them
 * (replay_stream_failure.ts): the files named (a directory's files, whatever their
 * names), and each file's message, the SQS body or an SNS notification of it.
 *
 * @module
 */

import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { StreamFailureMessage } from "../local-stack/aws/event_source_mapping.ts";

/**
 * The message files named: a file as it is, a directory's files (any name: `split`
 * writes `dlq-aa`, `dlq-ab`, ...; not its subdirectories, such as `replayed/`, nor
 * hidden files). A path that does not exist is a problem, named.
 */
export function messageFiles(paths: string[]): { files: string[]; problems: string[] } {
  const files: string[] = [];
  const problems: string[] = [];
  for (const path of paths) {
    if (!existsSync(path)) {
      problems.push(`${path}: no such file or directory`);
    } else if (statSync(path).isDirectory()) {
      files.push(
        ...readdirSync(path).filter((f) => !f.startsWith(".")).sort().map((f) => join(path, f))
          .filter((f) => statSync(f).isFile()),
      );
    } else {
      files.push(path);
    }
  }
  return { files, problems };
}

/**
 * An on-failure message from its file: the SQS message's body, or an SNS notification
 * whose `Message` is that body. Throws naming what the file is not.
 */
export function readMessage(text: string): StreamFailureMessage {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new Error(`not JSON (${(error as Error).message})`);
  }
  const notification = body as { Type?: unknown; Message?: unknown };
  if (notification?.Type === "Notification" && typeof notification.Message === "string") {
    return readMessage(notification.Message);
  }
  const info = (body as { DDBStreamBatchInfo?: { streamArn?: unknown } })?.DDBStreamBatchInfo;
  if (typeof info?.streamArn !== "string") {
    throw new Error(
      "not an on-failure message of a DynamoDB stream mapping (it has no DDBStreamBatchInfo)",
    );
  }
  return body as StreamFailureMessage;
}
