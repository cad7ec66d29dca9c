/**
 * What the tests of the stand-ins' signature checks share (s3_auth_test.ts,
 * dynamodb_auth_test.ts): a server on a free port that counts the requests its checks
 * let through, and a request signed by hand, for what the SDK would never send.
 *
 * @module
 */

import { amzDate, canonicalRequest, pathAndQuery, signatureOf } from "./signature_v4.ts";

/**
 * `checked(upstream)` served on a free port, `upstream` counting what reaches it and
 * answering `answer()`; `test` gets the address and the count.
 */
export async function withCheckedServer(
  checked: (upstream: (req: Request) => Promise<Response>) => (req: Request) => Promise<Response>,
  answer: () => Response,
  test: (endpoint: string, served: () => number) => Promise<void>,
): Promise<void> {
  let served = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    checked(async (req) => {
      await req.body?.cancel();
      served++;
      return answer();
    }),
  );
  try {
    await test(`http://127.0.0.1:${server.addr.port}`, () => served);
  } finally {
    await server.shutdown();
  }
}

/**
 * Headers of a request to `url` signed with `key` for `service` in us-east-1, now or `at`
 * (ms), over `payloadHash` (sent as `x-amz-content-sha256` when `s3`), with `extra`
 * headers signed too; the path and query as `url` has them.
 */
export function signedHeaders(
  method: string,
  url: string,
  payloadHash: string,
  options: {
    service: string;
    key: { accessKeyId: string; secretAccessKey: string };
    extra?: Record<string, string>;
    at?: number;
  },
): Record<string, string> {
  const date = amzDate(options.at ?? Date.now());
  const target = new URL(url);
  const { path, query } = pathAndQuery(url);
  const headers: Record<string, string> = {
    host: target.host,
    "x-amz-date": date,
    ...(options.service === "s3" ? { "x-amz-content-sha256": payloadHash } : {}),
    ...options.extra,
  };
  const names = Object.keys(headers).sort();
  const scope = { day: date.slice(0, 8), region: "us-east-1", service: options.service };
  const signature = signatureOf(
    canonicalRequest({
      method,
      path,
      query,
      header: (name) => headers[name] ?? null,
      signedHeaders: names,
      payloadHash,
    }),
    date,
    scope,
    options.key.secretAccessKey,
  );
  return {
    ...headers,
    authorization: `AWS4-HMAC-SHA256 Credential=${options.key.accessKeyId}/${scope.day}/` +
      `us-east-1/${options.service}/aws4_request, SignedHeaders=${names.join(";")}, ` +
      `Signature=${signature}`,
  };
}
