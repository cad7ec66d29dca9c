# Backfills from a point-in-time export (docs/sync-semantics.md, "Backfills from an
# export"): DynamoDB writes a snapshot of a table to S3 without using its read capacity,
# and the sync loads the files. This is the bucket the exports go to, and the exporter's
# rights to request them and to read them back.
#
# An export needs point-in-time recovery (PITR) on its table, else DynamoDB answers
# PointInTimeRecoveryUnavailableException
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport_Requesting.html).
# The tables are not Terraform's (they are read as data sources), so PITR is turned on
# with the commands of the output `point_in_time_recovery_commands`.
#
# One bucket, in us-east-1, serves both regions: an export's bucket need not be in its
# table's region (the same page).

variable "create_export_bucket" {
  description = "Create the S3 bucket DynamoDB exports the tables to, and an exporter that may export to it and read it."
  type        = bool
  default     = true
}

variable "export_expiration_days" {
  description = "Days after which an export's files are deleted: an export is read once, by its backfill."
  type        = number
  default     = 7

  validation {
    condition     = var.export_expiration_days >= 1
    error_message = "export_expiration_days must be at least 1."
  }
}

locals {
  # The synced tables, not the reader's switch: an operator's own reader must not take the
  # bucket (and every export in it) away.
  exports_enabled = var.create_export_bucket && length(local.synced_table_arns) > 0
  # Each synced table's name → its region.
  synced_table_regions = merge(
    { for table in keys(try(module.firespring_sync[0].table_arns, {})) : table => "us-east-1" },
    { for table in keys(try(module.mmp_toledo_sync[0].table_arns, {})) : table => "us-east-2" },
  )
}

resource "aws_s3_bucket" "exports" {
  count         = local.exports_enabled ? 1 : 0
  provider      = aws.us_east_1
  bucket_prefix = "${var.project_name}-dynamodb-exports-${var.environment}-"
  force_destroy = true

  lifecycle {
    # The provider refuses a bucket_prefix past 37 characters (the name is the prefix and
    # 26 of its own, within S3's 63): said here, at plan time, naming the two variables.
    precondition {
      condition     = length("${var.project_name}-dynamodb-exports-${var.environment}-") <= 37
      error_message = "project_name and environment make the export bucket's prefix longer than the 37 characters S3 names allow it: shorten one of them."
    }
  }
}

resource "aws_s3_bucket_public_access_block" "exports" {
  count                   = length(aws_s3_bucket.exports)
  provider                = aws.us_east_1
  bucket                  = aws_s3_bucket.exports[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# Objects belong to the bucket's owner, whoever wrote them (ACLs off); the export's
# s3:PutObjectAcl is still asked for by DynamoDB, so the exporter is granted it below.
resource "aws_s3_bucket_ownership_controls" "exports" {
  count    = length(aws_s3_bucket.exports)
  provider = aws.us_east_1
  bucket   = aws_s3_bucket.exports[0].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "exports" {
  count    = length(aws_s3_bucket.exports)
  provider = aws.us_east_1
  bucket   = aws_s3_bucket.exports[0].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "exports" {
  count    = length(aws_s3_bucket.exports)
  provider = aws.us_east_1
  bucket   = aws_s3_bucket.exports[0].id

  rule {
    id     = "expire-exports"
    status = "Enabled"
    filter {}
    expiration {
      days = var.export_expiration_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

# Only over TLS.
data "aws_iam_policy_document" "exports_bucket" {
  count    = length(aws_s3_bucket.exports)
  provider = aws.us_east_1

  statement {
    sid       = "DenyPlainHttp"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.exports[0].arn, "${aws_s3_bucket.exports[0].arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "exports" {
  count    = length(aws_s3_bucket.exports)
  provider = aws.us_east_1
  bucket   = aws_s3_bucket.exports[0].id
  policy   = data.aws_iam_policy_document.exports_bucket[0].json

  depends_on = [aws_s3_bucket_public_access_block.exports]
}

# The exporter: the operator's identity for `npm run backfill -- --from-export`, which runs
# next to the database, never in an Edge Function, so the functions' reader key cannot
# start paid exports or write into the bucket the loader trusts. It may check the tables'
# point-in-time recovery and streams, export exactly the synced tables, follow its
# exports, write them to the bucket (the export writes as its requester: s3:PutObject,
# s3:PutObjectAcl and s3:AbortMultipartUpload, per the page above) and read them back. A
# user of its own with a managed policy: an IAM user's inline policies may hold 2,048
# characters in all (IAM quotas,
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html), and this
# one with the reader's was about 4,100, which `terraform apply` would have refused.
data "aws_iam_policy_document" "supabase_exporter" {
  count    = length(aws_s3_bucket.exports)
  provider = aws.us_east_1

  statement {
    sid       = "CheckTheSourceTables"
    actions   = ["dynamodb:DescribeTable", "dynamodb:DescribeContinuousBackups"]
    resources = local.synced_table_arns
  }

  statement {
    sid       = "ExportTheSourceTables"
    actions   = ["dynamodb:ExportTableToPointInTime"]
    resources = local.synced_table_arns
  }

  statement {
    sid       = "FollowTheirExports"
    actions   = ["dynamodb:DescribeExport"]
    resources = [for arn in local.synced_table_arns : "${arn}/export/*"]
  }

  statement {
    sid       = "WriteAndReadTheExports"
    actions   = ["s3:PutObject", "s3:PutObjectAcl", "s3:AbortMultipartUpload", "s3:GetObject"]
    resources = ["${aws_s3_bucket.exports[0].arn}/*"]
  }

  statement {
    sid       = "ListTheExports"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.exports[0].arn]
  }
}

resource "aws_iam_user" "supabase_exporter" {
  count    = length(data.aws_iam_policy_document.supabase_exporter)
  provider = aws.us_east_1
  name     = "${var.project_name}-supabase-exporter-${var.environment}"
  # Its access keys are made outside Terraform (README): destroyed with it, or the
  # destroy (or the switch turned off) fails with DeleteConflict.
  force_destroy = true
}

resource "aws_iam_policy" "supabase_exporter" {
  count       = length(data.aws_iam_policy_document.supabase_exporter)
  provider    = aws.us_east_1
  name        = "${var.project_name}-export-the-source-tables-${var.environment}"
  description = "Export the synced DynamoDB tables to the export bucket and read them back (npm run backfill -- --from-export)."
  policy      = data.aws_iam_policy_document.supabase_exporter[0].json
}

resource "aws_iam_user_policy_attachment" "supabase_exporter" {
  count      = length(data.aws_iam_policy_document.supabase_exporter)
  provider   = aws.us_east_1
  user       = aws_iam_user.supabase_exporter[0].name
  policy_arn = aws_iam_policy.supabase_exporter[0].arn
}

output "supabase_exporter_user" {
  description = "The IAM user npm run backfill -- --from-export runs as: aws iam create-access-key --user-name <it>, then AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... for that command alone."
  value       = one(aws_iam_user.supabase_exporter[*].name)
}

output "export_bucket" {
  description = "The S3 bucket the tables are exported to (npm run backfill -- --from-export)."
  value       = one(aws_s3_bucket.exports[*].bucket)
}

output "point_in_time_recovery_commands" {
  description = "The commands that turn point-in-time recovery on for each synced table (an export needs it; the tables are not Terraform's)."
  value = local.exports_enabled ? [
    for table, region in local.synced_table_regions : join(" ", [
      "aws dynamodb update-continuous-backups --region ${region} --table-name ${table}",
      "--point-in-time-recovery-specification PointInTimeRecoveryEnabled=true",
    ])
  ] : []
}
