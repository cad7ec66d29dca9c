/**
 * The stack's DynamoDB as production serves it: a proxy at DYNAMODB_ENDPOINT in front of
 * DynamoDB Local (which listens on an internal port, local-stack/config.ts), injecting the
 * faults of DYNAMODB_FAULTS (local-stack/aws/faults.ts): stale eventually consistent reads
 * (local-stack/aws/stale_reads.ts), read throttling (local-stack/aws/capacity.ts), write
 * throttling (local-stack/aws/write_capacity.ts) and internal server errors
 * (local-stack/aws/errors.ts). With no faults it passes every
 * table operation through unchanged. Given `streamTimes`, it also answers GetRecords
 * (local-stack/aws/stream_reads.ts): records get the second their write took effect in,
 * and, given `idlePolls`, polls of an idle stream and descriptions of a table with no
 * write since are answered without DynamoDB Local (local-stack/aws/descriptions.ts).
 *
 * It speaks DynamoDB's JSON protocol (POST, `X-Amz-Target: DynamoDB_20120810.<Op>` or
 * `DynamoDBStreams_20120810.<Op>`, `application/x-amz-json-1.0`). Signatures are checked
 * before it (local-stack/aws/dynamodb_auth.ts; DynamoDB Local ignores them); headers are
 * forwarded as they came, and a body
 * only changes when a fault applies or a record is timed, with its `x-amz-crc32`
 * recomputed (the SDK checks it).
 * Its ARNs are DynamoDB Local's (`arn:aws:dynamodb:ddblocal:...`): the stack's edge in front
 * of it names the request's region in what goes out and takes it back out of what comes
 * in (local-stack/aws/region_arns.ts).
 * Tables are told apart by the access key and region of the request's credential scope,
 * as DynamoDB Local keeps one database per access key and region. Its parts: what a request
 * says (operations.ts), the key schemas it needs (schema_loading.ts), the capacity it takes
 * (operation_capacity.ts), the items as they are (current_images.ts), and a write sent
 * with its images noted (recorded_writes.ts, through upstream.ts's sendUpstream).
 *
 * @module
 */

import { CapacityThrottle } from "./capacity.ts";
import {
  decideError,
  type ErrorDecision,
  FOLLOW_UP_HEADER,
  internalServerError,
  WRITE_OPERATIONS,
} from "./errors.ts";
import type { Faults } from "./faults.ts";
import { History, type Random } from "./history.ts";
import { applyStale, type Body, writtenKeys } from "./stale_reads.ts";
import { KeyLocks } from "./key_locks.ts";
import { KeySchemas } from "./key_schema.ts";
import { clientErrorText } from "./failed_conditions.ts";
import { awsJsonText } from "./json_answer.ts";
import { scopeOf } from "./scope.ts";
import { callUpstream, passUpstream, relayed, sendUpstream } from "./upstream.ts";
import type { StreamTimes } from "./stream_times.ts";
import type { IdlePolls } from "./idle_polls.ts";
import { Descriptions } from "./descriptions.ts";
import { streamReads } from "./stream_reads.ts";
import { WriteCapacity } from "./write_capacity.ts";
import {
  describedTable,
  mayWriteStreams,
  READ_OPERATIONS,
  STREAMS_TARGET,
  TABLE_TARGET,
  tablesOf,
} from "./operations.ts";
import { currentImages } from "./current_images.ts";
import { sendRecorded } from "./recorded_writes.ts";
import { loadKeySchemas } from "./schema_loading.ts";
import { OperationCapacity } from "./operation_capacity.ts";
import { RECENT_WRITES_MS } from "./export_moments.ts";

/** A table operation on its way to DynamoDB Local, its faults drawn (`forward`, below). */
interface Forwarding {
  request: Request;
  raw: ArrayBuffer | undefined;
  operation: string;
  /** The client's request, parsed. */
  body: Body;
  /** What it is sent, admitted and charged by its tables' capacity. */
  capacity: OperationCapacity;
  decision: ErrorDecision;
}

/** What the proxy needs. */
export interface ProxyOptions {
  /** DynamoDB Local's address, e.g. http://127.0.0.1:9000. */
  upstream: string;
  faults: Faults;
  random?: Random;
  now?: () => number;
  log?: (line: string) => void;
  /**
   * When given, stream records get the second their write passed the proxy
   * (local-stack/aws/stream_times.ts): writes are serialised per key and their images noted.
   */
  streamTimes?: StreamTimes;
  /**
   * With `streamTimes`, polls of idle streams are answered here, and every operation that
   * may write is counted for them (local-stack/aws/idle_polls.ts).
   */
  idlePolls?: IdlePolls;
  /**
   * What changes when DynamoDB Local starts again, forgetting its tables (its process
   * id): answers kept for descriptions are dropped then (descriptions.ts).
   */
  upstreamEpoch?: () => string;
}

/** The proxy's request handler (for Deno.serve), with its histories for sweeping. */
export function createProxy(options: ProxyOptions): {
  handle: (request: Request) => Promise<Response>;
  history: History;
  recentWrites: History;
} {
  const { upstream, faults } = options;
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  const log = options.log ?? (() => {});
  const history = new History(faults.staleMs, random);
  // Every successful write whose images are read (always, with stream times), for exports
  // to take their items' versions from (export_moments.ts).
  const recentWrites = new History(RECENT_WRITES_MS, random);
  // Each table's read and write capacity, when throttled (operation_capacity.ts).
  const limits = {
    reads: faults.throttleRcu > 0
      ? new CapacityThrottle(faults.throttleRcu, faults.burstS)
      : undefined,
    writes: faults.throttleWcu > 0
      ? new WriteCapacity(faults.throttleWcu, now, faults.burstS)
      : undefined,
    now,
  };
  // Each table's key attributes and their types, by `scope/table` (key_schema.ts).
  const keySchemas = new KeySchemas();
  const { streamTimes, idlePolls } = options;
  // Writes sent with their images noted (recorded_writes.ts).
  const recording = { locks: new KeyLocks(), history, recentWrites, streamTimes, now };

  const scope = scopeOf;

  const call = (headers: Headers, operation: string, body: Body) =>
    callUpstream(upstream, headers, operation, body);

  const schemaLoading = {
    keySchemas,
    describe: async (headers: Headers, table: string) =>
      (await call(headers, "DescribeTable", { TableName: table })).Table,
    log,
  };

  const answer = awsJsonText;

  const passThrough = (request: Request, raw: ArrayBuffer | undefined) =>
    passUpstream(upstream, request, raw);
  const getRecords = streamTimes &&
    streamReads({ upstream, streamTimes, idlePolls, now });
  // The writes idle polls must hear of: only where GetRecords is answered here.
  const writesHeard = getRecords ? idlePolls : undefined;
  // Descriptions of tables with no write since, given again (descriptions.ts).
  const described = writesHeard &&
    new Descriptions(writesHeard, options.upstreamEpoch ?? (() => ""));

  async function handle(request: Request): Promise<Response> {
    const raw = request.method === "GET" || request.method === "HEAD"
      ? undefined
      : await request.arrayBuffer();
    const target = request.headers.get("x-amz-target") ?? "";
    // The network to AWS (latency_ms): DynamoDB's requests only; Streams pass through.
    if (faults.latencyMs > 0 && target.startsWith(TABLE_TARGET)) {
      await new Promise((resolve) => setTimeout(resolve, faults.latencyMs));
    }
    const operation = target.slice(target.indexOf(".") + 1);
    const followUp = request.headers.has(FOLLOW_UP_HEADER); // its faults drawn already
    if (
      target.startsWith(STREAMS_TARGET) && !followUp &&
      decideError(target, faults.errorRate, random) !== "none"
    ) {
      log(`${operation}: injected InternalServerError (not forwarded)`);
      return answer(500, internalServerError(operation, undefined));
    }
    if (getRecords && target === "DynamoDBStreams_20120810.GetRecords") {
      return await getRecords(request, raw);
    }
    const table = described && describedTable(target, raw);
    if (described && table) {
      // A kept answer fails as often as a forwarded one would (error_rate).
      if (!followUp && decideError(target, faults.errorRate, random) !== "none") {
        log(`${operation} ${table}: injected InternalServerError (not forwarded)`);
        return answer(500, internalServerError(operation, table));
      }
      const ns = scope(request.headers);
      const key = `${ns}\0${target}\0${new TextDecoder().decode(raw)}`;
      const ask = () => passThrough(request, raw);
      return await described.describe(key, `${ns}/${table}`, now(), ask);
    }
    if (request.method !== "POST" || !target.startsWith(TABLE_TARGET)) {
      return await passThrough(request, raw);
    }
    if (!writesHeard || !mayWriteStreams(operation)) {
      return await tableOperation(request, raw, operation, () => {});
    }
    // Counted once answered, when DynamoDB Local has the write's record (idle_polls.ts);
    // an operation that is passed through before its tables are read counts for all.
    let named: string[] = [];
    const keys = (tables: string[]) => tables.map((t) => `${scope(request.headers)}/${t}`);
    try {
      return await tableOperation(request, raw, operation, (tables) => {
        named = tables;
        writesHeard.began(keys(tables));
      });
    } finally {
      writesHeard.written(keys(named));
    }
  }

  /** A DynamoDB operation: faults applied; `noteTables` is told the tables it names. */
  async function tableOperation(
    request: Request,
    raw: ArrayBuffer | undefined,
    operation: string,
    noteTables: (tables: string[]) => void,
  ): Promise<Response> {
    const isRead = READ_OPERATIONS.has(operation);
    const isWrite = WRITE_OPERATIONS.has(operation);
    if (!isRead && !isWrite && faults.errorRate === 0) return await passThrough(request, raw);
    let body: Body;
    try {
      body = JSON.parse(new TextDecoder().decode(raw));
    } catch {
      return await passThrough(request, raw);
    }
    const tables = tablesOf(operation, body);
    noteTables(tables);
    const where = tables.length > 0 ? tables.join(", ") : undefined;
    const decision = decideError(TABLE_TARGET + operation, faults.errorRate, random);
    if (decision === "fail before forwarding") {
      log(`${operation} ${where ?? ""}: injected InternalServerError (not forwarded)`);
      return answer(500, internalServerError(operation, where));
    }
    const ns = scope(request.headers);
    // A batch's write admission needs its tables' key schemas (batch_refusal.ts).
    if (isWrite && limits.writes && operation === "BatchWriteItem") {
      const unknown = await loadKeySchemas(schemaLoading, request.headers, tables, operation);
      if (unknown) return unknown;
    }
    // The units it takes at once, settled once answered; what goes on to DynamoDB Local
    // (a batch's requests its tables' write capacity admits) (operation_capacity.ts).
    const capacity = new OperationCapacity(limits, operation, body);
    const refused = capacity.admit(ns, tables, (table) => keySchemas.get(`${ns}/${table}`));
    if (refused) {
      log(refused.log);
      return answer(400, refused.answer);
    }
    try {
      return await forward({ request, raw, operation, body, capacity, decision });
    } finally {
      capacity.release(); // nothing if settled: held for a request that cost nothing
    }
  }

  /**
   * Sends what `capacity` admitted (the client's `body`, or a batch's admitted part) on to
   * DynamoDB Local and answers the client: what it cost settled with `capacity`, stale
   * reads applied, `decision`'s fault.
   */
  async function forward(
    { request, raw, operation, body, capacity, decision }: Forwarding,
  ): Promise<Response> {
    const isRead = READ_OPERATIONS.has(operation);
    const isWrite = WRITE_OPERATIONS.has(operation);
    const tables = tablesOf(operation, body);
    const where = tables.length > 0 ? tables.join(", ") : undefined;
    const ns = scope(request.headers);
    const keyNames = (table: string) => keySchemas.get(`${ns}/${table}`)?.map((k) => k.name);
    const sent = capacity.sent;
    // Asking for the ConsumedCapacity and failed condition's item its cost needs.
    const forwardBody = capacity.request();
    const staleOn = faults.staleMs > 0 && (isRead || isWrite);
    const imagesOn = isWrite && (staleOn || streamTimes !== undefined);
    const unknown = staleOn || imagesOn
      ? await loadKeySchemas(schemaLoading, request.headers, tables, operation)
      : undefined;
    if (unknown) return unknown;
    const written = imagesOn ? writtenKeys(operation, sent, keyNames) : [];
    // The current images of keys, read consistently from DynamoDB Local.
    const batchGet = (read: Body) => call(request.headers, "BatchGetItem", read);
    const sending = forwardBody === body ? raw : JSON.stringify(forwardBody);
    const { response, text } = await sendRecorded(recording, {
      scope: ns,
      written,
      stale: staleOn,
      images: (keys) => currentImages(batchGet, (table) => keyNames(table)!, keys),
      send: () => sendUpstream(upstream, request.headers, sending),
    });
    if (!response.ok) {
      capacity.refused(text);
      return answer(response.status, clientErrorText(operation, body, text), response.headers);
    }

    let changed = forwardBody !== body;
    let json: Body | undefined;
    if (capacity.counted || (isRead && staleOn)) {
      json = JSON.parse(text) as Body;
      changed = capacity.answered(json) || changed;
      if (isRead && staleOn) {
        const scoped = (table: string) => `${ns}/${table}`;
        changed = applyStale(operation, body, json, scoped, keyNames, history, now()) || changed;
      }
    }
    if (decision === "fail after forwarding") {
      log(
        `${operation} ${where ?? ""}: injected InternalServerError (after the write took effect)`,
      );
      return answer(500, internalServerError(operation, where));
    }
    if (!changed || !json) return relayed(response, text);
    return answer(response.status, JSON.stringify(json), response.headers);
  }

  return { handle, history, recentWrites };
}
