/**
 * How the local gateway (functions_gateway.ts) passes bodies between a caller and an
 * isolate: small ones with a declared length whole, the others as streams that tell the
 * gateway when they end (an isolate's request is in flight until its body is done).
 *
 * @module
 */

/**
 * Bodies up to this size with a declared length are passed on whole, in one write each
 * way; larger or unsized ones stream (a function may refuse a body before reading it).
 * Streaming a small body cost a chunked upload and a stream per response: for 1,000
 * requests of 7 KB, the gateway's CPU went from 1.27 to 0.81-0.85 ms a request (README,
 * "Where the time goes": the webhook).
 */
const WHOLE_BODY_MAX_BYTES = 1024 * 1024;

/** `body`, calling `done` once when it ends, fails or is cancelled. */
export function releasingBody(body: ReadableStream<Uint8Array>, done: () => void) {
  const reader = body.getReader();
  let released = false;
  const once = () => {
    if (!released) {
      released = true;
      done();
    }
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const chunk = await reader.read();
        if (chunk.done) {
          once();
          controller.close();
        } else {
          controller.enqueue(chunk.value);
        }
      } catch (error) {
        once();
        controller.error(error);
      }
    },
    cancel(reason) {
      once();
      return reader.cancel(reason);
    },
  });
}

/** A small declared length: read whole. */
export function small(headers: Headers): boolean {
  const length = Number(headers.get("content-length") ?? NaN);
  return Number.isInteger(length) && length <= WHOLE_BODY_MAX_BYTES;
}

/**
 * The headers the caller gets with a function's answer to a `method` request: as the
 * function set them, but that an HTML answer to a GET is plain text, as hosted Supabase
 * serves it without a custom domain ("GET requests that return text/html will be
 * rewritten to text/plain", https://supabase.com/docs/guides/functions/limits).
 */
export function answerHeaders(method: string, headers: Headers): Headers {
  const type = headers.get("content-type") ?? "";
  if (method !== "GET" || !/^\s*text\/html\s*(;|$)/i.test(type)) return headers;
  const rewritten = new Headers(headers);
  rewritten.set("content-type", type.replace(/^\s*text\/html\s*/i, "text/plain"));
  return rewritten;
}
