import assert from "node:assert/strict";
import {
  bootError,
  idleTimeout,
  jwtRefusal,
  methodNotAllowed,
  notFound,
  unauthorized,
  WORKER_LIMIT_BODY,
  workerError,
  workerResourceLimit,
} from "./gateway_errors.ts";

async function read(response: Response) {
  return {
    status: response.status,
    code: response.headers.get("sb-error-code"),
    body: await response.json(),
  };
}

Deno.test("each of the gateway's own answers carries its status and sb-error-code", async () => {
  assert.deepEqual(await read(notFound()), {
    status: 404,
    code: "NOT_FOUND",
    body: { code: "NOT_FOUND", message: "Requested function was not found" },
  });
  assert.deepEqual(await read(workerError()), {
    status: 500,
    code: "WORKER_ERROR",
    body: { code: "WORKER_ERROR", message: "Function exited due to an error (please check logs)" },
  });
  assert.deepEqual(await read(bootError("Function x failed to start")), {
    status: 503,
    code: "BOOT_ERROR",
    body: { code: "BOOT_ERROR", message: "Function x failed to start" },
  });
  assert.deepEqual(await read(idleTimeout(150)), {
    status: 504,
    code: "IDLE_TIMEOUT",
    body: { code: "IDLE_TIMEOUT", message: "Function did not respond in 150 s" },
  });
  assert.deepEqual(await read(workerResourceLimit()), {
    status: 546,
    code: "WORKER_RESOURCE_LIMIT",
    body: { ...WORKER_LIMIT_BODY },
  });
  assert.deepEqual(await read(unauthorized("UNAUTHORIZED_LEGACY_JWT")), {
    status: 401,
    code: "UNAUTHORIZED_LEGACY_JWT",
    body: { code: 401, message: "Invalid JWT" },
  });
});

Deno.test("the 546 body is the hosted gateway's", () => {
  assert.deepEqual(JSON.parse(JSON.stringify(WORKER_LIMIT_BODY)), {
    code: "WORKER_LIMIT",
    message: "Function failed due to not having enough compute resources (please check logs)",
  });
});

Deno.test("a method Edge Functions do not take is a 405 naming the ones they do", async () => {
  const response = methodNotAllowed("HEAD");
  assert.equal(response.status, 405);
  assert.equal(response.headers.get("allow"), "POST, GET, PUT, PATCH, DELETE, OPTIONS");
  assert.match((await response.json()).message, /^Method HEAD is not allowed/);
});

Deno.test("a refused JWT is named for what is wrong with its header", () => {
  assert.equal(jwtRefusal(null), "UNAUTHORIZED_NO_AUTH_HEADER");
  assert.equal(jwtRefusal("Basic abc"), "UNAUTHORIZED_INVALID_JWT_FORMAT");
  assert.equal(jwtRefusal("Bearer not-a-jwt"), "UNAUTHORIZED_INVALID_JWT_FORMAT");
  assert.equal(jwtRefusal("Bearer a.b.c"), "UNAUTHORIZED_LEGACY_JWT");
});
