/**
 * The stack's S3: s3rver, an S3-compatible server from the npm registry, keeping its
 * objects in a folder. It answers S3's XML errors (NoSuchBucket, NoSuchKey) and supports
 * multipart uploads; it is reached with path-style addresses. It does not check request
 * signatures itself: local-stack/aws/s3_auth.ts, in front of it, does. Who may read and
 * write the export bucket is Terraform's IAM policy, checked offline (infrastructure/terraform).
 *
 * @module
 */

import S3rver from "s3rver";

/** A running S3 stand-in. */
export interface S3Server {
  endpoint: string;
  close(): Promise<void>;
}

/** Starts s3rver on `port` (0: any free one) over `directory`, with `buckets` made. */
export async function startS3Server(
  options: { host: string; port: number; directory: string; buckets: string[] },
): Promise<S3Server> {
  const server = new S3rver({
    address: options.host,
    port: options.port,
    directory: options.directory,
    silent: true,
    configureBuckets: options.buckets.map((name) => ({ name, configs: [] })),
  });
  const { port } = await server.run() as { port: number };
  return { endpoint: `http://${options.host}:${port}`, close: () => server.close() };
}

/**
 * Runs `work` with an S3 stand-in of its own over a temporary folder, holding `buckets`,
 * then stops it and removes the folder (tests).
 */
export async function withS3Server<T>(
  buckets: string[],
  work: (server: S3Server) => Promise<T>,
): Promise<T> {
  const directory = await Deno.makeTempDir();
  const server = await startS3Server({ host: "127.0.0.1", port: 0, directory, buckets });
  try {
    return await work(server);
  } finally {
    await server.close();
    await Deno.remove(directory, { recursive: true });
  }
}
