# What the `write-back` Edge Function needs in AWS (docs/sync-semantics.md, "Admin
# edits"): an admin's edit of a mirror row is applied to its DynamoDB item with one
# conditional UpdateItem. An IAM user of its own, separate from the reader, allowed
# exactly that: dynamodb:UpdateItem on the synced tables, and on each table only the
# attributes the registry maps to a column, its key and its documented catch-all
# attributes (writeBackAttributes in functions-shared/table_registry.ts; a test checks
# the lists below equal it). No PutItem, no DeleteItem. What IAM cannot hold back, and a
# leaked key could do: UpdateItem "adds a new item to the table if it does not already
# exist" (API reference, UpdateItem), so a request without the function's
# attribute_exists condition creates an item of those attributes; and no condition key
# governs ReturnValuesOnConditionCheckFailure, so a request whose condition fails may get
# the whole item back. Keep the key as a secret of the function alone.
# Its access key is created by the operator (aws iam create-access-key) and given to
# Supabase as the function secrets WRITE_BACK_AWS_ACCESS_KEY_ID and
# WRITE_BACK_AWS_SECRET_ACCESS_KEY, so it is in neither Terraform's state nor its
# variables.
#
# The condition keys (Amazon DynamoDB in the Service Authorization Reference,
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html,
# and "Using IAM policy conditions for fine-grained access control",
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/specifying-conditions.html):
# - dynamodb:Attributes, the top-level attribute names a request accesses.
#   ForAllValues:StringEquals allows a request only when every name it accesses is in
#   the table's list; the table's key attributes must be in the list.
# - dynamodb:ReturnValues: NONE (the default; the change comes back through the stream)
#   or UPDATED_OLD (the previous values of exactly the attributes the update writes,
#   all inside the list). ALL_OLD and ALL_NEW return the whole item, attributes outside
#   the list included, and UPDATED_NEW is not needed: all three are refused.
#   IfExists: a request without ReturnValues is NONE.
#
# One managed policy, not an inline one: a user's inline policies together may hold
# 2,048 characters, a managed policy 6,144
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html); nine
# statements with their attribute lists need more than the first.

variable "create_supabase_writer" {
  description = "Create the IAM user whose access key the write-back Edge Function applies admins' edits to DynamoDB with (UpdateItem of the mapped attributes only)."
  type        = bool
  default     = true
}

locals {
  # writeBackAttributes(spec) of functions-shared/table_registry.ts, per source table
  # (sorted; infrastructure/terraform/terraform_test.ts checks they are equal).
  write_back_attributes = {
    "firespring-backdoor-actions-dev"         = ["action_id", "action_type", "created_at", "data", "session_id", "timestamp", "title", "type", "url"]
    "firespring-backdoor-visitors-dev"        = ["city", "country", "created_at", "ip_address", "pages_viewed", "referrer", "session_id", "sessions", "timestamp"]
    "firespring-backdoor-extraction-jobs-dev" = ["completed_at", "error_message", "job_id", "job_type", "params", "records_extracted", "started_at", "status", "updated_at"]
    "firespring-backdoor-traffic-sources-dev" = ["data", "name", "period", "source_id", "source_type", "visitors"]
    "firespring-backdoor-segments-dev"        = ["name", "raw", "segment_id", "value"]
    "firespring-backdoor-searches-dev"        = ["count", "engine", "query", "search_id", "searched_at"]
    "firespring-backdoor-network-state-dev"   = ["state_key", "updated_at", "value"]
    "Lead-sqiqbtbugvfabolqwdt4rz3dla-NONE"    = ["_lastChangedAt", "_version", "company", "createdAt", "email", "id", "message", "name", "phone", "source", "status", "updatedAt"]
    "toledo-consulting-dashboard-data"        = ["metrics", "pk", "sk", "updated_at"]
  }

  # Each synced table's name → its ARN (only the tables whose sync is enabled).
  synced_table_arn_by_name = merge(
    try(module.firespring_sync[0].table_arns, {}),
    try(module.mmp_toledo_sync[0].table_arns, {}),
  )
}

data "aws_iam_policy_document" "supabase_writer" {
  count    = var.create_supabase_writer && length(local.synced_table_arn_by_name) > 0 ? 1 : 0
  provider = aws.us_east_1

  # One statement per table: its ARN, its own attribute list.
  dynamic "statement" {
    for_each = local.synced_table_arn_by_name
    content {
      sid       = "UpdateMappedAttributesOf${replace(statement.key, "/[^A-Za-z0-9]/", "")}"
      actions   = ["dynamodb:UpdateItem"]
      resources = [statement.value]

      condition {
        test     = "ForAllValues:StringEquals"
        variable = "dynamodb:Attributes"
        values   = local.write_back_attributes[statement.key]
      }
      condition {
        test     = "StringEqualsIfExists"
        variable = "dynamodb:ReturnValues"
        values   = ["NONE", "UPDATED_OLD"]
      }
    }
  }
}

resource "aws_iam_user" "supabase_writer" {
  count    = length(data.aws_iam_policy_document.supabase_writer)
  provider = aws.us_east_1
  name     = "${var.project_name}-supabase-writer-${var.environment}"
  # Its access keys are made outside Terraform (README): destroyed with it, or the
  # destroy (or the switch turned off) fails with DeleteConflict.
  force_destroy = true
}

resource "aws_iam_policy" "supabase_writer" {
  count       = length(data.aws_iam_policy_document.supabase_writer)
  provider    = aws.us_east_1
  name        = "${var.project_name}-write-back-${var.environment}"
  description = "The write-back Edge Function: UpdateItem of the mapped attributes of the synced tables, nothing else."
  policy      = data.aws_iam_policy_document.supabase_writer[0].json
}

resource "aws_iam_user_policy_attachment" "supabase_writer" {
  count      = length(data.aws_iam_policy_document.supabase_writer)
  provider   = aws.us_east_1
  user       = aws_iam_user.supabase_writer[0].name
  policy_arn = aws_iam_policy.supabase_writer[0].arn
}

output "supabase_writer_user" {
  description = "The IAM user the write-back Edge Function writes DynamoDB as: aws iam create-access-key --user-name <it>, then npx supabase secrets set WRITE_BACK_AWS_ACCESS_KEY_ID=... WRITE_BACK_AWS_SECRET_ACCESS_KEY=..."
  value       = one(aws_iam_user.supabase_writer[*].name)
}
