import assert from "node:assert/strict";
import net from "node:net";
import { NO_DELAY, noDelaySocket } from "./pg_socket.ts";

/** A listener on a free port of 127.0.0.1; `firstData` is the first bytes it is sent. */
async function listener() {
  let received: (data: Uint8Array) => void = () => {};
  const firstData = new Promise<Uint8Array>((resolve) => received = resolve);
  const server = net.createServer((socket) => socket.once("data", received));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  const close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return { port, firstData, close };
}

Deno.test("the driver's socket connects to the URL's host and port with Nagle's algorithm off", async () => {
  const server = await listener();
  const calls: boolean[] = [];
  const setNoDelay = net.Socket.prototype.setNoDelay;
  net.Socket.prototype.setNoDelay = function (this: net.Socket, enable?: boolean) {
    calls.push(enable ?? true);
    return setNoDelay.call(this, enable);
  };
  const socket = noDelaySocket({ host: ["127.0.0.1"], port: [server.port] });
  try {
    // The driver writes its first message before the connection is made.
    socket.write("startup");
    await new Promise((resolve) => socket.once("connect", resolve));
    assert.deepEqual(calls, [true]);
    // TLS reads its server name from these, as from the driver's own socket.
    assert.equal((socket as net.Socket & { host: string }).host, "127.0.0.1");
    assert.equal((socket as net.Socket & { port: number }).port, server.port);
    assert.equal(new TextDecoder().decode(await server.firstData), "startup");
  } finally {
    net.Socket.prototype.setNoDelay = setNoDelay;
    socket.destroy();
    await server.close();
  }
});

Deno.test("a refused connection is the socket's error, for the driver to report", async () => {
  const server = await listener();
  await server.close();
  const socket = noDelaySocket({ host: ["127.0.0.1"], port: [server.port] });
  const error = await new Promise<Error>((resolve) => socket.once("error", resolve));
  assert.match(error.message, /ECONNREFUSED|refused/i);
});

Deno.test("the options to spread name the socket", () => {
  assert.equal(NO_DELAY.socket, noDelaySocket);
});
