/**
 * How a function hands work on to a new request of itself (a fresh isolate with a
 * fresh budget): a POST to its own URL with the service role key, whose answer is not
 * awaited beyond its headers. Both the import-worker and the checksum validator use it.
 *
 * @module
 */

/** What calling oneself needs. */
export interface SelfInvokeOptions {
  /** SUPABASE_URL. */
  supabaseUrl: string;
  /** The function's name, as in /functions/v1/NAME. */
  functionName: string;
  serviceRoleKey: string;
  /**
   * The region the function runs in (SB_REGION on a hosted project): the next request
   * is pinned there (`x-region` and `forceFunctionRegion`), so a job that started next
   * to the database stays there (docs: functions/regional-invocation).
   */
  region?: string;
  /** Where a failed call is reported (it is never thrown: a cron tick will retry). */
  log: (line: string) => void;
  fetch?: typeof fetch;
  /** How long the call waits for the answer's headers (default {@link SELF_INVOKE_TIMEOUT_MS}). */
  timeoutMs?: number;
}

/**
 * How long a call of oneself waits for the new request's headers (its 202 comes at once,
 * after a cold start and the schema check). The caller awaits it holding a segment's
 * lease (60 s), unrenewed meanwhile: a call that hung on (a stalled platform or pooler)
 * let the lease lapse and the segment be taken over. Past it, the call is given up and
 * logged; the request may still run, and if not, pg_cron's next tick wakes another.
 */
export const SELF_INVOKE_TIMEOUT_MS = 10_000;

/**
 * What to add when the Edge Runtime refused the call itself. A hosted project rate-limits
 * the calls its functions make to its functions: each request chain has a budget of at
 * least 5,000 a minute (https://supabase.com/docs/guides/functions/recursive-functions),
 * and past it `fetch` throws a `RateLimitError` with `retryAfterMs`
 * (supabase/edge-runtime, vendor/deno_fetch/26_fetch.js). The sync calls itself about
 * once a second per segment in flight (README, "What the offline checks cannot prove");
 * the work it would have handed on waits for pg_cron's next sweep.
 */
function rateLimitNote(error: unknown): string {
  if ((error as Error | undefined)?.name !== "RateLimitError") return "";
  return " (the platform's limit on calls between functions; pg_cron's next sweep resumes the work)";
}

/** Returns `invoke(body)`, which starts another request of the function with `body`. */
export function selfInvoker(options: SelfInvokeOptions): (body: unknown) => Promise<void> {
  const base = `${options.supabaseUrl.replace(/\/$/, "")}/functions/v1/${options.functionName}`;
  const region = options.region?.trim();
  const url = region ? `${base}?forceFunctionRegion=${encodeURIComponent(region)}` : base;
  const send = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? SELF_INVOKE_TIMEOUT_MS;
  // Never the key, whatever fetch's message quotes (a header it refuses is quoted whole).
  const key = options.serviceRoleKey;
  const withoutKey = (text: string) => key ? text.replaceAll(key, "(the service key)") : text;
  return async (body) => {
    try {
      const response = await send(url, {
        method: "POST",
        headers: {
          authorization: `Bearer ${options.serviceRoleKey}`,
          "content-type": "application/json",
          ...(region ? { "x-region": region } : {}),
        },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (response.ok) {
        await response.body?.cancel();
        return;
      }
      // The function's own answer names the cause (the run, the table).
      const answer = (await response.text().catch(() => "")).slice(0, 300);
      options.log(
        `${options.functionName} could not call itself with ${
          JSON.stringify(body)
        }: HTTP ${response.status}${answer ? ` ${answer}` : ""}`,
      );
    } catch (error) {
      const cause = (error as Error).name === "TimeoutError"
        ? `no answer within ${timeoutMs} ms (the request may still run; if not, pg_cron's ` +
          "next tick wakes another)"
        : `${withoutKey((error as Error).message)}${rateLimitNote(error)}`;
      options.log(
        `${options.functionName} could not call itself with ${JSON.stringify(body)}: ${cause}`,
      );
    }
  };
}

/**
 * A function's own invoker, as each function that hands on builds it at cold start: the
 * project's URL from its settings, the first accepted service key, pinned to the region it
 * runs in (`SB_REGION`), failures logged to standard error.
 */
export function ownInvoker(
  functionName: string,
  supabaseUrl: string,
  serviceKeys: readonly string[],
  env: (name: string) => string | undefined,
): (body: unknown) => Promise<void> {
  return selfInvoker({
    supabaseUrl,
    functionName,
    serviceRoleKey: serviceKeys[0] ?? "",
    region: env("SB_REGION"),
    log: (line) => console.error(line),
  });
}
