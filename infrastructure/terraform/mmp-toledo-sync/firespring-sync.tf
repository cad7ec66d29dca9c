# us-east-1: the seven Firespring analytics tables.

locals {
  firespring_tables = [
    "firespring-backdoor-actions-dev",
    "firespring-backdoor-visitors-dev",
    "firespring-backdoor-extraction-jobs-dev",
    "firespring-backdoor-traffic-sources-dev",
    "firespring-backdoor-segments-dev",
    "firespring-backdoor-searches-dev",
    "firespring-backdoor-network-state-dev",
  ]
}

module "firespring_sync" {
  source = "../modules/stream-sync"
  count  = var.enable_firespring_sync ? 1 : 0

  providers = {
    aws = aws.us_east_1
  }

  name               = "${var.project_name}-firespring-sync-${var.environment}"
  source_tables      = local.firespring_tables
  webhook_url        = local.webhook_url
  lambda_zip         = local.lambda_zip
  lambda_memory_size = var.lambda_memory_size
  batch_size         = var.batch_size
  log_retention_days = var.log_retention_days
  enable_monitoring  = var.enable_monitoring
  mappings_enabled   = var.enable_stream_mappings
  alarm_actions      = lookup(var.alarm_actions, "us-east-1", [])
}
