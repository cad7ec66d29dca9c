/**
 * `probe-sandbox`: a test function for tests/edge_gateway_limits_test.ts, served only by a
 * gateway started with EDGE_TEST_FUNCTIONS=1 (never deployed). `GET /probe-sandbox`
 * answers what an isolate may do, each as "ok" or the error's name: read its own file, a
 * file outside its function, /tmp; its host name and the OS's release.
 */

function attempt(step: () => unknown): string {
  try {
    step();
    return "ok";
  } catch (error) {
    return (error as Error).name;
  }
}

Deno.serve(() =>
  Response.json({
    ownFile: attempt(() => Deno.readTextFileSync(new URL("./index.ts", import.meta.url))),
    outsideFile: attempt(() => Deno.readTextFileSync("/etc/passwd")),
    tmp: attempt(() => Deno.readDirSync("/tmp").next()),
    hostname: attempt(() => Deno.hostname()),
    osRelease: attempt(() => Deno.osRelease()),
  })
);
