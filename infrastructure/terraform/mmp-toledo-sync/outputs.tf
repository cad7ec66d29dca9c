output "webhook_url" {
  description = "The Edge Function both Lambdas post to."
  value       = local.webhook_url
}

locals {
  instances = {
    "us-east-1" = one(module.firespring_sync[*])
    "us-east-2" = one(module.mmp_toledo_sync[*])
  }
}

output "lambdas" {
  description = "Per region: the forwarding Lambda, its mappings (table → UUID), its failure bucket and dead-letter queue, its secret and how to put the secret's value."
  value = {
    for region, instance in local.instances : region => {
      function_name         = instance.function_name
      event_source_mappings = instance.event_source_mappings
      failure_bucket        = instance.failure_bucket
      dead_letter_queue_url = instance.dead_letter_queue_url
      webhook_secret_arn    = instance.webhook_secret_arn
      put_webhook_secret    = instance.put_webhook_secret
      log_group_name        = instance.log_group_name
      alarm_names           = instance.alarm_names
      alarm_topic           = instance.alarm_topic
    } if instance != null
  }
}
