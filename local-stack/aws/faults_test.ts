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
});

Deno.test("an unknown or repeated setting is refused", () => {
  assert.throws(() => parseFaults("stale=5"), /unknown setting "stale".*known: stale_ms/);
  assert.throws(() => parseFaults("stale_ms=1,stale_ms=2"), /stale_ms is given twice/);
});
