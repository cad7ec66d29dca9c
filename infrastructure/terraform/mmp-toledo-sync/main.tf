# The AWS side of the DynamoDB → Supabase sync. The source tables are the registry's
# (functions-shared/table_registry.ts): the webhook maps records by their table's name,
# so the names are fixed here, not variables (a test checks the two agree).

locals {
  # Pinned to the database's region when known: every batch's round trips stay there.
  webhook_url = join("", [
    "https://${var.supabase_project_ref}.supabase.co/functions/v1/mmp-toledo-sync",
    var.supabase_region == "" ? "" : "?forceFunctionRegion=${var.supabase_region}",
  ])
  lambda_zip = coalesce(var.lambda_zip, "${path.module}/../../../lambda/dist/stream-forwarder.zip")

  tags = {
    project     = var.project_name
    environment = var.environment
    managed-by  = "terraform"
  }

  leads_table     = "Lead-sqiqbtbugvfabolqwdt4rz3dla-NONE"
  dashboard_table = "toledo-consulting-dashboard-data"

  us_east_2_tables = concat(
    var.enable_leads_table_sync ? [local.leads_table] : [],
    var.enable_dashboard_table_sync ? [local.dashboard_table] : [],
  )
}

# us-east-2: the lead and dashboard tables.
module "mmp_toledo_sync" {
  source = "../modules/stream-sync"
  count  = length(local.us_east_2_tables) > 0 ? 1 : 0

  providers = {
    aws = aws.us_east_2
  }

  name               = "${var.project_name}-mmp-toledo-sync-${var.environment}"
  source_tables      = local.us_east_2_tables
  webhook_url        = local.webhook_url
  lambda_zip         = local.lambda_zip
  lambda_memory_size = var.lambda_memory_size
  batch_size         = var.batch_size
  log_retention_days = var.log_retention_days
  enable_monitoring  = var.enable_monitoring
  mappings_enabled   = var.enable_stream_mappings
  alarm_actions      = lookup(var.alarm_actions, "us-east-2", [])
}
