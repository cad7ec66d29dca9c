output "function_name" {
  description = "The forwarding Lambda."
  value       = aws_lambda_function.forwarder.function_name
}

output "function_arn" {
  description = "ARN of the forwarding Lambda."
  value       = aws_lambda_function.forwarder.arn
}

output "event_source_mappings" {
  description = "Source table → the UUID of its event source mapping."
  value       = { for table, mapping in aws_lambda_event_source_mapping.stream : table => mapping.uuid }
}

output "failure_bucket" {
  description = "Where the batches the Lambda gave up on wait, with their records, under aws/lambda/ (moved to files for npm run stream:replay: README, \"Operating it\")."
  value       = aws_s3_bucket.failures.bucket
}

output "dead_letter_queue_url" {
  description = "A message for each batch put in the failure bucket: the dead-letters alarm watches its depth; purge it once they are replayed."
  value       = aws_sqs_queue.dead_letters.url
}

output "dead_letter_queue_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.dead_letters.arn
}

output "webhook_secret_arn" {
  description = "The secret the Lambda signs with; put its value once (see put_webhook_secret)."
  value       = aws_secretsmanager_secret.webhook.arn
}

output "put_webhook_secret" {
  description = "The command that puts the webhook secret's value (the SYNC_WEBHOOK_SECRET of the Supabase project), through its standard input: in an argument, any user of the machine would see it in the process list."
  value       = "printf %s \"$SYNC_WEBHOOK_SECRET\" | aws secretsmanager put-secret-value --region ${split(":", aws_secretsmanager_secret.webhook.arn)[3]} --secret-id ${aws_secretsmanager_secret.webhook.arn} --secret-string file:///dev/stdin"
}

output "log_group_name" {
  description = "The Lambda's CloudWatch log group."
  value       = aws_cloudwatch_log_group.lambda.name
}

output "role_arn" {
  description = "The Lambda's execution role."
  value       = aws_iam_role.lambda.arn
}

output "alarm_names" {
  description = "The CloudWatch alarms (empty without enable_monitoring)."
  value       = concat(aws_cloudwatch_metric_alarm.dead_letters[*].alarm_name, aws_cloudwatch_metric_alarm.destination_failures[*].alarm_name, aws_cloudwatch_metric_alarm.iterator_age[*].alarm_name)
}

output "alarm_topic" {
  description = "The SNS topic made for the alarms when alarm_actions names none: subscribe to it (aws sns subscribe --protocol email ...), or nobody is told."
  value       = one(aws_sns_topic.alarms[*].arn)
}

output "table_arns" {
  description = "Source table → its ARN (for the Supabase reader's policy)."
  value       = { for table, t in data.aws_dynamodb_table.source : table => t.arn }
}
