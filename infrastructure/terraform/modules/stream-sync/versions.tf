terraform {
  required_version = ">= 1.7"

  required_providers {
    # nodejs22.x is accepted from 5.x on; nodejs24.x only from 6.19
    # (https://github.com/hashicorp/terraform-provider-aws/issues/44986).
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40, < 7.0"
    }
  }
}
