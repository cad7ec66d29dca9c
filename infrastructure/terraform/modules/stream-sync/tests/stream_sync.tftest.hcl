# Offline tests of the module: `terraform test` with a mocked AWS provider (no account,
# no network). Plans only; what the mock cannot tell (whether AWS accepts it) is for a
# real `terraform plan`.

mock_provider "aws" {
  override_during = plan

  mock_data "aws_dynamodb_table" {
    defaults = {
      stream_enabled   = true
      stream_view_type = "NEW_AND_OLD_IMAGES"
      arn              = "arn:aws:dynamodb:us-east-1:123456789012:table/t"
      stream_arn       = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-01-01T00:00:00.000"
    }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{}" }
  }
  mock_resource "aws_sqs_queue" {
    defaults = { arn = "arn:aws:sqs:us-east-1:123456789012:sync-dlq", url = "https://sqs.us-east-1.amazonaws.com/123456789012/sync-dlq" }
  }
  mock_resource "aws_s3_bucket" {
    defaults = { arn = "arn:aws:s3:::sync-failures-20260101000000000000000001", id = "sync-failures-20260101000000000000000001", bucket = "sync-failures-20260101000000000000000001" }
  }
  mock_resource "aws_secretsmanager_secret" {
    defaults = { arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:sync/webhook-secret-AbCdEf" }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/sync" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/sync-role" }
  }
  mock_resource "aws_lambda_function" {
    defaults = { arn = "arn:aws:lambda:us-east-1:123456789012:function:sync" }
  }
}

variables {
  name          = "sync"
  source_tables = ["table-a", "table-b"]
  webhook_url   = "https://abcdefghijklmnopqrst.supabase.co/functions/v1/mmp-toledo-sync"
  lambda_zip    = "../../../../lambda/dist/stream-forwarder.zip"
}

run "one_mapping_per_table_with_the_seed_settings" {
  command = plan

  assert {
    condition     = keys(aws_lambda_event_source_mapping.stream) == ["table-a", "table-b"]
    error_message = "Each table gets exactly one event source mapping."
  }
  assert {
    condition     = alltrue([for m in aws_lambda_event_source_mapping.stream : m.enabled])
    error_message = "The mappings forward their streams by default."
  }
  assert {
    condition = alltrue([for m in aws_lambda_event_source_mapping.stream :
      m.batch_size == 10 && m.function_response_types == toset(["ReportBatchItemFailures"]) &&
      m.bisect_batch_on_function_error && m.maximum_retry_attempts == -1 &&
      m.maximum_record_age_in_seconds == 3600 && m.starting_position == "TRIM_HORIZON" &&
      m.destination_config[0].on_failure[0].destination_arn == aws_s3_bucket.failures.arn
    ])
    error_message = "Mappings: batch 10, ReportBatchItemFailures, bisect, retries until the records are an hour old, failures to the failure bucket."
  }
  assert {
    condition = (
      aws_s3_bucket.failures.bucket_prefix == "sync-failures-" &&
      aws_s3_bucket.failures.force_destroy == false &&
      aws_s3_bucket_lifecycle_configuration.failures.rule[0].expiration[0].days == 14 &&
      aws_s3_bucket_public_access_block.failures.restrict_public_buckets &&
      one(aws_s3_bucket_notification.failures.queue).queue_arn == aws_sqs_queue.dead_letters.arn &&
      one(aws_s3_bucket_notification.failures.queue).filter_prefix == "aws/lambda/"
    )
    error_message = "The failure bucket: named after the function, kept on destroy, batches expire after 14 days, private, each batch a message in the DLQ."
  }
  assert {
    condition = (
      aws_lambda_function.forwarder.runtime == "nodejs22.x" &&
      aws_lambda_function.forwarder.architectures == tolist(["arm64"]) &&
      aws_lambda_function.forwarder.memory_size == 256 &&
      aws_lambda_function.forwarder.reserved_concurrent_executions == null &&
      aws_lambda_function.forwarder.handler == "index.handler"
    )
    error_message = "The Lambda is Node 22 (nodejs22.x) on ARM64, 256 MB, no reserved concurrency, handler index.handler."
  }
  assert {
    condition = aws_lambda_function.forwarder.environment[0].variables == tomap({
      WEBHOOK_URL             = var.webhook_url
      SYNC_WEBHOOK_SECRET_ARN = aws_secretsmanager_secret.webhook.arn
    })
    error_message = "The Lambda gets the webhook URL and the secret's ARN, never the secret itself."
  }
  assert {
    condition     = aws_secretsmanager_secret.webhook.name == "sync/webhook-secret"
    error_message = "The secret is named <function>/webhook-secret (the README's put-secret-value uses the name)."
  }
  assert {
    condition     = aws_cloudwatch_log_group.lambda.retention_in_days == 7 && aws_cloudwatch_log_group.lambda.name == "/aws/lambda/sync"
    error_message = "The Lambda's log group keeps 7 days."
  }
  assert {
    condition     = length(aws_cloudwatch_metric_alarm.dead_letters) == 0 && length(aws_cloudwatch_metric_alarm.destination_failures) == 0 && length(aws_cloudwatch_metric_alarm.iterator_age) == 0
    error_message = "No alarms without enable_monitoring."
  }
}

run "settings_come_from_the_variables" {
  command = plan

  variables {
    batch_size         = 100
    lambda_memory_size = 256
    log_retention_days = 14
    enable_monitoring  = true
    alarm_actions      = ["arn:aws:sns:us-east-1:123456789012:ops"]
  }

  assert {
    condition     = alltrue([for m in aws_lambda_event_source_mapping.stream : m.batch_size == 100])
    error_message = "batch_size reaches every mapping."
  }
  assert {
    condition     = aws_lambda_function.forwarder.memory_size == 256 && aws_cloudwatch_log_group.lambda.retention_in_days == 14
    error_message = "lambda_memory_size and log_retention_days reach the Lambda and its log group."
  }
  assert {
    condition = (
      aws_cloudwatch_metric_alarm.dead_letters[0].metric_name == "ApproximateNumberOfMessagesVisible" &&
      aws_cloudwatch_metric_alarm.destination_failures[0].metric_name == "DestinationDeliveryFailures" &&
      aws_cloudwatch_metric_alarm.destination_failures[0].alarm_actions == toset(["arn:aws:sns:us-east-1:123456789012:ops"]) &&
      aws_cloudwatch_metric_alarm.iterator_age[0].metric_name == "IteratorAge" &&
      aws_cloudwatch_metric_alarm.iterator_age[0].alarm_actions == toset(["arn:aws:sns:us-east-1:123456789012:ops"])
    )
    error_message = "enable_monitoring makes the DLQ, destination-failure and iterator-age alarms, notifying alarm_actions."
  }
  assert {
    condition     = length(aws_sns_topic.alarms) == 0
    error_message = "With alarm_actions, no topic of the alarms' own."
  }
}

run "alarms_without_actions_get_a_topic_of_their_own" {
  command = plan

  variables {
    enable_monitoring = true
  }

  assert {
    condition = (
      length(aws_sns_topic.alarms) == 1 &&
      aws_sns_topic.alarms[0].kms_master_key_id == null &&
      length(aws_cloudwatch_metric_alarm.dead_letters[0].alarm_actions) == 1 &&
      length(aws_cloudwatch_metric_alarm.iterator_age[0].ok_actions) == 1
    )
    error_message = "An alarm with no action notifies nobody: without alarm_actions the alarms notify a topic of their own."
  }
}

run "a_table_without_new_and_old_images_is_refused" {
  command = plan

  override_data {
    target = data.aws_dynamodb_table.source["table-b"]
    values = {
      stream_enabled   = true
      stream_view_type = "KEYS_ONLY"
      arn              = "arn:aws:dynamodb:us-east-1:123456789012:table/table-b"
      stream_arn       = "arn:aws:dynamodb:us-east-1:123456789012:table/table-b/stream/2026-01-01T00:00:00.000"
    }
  }

  expect_failures = [aws_lambda_event_source_mapping.stream]
}

run "a_table_named_twice_is_refused" {
  command = plan

  variables {
    source_tables = ["table-a", "table-a"]
  }

  expect_failures = [var.source_tables]
}

run "batch_size_and_retries_are_bounded" {
  command = plan

  variables {
    batch_size             = 0
    maximum_retry_attempts = -2
  }

  expect_failures = [var.batch_size, var.maximum_retry_attempts]
}

run "no_reserved_concurrency_by_default" {
  command = plan

  assert {
    condition     = aws_lambda_function.forwarder.reserved_concurrent_executions == null
    error_message = "No reservation by default (unset: the provider's -1, unreserved): it applies on any account, and each shard holds one batch in flight."
  }
}

run "a_reservation_holds_every_table" {
  command = plan

  variables {
    reserved_concurrency = 2
  }

  assert {
    condition     = aws_lambda_function.forwarder.reserved_concurrent_executions == 2
    error_message = "A reservation of one place per table is taken."
  }
}

run "a_reservation_below_the_tables_is_refused" {
  command = plan

  variables {
    reserved_concurrency = 1
  }

  expect_failures = [aws_lambda_function.forwarder]
}

run "a_reservation_must_be_a_whole_positive_number" {
  command = plan

  variables {
    reserved_concurrency = 0
  }

  expect_failures = [var.reserved_concurrency]
}

run "the_cutover_stops_the_mappings_and_keeps_them" {
  command = plan

  variables {
    mappings_enabled = false
  }

  assert {
    condition     = keys(aws_lambda_event_source_mapping.stream) == ["table-a", "table-b"] && alltrue([for m in aws_lambda_event_source_mapping.stream : !m.enabled])
    error_message = "mappings_enabled = false keeps each mapping (and its position in the stream) but stops it."
  }
}

run "the_failure_bucket_is_this_accounts_and_its_queue_keeps_as_long" {
  command = plan

  variables {
    name                   = "_sync"
    failure_retention_days = 7
  }

  assert {
    condition     = aws_s3_bucket.failures.bucket_prefix == "sync-failures-"
    error_message = "A bucket name starts with a letter or digit, whatever the function's name starts with."
  }
  assert {
    condition = (
      aws_s3_bucket_lifecycle_configuration.failures.rule[0].expiration[0].days == 7 &&
      aws_sqs_queue.dead_letters.message_retention_seconds == 7 * 86400
    )
    error_message = "The queue keeps a batch's message as long as the bucket keeps the batch: the alarm lasts while the batch does."
  }
  assert {
    condition = length([
      for st in data.aws_iam_policy_document.lambda.statement : st.sid
      if contains(["PutFailedBatchesInTheFailureBucket", "ListTheFailureBucket"], st.sid) && anytrue([
        for c in st.condition : c.variable == "s3:ResourceAccount" && length(c.values) == 1 && contains(c.values, "123456789012")
      ])
    ]) == 2
    error_message = "The role may put batches only in a bucket of the tables' own account (AWS's best practice for S3 destinations)."
  }
  assert {
    condition = anytrue([
      for c in one(data.aws_iam_policy_document.dead_letters_queue.statement).condition :
      c.variable == "aws:SourceAccount" && length(c.values) == 1 && contains(c.values, "123456789012")
    ])
    error_message = "The queue takes S3's notifications only from a bucket of this account."
  }
}

run "a_failure_retention_past_the_queues_is_refused" {
  command = plan

  variables {
    failure_retention_days = 15
  }

  expect_failures = [var.failure_retention_days]
}
