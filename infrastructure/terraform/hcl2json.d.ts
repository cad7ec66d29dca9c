// The one function of @cdktf/hcl2json the checks use. Its own typings pull in Node's
// global types, which clash with Deno's (TextDecoderStream) across the whole type check.

/** Parses HCL (a .tf or .tfvars file) into the JSON form of Terraform's configuration. */
// deno-lint-ignore no-explicit-any
export function parse(filename: string, contents: string): Promise<Record<string, any>>;
