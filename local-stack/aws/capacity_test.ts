import assert from "node:assert/strict";
import {
  BURST_SECONDS,
  CapacityBucket,
  CapacityThrottle,
  itemSize,
  readUnits,
  Reservation,
  throughputExceeded,
  unitsByTable,
} from "./capacity.ts";

Deno.test("item sizes follow AWS's rules", () => {
  assert.equal(itemSize({ k: { S: "abc" } }), 4);
  assert.equal(itemSize({ n: { N: "12345" } }), 1 + 3 + 1);
  assert.equal(itemSize({ n: { N: "-0.00120" } }), 1 + 1 + 1);
  assert.equal(itemSize({ b: { BOOL: true }, z: { NULL: true } }), 4);
  assert.equal(itemSize({ l: { L: [{ S: "ab" }, { S: "c" }] } }), 1 + 3 + (1 + 2) + (1 + 1));
  assert.equal(itemSize({ m: { M: { x: { S: "y" } } } }), 1 + 3 + (1 + 1 + 1));
  assert.equal(itemSize({ bin: { B: btoa("\x01\x02\x03") } }), 3 + 3);
});

Deno.test("read units: 4 KB blocks, halved when eventually consistent, per item or summed", () => {
  assert.equal(readUnits([3500], true, true), 1);
  assert.equal(readUnits([10 * 1024], true, true), 3);
  assert.equal(readUnits([10 * 1024], false, true), 1.5);
  // BatchGetItem: 1.5 KB + 6.5 KB = 4 KB + 8 KB = 3 units, not 2.
  assert.equal(readUnits([1536, 6656], true, true), 3);
  // Scan: summed, then rounded once.
  assert.equal(readUnits([1536, 6656], true, false), 2);
  assert.equal(readUnits([], false, false), 0.5);
});

Deno.test("ConsumedCapacity is read per table, as an object or a list", () => {
  assert.deepEqual(unitsByTable({ TableName: "t", CapacityUnits: 1.5 }), new Map([["t", 1.5]]));
  assert.deepEqual(
    unitsByTable([{ TableName: "a", CapacityUnits: 1 }, { TableName: "b", CapacityUnits: 2 }]),
    new Map([["a", 1], ["b", 2]]),
  );
  assert.equal(unitsByTable(undefined).size, 0);
});

Deno.test("a bucket starts with one second, admits while above zero, refills at the rate", () => {
  const bucket = new CapacityBucket(300, 0);
  assert.ok(bucket.admit(0));
  bucket.charge(256, 0);
  assert.ok(bucket.admit(0));
  bucket.charge(256, 0);
  assert.equal(bucket.tokens(0), -212);
  assert.equal(bucket.admit(0), false);
  assert.equal(bucket.admit(500), false); // -212 + 150
  assert.ok(bucket.admit(800)); // -212 + 240
});

Deno.test("unused capacity is kept for one second by default (the contract's rule), at most 300 (AWS's)", () => {
  assert.equal(new CapacityBucket(10, 0).tokens(3_600_000), 10, "reads beyond 10 a second");
  assert.equal(new CapacityBucket(10, 0, BURST_SECONDS).tokens(3_600_000), 10 * BURST_SECONDS);
});

Deno.test("each table has its own bucket; the error is AWS's", () => {
  const throttle = new CapacityThrottle(1);
  throttle.bucket("a", 0).charge(5, 0);
  assert.equal(throttle.bucket("a", 0).admit(0), false);
  assert.ok(throttle.bucket("b", 0).admit(0));
  const body = JSON.parse(throughputExceeded("a"));
  assert.equal(
    body.__type,
    "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
  );
  assert.match(body.message, /provisioned throughput .* exceeded.*table a/);
});

Deno.test("a bucket holds 300 seconds of capacity, not a unit more", () => {
  const bucket = new CapacityBucket(10, 0, 300);
  assert.equal(bucket.tokens(3_600_000), 3000);
  bucket.charge(3000, 3_600_000);
  assert.equal(bucket.tokens(3_900_000), 3000);
});

Deno.test("a bucket spent to exactly zero admits no read", () => {
  const bucket = new CapacityBucket(4, 0);
  bucket.charge(4, 0);
  assert.equal(bucket.tokens(0), 0);
  assert.equal(bucket.admit(0), false);
  assert.ok(bucket.admit(1));
});

Deno.test("a clock that goes back refills nothing", () => {
  const bucket = new CapacityBucket(10, 10_000);
  bucket.charge(10, 10_000);
  assert.equal(bucket.admit(5_000), false);
  assert.equal(bucket.tokens(5_000), 0);
});

Deno.test("ConsumedCapacity entries of one table add up", () => {
  assert.deepEqual(
    unitsByTable([
      { TableName: "a", CapacityUnits: 2 },
      { TableName: "b", CapacityUnits: 1 },
      { TableName: "a", CapacityUnits: 3 },
    ]),
    new Map([["a", 5], ["b", 1]]),
  );
});

Deno.test("a reservation holds units at once, then charges the difference from the cost", () => {
  const throttle = new CapacityThrottle(4);
  const bucket = (table: string) => throttle.bucket(table, 0);
  const first = new Reservation(bucket, () => 0);
  first.hold("a", 3);
  assert.equal(throttle.bucket("a", 0).tokens(0), 1, "a second request sees what is held");
  const second = new Reservation(bucket, () => 0);
  second.hold("a", 3);
  assert.equal(throttle.bucket("a", 0).admit(0), false, "nor is a third admitted");
  first.settle(new Map([["a", 5]]));
  assert.equal(throttle.bucket("a", 0).tokens(0), -4, "cost 5: 2 more than held");
  second.settle(new Map([["a", 1], ["b", 2]]));
  assert.equal(throttle.bucket("a", 0).tokens(0), -2, "cost 1: 2 back");
  assert.equal(throttle.bucket("b", 0).tokens(0), 2, "a table not held is charged in full");
  second.settle(new Map([["a", 100]]));
  second.release();
  assert.equal(throttle.bucket("a", 0).tokens(0), -2, "settled once");
});

Deno.test("units held while a request is in flight are not forgiven by the refill of a full bucket", () => {
  // A full bucket of 300 units (1 a second), a write of 50 answered a minute later:
  // charged only once answered it would leave 250, and so must holding it meanwhile.
  let clock = 3_600_000;
  const bucket = new CapacityBucket(1, 0, BURST_SECONDS);
  assert.equal(bucket.tokens(clock), BURST_SECONDS);
  const write = new Reservation(() => bucket, () => clock);
  write.hold("a", 50);
  clock += 60_000;
  assert.equal(bucket.tokens(clock), BURST_SECONDS - 50, "the refill stops short of what is held");
  write.settle(new Map([["a", 50]]));
  assert.equal(bucket.tokens(clock), BURST_SECONDS - 50);
  clock += 10_000;
  assert.equal(bucket.tokens(clock), BURST_SECONDS - 40, "then refills at its rate");
});

Deno.test("a released reservation gives everything back, never past the bucket's 300 seconds", () => {
  const bucket = new CapacityBucket(1, 0);
  const held = new Reservation(() => bucket, () => 0);
  held.hold("a", 0.5);
  held.hold("a", 0.5);
  assert.equal(bucket.tokens(0), 0);
  held.release();
  assert.equal(bucket.tokens(0), 1);
  let clock = 3_600_000;
  const full = new CapacityBucket(1, 0, BURST_SECONDS);
  const late = new Reservation(() => full, () => clock);
  late.hold("a", 10);
  clock += 20_000; // full again meanwhile
  late.release();
  assert.equal(full.tokens(clock), BURST_SECONDS);
});
