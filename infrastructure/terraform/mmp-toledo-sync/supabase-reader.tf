# What the Supabase Edge Functions need in AWS: the import-worker (backfills) and the
# data-checksum-validator read the source tables with Scan, GetItem and Query; the
# stream-check (lost stream records, docs/sync-semantics.md) reads the tables' streams
# with DescribeStream, GetShardIterator and GetRecords. An IAM user with exactly that, on
# exactly the synced tables and their streams. Its access key is created by the
# operator (aws iam create-access-key) and given to Supabase as a function secret, so it
# is in neither Terraform's state nor its variables.

variable "create_supabase_reader" {
  description = "Create the IAM user whose access key the Supabase Edge Functions read the tables with."
  type        = bool
  default     = true
}

locals {
  synced_table_arns = concat(
    values(try(module.firespring_sync[0].table_arns, {})),
    values(try(module.mmp_toledo_sync[0].table_arns, {})),
  )
  # A stream's ARN is its table's followed by /stream/<label>; the label changes when a
  # stream is turned off and on again, so every stream of exactly these tables
  # (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html,
  # resource type "stream").
  synced_stream_arns = [for arn in local.synced_table_arns : "${arn}/stream/*"]
}

data "aws_iam_policy_document" "supabase_reader" {
  count    = var.create_supabase_reader && length(local.synced_table_arns) > 0 ? 1 : 0
  provider = aws.us_east_1

  statement {
    sid       = "ReadTheSourceTables"
    actions   = ["dynamodb:Scan", "dynamodb:GetItem", "dynamodb:Query", "dynamodb:DescribeTable"]
    resources = local.synced_table_arns
  }

  statement {
    sid       = "ReadTheSourceStreams"
    actions   = ["dynamodb:DescribeStream", "dynamodb:GetShardIterator", "dynamodb:GetRecords"]
    resources = local.synced_stream_arns
  }
}

resource "aws_iam_user" "supabase_reader" {
  count    = length(data.aws_iam_policy_document.supabase_reader)
  provider = aws.us_east_1
  name     = "${var.project_name}-supabase-reader-${var.environment}"
  # Its access keys are made outside Terraform (README): destroyed with it, or the
  # destroy (or the switch turned off) fails with DeleteConflict.
  force_destroy = true
}

resource "aws_iam_user_policy" "supabase_reader" {
  count    = length(data.aws_iam_policy_document.supabase_reader)
  provider = aws.us_east_1
  name     = "read-the-source-tables"
  user     = aws_iam_user.supabase_reader[0].name
  policy   = data.aws_iam_policy_document.supabase_reader[0].json
}

output "supabase_reader_user" {
  description = "The IAM user the Edge Functions read DynamoDB as: aws iam create-access-key --user-name <it>, then npx supabase secrets set AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=..."
  value       = one(aws_iam_user.supabase_reader[*].name)
}
