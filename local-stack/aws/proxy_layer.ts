/**
 * What the proxy's layers in front of DynamoDB Local share (describe_limit.ts,
 * shard_readers.ts): a clock and a log, given by the stack (local-stack/aws/main.ts) or,
 * in tests, faked.
 *
 * @module
 */

/** A layer's clock (ms, `Date.now` by default) and log (silent by default). */
export interface LayerOptions {
  now?: () => number;
  log?: (line: string) => void;
}

/** The base of a layer: its clock and its log, from {@link LayerOptions}. */
export class ProxyLayer {
  protected readonly now: () => number;
  protected readonly log: (line: string) => void;

  constructor(options: LayerOptions = {}) {
    this.now = options.now ?? Date.now;
    this.log = options.log ?? (() => {});
  }
}
