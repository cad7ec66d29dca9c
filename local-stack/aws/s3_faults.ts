/**
 * What makes the S3 stand-in as unreliable as S3 itself: s3rver answers every request, in
 * full, at once, which S3 does not promise. In front of it (local-stack/aws/s3_main.ts):
 *
 * - a share of requests (`errorRate`) is answered `503 SlowDown`, S3's answer when it
 *   asks the caller to slow down ("You can send 3,500 PUT/COPY/POST/DELETE or 5,500
 *   GET/HEAD requests per second per partitioned Amazon S3 prefix ... you might receive
 *   HTTP 503 slowdown errors", https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html),
 *   which the SDK retries and the export loader then waits out (export_failures.ts);
 * - a share of an export's data file reads (`cutRate`) stops part-way through its body,
 *   as a connection broken mid-download does: the loader reads the file again from its
 *   last checkpoint (export_load.ts);
 * - the first `quietReads` reads of each data file (off by default) go quiet at the
 *   file's middle byte for `quietMs`, as a connection that stalls mid-download without a
 *   word: the body gives its bytes up to there, then nothing, then (if its reader is still
 *   there) the rest. A read from a byte at or past the middle (a resume) goes quiet at
 *   once. The export loader's reads give up a quiet body (scripts/s3_resumed_body.ts after
 *   RESUME_QUIET_MS, resuming from the byte it got to; functions-shared/export_bytes.ts
 *   after READ_QUIET_MS, reading the file again from its checkpoint), which AWS leaves to
 *   the client: its SDK sets no timeout on a response's body.
 *
 * `S3_FAULTS` in `.local/stack.env` (parsed by {@link parseS3Faults}; unset: the
 * defaults) sets them for the stack's S3 stand-in, e.g. `quiet_reads=2,quiet_ms=65000`.
 *
 * @module
 */

import { type FaultSetting, setFaultPairs } from "./faults.ts";
import { s3Error } from "./s3_errors.ts";

/** The shares of requests that fail, and the reads that go quiet: 0 turns each off. */
export interface S3Faults {
  errorRate: number;
  cutRate: number;
  /** How many of each data file's first reads go quiet (0: none). */
  quietReads?: number;
  /** How long a quiet read is silent, in milliseconds. */
  quietMs?: number;
}

/** The stack's: rarely, as on a busy day; no quiet reads (each costs the loader 30 s). */
export const DEFAULT_S3_FAULTS: S3Faults = { errorRate: 0.02, cutRate: 0.05 };

const S3_SETTINGS: Record<string, FaultSetting<S3Faults>> = {
  error_rate: {
    field: "errorRate",
    check: (n) => Number.isFinite(n) && n >= 0 && n < 1,
    rule: "a share of requests from 0 up to (not including) 1",
  },
  cut_rate: {
    field: "cutRate",
    check: (n) => Number.isFinite(n) && n >= 0 && n < 1,
    rule: "a share of data file reads from 0 up to (not including) 1",
  },
  quiet_reads: {
    field: "quietReads",
    check: (n) => Number.isInteger(n) && n >= 0 && n <= 10,
    rule: "a whole number of each data file's first reads from 0 to 10",
  },
  quiet_ms: {
    field: "quietMs",
    check: (n) => Number.isInteger(n) && n >= 1 && n <= 600_000,
    rule: "a whole number of milliseconds from 1 to 600000",
  },
};

/**
 * Parses `S3_FAULTS` (e.g. `quiet_reads=2,quiet_ms=65000`): the settings it names, over
 * {@link DEFAULT_S3_FAULTS}; unset or empty: the defaults; `none`: no faults. Throws an
 * error naming the setting and the bad value.
 */
export function parseS3Faults(text: string | undefined): S3Faults {
  if ((text ?? "").trim() === "none") return { errorRate: 0, cutRate: 0 };
  const faults: S3Faults = { ...DEFAULT_S3_FAULTS };
  const seen = setFaultPairs("S3_FAULTS", text, S3_SETTINGS, faults);
  if ((faults.quietReads ?? 0) > 0 && !seen.has("quiet_ms")) {
    throw new Error(
      `S3_FAULTS: quiet_reads=${faults.quietReads} needs quiet_ms, how long a quiet read ` +
        "is silent (e.g. quiet_ms=65000)",
    );
  }
  if (seen.has("quiet_ms") && !faults.quietReads) {
    throw new Error(
      `S3_FAULTS: quiet_ms=${faults.quietMs} quiets nothing without quiet_reads, how many ` +
        "of each data file's first reads go quiet (e.g. quiet_reads=1)",
    );
  }
  return faults;
}

/** The canonical text of a set of S3 faults (what the stand-in logs). */
export function describeS3Faults(faults: S3Faults): string {
  const parts = [`error_rate=${faults.errorRate}`, `cut_rate=${faults.cutRate}`];
  if (faults.quietReads) parts.push(`quiet_reads=${faults.quietReads},quiet_ms=${faults.quietMs}`);
  return parts.join(",");
}

/** An export's data file (`.../AWSDynamoDB/<id>/data/<file>.json.gz`). */
const DATA_FILE = /\/AWSDynamoDB\/[^/]+\/data\/[^/]+$/;

/** S3's `SlowDown` error. */
export function slowDown(): Response {
  return s3Error(503, "SlowDown", "Please reduce your request rate.");
}

/** A body that ends with an error after its first `keep` bytes. */
export function cutBody(
  body: ReadableStream<Uint8Array>,
  keep: number,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) return controller.close();
      if (sent + value.byteLength < keep) {
        sent += value.byteLength;
        return controller.enqueue(value);
      }
      controller.enqueue(value.slice(0, Math.max(0, keep - sent)));
      await reader.cancel();
      controller.error(new Error("connection reset by peer (the S3 stand-in's cut)"));
    },
    cancel: (reason) => reader.cancel(reason),
  });
}

/**
 * A body that gives its first `at` bytes, then nothing for `quietMs`, then the rest; a
 * reader that cancels meanwhile ends the wait and the upstream body.
 */
export function quietBody(
  body: ReadableStream<Uint8Array>,
  at: number,
  quietMs: number,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let sent = 0;
  let quieted = false;
  let cancelled = false;
  let wake: (() => void) | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!quieted && sent >= at) {
        quieted = true;
        await new Promise<void>((resolve) => {
          wake = resolve;
          timer = setTimeout(resolve, quietMs);
        });
        if (cancelled) return;
      }
      const { done, value } = await reader.read();
      if (done) return controller.close();
      if (!quieted && sent + value.byteLength > at) {
        // Up to the quiet byte now; the rest once the quiet is over.
        const head = value.slice(0, at - sent);
        sent = at;
        if (head.byteLength > 0) controller.enqueue(head);
        quieted = true;
        await new Promise<void>((resolve) => {
          wake = resolve;
          timer = setTimeout(resolve, quietMs);
        });
        if (cancelled) return;
        return controller.enqueue(value.slice(head.byteLength));
      }
      sent += value.byteLength;
      controller.enqueue(value);
    },
    cancel: (reason) => {
      cancelled = true;
      clearTimeout(timer);
      wake?.();
      return reader.cancel(reason);
    },
  });
}

/** Where an answer's bytes start in their object, and the object's length. */
function spanOf(answer: Response): { start: number; length: number } {
  // "Content-Range: bytes 21010-47021/47022" (RFC 9110, 14.4) for a ranged read.
  const range = /^bytes (\d+)-\d+\/(\d+)$/.exec(answer.headers.get("content-range") ?? "");
  if (range) return { start: Number(range[1]), length: Number(range[2]) };
  return { start: 0, length: Number(answer.headers.get("content-length") ?? 0) };
}

/**
 * The handler in front of the server at `upstream`: forwards each request, failing the
 * shares `faults` names (`random` decides, 0 to 1).
 */
export function faultyS3(
  upstream: string,
  faults: S3Faults,
  random: () => number = Math.random,
  log: (line: string) => void = () => {},
): (req: Request) => Promise<Response> {
  // Each data file's reads so far (for quietReads), by path.
  const reads = new Map<string, number>();
  return async (req) => {
    const url = new URL(req.url);
    if (faults.errorRate > 0 && random() < faults.errorRate) {
      await req.body?.cancel();
      return slowDown();
    }
    const answer = await fetch(`${upstream}${url.pathname}${url.search}`, {
      method: req.method,
      headers: req.headers,
      body: req.body,
      redirect: "manual",
    });
    const dataRead = req.method === "GET" && answer.ok && answer.body !== null &&
      DATA_FILE.test(url.pathname);
    if (dataRead && (faults.quietReads ?? 0) > 0) {
      const nth = (reads.get(url.pathname) ?? 0) + 1;
      reads.set(url.pathname, nth);
      if (nth <= faults.quietReads!) {
        const { start, length } = spanOf(answer);
        const at = Math.max(0, Math.floor(length / 2) - start);
        log(`${url.pathname}: read ${nth} goes quiet ${faults.quietMs} ms after ${at} bytes`);
        return new Response(quietBody(answer.body!, at, faults.quietMs ?? 0), {
          status: answer.status,
          headers: answer.headers,
        });
      }
    }
    const cut = dataRead && faults.cutRate > 0 && random() < faults.cutRate;
    if (!cut) return answer;
    const length = Number(answer.headers.get("content-length") ?? 0);
    return new Response(cutBody(answer.body!, Math.floor(length / 2)), {
      status: answer.status,
      headers: answer.headers,
    });
  };
}
