# What the Supabase Edge Functions need in AWS: the import-worker (backfills) and the
# data-checksum-validator read the source tables with Scan, GetItem and Query. An IAM
# user with exactly that, on exactly the synced tables. Its access key is created by the
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
}

data "aws_iam_policy_document" "supabase_reader" {
  count    = var.create_supabase_reader && length(local.synced_table_arns) > 0 ? 1 : 0
  provider = aws.us_east_1

  statement {
    sid       = "ReadTheSourceTables"
    actions   = ["dynamodb:Scan", "dynamodb:GetItem", "dynamodb:Query", "dynamodb:DescribeTable"]
    resources = local.synced_table_arns
  }
}

resource "aws_iam_user" "supabase_reader" {
  count    = length(data.aws_iam_policy_document.supabase_reader)
  provider = aws.us_east_1
  name     = "${var.project_name}-supabase-reader-${var.environment}"
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
