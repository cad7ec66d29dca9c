/**
 * Which of DynamoDB Local's databases a request is for. DynamoDB Local keeps one
 * database per access key and region, so the stand-ins tell tables apart by the access
 * key and region of the request's credential scope.
 *
 * @module
 */

/** `AKID/region` from `Authorization: ... Credential=AKID/date/region/service/aws4_request`. */
export function scopeOf(headers: Headers): string {
  const match = /Credential=([^/]+)\/[^/]+\/([^/]+)\//.exec(headers.get("authorization") ?? "");
  return match ? `${match[1]}/${match[2]}` : "anonymous";
}
