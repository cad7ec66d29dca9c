# One region's half of the real-time sync: the tables' streams → one forwarding Lambda
# → the mmp-toledo-sync webhook. Records the Lambda cannot deliver after its retries go,
# as shard and sequence-number ranges, to an SQS queue (saved as files and replayed by
# npm run stream:replay: README, "Operating it").

# The tables are not managed here (they belong to the applications that write them);
# their streams must be enabled with NEW_AND_OLD_IMAGES beforehand.
data "aws_dynamodb_table" "source" {
  for_each = toset(var.source_tables)
  name     = each.value
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

resource "aws_sqs_queue" "dead_letters" {
  name                      = "${var.name}-dlq"
  message_retention_seconds = 1209600 # 14 days, SQS's longest
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
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

# Least privilege: read these tables' streams, send failed ranges to this queue, read
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

  statement {
    sid       = "SendFailedRangesToTheDeadLetterQueue"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dead_letters.arn]
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

locals {
  # Each table's region, from its ARN (arn:aws:dynamodb:<region>:<account>:table/<name>).
  table_region = { for name, table in data.aws_dynamodb_table.source : name => split(":", table.arn)[3] }
}

resource "aws_lambda_event_source_mapping" "stream" {
  for_each = data.aws_dynamodb_table.source

  # Off for the cutover (README, "The cutover"): Lambda stops polling and, enabled again,
  # resumes from where it stopped (UpdateEventSourceMapping's Enabled, in AWS's SDK reference:
  # https://docs.aws.amazon.com/sdkfornet/latest/apidocs/items/TLambdaUpdateEventSourceMappingRequestNET45.html).
  # Records older than maximum_record_age_in_seconds by then are not delivered: their
  # ranges go to the dead-letter queue, for npm run stream:replay while the stream holds them.
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
      destination_arn = aws_sqs_queue.dead_letters.arn
    }
  }

  # The advice names the table's region (from its ARN): the CLI sends a call to its
  # configured region whatever the table. A stream of another view type cannot be changed
  # in place: UpdateTable refuses to turn on a stream on a table that has one, with a
  # ValidationException (UpdateTable's StreamSpecification, in AWS's SDK reference:
  # https://sdk.amazonaws.com/kotlin/api/latest/dynamodb/aws.sdk.kotlin.services.dynamodb.model/-update-table-request/stream-specification.html),
  # so it is turned off first; the new stream has a new ARN, which a second plan reads.
  lifecycle {
    precondition {
      condition = each.value.stream_enabled && each.value.stream_view_type == "NEW_AND_OLD_IMAGES"
      error_message = join("", [
        "Table ${each.key} has no stream with NEW_AND_OLD_IMAGES (stream_view_type: ${coalesce(each.value.stream_view_type, "none")}). ",
        each.value.stream_enabled ? join("", [
          "DynamoDB turns on no second stream, so turn this one off, then on with both images (changes in between reach no stream: the backfill covers them; any other reader of the old stream must move to the new one), and plan again: ",
          "aws dynamodb update-table --region ${local.table_region[each.key]} --table-name ${each.key} --stream-specification StreamEnabled=false && ",
          "aws dynamodb wait table-exists --region ${local.table_region[each.key]} --table-name ${each.key} && ",
        ]) : "Turn it on: ",
        "aws dynamodb update-table --region ${local.table_region[each.key]} --table-name ${each.key} --stream-specification StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES",
      ])
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
  alarm_description   = "Stream records the Lambda could not deliver are waiting in ${aws_sqs_queue.dead_letters.name}: replay them with npm run stream:replay (within the stream's 24 h), else repair with the data-checksum-validator."
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
