# Offline tests of the two-region configuration: `terraform test` with the AWS
# providers mocked (no account, no network). Plans only.

mock_provider "aws" {
  alias           = "us_east_1"
  override_during = plan

  mock_data "aws_dynamodb_table" {
    defaults = {
      stream_enabled   = true
      stream_view_type = "NEW_AND_OLD_IMAGES"
      stream_arn       = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-01-01T00:00:00.000"
    }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{}" }
  }
  mock_resource "aws_secretsmanager_secret" {
    defaults = { arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:firespring-AbCdEf" }
  }
}

mock_provider "aws" {
  alias           = "us_east_2"
  override_during = plan

  mock_data "aws_dynamodb_table" {
    defaults = {
      stream_enabled   = true
      stream_view_type = "NEW_AND_OLD_IMAGES"
      stream_arn       = "arn:aws:dynamodb:us-east-2:123456789012:table/t/stream/2026-01-01T00:00:00.000"
    }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{}" }
  }
  mock_resource "aws_secretsmanager_secret" {
    defaults = { arn = "arn:aws:secretsmanager:us-east-2:123456789012:secret:mmp-toledo-AbCdEf" }
  }
}

variables {
  supabase_project_ref = "abcdefghijklmnopqrst"
}

run "both_regions_with_the_seed_tfvars" {
  command = plan

  assert {
    condition = toset(keys(output.lambdas["us-east-1"].event_source_mappings)) == toset([
      "firespring-backdoor-actions-dev",
      "firespring-backdoor-visitors-dev",
      "firespring-backdoor-extraction-jobs-dev",
      "firespring-backdoor-traffic-sources-dev",
      "firespring-backdoor-segments-dev",
      "firespring-backdoor-searches-dev",
      "firespring-backdoor-network-state-dev",
    ])
    error_message = "us-east-1 maps the seven Firespring tables."
  }
  assert {
    condition     = toset(keys(output.lambdas["us-east-2"].event_source_mappings)) == toset(["Lead-sqiqbtbugvfabolqwdt4rz3dla-NONE", "toledo-consulting-dashboard-data"])
    error_message = "us-east-2 maps the lead and dashboard tables."
  }
  assert {
    condition = (
      output.lambdas["us-east-1"].function_name == "mmp-toledo-firespring-sync-dev" &&
      output.lambdas["us-east-2"].function_name == "mmp-toledo-mmp-toledo-sync-dev"
    )
    error_message = "The Lambdas keep the seed report's names."
  }
  assert {
    condition     = output.webhook_url == "https://abcdefghijklmnopqrst.supabase.co/functions/v1/mmp-toledo-sync"
    error_message = "Both Lambdas post to the project's mmp-toledo-sync function."
  }
  assert {
    condition     = startswith(output.lambdas["us-east-2"].put_webhook_secret, "printf %s \"$SYNC_WEBHOOK_SECRET\" | aws secretsmanager put-secret-value --region us-east-2 --secret-id arn:aws:secretsmanager:us-east-2:") && endswith(output.lambdas["us-east-2"].put_webhook_secret, " --secret-string file:///dev/stdin")
    error_message = "The output says how to put the secret's value, in the secret's region, through standard input (never an argument, which the process list shows)."
  }
  assert {
    condition     = output.supabase_reader_user == "mmp-toledo-supabase-reader-dev" && length(data.aws_iam_policy_document.supabase_reader[0].statement[0].resources) == 9
    error_message = "The Edge Functions' reader may read the nine synced tables."
  }
  assert {
    condition     = length(data.aws_iam_policy_document.supabase_reader[0].statement[1].resources) == 9 && alltrue([for arn in data.aws_iam_policy_document.supabase_reader[0].statement[1].resources : endswith(arn, "/stream/*")])
    error_message = "The Edge Functions' reader may read the streams of the nine synced tables, and no others."
  }
  assert {
    condition = (
      aws_s3_bucket_public_access_block.exports[0].block_public_acls &&
      aws_s3_bucket_public_access_block.exports[0].restrict_public_buckets &&
      one(aws_s3_bucket_server_side_encryption_configuration.exports[0].rule).apply_server_side_encryption_by_default[0].sse_algorithm == "AES256" &&
      one(aws_s3_bucket_lifecycle_configuration.exports[0].rule).expiration[0].days == 7
    )
    error_message = "The export bucket is private, encrypted, and its files expire."
  }
  assert {
    condition = (
      data.aws_iam_policy_document.supabase_exporter[0].statement[0].actions == toset(["dynamodb:DescribeTable", "dynamodb:DescribeContinuousBackups"]) &&
      data.aws_iam_policy_document.supabase_exporter[0].statement[1].actions == toset(["dynamodb:ExportTableToPointInTime"]) &&
      length(data.aws_iam_policy_document.supabase_exporter[0].statement[1].resources) == 9 &&
      alltrue([for arn in data.aws_iam_policy_document.supabase_exporter[0].statement[2].resources : endswith(arn, "/export/*")]) &&
      output.supabase_exporter_user == "mmp-toledo-supabase-exporter-dev" &&
      aws_iam_user_policy_attachment.supabase_exporter[0].user == "mmp-toledo-supabase-exporter-dev"
    )
    error_message = "An exporter of its own may export the nine synced tables and follow their exports, and nothing else; the functions' reader may not."
  }
  assert {
    condition = (
      output.supabase_writer_user == "mmp-toledo-supabase-writer-dev" &&
      length(data.aws_iam_policy_document.supabase_writer[0].statement) == 9 &&
      alltrue([for s in data.aws_iam_policy_document.supabase_writer[0].statement : s.actions == toset(["dynamodb:UpdateItem"]) && length(s.resources) == 1]) &&
      aws_iam_user_policy_attachment.supabase_writer[0].user == "mmp-toledo-supabase-writer-dev"
    )
    error_message = "The write-back's writer may UpdateItem the nine synced tables, one statement each, and nothing else."
  }
  assert {
    condition = alltrue(flatten([
      for s in data.aws_iam_policy_document.supabase_writer[0].statement : [
        anytrue([for c in s.condition : c.test == "ForAllValues:StringEquals" && c.variable == "dynamodb:Attributes" && length(c.values) > 0]),
        anytrue([for c in s.condition : c.test == "StringEqualsIfExists" && c.variable == "dynamodb:ReturnValues" && toset(c.values) == toset(["NONE", "UPDATED_OLD"])]),
      ]
    ]))
    error_message = "Each of the writer's statements limits the attributes and the return values."
  }
  assert {
    condition = toset([
      for s in data.aws_iam_policy_document.supabase_writer[0].statement : one([for c in s.condition : c.values if c.variable == "dynamodb:Attributes"])
    ]) == toset(values(local.write_back_attributes))
    error_message = "Each table's statement lists that table's write-back attributes (the registry's, checked by terraform_test.ts)."
  }
  assert {
    condition     = length(output.point_in_time_recovery_commands) == 9 && alltrue([for c in output.point_in_time_recovery_commands : startswith(c, "aws dynamodb update-continuous-backups --region us-east-")])
    error_message = "The output gives the command that turns PITR on for each of the nine tables, in its region."
  }
}

run "the_enable_flags_choose_the_tables" {
  command = plan

  variables {
    enable_firespring_sync  = false
    enable_leads_table_sync = false
  }

  assert {
    condition     = keys(output.lambdas) == ["us-east-2"]
    error_message = "Without Firespring sync there is no us-east-1 Lambda."
  }
  assert {
    condition     = keys(output.lambdas["us-east-2"].event_source_mappings) == ["toledo-consulting-dashboard-data"]
    error_message = "Without lead sync only the dashboard table is mapped."
  }
}

run "nothing_enabled_makes_nothing" {
  command = plan

  variables {
    enable_firespring_sync      = false
    enable_leads_table_sync     = false
    enable_dashboard_table_sync = false
  }

  assert {
    condition     = output.lambdas == {} && output.supabase_reader_user == null && output.supabase_writer_user == null && output.export_bucket == null
    error_message = "No table, no Lambda, no reader, no writer and no export bucket."
  }
}

run "the_writer_can_be_left_out" {
  command = plan

  variables {
    create_supabase_writer = false
  }

  assert {
    condition     = output.supabase_writer_user == null && length(aws_iam_policy.supabase_writer) == 0 && output.supabase_reader_user == "mmp-toledo-supabase-reader-dev"
    error_message = "create_supabase_writer = false makes no writer, and leaves the reader."
  }
}

run "the_reader_can_be_left_out_and_the_exports_stay" {
  command = plan

  variables {
    create_supabase_reader = false
  }

  assert {
    condition     = output.supabase_reader_user == null && length(aws_s3_bucket.exports) == 1 && length(aws_iam_user.supabase_exporter) == 1
    error_message = "create_supabase_reader = false (an operator's own reader) makes no reader, and keeps the export bucket and its exporter."
  }

  assert {
    condition     = alltrue([for user in concat(aws_iam_user.supabase_exporter, aws_iam_user.supabase_writer) : user.force_destroy])
    error_message = "Users whose access keys are made outside Terraform are destroyed with them (force_destroy), or the destroy fails."
  }
}

run "without_firespring_the_writer_writes_the_us_east_2_tables_only" {
  command = plan

  variables {
    enable_firespring_sync = false
  }

  assert {
    condition     = length(data.aws_iam_policy_document.supabase_writer[0].statement) == 2
    error_message = "The writer gets one statement per synced table: the lead and dashboard tables."
  }
}

run "a_malformed_project_ref_is_refused" {
  command = plan

  variables {
    supabase_project_ref = "https://abc.supabase.co"
  }

  expect_failures = [var.supabase_project_ref]
}

run "the_webhook_runs_in_the_database_region" {
  command = plan

  variables {
    supabase_region = "us-east-1"
  }

  assert {
    condition     = output.webhook_url == "https://abcdefghijklmnopqrst.supabase.co/functions/v1/mmp-toledo-sync?forceFunctionRegion=us-east-1"
    error_message = "With supabase_region set, the Lambdas pin the webhook to the database's region."
  }
}

run "refuses_a_region_edge_functions_do_not_run_in" {
  command = plan

  variables {
    supabase_region = "mars-north-1"
  }

  expect_failures = [var.supabase_region]
}
