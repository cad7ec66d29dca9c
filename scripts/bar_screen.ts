/**
 * Progress bars redrawn in place on a terminal, with log lines printed above them: a line
 * logged while the bars show clears them, is printed, and the bars are drawn again below
 * it at their next redraw (a log line written between two redraws would otherwise be
 * drawn over, and the bars would climb the screen). Elsewhere both are plain lines.
 *
 * @module
 */

/** Where the screen writes: text as it is, escape sequences included. */
export type ScreenWriter = (text: string) => void;

const encoder = new TextEncoder();

/** Writes to standard output. */
const toStdout: ScreenWriter = (text) => {
  Deno.stdout.writeSync(encoder.encode(text));
};

/** A block of bars at the bottom of a terminal, and log lines above it. */
export class BarScreen {
  /** The bars' lines on the screen now (on a terminal). */
  #shown = 0;

  constructor(
    readonly terminal: boolean = Deno.stdout.isTerminal(),
    private readonly write: ScreenWriter = toStdout,
  ) {}

  /** Draws `lines` in place of the bars shown (on a terminal), or prints them. */
  bars(lines: string[]): void {
    if (!this.terminal) {
      this.write(`${lines.join("\n")}\n`);
      return;
    }
    const up = this.#shown > 0 ? `\x1b[${this.#shown}A` : "";
    this.write(`${up}${lines.map((line) => `\x1b[2K${line}`).join("\n")}\n`);
    this.#shown = lines.length;
  }

  /** Prints `line` above the bars: they are cleared, and drawn again at the next redraw. */
  log(line: string): void {
    if (this.terminal && this.#shown > 0) {
      this.write(`\x1b[${this.#shown}A\x1b[J`);
      this.#shown = 0;
    }
    this.write(`${line}\n`);
  }
}
