/**
 * DescribeStream held to AWS's rate: "You can call DescribeStream at a maximum rate of 10
 * times per second" (DynamoDB Streams API reference, DescribeStream,
 * https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_DescribeStream.html).
 * DynamoDB Local answers any number.
 *
 * The reference does not say what the 10 are shared by; Kinesis Data Streams, whose
 * DescribeStream DynamoDB Streams' mirrors, has "a limit of 10 transactions per second
 * per account" (https://docs.aws.amazon.com/kinesis/latest/APIReference/API_DescribeStream.html).
 * The stand-in takes the stricter reading: every DescribeStream of an account in a region
 * (the request's access key and region, scope.ts), whichever stream it names, counts
 * against the same 10, in a sliding second: a call made when {@link MAX_PER_SECOND} calls
 * were let through within the last {@link WINDOW_MS} is answered, unforwarded, HTTP 400
 * `{"__type": "com.amazon.coral.availability#ThrottlingException", "message": "Rate
 * exceeded"}`. A throttled call does not count (it did no work).
 *
 * The error is not one the operation's reference lists. It is the common one, "HTTP Status
 * Code: 400" (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/CommonErrors.html,
 * ThrottlingException); AWS's own Kinesis adapter for DynamoDB Streams turns a
 * DescribeStream's error code `ThrottlingException` into Kinesis's LimitExceededException
 * (awslabs/dynamodb-streams-kinesis-adapter, AmazonServiceExceptionTransformer); a
 * DynamoDB Streams client met it as HTTP 400 "Rate exceeded"
 * (https://github.com/aws/aws-sdk-java-v2/issues/470); and AWS's request throttling
 * answers DynamoDB's JSON protocol with that `__type`. The SDKs, and this project's client
 * (functions-shared/dynamo_errors.ts), retry it as throttling.
 *
 * This layer is outside every other of the proxy (local-stack/aws/main.ts): the
 * stand-in's own DescribeStream calls (stream_shards.ts) are not counted; a client's are,
 * answered from DynamoDB Local or from the proxy's cache (descriptions.ts) alike.
 *
 * @module
 */

import { awsJsonAnswer } from "./json_answer.ts";
import { scopeOf } from "./scope.ts";
import { ProxyLayer } from "./proxy_layer.ts";

/** DescribeStream calls an account may make in a region within {@link WINDOW_MS}. */
export const MAX_PER_SECOND = 10;
/** The second the calls are counted in, sliding. */
export const WINDOW_MS = 1000;

const TARGET = "DynamoDBStreams_20120810.DescribeStream";

type Next = (request: Request) => Promise<Response>;

/** The answer DynamoDB Streams gives a call past its rate: HTTP 400 ThrottlingException. */
export function rateExceeded(): Response {
  return awsJsonAnswer(400, {
    __type: "com.amazon.coral.availability#ThrottlingException",
    message: "Rate exceeded",
  });
}

/** The layer: see the module's comment. */
export class DescribeLimit extends ProxyLayer {
  /** Scope → when each call let through within the window was made, oldest first. */
  #calls = new Map<string, number[]>();

  /** Answers a DescribeStream past the rate itself; any other request passes on. */
  async handle(request: Request, next: Next): Promise<Response> {
    if (request.method !== "POST" || request.headers.get("x-amz-target") !== TARGET) {
      return await next(request);
    }
    const scope = scopeOf(request.headers);
    const now = this.now();
    const calls = this.#recent(scope, now);
    if (calls.length >= MAX_PER_SECOND) {
      this.log(
        `DescribeStream of ${scope}: ${calls.length} within the last ${WINDOW_MS} ms (AWS ` +
          `allows ${MAX_PER_SECOND}); throttled (ThrottlingException)`,
      );
      return rateExceeded();
    }
    calls.push(now);
    return await next(request);
  }

  /** The calls of `scope` within the window; older ones, and idle scopes, are forgotten. */
  #recent(scope: string, now: number): number[] {
    for (const [other, times] of this.#calls) {
      while (times.length > 0 && now - times[0] >= WINDOW_MS) times.shift();
      if (times.length === 0 && other !== scope) this.#calls.delete(other);
    }
    let calls = this.#calls.get(scope);
    if (!calls) this.#calls.set(scope, calls = []);
    return calls;
  }
}
