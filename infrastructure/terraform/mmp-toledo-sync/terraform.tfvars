# The seed report's settings. The Supabase project goes in on the command line or in
# TF_VAR_supabase_project_ref; the webhook secret never goes into Terraform (see README).
enable_leads_table_sync     = true
enable_dashboard_table_sync = true
enable_firespring_sync      = true # us-east-1 Firespring tables

lambda_memory_size = 128
batch_size         = 10
log_retention_days = 7
enable_monitoring  = false
