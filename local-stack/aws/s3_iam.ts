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
 * and condition keys for Amazon S3"), path-style: a subresource in the query names its
 * own action (`?acl`, `?tagging`, `?versionId`, `?location`, ...: {@link s3Action}); else
 * GET or HEAD of an object is `s3:GetObject`, PUT or POST (the multipart upload's) of
 * one `s3:PutObject`, DELETE `s3:DeleteObject` (`s3:AbortMultipartUpload` with
 * `?uploadId`); GET or HEAD of a bucket `s3:ListBucket`. A copy (`x-amz-copy-source`)
 * also reads its source (`s3:GetObject`). One no statement allows gets S3's `403
 * AccessDenied`, worded as IAM words it. A key with `.` or `..` segments is refused
 * (`400 InvalidRequest`): S3 takes it as a name, s3rver as a path out of the bucket.
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

/** The S3 policy of each of the stack's keys that has one: the exporter's. */
export function stackS3Policies(exporterKeyId: string, bucket: string): Record<string, S3Policy> {
  return { [exporterKeyId]: exporterS3Policy(bucket) };
}

/**
 * What an export's requester must be allowed on the objects it writes: "s3:PutObject",
 * "s3:PutObjectAcl" and "s3:AbortMultipartUpload" (DynamoDB Developer Guide, "Requesting
 * a table export in DynamoDB", the policy it shows).
 */
export const EXPORT_WRITE_ACTIONS = [
  "s3:PutObject",
  "s3:PutObjectAcl",
  "s3:AbortMultipartUpload",
] as const;

/**
 * IAM's refusal to `keyId` under `policies` of writing `key` in `bucket` as an export
 * does ({@link EXPORT_WRITE_ACTIONS}), or null when allowed (a key without a policy is
 * the stand-in's own, allowed everything).
 */
export function putObjectDenied(
  policies: Record<string, S3Policy>,
  keyId: string,
  bucket: string,
  key: string,
): string | null {
  const policy = policies[keyId];
  return policy
    ? s3AccessDenied(policy, EXPORT_WRITE_ACTIONS.map((action) => ({ action, bucket, key })))
    : null;
}

/** One action on one resource (a bucket, or one of its objects when `key` is set). */
export interface S3Access {
  action: string;
  bucket: string;
  key?: string;
}

/** A subresource of an object, and its action per method. */
const OBJECT_SUBRESOURCES: Record<string, Record<string, string>> = {
  acl: { GET: "s3:GetObjectAcl", HEAD: "s3:GetObjectAcl", PUT: "s3:PutObjectAcl" },
  tagging: {
    GET: "s3:GetObjectTagging",
    HEAD: "s3:GetObjectTagging",
    PUT: "s3:PutObjectTagging",
    DELETE: "s3:DeleteObjectTagging",
  },
  attributes: { GET: "s3:GetObjectAttributes", HEAD: "s3:GetObjectAttributes" },
  retention: { GET: "s3:GetObjectRetention", PUT: "s3:PutObjectRetention" },
  "legal-hold": { GET: "s3:GetObjectLegalHold", PUT: "s3:PutObjectLegalHold" },
  restore: { POST: "s3:RestoreObject" },
  versionId: {
    GET: "s3:GetObjectVersion",
    HEAD: "s3:GetObjectVersion",
    DELETE: "s3:DeleteObjectVersion",
  },
  uploadId: {
    GET: "s3:ListMultipartUploadParts",
    PUT: "s3:PutObject",
    POST: "s3:PutObject",
    DELETE: "s3:AbortMultipartUpload",
  },
};

/** A bucket's subresources, and their action per method. */
const BUCKET_SUBRESOURCES: Record<string, Record<string, string>> = {
  location: { GET: "s3:GetBucketLocation" },
  uploads: { GET: "s3:ListBucketMultipartUploads" },
  versions: { GET: "s3:ListBucketVersions" },
  acl: { GET: "s3:GetBucketAcl", PUT: "s3:PutBucketAcl" },
  policy: { GET: "s3:GetBucketPolicy", PUT: "s3:PutBucketPolicy", DELETE: "s3:DeleteBucketPolicy" },
  delete: { POST: "s3:DeleteObject" },
};

/** The query parameters of a listing (ListObjects, ListObjectsV2): `s3:ListBucket`. */
const LISTING = new Set([
  "list-type",
  "prefix",
  "delimiter",
  "max-keys",
  "marker",
  "continuation-token",
  "start-after",
  "encoding-type",
  "fetch-owner",
]);

/**
 * What a path-style request (`method`, `path`, `query`, its `copySource` header) asks of
 * IAM; a string when the stand-in cannot serve it as S3 would (a key of `.` or `..`
 * segments).
 */
export function s3Accesses(
  method: string,
  path: string,
  query: string,
  copySource?: string | null,
): S3Access[] | string {
  const [, bucket = "", ...rest] = path.split("/");
  const key = rest.length > 0 ? decodeURIComponent(rest.join("/")) : "";
  if (key.split("/").some((segment) => segment === "." || segment === "..")) {
    return `the key ${JSON.stringify(key)} has . or .. segments, which the stand-in cannot ` +
      "serve as S3 does (it would read them as a path)";
  }
  if (bucket === "") {
    return [{ action: method === "GET" ? "s3:ListAllMyBuckets" : `s3:${method}`, bucket: "*" }];
  }
  const params = [...new URLSearchParams(query).keys()];
  if (key === "") {
    const named = params.find((p) => BUCKET_SUBRESOURCES[p]);
    const action = named
      ? BUCKET_SUBRESOURCES[named][method] ?? `s3:${method}Bucket${named}`
      : (method === "GET" || method === "HEAD") && params.every((p) => LISTING.has(p))
      ? "s3:ListBucket"
      : method === "PUT"
      ? "s3:CreateBucket"
      : method === "DELETE"
      ? "s3:DeleteBucket"
      : `s3:${method}Bucket`;
    return [{ action, bucket }];
  }
  const named = params.find((p) => OBJECT_SUBRESOURCES[p]);
  const action = named
    ? OBJECT_SUBRESOURCES[named][method] ?? `s3:${method}Object${named}`
    : method === "GET" || method === "HEAD"
    ? "s3:GetObject"
    : method === "PUT" || method === "POST"
    ? "s3:PutObject"
    : method === "DELETE"
    ? "s3:DeleteObject"
    : `s3:${method}Object`;
  const accesses: S3Access[] = [{ action, bucket, key }];
  if (copySource) {
    // `<bucket>/<key>[?versionId=...]`, URL-encoded, with or without a leading slash.
    const [source, version] = decodeURIComponent(copySource).replace(/^\//, "").split("?");
    const slash = source.indexOf("/");
    accesses.push({
      action: version?.startsWith("versionId=") ? "s3:GetObjectVersion" : "s3:GetObject",
      bucket: source.slice(0, slash),
      key: source.slice(slash + 1),
    });
  }
  return accesses;
}

/** The ARN of an access's resource. */
function arnOf(access: S3Access): string {
  if (access.bucket === "*") return "*";
  return access.key === undefined
    ? `arn:aws:s3:::${access.bucket}`
    : `arn:aws:s3:::${access.bucket}/${access.key}`;
}

/**
 * IAM's refusal of `accesses` by `policy` (the first one no statement allows), or null
 * when every one is allowed.
 */
export function s3AccessDenied(policy: S3Policy, accesses: S3Access[]): string | null {
  for (const access of accesses) {
    const grants = access.key === undefined ? policy.buckets : policy.objects;
    const allowed = grants.some((grant) =>
      grant.bucket === access.bucket && grant.actions.includes(access.action)
    );
    if (!allowed) {
      return `User: arn:aws:iam::000000000000:user/${policy.user} is not authorized to perform: ` +
        `${access.action} on resource: "${arnOf(access)}" because no identity-based policy ` +
        `allows the ${access.action} action`;
    }
  }
  return null;
}
