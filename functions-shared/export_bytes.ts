/**
 * A data file of a DynamoDB export as bytes (export_items.ts reads its lines from them):
 * counted and hashed as they arrive, each read given up after a quiet time, and inflated
 * from gzip to text a small piece at a time, so that memory holds a few MB of text
 * whatever the file holds.
 *
 * @module
 */

import { createHash } from "node:crypto";

/**
 * The most compressed bytes handed to the decompressor at once. It inflates each piece it
 * is given whole, into one chunk of any size: a 64 KB read of items that compress well
 * (gzip reaches 1,000 to 1) would become tens of MB in one chunk, decoded and split into
 * lines before the first page is handed on. Pieces of 4 KB bound a chunk to 4 MB even
 * then, and to some 40 KB for JSON (about 10 to 1).
 */
export const INFLATE_PIECE_BYTES = 4096;

/**
 * How long a read of a file's bytes may wait for one before the read is given up as
 * broken (ExportReadError: the file is read again from its checkpoint): a connection to
 * S3 that went quiet would otherwise be waited on for ever (the AWS SDK sets no timeout
 * on a response's body).
 */
export const READ_QUIET_MS = 60_000;

/** A data file's bytes as they are read ({@link watchedBytes}). */
export interface WatchedBytes {
  /** The bytes, as read: a read that waits past the quiet time fails the stream. */
  stream: ReadableStream<Uint8Array>;
  /** How many bytes were read so far. */
  readonly count: number;
  /** Whether the bytes came to their end. */
  readonly ended: boolean;
  /**
   * What the bytes' own stream failed with (the connection to S3, or the quiet time): a
   * read again may pass. A failure past it (gzip, UTF-8) is the bytes' own.
   */
  readonly broken: { error: unknown } | undefined;
  /** The MD5 of the bytes read, in base64, as the files manifest gives it (once). */
  digest(): string;
}

/**
 * Watches `body` as it is read: counts and hashes its bytes, and gives a read up after
 * `quietMs` without a byte (its stream cancelled, the error an `ETIMEDOUT`). Only a read
 * asked for is timed: while the loader writes a chunk the bytes are not asked for, and
 * their connection is quiet on purpose.
 */
export function watchedBytes(
  body: ReadableStream<Uint8Array>,
  quietMs = READ_QUIET_MS,
): WatchedBytes {
  const md5 = createHash("md5");
  let count = 0;
  let ended = false;
  let broken: { error: unknown } | undefined;
  const reader = body.getReader();
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      let next: ReadableStreamReadResult<Uint8Array>;
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        next = await Promise.race([
          reader.read(),
          new Promise<never>((_, reject) =>
            timer = setTimeout(
              () =>
                reject(
                  Object.assign(new Error(`no byte from S3 for ${quietMs / 1000} s`), {
                    name: "TimeoutError",
                    code: "ETIMEDOUT",
                  }),
                ),
              quietMs,
            )
          ),
        ]);
      } catch (error) {
        reader.cancel(error).catch(() => {});
        broken = { error };
        controller.error(error);
        return;
      } finally {
        clearTimeout(timer);
      }
      if (next.done) {
        ended = true;
        controller.close();
        return;
      }
      md5.update(next.value);
      count += next.value.byteLength;
      controller.enqueue(next.value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  return {
    stream,
    get count() {
      return count;
    },
    get ended() {
      return ended;
    },
    get broken() {
      return broken;
    },
    digest: () => md5.digest("base64"),
  };
}

/**
 * A data file's text from its gzipped bytes, inflated {@link INFLATE_PIECE_BYTES} of them
 * at a time, so that no chunk of text is more than a piece inflates to.
 */
export function itemText(bytes: ReadableStream<Uint8Array>): ReadableStream<string> {
  return bytes
    .pipeThrough(inPieces(INFLATE_PIECE_BYTES))
    .pipeThrough(
      new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
    )
    .pipeThrough(new TextDecoderStream("utf-8", { fatal: true }));
}

/** Bytes cut into pieces of at most `size` ({@link INFLATE_PIECE_BYTES}). */
function inPieces(size: number): TransformStream<Uint8Array, Uint8Array> {
  return new TransformStream({
    transform(chunk, controller) {
      for (let at = 0; at < chunk.byteLength; at += size) {
        controller.enqueue(chunk.subarray(at, Math.min(at + size, chunk.byteLength)));
      }
    },
  });
}
