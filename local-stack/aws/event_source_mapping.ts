/**
 * An emulation of AWS Lambda's event source mapping for DynamoDB Streams, which cannot
 * run here, following its documented behaviour: records of one shard are handed to the
 * function in order, in batches of at most `batchSize` records and at most
 * under `EVENT_LIMIT_BYTES` (mapping_batches.ts) of event (Lambda's synchronous payload limit); with
 * ReportBatchItemFailures the function's `batchItemFailures` make it retry from the first
 * failed record; an invocation that throws or times out is retried, split in two first
 * when BisectBatchOnFunctionError is on; once `maxRetryAttempts` is spent the batch's
 * shard and sequence-number range (not its records) goes to the on-failure destination
 * and the mapping moves on. Records older than `maxRecordAgeS` are not handed to the
 * function at all, before a first invocation or a retry: their range goes to the
 * on-failure destination ("MaximumRecordAgeInSeconds – Discard records older than the
 * specified age", CreateEventSourceMapping in AWS's Lambda API reference; a mapping that
 * cannot invoke the function "retries until the records expire or exceed the maximum
 * age", https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html). So
 * a mapping turned on again after more than that, or behind by more, sends the oldest
 * records' ranges there, not to the webhook.
 *
 * @module
 */

import { RunGate, whenAdmitted } from "../../functions-shared/run_gate.ts";
import type { BatchResponse, StreamRecord } from "../../lambda/stream_records.ts";
import type { LambdaFunction } from "./lambda_environments.ts";
import { batchesOf } from "./mapping_batches.ts";

/**
 * The on-failure destination's message: the shape Lambda sends to SQS or SNS, and, with
 * `payload`, to S3.
 */
export interface StreamFailureMessage {
  requestContext: {
    requestId: string;
    functionArn: string;
    condition: "RetryAttemptsExhausted" | "RecordAgeExceeded";
    approximateInvokeCount: number;
  };
  responseContext: { statusCode: number; executedVersion: string; functionError?: string };
  version: "1.0";
  timestamp: string;
  DDBStreamBatchInfo: {
    shardId: string;
    startSequenceNumber: string;
    endSequenceNumber: string;
    approximateArrivalOfFirstRecord: string;
    approximateArrivalOfLastRecord: string;
    batchSize: number;
    streamArn: string;
  };
  /**
   * S3 destinations only: the failed invocation's event, its records ("For Amazon S3
   * destinations, Lambda also sends the entire invocation record along with the
   * metadata"), as "an escaped JSON string" of `{"Records": [...]}`
   * (https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html).
   */
  payload?: string;
}

/** How long DynamoDB Streams keeps a record: 24 hours. */
const STREAM_RETENTION_S = 24 * 60 * 60;

/** The mapping's settings. */
export interface MappingConfig {
  /**
   * The function: `LambdaEnvironments`' invoke (an invocation that times out is stopped),
   * or `inProcess(handler)` for a test's fake.
   */
  invoke: LambdaFunction;
  batchSize: number;
  /** -1: retry until the records expire (AWS's default). */
  maxRetryAttempts: number;
  /**
   * Seconds after which a record (by its ApproximateCreationDateTime) goes to the
   * on-failure destination instead of the function; -1: never (AWS's default).
   */
  maxRecordAgeS: number;
  bisectBatchOnFunctionError: boolean;
  functionTimeoutMs: number;
  /** Pause before a retry: grows from this, doubling, to 30 s. */
  retryBaseDelayMs: number;
  /**
   * The on-failure destination: the message, and the records it names (which an S3
   * destination keeps, as `payload`; SQS and SNS get the message alone).
   */
  onFailure: (message: StreamFailureMessage, records: StreamRecord[]) => Promise<void>;
  functionArn?: string;
  /**
   * Invocations at once of the function of a region (one Lambda per region, its reserved
   * concurrency), across the shards of all its tables; none: no limit. A mapping "unable
   * to invoke the function due to throttling" retries until the records expire or pass
   * their maximum age (https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html):
   * here a batch waits for a free place, and its records' age is checked once it has one.
   */
  reservedConcurrency?: number;
  /** The clock, in ms (tests replace it). */
  now?: () => number;
}

type Outcome = { kind: "ok" } | { kind: "partial"; from: number } | {
  kind: "error";
  message: string;
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Hands the records of one shard to the function the way Lambda does. */
export class EventSourceMapping {
  #gates = new Map<string, RunGate>();
  constructor(readonly config: MappingConfig) {}

  /**
   * Runs `work` once a place to invoke the function of the stream's region is free (see
   * `reservedConcurrency`), in the order asked for.
   */
  #inPlace<T>(streamArn: string, work: () => Promise<T>): Promise<T> {
    const limit = this.config.reservedConcurrency;
    if (limit === undefined) return work();
    const region = streamArn.split(":")[3] ?? "";
    let gate = this.#gates.get(region);
    if (!gate) this.#gates.set(region, gate = new RunGate(limit));
    return whenAdmitted(gate, work);
  }

  /** Processes records (all of one shard, in order) until each is delivered or dead-lettered. */
  async process(streamArn: string, shardId: string, records: StreamRecord[]): Promise<void> {
    for (const batch of batchesOf(records, this.config.batchSize)) {
      await this.deliver(streamArn, shardId, batch, 0);
    }
  }

  private async invoke(records: StreamRecord[]): Promise<Outcome> {
    try {
      const response = await this.config.invoke(
        { Records: records },
        this.config.functionTimeoutMs,
      );
      const failed = (response as BatchResponse | undefined)?.batchItemFailures ?? [];
      if (failed.length === 0) return { kind: "ok" };
      // Retry from the lowest failed sequence number (an unknown identifier fails the batch).
      const indexes = failed.map((f) =>
        records.findIndex((r) => r.dynamodb?.SequenceNumber === f.itemIdentifier)
      );
      if (indexes.some((i) => i < 0)) return { kind: "partial", from: 0 };
      return { kind: "partial", from: Math.min(...indexes) };
    } catch (error) {
      return { kind: "error", message: (error as Error).message };
    }
  }

  private async deliver(
    streamArn: string,
    shardId: string,
    records: StreamRecord[],
    attempts: number,
  ): Promise<void> {
    let batch = records;
    let tries = attempts;
    while (batch.length > 0) {
      const current = batch;
      const step = await this.#inPlace(
        streamArn,
        async (): Promise<{ expired: number } | { outcome: Outcome }> => {
          const expired = this.expiredHead(current);
          if (expired === 0) return { outcome: await this.invoke(current) };
          if (this.config.maxRecordAgeS < 0 || this.config.maxRecordAgeS > STREAM_RETENTION_S) {
            // No age limit within the stream's retention: retried until the stream trims
            // the records, and then lost.
            console.error(
              `${expired} records of ${shardId} from ${
                current[0].dynamodb?.SequenceNumber ?? "?"
              } passed the stream's 24 h retention undelivered: trimmed, lost`,
            );
            return { expired };
          }
          const old = current.slice(0, expired);
          await this.config.onFailure(
            this.failureMessage(streamArn, shardId, old, tries, { condition: "RecordAgeExceeded" }),
            old,
          );
          return { expired };
        },
      );
      if ("expired" in step) {
        batch = batch.slice(step.expired);
        continue;
      }
      const outcome = step.outcome;
      if (outcome.kind === "ok") return;
      if (outcome.kind === "partial") batch = batch.slice(outcome.from);
      if (outcome.kind === "error" && this.config.bisectBatchOnFunctionError && batch.length > 1) {
        // "Splitting batches doesn't consume the retry quota"
        // (https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html): a
        // batch is split before its retries are counted, so with them spent only the
        // records that fail alone reach the on-failure destination.
        await sleep(this.config.retryBaseDelayMs);
        const half = Math.ceil(batch.length / 2);
        await this.deliver(streamArn, shardId, batch.slice(0, half), tries);
        await this.deliver(streamArn, shardId, batch.slice(half), tries);
        return;
      }
      const limit = this.config.maxRetryAttempts;
      if (limit >= 0 && tries >= limit) {
        await this.config.onFailure(
          this.failureMessage(streamArn, shardId, batch, tries + 1, {
            condition: "RetryAttemptsExhausted",
            outcome,
          }),
          batch,
        );
        return;
      }
      tries++;
      await sleep(Math.min(30_000, this.config.retryBaseDelayMs * 2 ** Math.min(tries - 1, 10)));
    }
  }

  /**
   * How many records at the head of `batch` are older than `maxRecordAgeS` (a shard's
   * records come in the order they were written, so the expired ones lead).
   */
  private expiredHead(batch: StreamRecord[]): number {
    // -1 (no limit): a record is retried until the stream trims it, at 24 h
    // (https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-params.html: "failed
    // records are retried until the record expires").
    // A limit past the retention (AWS allows up to 7 days) meets the trim first.
    const limit = this.config.maxRecordAgeS < 0
      ? STREAM_RETENTION_S
      : Math.min(this.config.maxRecordAgeS, STREAM_RETENTION_S);
    const oldest = (this.config.now ?? Date.now)() - limit * 1000;
    let n = 0;
    while (n < batch.length && (createdMs(batch[n]) ?? Infinity) < oldest) n++;
    return n;
  }

  private failureMessage(
    streamArn: string,
    shardId: string,
    batch: StreamRecord[],
    invocations: number,
    why: { condition: StreamFailureMessage["requestContext"]["condition"]; outcome?: Outcome },
  ): StreamFailureMessage {
    const arrival = (r: StreamRecord) => new Date(createdMs(r) ?? 0).toISOString();
    const outcome = why.outcome;
    return {
      requestContext: {
        requestId: crypto.randomUUID(),
        functionArn: this.config.functionArn ??
          "arn:aws:lambda:us-east-1:000000000000:function:stream-forwarder",
        condition: why.condition,
        approximateInvokeCount: invocations,
      },
      responseContext: {
        statusCode: 200,
        executedVersion: "$LATEST",
        ...(outcome?.kind === "error" ? { functionError: "Unhandled" } : {}),
      },
      version: "1.0",
      timestamp: new Date().toISOString(),
      DDBStreamBatchInfo: {
        shardId,
        startSequenceNumber: batch[0].dynamodb!.SequenceNumber!,
        endSequenceNumber: batch.at(-1)!.dynamodb!.SequenceNumber!,
        approximateArrivalOfFirstRecord: arrival(batch[0]),
        approximateArrivalOfLastRecord: arrival(batch.at(-1)!),
        batchSize: batch.length,
        streamArn,
      },
    };
  }
}

/** When a record was written: its ApproximateCreationDateTime (seconds), in ms. */
function createdMs(record: StreamRecord): number | undefined {
  const seconds = (record.dynamodb as { ApproximateCreationDateTime?: number } | undefined)
    ?.ApproximateCreationDateTime;
  return seconds === undefined ? undefined : seconds * 1000;
}
