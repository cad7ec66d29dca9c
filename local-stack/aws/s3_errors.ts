/**
 * S3's error answer, as its REST API gives it (an XML `Error` with its `Code`, `Message`
 * and `RequestId`; https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html),
 * for the S3 stand-in's checks (s3_auth.ts) and faults (s3_faults.ts).
 *
 * @module
 */

/** S3's XML error answer: `status`, `code` and `message`, with `headers` besides. */
export function s3Error(
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): Response {
  const requestId = crypto.randomUUID();
  const escaped = message.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  return new Response(
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${escaped}</Message>` +
      `<RequestId>${requestId}</RequestId></Error>`,
    {
      status,
      headers: {
        "content-type": "application/xml",
        "x-amz-request-id": requestId,
        date: new Date().toUTCString(),
        ...headers,
      },
    },
  );
}
