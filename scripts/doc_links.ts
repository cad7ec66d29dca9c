/**
 * The repository's Markdown links, checked: every relative link in README.md, CHANGELOG.md
 * and docs/*.md names a file that exists, and every `#fragment` names a heading of its
 * file. The docs move text between files as they grow (a round's history from the README
 * to docs/performance.md), and a link to a heading that moved or was renamed still
 * renders; nothing but a check says it leads nowhere.
 *
 * Headings become fragments as GitHub makes them (github-slugger): lower case, every
 * character that is not a letter, a mark, a decimal or letter number, connector
 * punctuation (`_`), an alphabetic symbol, `-` or a space dropped, spaces made `-`, and a
 * repeated fragment given the first free `-1`, `-2`, ... The headings are read as written
 * (ATX `#` headings; their emphasis or links, which these docs do not use, are not
 * rendered first), and links inside code (fenced blocks, code spans) are not links.
 *
 * @module
 */

import { dirname, join, normalize } from "node:path";
import { existsSync, readFileSync } from "node:fs";

/** A heading's fragment, as GitHub makes it (before a repeat's suffix). */
export function headingSlug(heading: string): string {
  return heading.trim().toLowerCase()
    .replace(/[^\p{L}\p{M}\p{Nd}\p{Nl}\p{Pc}\p{Alphabetic}\- ]/gu, "")
    .replaceAll(" ", "-");
}

/** A Markdown text without its fenced code blocks. */
function withoutFences(markdown: string): string {
  return markdown.replace(/^```[^\n]*\n[\s\S]*?^```[^\n]*$/gm, "");
}

/** The fragments of a Markdown text's headings (none inside a fenced code block). */
export function headingFragments(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const fragments = new Set<string>();
  for (const line of withoutFences(markdown).split("\n")) {
    const heading = /^#{1,6} (.*)$/.exec(line);
    if (!heading) continue;
    // github-slugger's own loop: a fragment taken counts its slug's repeats on.
    const slug = headingSlug(heading[1]);
    let fragment = slug;
    while (seen.has(fragment)) {
      const repeats = seen.get(slug)! + 1;
      seen.set(slug, repeats);
      fragment = `${slug}-${repeats}`;
    }
    seen.set(fragment, 0);
    fragments.add(fragment);
  }
  return fragments;
}

/** A Markdown text without its code, fenced or in spans (links there are text). */
function withoutCode(markdown: string): string {
  return withoutFences(markdown).replace(/`[^`\n]*`/g, "");
}

/**
 * The broken links of the Markdown file `file` (a path relative to `root`), each as
 * `file: link (why)`. Links to the web are not followed.
 */
export function brokenLinks(root: string, file: string): string[] {
  const text = withoutCode(readFileSync(join(root, file), "utf8"));
  const broken: string[] = [];
  // Each linked file read and its headings made once, however many links name it.
  const headingsOf = new Map<string, Set<string>>();
  for (const [, target] of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    if (/^[a-z]+:/i.test(target)) continue;
    const [path, fragment] = target.split("#", 2);
    const linked = path === "" ? file : normalize(join(dirname(file), path));
    if (!existsSync(join(root, linked))) {
      broken.push(`${file}: ${target} (no file ${linked})`);
      continue;
    }
    if (fragment === undefined || !linked.endsWith(".md")) continue;
    if (!headingsOf.has(linked)) {
      headingsOf.set(linked, headingFragments(readFileSync(join(root, linked), "utf8")));
    }
    if (!headingsOf.get(linked)!.has(fragment)) {
      broken.push(`${file}: ${target} (no heading of ${linked} makes #${fragment})`);
    }
  }
  return broken;
}
