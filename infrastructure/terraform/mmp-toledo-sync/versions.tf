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

# The Firespring tables live in us-east-1, the MMP Toledo tables in us-east-2: one
# provider per region, one instance of the stream-sync module per region.
provider "aws" {
  alias  = "us_east_1"
  region = "us-east-1"

  default_tags {
    tags = local.tags
  }
}

provider "aws" {
  alias  = "us_east_2"
  region = "us-east-2"

  default_tags {
    tags = local.tags
  }
}
