/**
 * The table a DynamoDB ARN names: one regular expression, on its own so that the Lambda's
 * bundle (lambda/stream_forwarder.ts) can name a batch's table without the registry.
 *
 * @module
 */

/**
 * The table name in a DynamoDB table or stream ARN
 * (`arn:aws:dynamodb:REGION:ACCOUNT:table/NAME[/stream/LABEL]`), or undefined.
 */
export function tableNameFromArn(arn: string): string | undefined {
  return arn.match(/^arn:aws[\w-]*:dynamodb:[^:]*:[^:]*:table\/([^/]+)/)?.[1];
}
