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
 * Tables are told apart by the access key and region of the request's credential scope,
 * as DynamoDB Local keeps one database per access key and region.
 *
 * @module
 */

import {
  CapacityThrottle,
  type Item,
  MIN_READ_UNITS,
  Reservation,
  throughputExceeded,
  unitsByTable,
} from "./capacity.ts";
import {
  decideError,
  type ErrorDecision,
  FOLLOW_UP_HEADER,
  internalServerError,
  WRITE_OPERATIONS,
} from "./errors.ts";
import type { Faults } from "./faults.ts";
import { History, keyText, type Random } from "./history.ts";
import { applyStale, type Body, writtenKeys } from "./stale_reads.ts";
import { KeyLocks } from "./key_locks.ts";
import { KeySchemas, SchemaUnknown } from "./key_schema.ts";
import {
  askingForConditionItem,
  clientErrorText,
  failedConditionCharge,
} from "./failed_conditions.ts";
import { awsJsonText } from "./json_answer.ts";
import { scopeOf } from "./scope.ts";
import { callUpstream, passUpstream, relayed } from "./upstream.ts";
import { parseStreamArn, type StreamTimes } from "./stream_times.ts";
import type { IdlePolls } from "./idle_polls.ts";
import { Descriptions } from "./descriptions.ts";
import { streamReads } from "./stream_reads.ts";
import {
  type RequestItems,
  withUnprocessed,
  WriteCapacity,
  writeCharges,
} from "./write_capacity.ts";

const READ_OPERATIONS = new Set(["GetItem", "BatchGetItem", "Query", "Scan"]);

/** The target prefix of DynamoDB's table operations (not of its streams). */
const TABLE_TARGET = "DynamoDB_20120810.";
const STREAMS_TARGET = "DynamoDBStreams_20120810.";

/**
 * Whether an operation may add stream records: any but the reads and the Describe, List,
 * Get and TransactGet operations (PartiQL included, whatever its statement).
 */
function mayWriteStreams(operation: string): boolean {
  return !READ_OPERATIONS.has(operation) && !/^(Describe|List|Get|TransactGet)/.test(operation);
}

/**
 * The table a DescribeTable or DescribeStream is about (descriptions.ts); undefined for
 * any other request, or one whose body does not parse (DynamoDB Local's to refuse).
 */
function describedTable(target: string, raw: ArrayBuffer | undefined): string | undefined {
  const operation = target === `${TABLE_TARGET}DescribeTable`
    ? "DescribeTable"
    : target === "DynamoDBStreams_20120810.DescribeStream"
    ? "DescribeStream"
    : undefined;
  if (!operation) return undefined;
  try {
    const body = JSON.parse(new TextDecoder().decode(raw));
    if (operation === "DescribeTable") {
      return typeof body?.TableName === "string" ? body.TableName : undefined;
    }
    return typeof body?.StreamArn === "string" ? parseStreamArn(body.StreamArn)?.table : undefined;
  } catch {
    return undefined;
  }
}

/** A table operation on its way to DynamoDB Local, its faults drawn (`forward`, below). */
interface Forwarding {
  request: Request;
  raw: ArrayBuffer | undefined;
  operation: string;
  /** The client's request, parsed. */
  body: Body;
  /** What goes on: `body`, or a batch's part its write capacity admits. */
  sent: Body;
  /** A batch's requests held back, for its UnprocessedItems. */
  held: RequestItems;
  /** The capacity units it holds until answered (capacity.ts). */
  reservation: Reservation | undefined;
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

/** The proxy's request handler (for Deno.serve), with its history for sweeping. */
export function createProxy(options: ProxyOptions): {
  handle: (request: Request) => Promise<Response>;
  history: History;
} {
  const { upstream, faults } = options;
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  const log = options.log ?? (() => {});
  const history = new History(faults.staleMs, random);
  const throttle = new CapacityThrottle(faults.throttleRcu);
  const writes = faults.throttleWcu > 0 ? new WriteCapacity(faults.throttleWcu, now) : undefined;
  // Each table's key attributes and their types, by `scope/table` (key_schema.ts).
  const keySchemas = new KeySchemas();
  const { streamTimes, idlePolls } = options;
  const locks = new KeyLocks();

  const scope = scopeOf;

  const call = (headers: Headers, operation: string, body: Body) =>
    callUpstream(upstream, headers, operation, body);

  /**
   * Reads the key schemas of `tables`; undefined once known (or the table does not exist),
   * or the HTTP 500 to answer `operation` with when one cannot be read: what needs it is
   * refused, not let through unthrottled or unrecorded (key_schema.ts).
   */
  async function loadKeySchema(
    headers: Headers,
    tables: string[],
    operation: string,
  ): Promise<Response | undefined> {
    try {
      await keySchemas.load(
        scope(headers),
        tables,
        async (table) => (await call(headers, "DescribeTable", { TableName: table })).Table,
      );
      return undefined;
    } catch (error) {
      if (!(error instanceof SchemaUnknown)) throw error;
      log(`${operation} ${error.table}: ${error.message}; refused (not forwarded)`);
      return answer(500, internalServerError(operation, error.table, error.message));
    }
  }

  /** The current images of keys, read consistently from DynamoDB Local. */
  async function currentImages(
    headers: Headers,
    keys: { table: string; key: Item }[],
  ): Promise<Map<string, Item | null>> {
    const images = new Map<string, Item | null>();
    for (let i = 0; i < keys.length; i += 100) {
      const chunk = keys.slice(i, i + 100);
      const requestItems: Record<string, { Keys: Item[]; ConsistentRead: true }> = {};
      for (const { table, key } of chunk) {
        const entry = requestItems[table] ??= { Keys: [], ConsistentRead: true };
        if (!entry.Keys.some((k) => keyText(k) === keyText(key))) entry.Keys.push(key);
      }
      const result = await call(headers, "BatchGetItem", { RequestItems: requestItems });
      for (const { table, key } of chunk) images.set(`${table}\0${keyText(key)}`, null);
      for (
        const [table, items] of Object.entries((result.Responses ?? {}) as Record<string, Item[]>)
      ) {
        const names = keySchemas.get(`${scope(headers)}/${table}`)!.map((k) => k.name);
        for (const item of items) {
          const key = Object.fromEntries(names.map((n) => [n, item[n]]));
          images.set(`${table}\0${keyText(key)}`, item);
        }
      }
    }
    return images;
  }

  function tablesOf(operation: string, body: Body): string[] {
    if (typeof body.TableName === "string") return [body.TableName];
    if (operation === "BatchGetItem" || operation === "BatchWriteItem") {
      return Object.keys((body.RequestItems ?? {}) as Body);
    }
    if (operation === "TransactWriteItems") {
      return [
        ...new Set(
          ((body.TransactItems ?? []) as Body[]).flatMap((entry) =>
            Object.values(entry).map((op) => (op as Body).TableName as string)
          ),
        ),
      ];
    }
    return [];
  }

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
    try {
      return await tableOperation(request, raw, operation, (tables) => named = tables);
    } finally {
      writesHeard.written(named.map((t) => `${scope(request.headers)}/${t}`));
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
    // The units a request admitted takes at once, settled once answered (capacity.ts).
    let reservation: Reservation | undefined;
    if (isRead && faults.throttleRcu > 0) {
      const empty = tables.find((t) => !throttle.bucket(`${ns}/${t}`, now()).admit(now()));
      if (empty) {
        log(`${operation} ${empty}: read capacity spent, throttled`);
        return answer(400, throughputExceeded(empty));
      }
      reservation = new Reservation((t) => throttle.bucket(`${ns}/${t}`, now()), now);
      for (const t of tables) reservation.hold(t, MIN_READ_UNITS);
    }
    const keySchema = (table: string) => keySchemas.get(`${ns}/${table}`);
    // What goes on to DynamoDB Local: a batch's requests its tables' write capacity admits,
    // the others held back for UnprocessedItems (write_capacity.ts).
    let sent = body;
    let held: RequestItems = {};
    if (isWrite && writes) {
      const unknown = operation === "BatchWriteItem"
        ? await loadKeySchema(request.headers, tables, operation)
        : undefined;
      if (unknown) return unknown;
      const admitted = writes.admit(operation, body, ns, keySchema);
      if ("refused" in admitted) {
        log(`${operation} ${where ?? ""}: write capacity spent, throttled`);
        return answer(400, admitted.refused);
      }
      ({ forward: sent, held, reservation } = admitted);
    }
    try {
      return await forward({ request, raw, operation, body, sent, held, reservation, decision });
    } finally {
      reservation?.release(); // nothing if settled: held for a request that cost nothing
    }
  }

  /**
   * Sends `sent` (the client's `body`, or a batch's admitted part) on to DynamoDB Local and
   * answers the client: what it cost settled with `reservation`, a batch's `held`
   * requests added to its UnprocessedItems, stale reads applied, `decision`'s fault.
   */
  async function forward(
    { request, raw, operation, body, sent, held, reservation, decision }: Forwarding,
  ): Promise<Response> {
    const isRead = READ_OPERATIONS.has(operation);
    const isWrite = WRITE_OPERATIONS.has(operation);
    const tables = tablesOf(operation, body);
    const where = tables.length > 0 ? tables.join(", ") : undefined;
    const ns = scope(request.headers);
    const keyNames = (table: string) => keySchemas.get(`${ns}/${table}`)?.map((k) => k.name);
    // Ask for ConsumedCapacity when throttling needs it; strip it if the client did not.
    const asked = body.ReturnConsumedCapacity === "TOTAL" ||
      body.ReturnConsumedCapacity === "INDEXES";
    const counted = (isRead && faults.throttleRcu > 0) || (isWrite && writes !== undefined);
    const counting: Body = counted && !asked ? { ...sent, ReturnConsumedCapacity: "TOTAL" } : sent;
    // A failed condition's cost is the item it met: asked for, kept from the client unless
    // it asked too (failed_conditions.ts).
    const forwardBody = writes ? askingForConditionItem(operation, counting) : counting;
    const staleOn = faults.staleMs > 0 && (isRead || isWrite);
    const imagesOn = isWrite && (staleOn || streamTimes !== undefined);
    const unknown = staleOn || imagesOn
      ? await loadKeySchema(request.headers, tables, operation)
      : undefined;
    if (unknown) return unknown;
    const written = imagesOn ? writtenKeys(operation, sent, keyNames) : [];
    // One write of a key at a time, so that the images read around it are its own.
    const release = streamTimes && written.length > 0
      ? await locks.lock(written.map(({ table, key }) => `${ns}/${table}\0${keyText(key)}`))
      : () => {};
    const landed = streamTimes && written.length > 0 ? streamTimes.inFlight() : () => {};
    let response: Response;
    let text: string;
    try {
      // The images before the write, for keys the history does not hold by the time the
      // write is recorded (read for every key: a sweep may drop a key's history meanwhile).
      const before = written.length > 0 ? await currentImages(request.headers, written) : new Map();
      const wait = streamTimes && written.length > 0 ? streamTimes.delayBeforeForwarding(now()) : 0;
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const headers = new Headers(request.headers);
      headers.delete("host");
      headers.delete("content-length");
      const forwardedAt = now();
      response = await fetch(upstream, {
        method: "POST",
        headers,
        body: forwardBody === body ? raw : JSON.stringify(forwardBody),
      });
      text = await response.text();
      const answeredAt = now();
      // A refused write changed nothing; its images say so (and a stream has no record of it).
      if (written.length > 0 && (response.ok || streamTimes)) {
        const after = await currentImages(request.headers, written);
        for (const { table, key } of written) {
          const id = `${table}\0${keyText(key)}`;
          const [was, is] = [before.get(id) ?? null, after.get(id) ?? null];
          if (staleOn && response.ok) history.record(`${ns}/${table}`, key, was, is, answeredAt);
          streamTimes?.recordWrite(`${ns}/${table}`, key, was, is, forwardedAt, answeredAt);
        }
      }
    } finally {
      landed();
      release();
    }
    if (!response.ok) {
      // Of refusals, only a failed condition costs anything (failed_conditions.ts).
      reservation?.settle(failedConditionCharge(operation, sent, text));
      return answer(response.status, clientErrorText(operation, body, text), response.headers);
    }

    let changed = forwardBody !== body;
    let json: Body | undefined;
    if (isRead && (faults.throttleRcu > 0 || staleOn)) {
      json = JSON.parse(text) as Body;
      if (faults.throttleRcu > 0) {
        reservation?.settle(unitsByTable(json.ConsumedCapacity));
        if (!asked) delete json.ConsumedCapacity;
      }
      if (staleOn) {
        changed = applyStale(
          operation,
          body,
          json,
          (t) => `${ns}/${t}`,
          keyNames,
          history,
          now(),
        ) || changed;
      }
    }
    if (isWrite && writes) {
      json = JSON.parse(text) as Body;
      reservation?.settle(writeCharges(operation, sent, json));
      if (!asked) delete json.ConsumedCapacity;
      if (Object.keys(held).length > 0) {
        json.UnprocessedItems = withUnprocessed(json.UnprocessedItems, held);
        changed = true;
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

  return { handle, history };
}
