import assert from "node:assert/strict";
import { constantTimeEqual, serviceRoleProblem } from "./service_auth.ts";

const request = (authorization?: string) =>
  new Request("http://x/", { headers: authorization ? { authorization } : {} });

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
  assert.match(serviceRoleProblem(request("Bearer key-2"), "key-1")!, /not the service role key/);
  assert.match(serviceRoleProblem(request("Basic key-1"), "key-1")!, /not the service role key/);
  assert.match(
    serviceRoleProblem(request("Bearer key-1"), undefined)!,
    /no SUPABASE_SERVICE_ROLE_KEY/,
  );
});
