# The seed report's settings. The Supabase project goes in on the command line or in
# TF_VAR_supabase_project_ref; the webhook secret never goes into Terraform (see README).
enable_leads_table_sync     = true
enable_dashboard_table_sync = true
enable_firespring_sync      = true # us-east-1 Firespring tables

# 256 MB, not the seed's 128: a 6 MB batch peaks at 117 MB in Node alone, before the
# runtime's own memory (tests/lambda_bundle_test.ts; README, "3. AWS").
lambda_memory_size = 256
batch_size         = 10
log_retention_days = 7
# Alarms on each sync's dead-letter queue and iterator age (about $0.10 an alarm a month):
# a record the Lambda gave up on waits in its queue for a replay within the stream's 24 h,
# and nobody looks there unless told. Notify someone with alarm_actions (an SNS topic per
# region).
enable_monitoring = true
