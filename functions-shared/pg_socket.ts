/**
 * The driver's TCP connection to Postgres, with Nagle's algorithm off (`TCP_NODELAY`).
 *
 * libpq turns it off on every TCP connection it opens (`connectNoDelay` in
 * `fe-connect.c`); postgres.js 3.4.9 never does, and Node's sockets (Deno's `node:net`
 * too) start with it on. A statement longer than a TCP segment then leaves its last,
 * partial segment waiting for the server's acknowledgement of the ones before, which
 * Linux may delay by 40 ms (its minimum delayed ACK): Deno found the same 40 ms with
 * `pg` (denoland/deno#26177), and made `setNoDelay` work in `node:net` in October 2024
 * (denoland/deno#26263), before the Deno 2.1.4 of the hosted Edge Runtime. Measured
 * here, a webhook's statement of 1,000 changes (389 KB) took 17–25 ms or 59–74 ms
 * through postgres.js, a third to two thirds of the time the second; with this socket
 * 58 of 60 took 16–25 ms, as from `psql`.
 *
 * postgres.js takes a socket from its `socket` option and then skips its own connect
 * (its `connection.js`, `connect`), so this socket connects itself, to the one host and
 * port of the URL (db_url.ts allows no list), and carries them as `host` and `port` as
 * the driver's own socket does: TLS's `servername` is read from `host`.
 *
 * @module
 */

import net from "node:net";

/** What postgres.js hands its `socket` option: the URL's hosts and ports, parsed. */
export interface SocketTarget {
  host: string[];
  port: number[];
}

/** A TCP socket, connecting to the target's first host, with Nagle's algorithm off. */
export function noDelaySocket(target: SocketTarget): net.Socket {
  const [host] = target.host;
  const [port] = target.port;
  const socket = new net.Socket();
  // Set once connected: a socket without its handle yet only notes the wish.
  socket.once("connect", () => socket.setNoDelay(true));
  socket.connect(port, host);
  return Object.assign(socket, { host, port });
}

/**
 * postgres.js's options for {@link noDelaySocket}, to spread into a pool's options:
 * `socket` is in postgres.js's documentation ("Custom socket") but not in its types.
 */
export const NO_DELAY: { socket: typeof noDelaySocket } = { socket: noDelaySocket };
