terraform {
  required_version = ">= 1.7"

  required_providers {
    # nodejs22.x is refused by early 5.x releases ("expected runtime to be one of [...],
    # got nodejs22.x": https://github.com/hashicorp/terraform-provider-aws/issues/40804);
    # 5.100 is the oldest these configurations are checked with (the image's mirror).
    # nodejs24.x only from 6.19 (https://github.com/hashicorp/terraform-provider-aws/issues/44986).
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100, < 7.0"
    }
  }
}
