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

/**
 * `headers` with the credential scope's access key id `from` made `to`: a request a
 * stand-in let through for a key with a policy, handed on as the key the store behind it
 * knows (DynamoDB Local's database, s3rver's one key). Neither checks the signature again.
 */
export function asKey(headers: Headers, from: string, to: string): Headers {
  const handed = new Headers(headers);
  handed.set(
    "authorization",
    (headers.get("authorization") ?? "").replace(`Credential=${from}/`, `Credential=${to}/`),
  );
  return handed;
}

/**
 * The header a request handed on as the store's key carries with the key that signed it
 * (dynamodb_iam.ts sets it, and drops one a client sent): the export stand-in writes to
 * S3 as that key, as DynamoDB writes an export with its requester's rights.
 */
export const SIGNED_BY_HEADER = "x-stack-signed-by";

/** The access key that signed a request: the one {@link SIGNED_BY_HEADER} names, else its scope's. */
export function signerOf(headers: Headers): string | undefined {
  return headers.get(SIGNED_BY_HEADER) ?? credentialOf(headers)?.keyId;
}

/** `AKID/region` of the request's credential scope ({@link credentialOf}), or "anonymous". */
export function scopeOf(headers: Headers): string {
  const credential = credentialOf(headers);
  return credential ? `${credential.keyId}/${credential.region}` : "anonymous";
}
