/**
 * IAM for the S3 stand-in: what a key with a policy may do to the buckets, as the
 * project's Terraform grants it on AWS. s3rver evaluates no policy (it takes its one key
 * for everything, and a request with no signature too).
 *
 * - The operator's exporter (`infrastructure/terraform/mmp-toledo-sync/exports.tf`, its
 *   last two statements): `s3:PutObject`, `s3:PutObjectAcl`, `s3:AbortMultipartUpload`
 *   and `s3:GetObject` on the export bucket's objects, `s3:ListBucket` on the bucket.
 *
 * `infrastructure/terraform/terraform_test.ts` checks that these lists are Terraform's.
 * The stand-in's own key (`S3_ACCESS_KEY_ID`, the stack's) has no policy.
 *
 * A request is the action S3 authorizes it as (the S3 User Guide's "Actions, resources,
 * and condition keys for Amazon S3"), path-style: GET or HEAD of an object is
 * `s3:GetObject`; PUT of an object `s3:PutObject` (a part too, and the uploads' POSTs),
 * with `?acl` `s3:PutObjectAcl`; DELETE of an object `s3:DeleteObject`, with `?uploadId`
 * `s3:AbortMultipartUpload`; GET or HEAD of a bucket `s3:ListBucket`. One no statement
 * allows gets S3's `403 AccessDenied`, worded as IAM words it.
 *
 * @module
 */

/** The exporter's actions on the export bucket's objects (exports.tf). */
export const EXPORTER_OBJECT_ACTIONS: readonly string[] = [
  "s3:PutObject",
  "s3:PutObjectAcl",
  "s3:AbortMultipartUpload",
  "s3:GetObject",
];
/** The exporter's action on the export bucket itself (exports.tf). */
export const EXPORTER_BUCKET_ACTIONS: readonly string[] = ["s3:ListBucket"];

/** An IAM user and what it may do, on which bucket's objects and which buckets. */
export interface S3Policy {
  user: string;
  objects: { actions: readonly string[]; bucket: string }[];
  buckets: { actions: readonly string[]; bucket: string }[];
}

/** The operator's exporter: write its exports into `bucket` and read them back. */
export function exporterS3Policy(bucket: string): S3Policy {
  return {
    user: "supabase-exporter",
    objects: [{ actions: EXPORTER_OBJECT_ACTIONS, bucket }],
    buckets: [{ actions: EXPORTER_BUCKET_ACTIONS, bucket }],
  };
}

/** The action a path-style request is authorized as, and the ARN it acts on. */
export function s3Action(
  method: string,
  path: string,
  query: string,
): { action: string; bucket: string; key?: string; arn: string } | undefined {
  const [, bucket = "", ...rest] = path.split("/");
  if (bucket === "") return undefined; // ListBuckets: on `*`, which no statement names
  const key = rest.length > 0 ? decodeURIComponent(rest.join("/")) : undefined;
  const params = new URLSearchParams(query);
  if (key === undefined || key === "") {
    const action = method === "GET" || method === "HEAD" ? "s3:ListBucket" : undefined;
    return action ? { action, bucket, arn: `arn:aws:s3:::${bucket}` } : undefined;
  }
  const arn = `arn:aws:s3:::${bucket}/${key}`;
  const action = method === "GET" || method === "HEAD"
    ? "s3:GetObject"
    : method === "PUT"
    ? (params.has("acl") ? "s3:PutObjectAcl" : "s3:PutObject")
    : method === "POST"
    ? "s3:PutObject"
    : method === "DELETE"
    ? (params.has("uploadId") ? "s3:AbortMultipartUpload" : "s3:DeleteObject")
    : undefined;
  return action ? { action, bucket, key, arn } : undefined;
}

/**
 * IAM's refusal of the request (`method`, `path`, `query`) by `policy`, or null when a
 * statement allows it.
 */
export function s3AccessDenied(
  policy: S3Policy,
  method: string,
  path: string,
  query: string,
): string | null {
  const asked = s3Action(method, path, query);
  const action = asked?.action ?? `s3:${method}`;
  const allowed = asked !== undefined &&
    (asked.key === undefined ? policy.buckets : policy.objects).some((grant) =>
      grant.bucket === asked.bucket && grant.actions.includes(asked.action)
    );
  if (allowed) return null;
  return `User: arn:aws:iam::000000000000:user/${policy.user} is not authorized to perform: ` +
    `${action} on resource: "${asked?.arn ?? "*"}" because no identity-based policy allows ` +
    `the ${action} action`;
}
