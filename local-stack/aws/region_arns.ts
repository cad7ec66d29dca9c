/**
 * The regions of the DynamoDB stand-in's ARNs. DynamoDB Local writes `ddblocal` where AWS
 * writes the region into every ARN it makes (`arn:aws:dynamodb:ddblocal:000000000000:...`:
 * a table's TableArn and LatestStreamArn, DescribeStream's StreamArn, the ARN a shard
 * iterator begins with) and into a stream record's `awsRegion`; AWS names the region the
 * request was made in (us-east-1, us-east-2 here). No client may tell the stand-in from
 * AWS by that, so the proxy speaks the real region at its edge (local-stack/aws/main.ts):
 *
 * - an answer going out has `arn:aws:dynamodb:ddblocal:` made `arn:aws:dynamodb:<region>:`
 *   and `"awsRegion": "ddblocal"` made the region, where <region> is the one the request
 *   was signed for (its SigV4 credential scope, scope.ts);
 * - a request coming in has that region's ARNs made DynamoDB Local's again, before
 *   anything behind the edge reads it: every layer (the streams' trims, shards and
 *   readers, the describe limit, the stream times, the exports, IAM) keeps working on
 *   DynamoDB Local's ARNs. A request naming an ARN of another region, or DynamoDB Local's
 *   own `ddblocal` (which it would serve), is answered 400 ResourceNotFoundException, as a
 *   region's endpoint knows no other region's tables (a shard iterator of another region
 *   too, which DynamoDB Local would read whatever region it names).
 *
 * Item data is never touched: a string attribute value (`"S"`, `"SS"`) is the client's,
 * whatever it says. The account stays DynamoDB Local's, 000000000000. The stack's own
 * control paths (unsigned) name the region by the ARN they are given
 * ({@link namedRegion}). Exports written to S3 carry the region too (export_completion.ts,
 * {@link regionArn}).
 *
 * @module
 */

import { crc32 } from "../../functions-shared/crc32.ts";
import { awsError } from "./json_answer.ts";
import { withBody } from "./request_body.ts";

/** The region DynamoDB Local names in every ARN it makes, whatever region it was asked in. */
export const LOCAL_REGION = "ddblocal";

const ARN_HEAD = "arn:aws:dynamodb:";
const LOCAL_HEAD = `${ARN_HEAD}${LOCAL_REGION}:`;

/** A region as AWS names them (us-east-1, eu-central-2, us-gov-west-1, il-central-1). */
const REGION = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;

/** Whether `region` is spelled as an AWS region (DynamoDB Local's `ddblocal` is not). */
export function isRegionName(region: string): boolean {
  return REGION.test(region);
}

/** `arn` (or any text holding DynamoDB Local's ARNs) with `region` in place of `ddblocal`. */
export function regionArn(arn: string, region: string): string {
  return arn.replaceAll(LOCAL_HEAD, `${ARN_HEAD}${region}:`);
}

/** `arn` (or any text holding `region`'s ARNs) with DynamoDB Local's `ddblocal` in place of `region`. */
export function localArn(arn: string, region: string): string {
  return arn.replaceAll(`${ARN_HEAD}${region}:`, LOCAL_HEAD);
}

/**
 * The region of the first DynamoDB ARN `text` names that is spelled as an AWS region, or
 * undefined: how the stack's control paths (stream_trim.ts, stream_shards.ts), which are
 * not signed, tell which region the client speaks of.
 */
export function namedRegion(text: string): string | undefined {
  for (const match of text.matchAll(/arn:aws:dynamodb:([a-z0-9-]+):/g)) {
    if (isRegionName(match[1])) return match[1];
  }
  return undefined;
}

/** Keys whose string values are item data (a string or a string set's members). */
const ITEM_STRINGS = new Set(["S", "SS"]);
/** Keys whose strings are the client's attribute names, whatever they say. */
const ATTRIBUTE_NAMES = new Set(["ExpressionAttributeNames", "AttributesToGet"]);

/**
 * `value` (parsed JSON) with `change` applied to every string but item data, and
 * `"awsRegion"`'s value set by `awsRegion` when given; object keys (attribute names) stay.
 * `seen.changed` tells whether anything changed.
 */
function walk(
  value: unknown,
  change: (text: string) => string,
  awsRegion: ((text: string) => string) | undefined,
  seen: { changed: boolean },
): unknown {
  if (typeof value === "string") {
    const out = change(value);
    if (out !== value) seen.changed = true;
    return out;
  }
  if (Array.isArray(value)) return value.map((v) => walk(v, change, awsRegion, seen));
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (ITEM_STRINGS.has(key) && (typeof v === "string" || Array.isArray(v))) out[key] = v;
    else if (ATTRIBUTE_NAMES.has(key)) out[key] = v;
    else if (key === "awsRegion" && awsRegion && typeof v === "string") {
      out[key] = walk(v, awsRegion, undefined, seen);
    } else out[key] = walk(v, change, awsRegion, seen);
  }
  return out;
}

/** `text` (JSON, or not) with `change` applied outside item data; itself when nothing changes. */
function rewritten(
  text: string,
  change: (text: string) => string,
  awsRegion?: (text: string) => string,
): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return change(text);
  }
  const seen = { changed: false };
  const out = walk(parsed, change, awsRegion, seen);
  // Unchanged, the bytes as they came (JSON.stringify may space or spell them otherwise).
  return seen.changed ? JSON.stringify(out) : text;
}

/** An answer's body as AWS in `region` would give it: its ARNs and `awsRegion` that region's. */
export function outwardText(text: string, region: string): string {
  if (!text.includes(LOCAL_HEAD) && !text.includes(`"${LOCAL_REGION}"`)) return text;
  return rewritten(
    text,
    (s) => regionArn(s, region),
    (s) => s === LOCAL_REGION ? region : s,
  );
}

/**
 * The first DynamoDB ARN of `text` (a request's body) outside item data whose region is
 * not `region`, or undefined: DynamoDB Local's own `ddblocal` included, which it would
 * serve whatever region the request was signed for, where AWS knows no such region.
 */
export function foreignArn(text: string, region: string): string | undefined {
  if (!text.includes(ARN_HEAD)) return undefined;
  let found: string | undefined;
  rewritten(text, (s) => {
    for (const match of s.matchAll(/arn:aws:dynamodb:([^:]*):[^"\s|]*/g)) {
      if (match[1] !== region) found ??= match[0];
    }
    return s;
  });
  return found;
}

/** A request's body as DynamoDB Local takes it: `region`'s ARNs made its own. */
export function inwardText(text: string, region: string): string {
  if (!text.includes(`${ARN_HEAD}${region}:`)) return text;
  return rewritten(text, (s) => localArn(s, region));
}

type Handler = (request: Request) => Promise<Response>;

/**
 * `handler` behind the edge: the request's ARNs of the region `regionOf` names made
 * DynamoDB Local's, and DynamoDB Local's ARNs in the answer made that region's. With no
 * region named, the request and its answer pass as they are.
 */
export function regionEdge(
  handler: Handler,
  regionOf: (request: Request, body: string) => string | undefined,
): Handler {
  return async (request) => {
    const hasBody = request.method !== "GET" && request.method !== "HEAD";
    // Handed on as the bytes that came unless an ARN changed (a body that is not UTF-8
    // stays as it was, for DynamoDB Local to refuse).
    const bytes = hasBody ? new Uint8Array(await request.arrayBuffer()) : undefined;
    const text = bytes ? DECODER.decode(bytes) : "";
    const region = regionOf(request, text);
    const known = region !== undefined && isRegionName(region);
    // An ARN of another region, or DynamoDB Local's own, names nothing in this region.
    const foreign = known ? foreignArn(text, region) : undefined;
    if (foreign) {
      return awsError(
        "ResourceNotFoundException",
        `Requested resource not found: ${foreign} is not of this region (${region})`,
      );
    }
    const inward = known ? inwardText(text, region) : text;
    const response = await handler(
      bytes === undefined ? request : withBody(request, inward === text ? bytes : inward),
    );
    return known ? await outward(response, region) : response;
  };
}

const DECODER = new TextDecoder();

/** `response` with its ARNs `region`'s; its `x-amz-crc32`, if it has one, recomputed. */
async function outward(response: Response, region: string): Promise<Response> {
  if (response.body === null) return response;
  const bytes = new Uint8Array(await response.arrayBuffer());
  const text = DECODER.decode(bytes);
  const out = outwardText(text, region);
  const init = { status: response.status, statusText: response.statusText };
  if (out === text) return new Response(bytes, { ...init, headers: response.headers });
  const headers = new Headers(response.headers);
  headers.delete("content-length");
  if (headers.has("x-amz-crc32")) headers.set("x-amz-crc32", String(crc32(out)));
  return new Response(out, { ...init, headers });
}
