/**
 * Which of DynamoDB Local's databases a request is for. DynamoDB Local keeps one
 * database per access key and region, so the stand-ins tell tables apart by the access
 * key and region of the request's credential scope.
 *
 * @module
 */

/**
 * The access key id and region of `Authorization: ... Credential=AKID/date/region/
 * service/aws4_request`, or undefined for a request without one.
 */
export function credentialOf(headers: Headers): { keyId: string; region: string } | undefined {
  const match = /Credential=([^/]+)\/[^/]+\/([^/]+)\//.exec(headers.get("authorization") ?? "");
  return match ? { keyId: match[1], region: match[2] } : undefined;
}

/** `AKID/region` of the request's credential scope ({@link credentialOf}), or "anonymous". */
export function scopeOf(headers: Headers): string {
  const credential = credentialOf(headers);
  return credential ? `${credential.keyId}/${credential.region}` : "anonymous";
}
