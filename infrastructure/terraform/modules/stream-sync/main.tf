# One region's half of the real-time sync: the tables' streams → one forwarding Lambda
# → the mmp-toledo-sync webhook. A batch the Lambda cannot deliver after its retries goes,
# with its records, to an S3 bucket (moved to files and replayed by npm run stream:replay:
# README, "Operating it"); a queue gets a message for each, which the alarm watches.

# The tables are not managed here (they belong to the applications that write them);
# their streams must be enabled with NEW_AND_OLD_IMAGES beforehand.
data "aws_dynamodb_table" "source" {
  for_each = toset(var.source_tables)
  name     = each.value
}

# The account of the tables, which is the function's: a mapping reads a stream of its own
# account. Read from a table's ARN (arn:aws:dynamodb:<region>:<account>:table/...), so
# that no STS call is needed; the try is for the offline tests' mocked ARNs.
locals {
  account_id = try(split(":", values(data.aws_dynamodb_table.source)[0].arn)[4], "")
}

# The webhook's signing secret. Terraform creates the secret, never its value: the value
# is put once with `aws secretsmanager put-secret-value` (see the outputs), so it is in
# neither the state nor the tfvars. The Lambda reads it at cold start and caches it.
resource "aws_secretsmanager_secret" "webhook" {
  name                    = "${var.name}/webhook-secret"
  description             = "Standard Webhooks secret (whsec_...) the stream forwarder signs with; equal to SYNC_WEBHOOK_SECRET of the Supabase project."
  recovery_window_in_days = 7
  tags                    = var.tags
}

# The mappings' on-failure destination. An S3 destination gets the failed invocation's
# event, its records, with the metadata, where SQS or SNS get the metadata alone ("For
# Amazon S3 destinations, Lambda also sends the entire invocation record along with the
# metadata", https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html):
# so a batch can be replayed after the stream has trimmed it (24 h), for as long as the
# bucket keeps it. Its key: aws/lambda/<mapping UUID>/<shard>/YYYY/MM/DD/<time>-<UUID>
# (https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html).
# Not force_destroy: a bucket that still holds batches to replay is not deleted.
resource "aws_s3_bucket" "failures" {
  # S3's names: lowercase letters, digits and hyphens, starting with a letter or digit;
  # the provider refuses a prefix past 37 characters (26 of the name, "-failures-") and
  # adds 26 of its own.
  bucket_prefix = "${substr(replace(replace(lower(var.name), "/[^a-z0-9-]/", "-"), "/^-+/", ""), 0, 26)}-failures-"
  force_destroy = false
  tags          = var.tags
}

resource "aws_s3_bucket_public_access_block" "failures" {
  bucket                  = aws_s3_bucket.failures.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "failures" {
  bucket = aws_s3_bucket.failures.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

# S3-managed keys: a KMS key would need kms:GenerateDataKey for the Lambda's role too.
resource "aws_s3_bucket_server_side_encryption_configuration" "failures" {
  bucket = aws_s3_bucket.failures.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "failures" {
  bucket = aws_s3_bucket.failures.id
  rule {
    id     = "expire-failed-batches"
    status = "Enabled"
    filter {}
    expiration {
      days = var.failure_retention_days
    }
  }
}

# Only over TLS.
data "aws_iam_policy_document" "failures_bucket" {
  statement {
    sid       = "DenyPlainHttp"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.failures.arn, "${aws_s3_bucket.failures.arn}/*"]
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

resource "aws_s3_bucket_policy" "failures" {
  bucket     = aws_s3_bucket.failures.id
  policy     = data.aws_iam_policy_document.failures_bucket.json
  depends_on = [aws_s3_bucket_public_access_block.failures]
}

# A message for each failed batch put in the bucket (S3's event notification; its body
# names the object), kept as long as the batch: the dead-letters alarm watches its depth,
# which, unlike S3's request metrics (best effort: "might not be delivered at all",
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/metrics-dimensions.html), counts
# every one. S3 also sends one s3:TestEvent when the notification is made, so the alarm
# fires once after the first apply: purging the queue ends it.
resource "aws_sqs_queue" "dead_letters" {
  name = "${var.name}-dlq"
  # As long as the bucket keeps the batches (at most 14 days, SQS's longest): the alarm
  # lasts while a batch does.
  message_retention_seconds = var.failure_retention_days * 86400
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

data "aws_iam_policy_document" "dead_letters_queue" {
  statement {
    sid       = "TheFailureBucketSaysWhatItGets"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dead_letters.arn]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_s3_bucket.failures.arn]
    }
    # A bucket ARN names no account: the bucket must also be this account's (S3's
    # "Granting permissions to publish event notification messages to a destination").
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_sqs_queue_policy" "dead_letters" {
  queue_url = aws_sqs_queue.dead_letters.id
  policy    = data.aws_iam_policy_document.dead_letters_queue.json
}

resource "aws_s3_bucket_notification" "failures" {
  bucket = aws_s3_bucket.failures.id
  queue {
    queue_arn     = aws_sqs_queue.dead_letters.arn
    events        = ["s3:ObjectCreated:*"]
    filter_prefix = "aws/lambda/"
  }
  # S3 checks that it may send when the notification is made.
  depends_on = [aws_sqs_queue_policy.dead_letters]
}

resource "aws_cloudwatch_log_group" "lambda" {
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

data "aws_iam_policy_document" "assume_lambda" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "lambda" {
  name               = "${var.name}-role"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
  tags               = var.tags
}

# Least privilege: read these tables' streams, put failed batches in this bucket, read
# this one secret, write this function's logs. Nothing else.
data "aws_iam_policy_document" "lambda" {
  statement {
    sid       = "ReadTheSourceStreams"
    actions   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"]
    resources = [for table in data.aws_dynamodb_table.source : table.stream_arn]
  }

  # ListStreams has no resource type in IAM: it can only be granted on "*". It lists
  # stream ARNs, nothing of their records.
  statement {
    sid       = "ListStreams"
    actions   = ["dynamodb:ListStreams"]
    resources = ["*"]
  }

  # What an S3 on-failure destination needs of the mapping's role: s3:PutObject and
  # s3:ListBucket (https://docs.aws.amazon.com/lambda/latest/dg/kafka-on-failure.html,
  # "Your execution role must have permissions for the destination").
  # Only a bucket of this account: a bucket of that name made in another account, once
  # this one is deleted, gets no batch ("Security best practices for Amazon S3
  # destinations", https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html).
  statement {
    sid       = "PutFailedBatchesInTheFailureBucket"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.failures.arn}/*"]
    condition {
      test     = "StringEquals"
      variable = "s3:ResourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "ListTheFailureBucket"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.failures.arn]
    condition {
      test     = "StringEquals"
      variable = "s3:ResourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "ReadTheWebhookSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.webhook.arn]
  }

  statement {
    sid       = "WriteItsLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.lambda.arn}:*"]
  }
}

resource "aws_iam_role_policy" "lambda" {
  name   = "${var.name}-policy"
  role   = aws_iam_role.lambda.id
  policy = data.aws_iam_policy_document.lambda.json
}

# The runtime is Node.js 22. AWS Lambda deprecated nodejs20.x, the runtime before, on
# 2026-04-30; nodejs22.x is supported until 2027-04-30 (creating functions blocked from
# 2027-06-01). AWS's schedule: https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html
# nodejs24.x (supported until 2028-04-30) needs AWS provider 6.19 or later
# (hashicorp/terraform-provider-aws#44986); the provider mirror this project's checks run
# with offline has 5.100.0, which refuses it, so the move waits for a newer mirror. The
# zip is built for Node 22 (lambda/build.ts) and its tests run it on Node 22
# (lambda/lambda_node.ts); infrastructure/terraform/lambda_runtime_test.ts fails from the day
# the runtime named here is deprecated, naming the runtime to move to.
resource "aws_lambda_function" "forwarder" {
  function_name                  = var.name
  description                    = "Forwards DynamoDB Streams records, signed, to the mmp-toledo-sync webhook."
  role                           = aws_iam_role.lambda.arn
  filename                       = var.lambda_zip
  source_code_hash               = filebase64sha256(var.lambda_zip)
  handler                        = "index.handler"
  runtime                        = "nodejs22.x"
  architectures                  = ["arm64"]
  memory_size                    = var.lambda_memory_size
  timeout                        = var.lambda_timeout
  reserved_concurrent_executions = var.reserved_concurrency

  environment {
    variables = {
      WEBHOOK_URL             = var.webhook_url
      SYNC_WEBHOOK_SECRET_ARN = aws_secretsmanager_secret.webhook.arn
    }
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.lambda.name
  }

  tags = var.tags

  # The role's policy first: a mapping created before it could not read the stream.
  depends_on = [aws_iam_role_policy.lambda]

  lifecycle {
    # Every table's mapping needs a place: below one per table, some tables' batches
    # always wait behind the others' (see variables.tf, reserved_concurrency).
    precondition {
      condition     = var.reserved_concurrency == null || coalesce(var.reserved_concurrency, 0) >= length(var.source_tables)
      error_message = "reserved_concurrency (${coalesce(var.reserved_concurrency, 0)}) is below the ${length(var.source_tables)} tables this function forwards: each table's stream needs at least one invocation at once, and each open shard one. Raise it to the tables' open shards, or leave it null for no reservation."
    }
  }
}

resource "aws_lambda_event_source_mapping" "stream" {
  for_each = data.aws_dynamodb_table.source

  # Off for the cutover (README, "The cutover"): Lambda stops polling and, enabled again,
  # resumes from where it stopped (UpdateEventSourceMapping's Enabled, in AWS's SDK reference:
  # https://docs.aws.amazon.com/sdkfornet/latest/apidocs/items/TLambdaUpdateEventSourceMappingRequestNET45.html).
  # Records older than maximum_record_age_in_seconds by then are not delivered: they go
  # to the failure bucket, for npm run stream:replay.
  enabled                            = var.mappings_enabled
  event_source_arn                   = each.value.stream_arn
  function_name                      = aws_lambda_function.forwarder.arn
  starting_position                  = var.starting_position
  batch_size                         = var.batch_size
  maximum_batching_window_in_seconds = var.maximum_batching_window_in_seconds
  function_response_types            = ["ReportBatchItemFailures"]
  bisect_batch_on_function_error     = true
  maximum_retry_attempts             = var.maximum_retry_attempts
  maximum_record_age_in_seconds      = var.maximum_record_age_in_seconds
  parallelization_factor             = 1

  destination_config {
    on_failure {
      destination_arn = aws_s3_bucket.failures.arn
    }
  }

  # The queue told of each object first: a batch that failed while the first apply ran
  # would otherwise wait in the bucket with no message, and no alarm.
  depends_on = [aws_s3_bucket_notification.failures]

  # The advice names the table's region (from its ARN): the CLI sends a call to its
  # configured region whatever the table. A stream of another view type cannot be changed
  # in place: UpdateTable refuses to turn on a stream on a table that has one, with a
  # ValidationException (UpdateTable's StreamSpecification, in AWS's SDK reference:
  # https://sdk.amazonaws.com/kotlin/api/latest/dynamodb/aws.sdk.kotlin.services.dynamodb.model/-update-table-request/stream-specification.html),
  # so it is turned off first; the new stream has a new ARN, which a second plan reads.
  lifecycle {
    precondition {
      condition = each.value.stream_enabled && each.value.stream_view_type == "NEW_AND_OLD_IMAGES"
      # %[1]s the table's region (from its ARN, arn:aws:dynamodb:<region>:...; the try is
      # for the mocked ARNs of the offline tests, as Terraform reads the message of a
      # check that passes too), %[2]s the table, %[3]s its stream's view type.
      error_message = format(
        each.value.stream_enabled
        ? "Table %[2]s has no stream with NEW_AND_OLD_IMAGES (stream_view_type: %[3]s). DynamoDB turns on no second stream, so turn this one off, then on with both images (changes in between reach no stream: the backfill covers them; any other reader of the old stream must move to the new one), and plan again: aws dynamodb update-table --region %[1]s --table-name %[2]s --stream-specification StreamEnabled=false && aws dynamodb wait table-exists --region %[1]s --table-name %[2]s && aws dynamodb update-table --region %[1]s --table-name %[2]s --stream-specification StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES"
        : "Table %[2]s has no stream with NEW_AND_OLD_IMAGES (stream_view_type: %[3]s). Turn it on: aws dynamodb update-table --region %[1]s --table-name %[2]s --stream-specification StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES",
        try(split(":", each.value.arn)[3], "<region>"), each.key,
        coalesce(each.value.stream_view_type, "none"),
      )
    }
  }
}

# Without alarm_actions, a topic of the alarms' own: an alarm with no action notifies
# nobody, and this gives the operator one place to subscribe to (aws sns subscribe; the
# alarm_topic output). Not encrypted with SNS's AWS-managed key: CloudWatch needs
# kms:GenerateDataKey* and kms:Decrypt on a topic's key to publish to it, and that key's
# policy cannot grant them, so the alarms would publish nothing ("Enable compatibility
# between event sources from AWS services and encrypted topics",
# https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html). An alarm's message
# holds nothing secret: its name, state and metric.
resource "aws_sns_topic" "alarms" {
  count = var.enable_monitoring && length(var.alarm_actions) == 0 ? 1 : 0
  name  = "${var.name}-alarms"
  tags  = var.tags
}

locals {
  alarm_actions = length(var.alarm_actions) > 0 ? var.alarm_actions : aws_sns_topic.alarms[*].arn
}

resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  count = var.enable_monitoring ? 1 : 0

  alarm_name          = "${var.name}-dead-letters"
  alarm_description   = "Stream batches the Lambda could not deliver are in s3://${aws_s3_bucket.failures.bucket}/aws/lambda/, with their records, one message each in ${aws_sqs_queue.dead_letters.name}. Copy them (aws s3 cp --recursive), npm run stream:replay, delete the objects replayed, then purge the queue: README, \"Operating it\". Just after the first apply, the one message may be S3's s3:TestEvent: purge it."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dead_letters.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

# A batch Lambda gave up on and could not put in the bucket either (its rights, the
# bucket gone) is lost to replay: DestinationDeliveryFailures counts those ("For
# asynchronous invocation and supported event source mappings, the number of times that
# Lambda attempts to send an event to a destination but fails",
# https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html).
resource "aws_cloudwatch_metric_alarm" "destination_failures" {
  count = var.enable_monitoring ? 1 : 0

  alarm_name          = "${var.name}-destination-failures"
  alarm_description   = "Lambda could not put failed stream batches in s3://${aws_s3_bucket.failures.bucket}: their records cannot be replayed. Fix the bucket or the role's rights, then repair the region's tables from the source: POST <project>/functions/v1/data-checksum-validator {\"table\": \"<table>\", \"repair\": true} for each (README, \"Operating it\")."
  namespace           = "AWS/Lambda"
  metric_name         = "DestinationDeliveryFailures"
  dimensions          = { FunctionName = aws_lambda_function.forwarder.function_name }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "iterator_age" {
  count = var.enable_monitoring ? 1 : 0

  alarm_name          = "${var.name}-iterator-age"
  alarm_description   = "The sync of ${var.name} is falling behind its streams (oldest record read older than ${var.iterator_age_alarm_ms} ms): see the function's logs for webhook errors."
  namespace           = "AWS/Lambda"
  metric_name         = "IteratorAge"
  dimensions          = { FunctionName = aws_lambda_function.forwarder.function_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.iterator_age_alarm_ms
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}
