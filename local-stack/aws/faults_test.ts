import assert from "node:assert/strict";
import { describeFaults, NO_FAULTS, parseFaults } from "./faults.ts";

Deno.test("an empty or missing DYNAMODB_FAULTS means no faults", () => {
  assert.deepEqual(parseFaults(undefined), NO_FAULTS);
  assert.deepEqual(parseFaults(""), NO_FAULTS);
  assert.deepEqual(parseFaults(" , "), NO_FAULTS);
  assert.deepEqual(parseFaults(" none "), NO_FAULTS);
  assert.equal(describeFaults(parseFaults("none")), "none");
  assert.equal(describeFaults(parseFaults("")), "none");
});

Deno.test("every setting is read, in any order, with spaces", () => {
  const faults = parseFaults(" error_rate=0.02, stale_ms=2000 ,throttle_rcu=300");
  assert.deepEqual(faults, {
    staleMs: 2000,
    throttleRcu: 300,
    throttleWcu: 0,
    burstS: 1,
    errorRate: 0.02,
    latencyMs: 0,
    stallRate: 0,
    stallMs: 0,
  });
  assert.equal(describeFaults(faults), "stale_ms=2000,throttle_rcu=300,error_rate=0.02");
  // AWS's burst, past the contract's per-second rule, only when asked for.
  const burst = parseFaults("throttle_rcu=300,burst_s=300");
  assert.equal(burst.burstS, 300);
  assert.equal(describeFaults(burst), "throttle_rcu=300,burst_s=300");
  assert.throws(() => parseFaults("burst_s=0"), /burst_s="0" is not a whole number of seconds/);
  assert.throws(() => parseFaults("burst_s=301"), /burst_s="301"/);
  const far = parseFaults("latency_ms=50,error_rate=0.02");
  assert.equal(far.latencyMs, 50);
  assert.equal(describeFaults(far), "error_rate=0.02,latency_ms=50");
  const writes = parseFaults("throttle_wcu=2.5, throttle_rcu=300");
  assert.equal(writes.throttleWcu, 2.5);
  assert.equal(describeFaults(writes), "throttle_rcu=300,throttle_wcu=2.5");
  assert.equal(parseFaults("throttle_wcu=0").throttleWcu, 0, "0 turns it off");
  const stalls = parseFaults("stall_ms=35000, error_rate=0.02, stall_rate=0.05");
  assert.equal(stalls.stallRate, 0.05);
  assert.equal(stalls.stallMs, 35000);
  assert.equal(describeFaults(stalls), "error_rate=0.02,stall_rate=0.05,stall_ms=35000");
  assert.deepEqual(parseFaults(describeFaults(stalls)), stalls, "its own text parses back");
});

Deno.test("a stall needs both its share and its length", () => {
  assert.throws(
    () => parseFaults("stall_rate=0.05"),
    /^Error: DYNAMODB_FAULTS: stall_rate=0.05 needs stall_ms, how long a stalled request hangs/,
  );
  assert.throws(
    () => parseFaults("stall_ms=35000"),
    /DYNAMODB_FAULTS: stall_ms=35000 stalls nothing without stall_rate/,
  );
  assert.throws(
    () => parseFaults("stall_ms=35000,stall_rate=0"),
    /stall_ms=35000 stalls nothing without stall_rate/,
  );
  assert.deepEqual(parseFaults("error_rate=0"), NO_FAULTS, "neither: no stalls");
});

Deno.test("a bad value names the setting and the value", () => {
  assert.throws(() => parseFaults("stale_ms=soon"), /DYNAMODB_FAULTS: stale_ms="soon" is not/);
  assert.throws(() => parseFaults("stale_ms=-1"), /stale_ms="-1"/);
  assert.throws(() => parseFaults("stale_ms=1.5"), /stale_ms="1.5"/);
  assert.throws(() => parseFaults("error_rate=1"), /error_rate="1" is not a share/);
  assert.throws(() => parseFaults("throttle_rcu="), /throttle_rcu="" is not/);
  assert.throws(() => parseFaults("throttle_rcu"), /throttle_rcu="" is not/);
  assert.throws(() => parseFaults("latency_ms=2.5"), /latency_ms="2.5" is not a whole number/);
  assert.throws(
    () => parseFaults("throttle_wcu=lots"),
    /DYNAMODB_FAULTS: throttle_wcu="lots" is not a number of write capacity units per second from 0 \(off\) to 1000000$/,
  );
  assert.throws(() => parseFaults("throttle_wcu=-1"), /throttle_wcu="-1" is not/);
  assert.throws(() => parseFaults("throttle_wcu=1000001"), /throttle_wcu="1000001" is not/);
  assert.throws(() => parseFaults("throttle_wcu="), /throttle_wcu="" is not/);
  assert.throws(() => parseFaults("latency_ms=10001"), /latency_ms="10001"/);
  assert.throws(
    () => parseFaults("stall_rate=1,stall_ms=35000"),
    /DYNAMODB_FAULTS: stall_rate="1" is not a share of requests from 0 up to \(not including\) 1$/,
  );
  assert.throws(() => parseFaults("stall_rate=-0.1,stall_ms=1"), /stall_rate="-0.1" is not/);
  assert.throws(() => parseFaults("stall_rate=some,stall_ms=1"), /stall_rate="some" is not/);
  assert.throws(
    () => parseFaults("stall_rate=0.05,stall_ms=35s"),
    /DYNAMODB_FAULTS: stall_ms="35s" is not a whole number of milliseconds from 1 to 600000$/,
  );
  assert.throws(() => parseFaults("stall_rate=0.05,stall_ms=0"), /stall_ms="0" is not/);
  assert.throws(() => parseFaults("stall_rate=0.05,stall_ms=600001"), /stall_ms="600001"/);
  assert.throws(() => parseFaults("stall_rate=0.05,stall_ms=2.5"), /stall_ms="2.5"/);
});

Deno.test("an unknown or repeated setting is refused", () => {
  assert.throws(() => parseFaults("stale=5"), /unknown setting "stale".*known: stale_ms/);
  assert.throws(() => parseFaults("stale_ms=1,stale_ms=2"), /stale_ms is given twice/);
});
