/**
 * Write capacity, counted and throttled as AWS does for a provisioned table
 * (`throttle_wcu` of DYNAMODB_FAULTS, local-stack/aws/faults.ts), as read capacity is
 * (local-stack/aws/capacity.ts): a token bucket per table refilled at `throttle_wcu` write
 * units a second, holding up to 300 seconds of unused capacity and starting with one
 * second's; a write is admitted while its table's bucket is above zero and charged, once
 * answered, what it cost (the cost of a write is known only after it ran: the item it
 * replaced counts). Admitted, it takes at once what it is expected to cost (a put its
 * item's units, an update or delete one, a transaction twice its actions'), and the
 * difference once answered (capacity.ts, `Reservation`): writes in flight at once, a
 * loader's parallel batches, share one bucket, as writes one after another do.
 *
 * Counting. AWS's Developer Guide, "DynamoDB read and write operations", capacity unit
 * consumption for write operations
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html#write-operation-consumption):
 * one write unit per 1 KB, rounded up; PutItem and UpdateItem cost the larger of the item
 * before and after, DeleteItem the deleted item; BatchWriteItem rounds each item up, then
 * adds, and "Delete operations on nonexistent items consume one write capacity unit" (API
 * reference, BatchWriteItem, below). A transaction does "two underlying reads or writes of
 * every item", one to prepare and one to commit (Developer Guide, "Amazon DynamoDB
 * Transactions: How it works", capacity management,
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html).
 * The proxy asks DynamoDB Local for `ConsumedCapacity` and charges what it reports. Checked
 * by hand against DynamoDB Local 1.25.1: a PutItem of 1,024 bytes costs 1, of 1,025 bytes
 * 2; an overwrite of a 3.5 KB item by a 100-byte one 4; an UpdateItem adding a number to
 * a 2.5 KB item 3, one removing most of it 3; a DeleteItem of a 1,025-byte item 2, of a
 * missing one 1; a BatchWriteItem of 500 bytes and 3.5 KB 5: AWS's numbers. It differs in
 * three places. Stricter, and left so: a BatchWriteItem's delete of a missing item costs 2,
 * and a transaction's Put, Update or Delete four times its units (AWS: twice). Kinder, and
 * made up for here: a transaction's ConditionCheck costs nothing, so a transaction is
 * charged at least two units per action on each table ({@link writeCharges}); and a write
 * whose condition fails is answered without `ConsumedCapacity`, where AWS charges it by
 * the size of the item the condition met, one unit when there is none
 * (failed_conditions.ts).
 *
 * Refusing. A PutItem, UpdateItem or DeleteItem on a table whose bucket is not above zero
 * gets HTTP 400 ProvisionedThroughputExceededException, the read throttle's own answer
 * (`throughputExceeded`). A TransactWriteItems is canceled whole: HTTP 400
 * TransactionCanceledException, which DynamoDB answers when "there is insufficient
 * provisioned capacity for the transaction to be completed", a reason per action in order,
 * `ProvisionedThroughputExceeded` for those on a spent table and `None` for the others
 * (API reference, TransactWriteItems, errors, and TransactionCanceledException's reason
 * codes and messages,
 * https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html),
 * in the shape DynamoDB Local gives a canceled transaction.
 *
 * A BatchWriteItem writes what the buckets admit and answers the rest as unprocessed: "If
 * any requested operations fail because the table's provisioned throughput is exceeded or
 * an internal processing failure occurs, the failed operations are returned in the
 * UnprocessedItems response parameter", and "If none of the items can be processed due to
 * insufficient provisioned throughput on all of the tables in the request, then
 * BatchWriteItem returns a ProvisionedThroughputExceededException" (API reference,
 * BatchWriteItem,
 * https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchWriteItem.html).
 * Each table's requests are taken in order, each admitted while the table's tokens (less
 * what writes in flight hold), less what the requests admitted before it are expected to
 * cost, stay above zero; the proxy forwards a smaller batch of those, and answers
 * the rest in `UnprocessedItems`, keyed by table name, each request as it was sent. A
 * batch that DynamoDB refuses whole (batch_refusal.ts: more than 25 requests, a table with
 * none, a request that is not exactly one put or one delete, a key that does not match
 * the table's key schema or twice in a table, an item over 400 KB or with a value
 * DynamoDB refuses, a table that does not exist) is never split: it goes on whole, unthrottled, and DynamoDB Local refuses it as
 * AWS does, before any capacity is counted. One on a table whose key schema the proxy
 * cannot read is not let through: it gets HTTP 500 InternalServerError (key_schema.ts).
 *
 * `error_rate` (errors.ts) is drawn first, as for reads: a 500 instead of forwarding costs
 * nothing; a 500 after forwarding replaces the answer of what was written (the smaller
 * batch, when one was split), which is charged. A client retries the whole batch, as it
 * would on AWS, whose 500 says nothing of what was written.
 *
 * @module
 */

import {
  CapacityThrottle,
  type Item,
  itemSize,
  Reservation,
  THROUGHPUT_EXCEEDED_MESSAGE,
  throughputExceeded,
  unitsByTable,
} from "./capacity.ts";
import { refusedWhole } from "./batch_refusal.ts";
import type { KeyAttribute } from "./key_schema.ts";

type Body = Record<string, unknown>;

/** One request of a BatchWriteItem: a put or a delete. */
export interface WriteRequest {
  PutRequest?: { Item?: Item };
  DeleteRequest?: { Key?: Item };
}

/** A BatchWriteItem's requests by table name (its `RequestItems`, its `UnprocessedItems`). */
export type RequestItems = Record<string, WriteRequest[]>;

/** Write units of writing an item of `bytes`: 1 KB blocks, rounded up, at least one. */
export function writeUnits(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / 1024));
}

/** What a batch's request is expected to cost: a put its item's units, a delete one. */
function expectedUnits(request: WriteRequest): number {
  const item = request.PutRequest?.Item;
  return item ? writeUnits(itemSize(item)) : 1;
}

/** The least a transaction's action writes: a Put its item's units, any other one. */
function actionUnits(action: Body): number {
  const item = (action?.Put as Body | undefined)?.Item as Item | undefined;
  return item ? writeUnits(itemSize(item)) : 1;
}

/** A BatchWriteItem's requests parted by what the tables' capacity admits. */
export interface BatchSplit {
  /** The requests to forward, by table; a table none of whose requests fit is left out. */
  admitted: RequestItems;
  /** The others, by table, in order: the answer's `UnprocessedItems`. */
  unprocessed: RequestItems;
}

/**
 * Parts a BatchWriteItem's `RequestItems`: each table's requests in order, each admitted
 * while `tokens(table)`, less the expected units of the requests admitted before it, stays
 * above zero.
 */
export function splitBatch(
  requestItems: RequestItems,
  tokens: (table: string) => number,
): BatchSplit {
  const split: BatchSplit = { admitted: {}, unprocessed: {} };
  for (const [table, requests] of Object.entries(requestItems)) {
    let left = tokens(table);
    let fit = 0;
    while (fit < requests.length && left > 0) left -= expectedUnits(requests[fit++]);
    if (fit > 0) split.admitted[table] = requests.slice(0, fit);
    if (fit < requests.length) split.unprocessed[table] = requests.slice(fit);
  }
  return split;
}

/** The table a transaction's action (`{ Put: {...} }`, `{ Update: {...} }`...) is on. */
function actionTable(action: Body): string | undefined {
  const [detail] = Object.values(action ?? {}) as (Body | undefined)[];
  return typeof detail?.TableName === "string" ? detail.TableName : undefined;
}

/**
 * The body of the HTTP 400 TransactionCanceledException of a transaction some of whose
 * tables' capacity is spent (`spent`): a reason per action, in order.
 */
export function transactionThrottled(actions: Body[], spent: ReadonlySet<string>): string {
  const reasons = actions.map((action) =>
    spent.has(actionTable(action) ?? "")
      ? { Code: "ProvisionedThroughputExceeded", Message: THROUGHPUT_EXCEEDED_MESSAGE }
      : { Code: "None" }
  );
  return JSON.stringify({
    __type: "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
    CancellationReasons: reasons,
    Message: "Transaction cancelled, please refer cancellation reasons for specific reasons " +
      `[${reasons.map((r) => r.Code).join(", ")}]`,
  });
}

/**
 * The write units to charge each table for a write DynamoDB Local answered with `answer`:
 * what it reports in `ConsumedCapacity`, and for a TransactWriteItems at least two units
 * per action on the table (DynamoDB Local counts a ConditionCheck as nothing).
 */
export function writeCharges(operation: string, request: Body, answer: Body): Map<string, number> {
  const units = unitsByTable(answer.ConsumedCapacity);
  if (operation !== "TransactWriteItems") return units;
  const actions = new Map<string, number>();
  for (const action of (request.TransactItems ?? []) as Body[]) {
    const table = actionTable(action);
    if (table) actions.set(table, (actions.get(table) ?? 0) + 1);
  }
  for (const [table, count] of actions) {
    units.set(table, Math.max(units.get(table) ?? 0, 2 * count));
  }
  return units;
}

/**
 * `UnprocessedItems` of DynamoDB Local's answer (`answered`) with the requests the proxy
 * held back (`held`) after them, table by table.
 */
export function withUnprocessed(answered: unknown, held: RequestItems): RequestItems {
  const out: RequestItems = { ...(answered ?? {}) as RequestItems };
  for (const [table, requests] of Object.entries(held)) {
    out[table] = [...(out[table] ?? []), ...requests];
  }
  return out;
}

/** A write the proxy forwards, admitted by its tables' write capacity. */
export interface AdmittedWrite {
  /** The request to forward: a batch's admitted requests, or the request as it came. */
  forward: Body;
  /** A batch's requests held back, by table: to follow in its `UnprocessedItems`. */
  held: RequestItems;
  /**
   * The units taken for it as it was admitted: settled with what it cost once answered
   * ({@link writeCharges}; failed_conditions.ts), released if it cost nothing.
   */
  reservation: Reservation;
}

/**
 * The proxy's write capacity: a bucket per table (its key `scope/table`, as the read
 * buckets'), `perSecond` write units each, on the clock `now`. A write admitted takes its
 * expected units at once (capacity.ts, {@link Reservation}): writes in flight together
 * share one bucket.
 */
export class WriteCapacity {
  #throttle: CapacityThrottle;
  constructor(perSecond: number, readonly now: () => number, burstSeconds = 1) {
    this.#throttle = new CapacityThrottle(perSecond, burstSeconds);
  }

  #bucket(scope: string, table: string) {
    return this.#throttle.bucket(`${scope}/${table}`, this.now());
  }

  /**
   * Admits a PutItem, UpdateItem, DeleteItem, TransactWriteItems or BatchWriteItem, taking
   * its expected units, or gives the body of the HTTP 400 answer when its capacity is spent
   * (`refused`). A single write or a transaction goes on while each of its tables' buckets
   * is above zero; a batch is parted ({@link splitBatch}) unless DynamoDB refuses it whole
   * ({@link refusedWhole}), which goes on as it came, holding nothing.
   */
  admit(
    operation: string,
    request: Body,
    scope: string,
    keySchema: (table: string) => KeyAttribute[] | undefined,
  ): AdmittedWrite | { refused: string } {
    const reservation = new Reservation((table) => this.#bucket(scope, table), this.now);
    const admitted = (forward = request, held: RequestItems = {}) => ({
      forward,
      held,
      reservation,
    });
    if (operation === "BatchWriteItem") {
      if (refusedWhole(request.RequestItems, keySchema)) return admitted();
      const requestItems = request.RequestItems as RequestItems;
      const split = splitBatch(requestItems, (table) => this.tokens(scope, table));
      if (Object.keys(split.admitted).length === 0) {
        return { refused: throughputExceeded(Object.keys(requestItems)[0]) };
      }
      for (const [table, requests] of Object.entries(split.admitted)) {
        reservation.hold(table, requests.reduce((n, r) => n + expectedUnits(r), 0));
      }
      if (Object.keys(split.unprocessed).length === 0) return admitted();
      return admitted({ ...request, RequestItems: split.admitted }, split.unprocessed);
    }
    if (operation === "TransactWriteItems") {
      const actions = (request.TransactItems ?? []) as Body[];
      const tables = new Set(actions.map(actionTable).filter((t) => t !== undefined));
      const spent = new Set([...tables].filter((t) => !this.#bucket(scope, t).admit(this.now())));
      if (spent.size > 0) return { refused: transactionThrottled(actions, spent) };
      for (const action of actions) {
        const table = actionTable(action);
        if (table) reservation.hold(table, 2 * actionUnits(action));
      }
      return admitted();
    }
    const table = request.TableName;
    if (typeof table !== "string") return admitted();
    if (!this.#bucket(scope, table).admit(this.now())) {
      return { refused: throughputExceeded(table) };
    }
    const item = operation === "PutItem" ? request.Item as Item | undefined : undefined;
    reservation.hold(table, item ? writeUnits(itemSize(item)) : 1);
    return admitted();
  }

  /** The units left in a table's bucket (for tests and logs). */
  tokens(scope: string, table: string): number {
    return this.#bucket(scope, table).tokens(this.now());
  }
}
