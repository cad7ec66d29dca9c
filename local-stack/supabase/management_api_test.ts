import assert from "node:assert/strict";
import { startManagementApi } from "./management_api.ts";

const REF = "abcdefghijklmnopqrst";
const TOKEN = `sbp_${"0".repeat(40)}`;

function deployForm(text: string): FormData {
  const form = new FormData();
  form.append(
    "metadata",
    JSON.stringify({ entrypoint_path: "supabase/functions/f/index.ts", verify_jwt: false }),
  );
  form.append("file", new File([text], "supabase/functions/f/index.ts"));
  return form;
}

/** The stand-in on a free port, and a call to the project's API with the right token. */
async function withApi(
  test: (
    call: (path: string, init?: RequestInit) => Promise<Response>,
    api: ReturnType<typeof startManagementApi>,
  ) => Promise<void>,
) {
  const api = startManagementApi({ projectRef: REF, accessToken: TOKEN });
  const call = (path: string, init: RequestInit = {}) =>
    fetch(`${api.url}/v1/projects/${REF}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${TOKEN}`, ...init.headers },
    });
  try {
    await test(call, api);
  } finally {
    await api.close();
  }
}

Deno.test("a bundle-only version waits for the bulk update; the live one serves meanwhile", async () => {
  await withApi(async (call, api) => {
    const first = await call("/functions/deploy?slug=f", {
      method: "POST",
      body: deployForm("console.log(1);\n"),
    });
    assert.equal(first.status, 201);
    assert.equal((await first.json()).version, 1);
    const second = await call("/functions/deploy?slug=f&bundleOnly=true", {
      method: "POST",
      body: deployForm("console.log(2);\n"),
    });
    assert.equal(second.status, 201);
    assert.equal(api.functions.get("f")!.version, 1, "the live version still serves");
    assert.equal(api.pending.get("f")!.version, 2);
    const bulk = await call("/functions", { method: "PUT", body: JSON.stringify([{ slug: "f" }]) });
    assert.equal(bulk.status, 200);
    await bulk.body?.cancel();
    assert.equal(api.functions.get("f")!.version, 2);
    assert.equal(api.pending.size, 0);
  });
});

Deno.test("a wrong token, another project and a bad slug are refused", async () => {
  const api = startManagementApi({ projectRef: REF, accessToken: TOKEN });
  try {
    const cases: [string, string, number, RegExp][] = [
      [`/v1/projects/${REF}`, "Bearer sbp_wrong", 401, /Unauthorized/],
      ["/v1/projects/zzzzzzzzzzzzzzzzzzzz", `Bearer ${TOKEN}`, 404, /not found/],
      [`/v1/projects/${REF}/functions/deploy?slug=9bad`, `Bearer ${TOKEN}`, 400, /slug/],
    ];
    for (const [path, authorization, status, message] of cases) {
      const response = await fetch(`${api.url}${path}`, {
        method: path.includes("deploy") ? "POST" : "GET",
        headers: { authorization },
        body: path.includes("deploy") ? deployForm("") : undefined,
      });
      assert.equal(response.status, status, path);
      assert.match((await response.json()).message, message, path);
    }
    assert.equal(api.functions.size, 0);
  } finally {
    await api.close();
  }
});

Deno.test("a deploy whose bundle fails is refused with the reason, and nothing is deployed", async () => {
  await withApi(async (call, api) => {
    const form = new FormData();
    form.append("metadata", JSON.stringify({ entrypoint_path: "supabase/functions/f/index.ts" }));
    form.append("file", new File(["console.log(1);\n"], "supabase/functions/f/other.ts"));
    const response = await call("/functions/deploy?slug=f", { method: "POST", body: form });
    assert.equal(response.status, 400);
    assert.equal(
      (await response.json()).message,
      "failed to bundle function f: the entry point supabase/functions/f/index.ts was not uploaded",
    );
    assert.equal(api.functions.size + api.pending.size, 0);
  });
});

Deno.test("a bulk update naming a function never deployed is refused; none is updated", async () => {
  await withApi(async (call, api) => {
    const deployed = await call("/functions/deploy?slug=f&bundleOnly=true", {
      method: "POST",
      body: deployForm("console.log(1);\n"),
    });
    await deployed.body?.cancel();
    const bulk = await call("/functions", {
      method: "PUT",
      body: JSON.stringify([{ slug: "f" }, { slug: "ghost" }]),
    });
    assert.equal(bulk.status, 404);
    assert.equal((await bulk.json()).message, "Function ghost not found");
    assert.equal(api.functions.size, 0, "f is not made live either");
    assert.equal(api.pending.get("f")?.version, 1);
  });
});

Deno.test("a deploy that does not say verify_jwt verifies JWTs, as hosted does", async () => {
  await withApi(async (call, api) => {
    const form = new FormData();
    form.append("metadata", JSON.stringify({ entrypoint_path: "supabase/functions/f/index.ts" }));
    form.append("file", new File(["console.log(1);\n"], "supabase/functions/f/index.ts"));
    const response = await call("/functions/deploy?slug=f", { method: "POST", body: form });
    assert.equal(response.status, 201);
    assert.equal((await response.json()).verify_jwt, true);
    assert.equal(api.functions.get("f")?.verifyJwt, true);
  });
});
