variable "supabase_project_ref" {
  description = "The Supabase project the tables sync into (the <ref> of https://<ref>.supabase.co)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]{20}$", var.supabase_project_ref))
    error_message = "supabase_project_ref is the project's 20-character reference, as in https://<ref>.supabase.co."
  }
}

variable "supabase_region" {
  description = "The region of the Supabase project's database. When set, the webhook runs there (forceFunctionRegion), next to the database; an Edge Function otherwise runs in the region nearest its caller."
  type        = string
  default     = ""

  validation {
    # Supabase's regions for Edge Functions (docs: functions/regional-invocation).
    condition = var.supabase_region == "" || contains([
      "ap-northeast-1", "ap-northeast-2", "ap-south-1", "ap-southeast-1", "ap-southeast-2",
      "ca-central-1", "us-east-1", "us-west-1", "us-west-2", "eu-central-1", "eu-west-1",
      "eu-west-2", "eu-west-3", "sa-east-1",
    ], var.supabase_region)
    error_message = "supabase_region is a region Edge Functions run in (e.g. us-east-1), or empty."
  }
}

variable "project_name" {
  description = "Prefix of every resource's name."
  type        = string
  default     = "mmp-toledo"
}

variable "environment" {
  description = "Suffix of every resource's name (dev, prod, ...)."
  type        = string
  default     = "dev"
}

variable "enable_leads_table_sync" {
  description = "Forward the lead table's stream (us-east-2)."
  type        = bool
  default     = true
}

variable "enable_dashboard_table_sync" {
  description = "Forward the dashboard table's stream (us-east-2)."
  type        = bool
  default     = true
}

variable "enable_firespring_sync" {
  description = "Forward the seven Firespring tables' streams (us-east-1)."
  type        = bool
  default     = true
}

variable "enable_stream_mappings" {
  description = "Whether the event source mappings forward the nine streams. false stops them (the cutover, README \"The cutover\"); true again resumes each from where it stopped, within the stream's 24 h."
  type        = bool
  default     = true
}

variable "lambda_memory_size" {
  description = "Memory of each forwarding Lambda in MB."
  type        = number
  default     = 256
}

variable "batch_size" {
  description = "Stream records per Lambda invocation."
  type        = number
  default     = 10
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the Lambdas' logs."
  type        = number
  default     = 7
}

variable "enable_monitoring" {
  description = "CloudWatch alarms on the dead-letter queues and on iterator age."
  type        = bool
  default     = false
}

variable "alarm_actions" {
  description = "Per region, the ARNs (SNS topics of that region) the alarms notify: { \"us-east-1\" = [...], \"us-east-2\" = [...] }."
  type        = map(list(string))
  default     = {}
}

variable "lambda_zip" {
  description = "The Lambda archive; by default the one `npm run build:lambda` writes."
  type        = string
  default     = null
}
