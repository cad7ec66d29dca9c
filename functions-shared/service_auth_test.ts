import assert from "node:assert/strict";
import type postgres from "postgres";
import { handleReplayRequest } from "./dead_letters.ts";
import {
  acceptedServiceKeys,
  constantTimeEqual,
  internalCaller,
  serviceRoleProblem,
  wakeHourOf,
  wakeKeyOf,
} from "./service_auth.ts";
import { handleValidatorRequest } from "./validator_endpoint.ts";

const request = (authorization?: string) =>
  new Request("http://x/", { headers: authorization ? { authorization } : {} });

/** A database that fails the test if anything uses it. */
const untouchable = new Proxy({}, {
  get() {
    throw new Error("the database must not be used");
  },
  apply() {
    throw new Error("the database must not be used");
  },
}) as unknown as postgres.Sql;

Deno.test("constantTimeEqual compares whole strings", () => {
  assert.equal(constantTimeEqual("abc", "abc"), true);
  assert.equal(constantTimeEqual("abc", "abd"), false);
  assert.equal(constantTimeEqual("abc", "abcd"), false);
  assert.equal(constantTimeEqual("", ""), true);
});

Deno.test("serviceRoleProblem accepts only the exact bearer key", () => {
  assert.equal(serviceRoleProblem(request("Bearer key-1"), "key-1"), undefined);
  assert.equal(serviceRoleProblem(request("bearer key-1"), "key-1"), undefined);
  assert.match(serviceRoleProblem(request(), "key-1")!, /missing Authorization/);
  assert.match(serviceRoleProblem(request("Bearer key-2"), "key-1")!, /not a service key/);
  assert.match(serviceRoleProblem(request("Basic key-1"), "key-1")!, /missing Authorization/);
  assert.match(
    serviceRoleProblem(request("Bearer key-1"), undefined)!,
    /no SUPABASE_SECRET_KEYS or SUPABASE_SERVICE_ROLE_KEY/,
  );
});

Deno.test("serviceRoleProblem fails closed: no key configured refuses everything", () => {
  for (const configured of [undefined, "", "   "]) {
    for (
      const sent of [undefined, "Bearer ", "Bearer    ", "Bearer key-1", `Bearer ${configured}`]
    ) {
      const problem = serviceRoleProblem(request(sent), configured);
      assert.match(
        problem ?? "accepted",
        /no SUPABASE_SECRET_KEYS or SUPABASE_SERVICE_ROLE_KEY/,
        `${configured}/${sent}`,
      );
    }
  }
  assert.ok(!serviceRoleProblem(request("Bearer key-2"), "key-1")!.includes("key-1"));
});

Deno.test("the dead-letter replay endpoint refuses (401) without a configured key", async () => {
  for (const serviceRoleKey of [undefined, ""]) {
    const response = await handleReplayRequest(
      new Request("http://x/replay-dead-letters", {
        method: "POST",
        headers: { authorization: "Bearer " },
        body: "{}",
      }),
      { sql: untouchable, serviceRoleKey },
    );
    assert.equal(response.status, 401);
    assert.match(
      (await response.json()).error,
      /no SUPABASE_SECRET_KEYS or SUPABASE_SERVICE_ROLE_KEY/,
    );
  }
  const wrong = await handleReplayRequest(
    new Request("http://x/", { method: "POST", headers: { authorization: "Bearer no" } }),
    { sql: untouchable, serviceRoleKey: "key-1" },
  );
  assert.equal(wrong.status, 401);
  await wrong.body?.cancel();
});

Deno.test("the validator endpoint refuses (401) without a configured key", async () => {
  const response = await handleValidatorRequest(
    new Request("http://x/", {
      method: "POST",
      headers: { authorization: "Bearer " },
      body: '{"table": "firespring_segments"}',
    }),
    {
      sql: untouchable,
      serviceRoleKey: undefined,
      waitUntil: () => assert.fail("no work may start"),
      callSelf: () => Promise.reject(new Error("no call may be made")),
    } as unknown as Parameters<typeof handleValidatorRequest>[1],
  );
  assert.equal(response.status, 401);
  assert.match(
    (await response.json()).error,
    /no SUPABASE_SECRET_KEYS or SUPABASE_SERVICE_ROLE_KEY/,
  );
});

Deno.test("the new secret keys are accepted beside the legacy key, by Bearer or apikey", () => {
  const keys = acceptedServiceKeys((name) =>
    ({
      SUPABASE_SECRET_KEYS: '{"default": "sb_secret_abc", "cron": " sb_secret_def "}',
      SUPABASE_SERVICE_ROLE_KEY: "legacy-jwt",
    })[name]
  );
  assert.deepEqual(keys, ["sb_secret_abc", "sb_secret_def", "legacy-jwt"]);
  assert.equal(serviceRoleProblem(request("Bearer sb_secret_def"), keys), undefined);
  assert.equal(serviceRoleProblem(request("Bearer legacy-jwt"), keys), undefined);
  const withApikey = new Request("http://x/", {
    method: "POST",
    headers: { apikey: "sb_secret_abc" },
  });
  assert.equal(serviceRoleProblem(withApikey, keys), undefined);
  assert.match(serviceRoleProblem(request("Bearer sb_secret_zzz"), keys)!, /not a service key/);
});

Deno.test("a malformed SUPABASE_SECRET_KEYS is named, never its value", () => {
  for (const bad of ["sb_secret_abc", '["sb_secret_abc"]', '{"default": 7}']) {
    assert.throws(
      () => acceptedServiceKeys((name) => (name === "SUPABASE_SECRET_KEYS" ? bad : undefined)),
      (error: Error) =>
        /SUPABASE_SECRET_KEYS/.test(error.message) && !error.message.includes("abc"),
    );
  }
  assert.deepEqual(acceptedServiceKeys(() => undefined), []);
});

Deno.test("a service key that no HTTP header may carry is refused at cold start, named, never shown", () => {
  // A key pasted wrapped: every call of the function to itself would fail, and fetch's
  // refusal quotes the header, the key in it.
  const cases: [Record<string, string>, string][] = [
    [
      { SUPABASE_SECRET_KEYS: '{"default": "sb_secret_ABC\\nDEF"}' },
      "SUPABASE_SECRET_KEYS.default",
    ],
    [{ SUPABASE_SERVICE_ROLE_KEY: "eyJhbGci ABC.DEF" }, "SUPABASE_SERVICE_ROLE_KEY"],
  ];
  for (const [vars, name] of cases) {
    assert.throws(
      () => acceptedServiceKeys((n) => vars[n]),
      (error: Error) =>
        error.message.startsWith(`${name} holds a character no credential has`) &&
        !error.message.includes("ABC"),
    );
  }
  assert.deepEqual(
    acceptedServiceKeys((n) => n === "SUPABASE_SERVICE_ROLE_KEY" ? " eyJ.abc.def\n" : undefined),
    ["eyJ.abc.def"],
  );
});

Deno.test("a wake key is the one sync.wake_key makes, and the key cannot be read from it", () => {
  // The same literal is checked against the SQL in pgTAP 060-backfill.
  assert.equal(
    wakeKeyOf("sb_secret_test", 493000),
    "sync_wake_493000_d5d439e506b2e0adb6ce5e94097c63e1d570f8969897d83a4a40a12e001b1c42",
  );
  assert.ok(!wakeKeyOf("sb_secret_test", 493000).includes("sb_secret_test"));
  assert.notEqual(wakeKeyOf("sb_secret_test", 493001), wakeKeyOf("sb_secret_test", 493000));
  assert.equal(wakeHourOf(Date.UTC(2026, 11, 1, 13, 59, 59)), 498_925);
  assert.equal(wakeHourOf(Date.UTC(2026, 11, 1, 14)), 498_926);
});

Deno.test("internalCaller tells a service key from pg_cron's wake key, and refuses the rest", () => {
  const keys = ["sb_secret_a", "legacy-jwt"];
  const now = Date.UTC(2026, 11, 1, 14, 0, 5);
  const hour = wakeHourOf(now);
  const ask = (token: string) => internalCaller(request(`Bearer ${token}`), keys, now);
  assert.deepEqual(ask("sb_secret_a"), { caller: "service" });
  assert.deepEqual(ask(wakeKeyOf("legacy-jwt", hour)), { caller: "wake" });
  assert.deepEqual(ask(wakeKeyOf("another-project", hour)), {
    problem: "Authorization is not a service key of this project, nor its wake key",
  });
  assert.deepEqual(ask("nope"), {
    problem: "Authorization is not a service key of this project",
  });
  // Fails closed: with no key configured, a wake key is nothing either.
  assert.match(
    (internalCaller(request(`Bearer ${wakeKeyOf("", hour)}`), [], now) as { problem: string })
      .problem,
    /no SUPABASE_SECRET_KEYS or SUPABASE_SERVICE_ROLE_KEY/,
  );
  assert.match(
    (internalCaller(request(`Bearer ${wakeKeyOf("", hour)}`), [" "], now) as { problem: string })
      .problem,
    /no SUPABASE_SECRET_KEYS or SUPABASE_SERVICE_ROLE_KEY/,
  );
});

Deno.test("a wake key is taken only within an hour of its own: one read from the queue expires", () => {
  const keys = ["sb_secret_a"];
  const now = Date.UTC(2026, 11, 1, 14, 0, 5);
  const hour = wakeHourOf(now);
  const ask = (token: string) => internalCaller(request(`Bearer ${token}`), keys, now);
  // Queued at the end of the last hour and sent in this one; a database clock a little ahead.
  assert.deepEqual(ask(wakeKeyOf("sb_secret_a", hour - 1)), { caller: "wake" });
  assert.deepEqual(ask(wakeKeyOf("sb_secret_a", hour + 1)), { caller: "wake" });
  assert.deepEqual(ask(wakeKeyOf("sb_secret_a", hour - 2)), {
    problem: `Authorization is a wake key for hour ${hour - 2}, more than 1 h from this one ` +
      `(${hour}): expired, or a clock is off`,
  });
  assert.match((ask(wakeKeyOf("sb_secret_a", hour + 2)) as { problem: string }).problem, /expired/);
  // The old form (no hour), and any other, is refused for its form, not compared.
  for (
    const token of [
      "sync_wake_f0b1f9d93ad55c6c8fd44390df0d801b5669759be2e80282349d237d9c8602f7",
      `sync_wake_-${hour}_${"0".repeat(64)}`,
      `sync_wake_${hour}_${"0".repeat(63)}`,
      `sync_wake_${"9".repeat(16)}_${"0".repeat(64)}`,
    ]
  ) {
    assert.deepEqual(ask(token), {
      problem: "Authorization is a wake key of another form than sync.wake_key's",
    });
  }
  // A wake key of this hour whose digest is another key's is refused as before.
  const forged = wakeKeyOf("sb_secret_b", hour);
  assert.deepEqual(ask(forged), {
    problem: "Authorization is not a service key of this project, nor its wake key",
  });
});

Deno.test("the validator takes a wake key only to go on with what the database queued", async () => {
  const ask = (body: string) =>
    handleValidatorRequest(
      new Request("http://x/", {
        method: "POST",
        headers: { authorization: `Bearer ${wakeKeyOf("sb_secret_a", wakeHourOf(Date.now()))}` },
        body,
      }),
      {
        sql: untouchable,
        serviceRoleKey: ["sb_secret_a"],
        waitUntil: () => assert.fail("no work may start"),
        callSelf: () => Promise.reject(new Error("no call may be made")),
      } as unknown as Parameters<typeof handleValidatorRequest>[1],
    );
  for (
    const body of [
      '{"table": "firespring_segments"}',
      '{"table": "firespring_segments", "repair": true}',
    ]
  ) {
    const response = await ask(body);
    assert.equal(response.status, 403, body);
    assert.match(
      (await response.json()).error,
      /a wake key \(pg_cron's\) may only go on with a run/,
    );
  }
});
