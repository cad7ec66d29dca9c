/**
 * An S3 object's bytes, read on through breaks: a read that breaks mid-object (an error,
 * or an end before the object's length) is taken up at the byte where it broke, with a
 * ranged GET of the rest, rather than failed.
 *
 * An export's data file is gzip, which cannot be read from the middle, so a broken read
 * used to be read again from its first byte, decompressed and split up to its checkpoint
 * (export_file_load.ts): the later in a large file, the dearer a break. S3 breaks reads
 * as a matter of course: "a connection ... that has been sitting idle for 5 minutes, then
 * AWS closes the connection" (https://github.com/aws/aws-sdk-js-v3/issues/4897), a body
 * paused too long loses what S3 had sent (https://github.com/aws/aws-sdk-js/issues/3577),
 * and the loader's body waits while each chunk merges. The bytes handed on are the same
 * as one read's, in order (the decompression and the file's MD5 run over them
 * unchanged): each part must be of the object that was first read (its ETag, else the
 * object was written over mid-read) and must start at the byte asked for (its
 * Content-Range; a server that ignored the Range would hand on the object's start again).
 *
 * After {@link RESUMES_IN_A_ROW} resumes without a byte between them the break is passed
 * on as it is: the loader then reads the file again from its checkpoint, as before.
 *
 * @module
 */

/** The object's bytes from some byte on, as S3 answered a GET of them. */
export interface ObjectPart {
  body: ReadableStream<Uint8Array>;
  /** The answer's ETag (quoted or not). */
  etag?: string;
  /** The first byte of the answer (its Content-Range's; 0 for a whole object). */
  start?: number;
}

/** Resumes in a row, with no byte read between them, before a break is passed on. */
export const RESUMES_IN_A_ROW = 3;

/** The wait before the first resume of a break, doubled for each one after it. */
export const RESUME_WAIT_MS = 250;

/**
 * How long a read asked for may wait for a byte before it is taken as a break: a
 * connection dropped without a word leaves the SDK's body waiting for ever
 * (https://github.com/aws/aws-sdk-js-v3/issues/8098). Half the export reader's own limit
 * (export_bytes.ts, READ_QUIET_MS), which then reads the file again from its checkpoint:
 * a resume comes first.
 */
export const RESUME_QUIET_MS = 30_000;

/** What {@link resumedBody} needs besides the first read. */
export interface ResumeDeps {
  /** A GET of the object from byte `offset` on (`Range: bytes=<offset>-`). */
  readFrom(offset: number): Promise<ObjectPart>;
  sleep?(ms: number): Promise<void>;
  log?(line: string): void;
  /** The wait for a byte (default {@link RESUME_QUIET_MS}). */
  quietMs?: number;
}

const bare = (etag?: string) => etag?.replace(/"/g, "");

/**
 * `first`'s bytes and, past each break, the object's from the byte it broke at, until
 * `length` bytes (the object's) were handed on. `name` names the object in log lines and
 * errors.
 */
export function resumedBody(
  name: string,
  first: ObjectPart,
  length: number,
  deps: ResumeDeps,
): ReadableStream<Uint8Array> {
  const sleep = deps.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined = first.body.getReader();
  let delivered = 0;
  let inARow = 0;
  // Cancelled by its reader while a resume was on its way: the part it brings is let go.
  let cancelled = false;
  /** The rest of the object from `delivered`, or why it could not be read. */
  const reopen = async (): Promise<unknown> => {
    let part: ObjectPart;
    try {
      part = await deps.readFrom(delivered);
    } catch (error) {
      return error;
    }
    const problem = bare(part.etag) !== bare(first.etag)
      ? `its ETag is now ${bare(part.etag)}, not ${bare(first.etag)}: written over mid-read`
      : part.start !== delivered
      ? `the read of its bytes from ${delivered} on was answered from byte ${part.start}`
      : undefined;
    if (problem === undefined && !cancelled) {
      reader = part.body.getReader();
      return undefined;
    }
    await part.body.cancel().catch(() => {});
    return new Error(problem ?? "the read was cancelled");
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        let broke: unknown;
        if (reader) {
          try {
            const next = await quiet(reader.read(), deps.quietMs ?? RESUME_QUIET_MS);
            if (!next.done) {
              // An empty read is no progress (a resume that brought only those would
              // reset the count, and a read that never gets further would go on for ever).
              if (next.value.byteLength === 0) continue;
              delivered += next.value.byteLength;
              inARow = 0;
              controller.enqueue(next.value);
              return;
            }
            if (delivered >= length) return controller.close();
            broke = new Error(`the object's bytes ended after ${delivered} of its ${length} bytes`);
          } catch (error) {
            broke = error;
          }
          reader.cancel().catch(() => {});
          reader = undefined;
        }
        if (inARow === RESUMES_IN_A_ROW) return controller.error(broke);
        inARow++;
        deps.log?.(
          `${name}: ${(broke as Error)?.message ?? broke}; reading on from byte ${delivered} ` +
            `of ${length} (resume ${inARow} of ${RESUMES_IN_A_ROW})`,
        );
        await sleep(RESUME_WAIT_MS * 2 ** (inARow - 1));
        const failed = await reopen();
        if (failed !== undefined) {
          if (inARow === RESUMES_IN_A_ROW) return controller.error(failed);
          // Counted as a break of its own: the next resume is tried after a longer wait.
          reader = errored(failed);
        }
      }
    },
    cancel: (reason) => {
      cancelled = true;
      return reader?.cancel(reason);
    },
  });
}

/** `read`, or a failure once it waited `ms` for its answer. */
async function quiet<T>(read: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) =>
    timer = setTimeout(
      () => reject(new Error(`no byte for ${ms / 1000} s`)),
      ms,
    )
  );
  try {
    return await Promise.race([read, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A reader whose first read fails with `error`. */
function errored(error: unknown): ReadableStreamDefaultReader<Uint8Array> {
  return new ReadableStream<Uint8Array>({ start: (c) => c.error(error) }).getReader();
}
