variable "name" {
  description = "Name of the forwarding Lambda; its bucket, queue, secret, role and log group are named after it."
  type        = string
}

variable "source_tables" {
  description = "DynamoDB tables (in this provider's region) whose streams the Lambda forwards. Each must have a stream with NEW_AND_OLD_IMAGES."
  type        = list(string)

  validation {
    condition     = length(var.source_tables) == length(distinct(var.source_tables))
    error_message = "A table may be named only once: each gets exactly one event source mapping."
  }
}

variable "webhook_url" {
  description = "The mmp-toledo-sync Edge Function, https://<project-ref>.supabase.co/functions/v1/mmp-toledo-sync."
  type        = string

  validation {
    condition     = startswith(var.webhook_url, "https://")
    error_message = "The webhook URL must be https (the records and their signature cross the internet)."
  }

  # The forwarder refuses the same (lambda/stream_forwarder.ts, webhookUrlProblem): a user,
  # password or key in the URL would be printed by Node's fetch in its errors.
  validation {
    condition     = can(regex("^https://[^/@?#]+(/[^@?#]*)?(\\?forceFunctionRegion=[a-z0-9-]+)?$", var.webhook_url))
    error_message = "The webhook URL may hold no user, password or query but forceFunctionRegion (the webhook is signed; a key in its URL would be logged)."
  }
}

variable "lambda_zip" {
  description = "The Lambda archive `npm run build:lambda` writes (lambda/dist/stream-forwarder.zip)."
  type        = string
}

variable "lambda_memory_size" {
  description = "Memory of the Lambda in MB."
  type        = number
  default     = 256
}

variable "lambda_timeout" {
  description = "Seconds one invocation may take; the forwarder retries the webhook within it."
  type        = number
  default     = 60

  # The secret's first read may take 10 s (lambda/webhook_secret.ts); an invocation that
  # times out is a function error, and Lambda splits its batch for no record's fault.
  validation {
    condition     = var.lambda_timeout >= 15 && var.lambda_timeout <= 900
    error_message = "The Lambda timeout must be 15 to 900 seconds: the webhook secret's first read may take 10 s."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrency of the Lambda, or null (the default) for none. Set, at most this many batches at once across the region's shards: each open shard holds one invocation while its batch is in flight, so below the tables' open shards (DescribeStream) some shards wait behind others. It must be at least the number of source tables (the shards are not known to the plan)."
  type        = number
  default     = null

  # None by default: each shard holds one batch in flight (parallelization_factor 1), so
  # the function runs at most as many invocations as the tables' streams have shards. A
  # reservation below the number of open shards keeps some shards' batches waiting behind
  # the others' (a throttled mapping retries; under a lasting load their iterator age
  # grows to the records' maximum age, and their ranges go to the dead-letter queue); the
  # plan checks only the floor it can know, one per table. AWS refuses one that leaves the
  # account fewer than 100 unreserved executions, which fails the apply on an account
  # whose limit is the new accounts' 10 ("You can reserve up to the Unreserved account
  # concurrency value that is shown, minus 100 for functions that don't have reserved
  # concurrency": https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html).
  validation {
    condition     = var.reserved_concurrency == null || try(var.reserved_concurrency >= 1 && floor(var.reserved_concurrency) == var.reserved_concurrency, false)
    error_message = "reserved_concurrency must be null (no reservation) or a whole number of at least 1."
  }
}

variable "batch_size" {
  description = "Stream records per invocation."
  type        = number
  default     = 10

  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 10000
    error_message = "batch_size must be between 1 and 10000 (Lambda's limit for DynamoDB Streams)."
  }
}

variable "mappings_enabled" {
  description = "Whether the mappings forward the streams (false stops them for the cutover; true again resumes each from where it stopped)."
  type        = bool
  default     = true
}

variable "maximum_batching_window_in_seconds" {
  description = "How long Lambda may gather records before it invokes: 0, at once."
  type        = number
  default     = 0

  # The live path's latency (a change visible within a second or so) is measured with
  # none, and the local stand-in of the mapping (local-stack/aws/event_source_mapping.ts)
  # invokes at once: a window would add up to its length to every change, untested.
  validation {
    condition     = var.maximum_batching_window_in_seconds == 0
    error_message = "maximum_batching_window_in_seconds must be 0: a window delays every change by up to its length, which neither the latency goal nor the local stack's mapping allows for."
  }
}

variable "maximum_retry_attempts" {
  description = "Retries of a failing batch (after bisecting it) before its range goes to the dead-letter queue; -1 (AWS's default): until its records pass maximum_record_age_in_seconds, which bounds it."
  type        = number
  default     = -1

  validation {
    condition     = var.maximum_retry_attempts >= -1 && var.maximum_retry_attempts <= 10000
    error_message = "maximum_retry_attempts must be -1 (until the records pass their maximum age) or 0 to 10000."
  }
}

variable "maximum_record_age_in_seconds" {
  description = "Records older than this go to the dead-letter queue. One hour leaves 23 of the stream's 24 hours to replay them (npm run stream:replay)."
  type        = number
  default     = 3600

  # At most an hour: stream-check takes a record that waited 2 h, with nothing of its
  # stream applied since the last check, for a stream nothing delivers
  # (functions-shared/stream_verdict.ts, DELIVERY_LAG_LIMIT_MS), and an unapplied record
  # older than 1 h 20 min with a later one of its shard applied for one given up
  # (PASSED_OVER_AFTER_MS); a mapping retrying one batch for longer would read as either.
  validation {
    condition     = var.maximum_record_age_in_seconds >= 60 && var.maximum_record_age_in_seconds <= 3600
    error_message = "maximum_record_age_in_seconds must be from 60 to 3600: stream-check takes a record waiting 2 h with nothing of its stream applied for a stream nothing delivers."
  }
}

variable "starting_position" {
  description = "Where a new mapping starts reading: TRIM_HORIZON, everything the stream holds."
  type        = string
  default     = "TRIM_HORIZON"

  # A mapping made again (replaced, or its table's mapping recreated) with LATEST would skip
  # every change made while none forwarded the stream. From the oldest record it reads
  # them again, which the ordering guard makes harmless. The local stack's mapping starts
  # there too (local-stack/aws/stream_poller.ts).
  validation {
    condition     = var.starting_position == "TRIM_HORIZON"
    error_message = "starting_position must be TRIM_HORIZON: LATEST skips the changes made while no mapping forwarded the stream."
  }
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the Lambda's logs."
  type        = number
  default     = 7
}

variable "enable_monitoring" {
  description = "Create CloudWatch alarms on the dead-letter queue and on the streams' iterator age."
  type        = bool
  default     = false
}

variable "iterator_age_alarm_ms" {
  description = "Alarm when the oldest record a batch reads is older than this (ms): the sync is falling behind."
  type        = number
  default     = 300000
}

variable "alarm_actions" {
  description = "ARNs (SNS topics in this region) the alarms notify; none: a topic of their own (the alarm_topic output), to subscribe to."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "failure_retention_days" {
  description = "Days the failure bucket keeps a batch the Lambda gave up on (with its records, for npm run stream:replay), and so how long after a failure it can be replayed."
  type        = number
  default     = 14

  validation {
    condition     = var.failure_retention_days >= 1 && var.failure_retention_days <= 14 && floor(var.failure_retention_days) == var.failure_retention_days
    error_message = "failure_retention_days must be a whole number of days from 1 to 14: S3's lifecycle expires in days, and the queue whose depth is the alarm keeps its message as long, which SQS allows up to 14 days."
  }
}
