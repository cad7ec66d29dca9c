/**
 * Authentication of internal callers (pg_cron through pg_net, operators' scripts): the
 * `Authorization: Bearer <service role key>` header, compared in constant time.
 *
 * @module
 */

/** Whether two strings are equal, taking the same time wherever they differ. */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/**
 * Checks that `req` carries the service role key as a bearer token. Returns undefined
 * when it does, or the reason it does not (for a 401 answer).
 *
 * Fails closed: with no key configured (unset, empty or blank) every request is
 * refused, whatever it carries; the key itself is never part of the reason.
 */
export function serviceRoleProblem(
  req: Request,
  serviceRoleKey: string | undefined,
): string | undefined {
  if (serviceRoleKey === undefined || serviceRoleKey.trim() === "") {
    return "the function has no SUPABASE_SERVICE_ROLE_KEY to check against";
  }
  const header = req.headers.get("authorization");
  if (!header) return "missing Authorization header: send `Bearer <service role key>`";
  const token = header.match(/^Bearer\s+(.+)$/i)?.[1]?.trim();
  if (!token || !constantTimeEqual(token, serviceRoleKey)) {
    return "Authorization is not the service role key";
  }
  return undefined;
}
