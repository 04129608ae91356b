import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import GithubSlugger from 'github-slugger';

/*
 * Every link of the READMEs resolves: `#anchor` links to a heading of the
 * same file, relative links to a file of the repository (and, with an
 * anchor, to a heading of that file). Anchors are made as GitHub makes them,
 * by github-slugger: lower case, punctuation but - and _ dropped, spaces to
 * -, and -1, -2, ... for repeated headings.
 */

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const DOCS = ['README.md', 'deploy/README.md'];

/** Lines outside fenced code blocks, with their numbers. */
function proseLines(text: string): { line: string; n: number }[] {
  const out: { line: string; n: number }[] = [];
  let fence: string | undefined;
  text.split('\n').forEach((line, i) => {
    const f = /^\s*(`{3,}|~{3,})/.exec(line);
    if (f) {
      if (fence === undefined) fence = f[1]![0];
      else if (f[1]![0] === fence) fence = undefined;
      return;
    }
    if (fence === undefined && !/^( {4}|\t)/.test(line)) out.push({ line, n: i + 1 });
  });
  return out;
}

/** A heading's text as GitHub renders it: no code ticks, emphasis marks or link targets. */
function headingText(raw: string): string {
  return raw
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/[`*]/g, '')
    .replace(/\s+#+\s*$/, '')
    .trim();
}

/** The anchors of a Markdown file's ATX headings, in GitHub's form. */
function anchors(text: string): Set<string> {
  const slugger = new GithubSlugger();
  const out = new Set<string>();
  for (const { line } of proseLines(text)) {
    const h = /^#{1,6}\s+(.*)$/.exec(line);
    if (h) out.add(slugger.slug(headingText(h[1]!)));
  }
  return out;
}

/** `[text](target)` links outside code, with their line numbers. */
function links(text: string): { target: string; n: number }[] {
  const out: { target: string; n: number }[] = [];
  for (const { line, n } of proseLines(text)) {
    const prose = line.replace(/`[^`]*`/g, '');
    for (const m of prose.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) out.push({ target: m[1]!, n });
  }
  return out;
}

describe('README links', () => {
  it('makes anchors as GitHub does', () => {
    expect([
      ...anchors(
        '# A\n## Factory+ mode\n## The Cluster Manager API, continued in the same shell\n### 5. The Factory+ side\n## `x_y` z\n## A\n```\n# not a heading\n```\n',
      ),
    ]).to.deep.equal([
      'a',
      'factory-mode',
      'the-cluster-manager-api-continued-in-the-same-shell',
      '5-the-factory-side',
      'x_y-z',
      'a-1',
    ]);
  });

  for (const doc of DOCS) {
    it(`${doc}: every anchor and relative link resolves`, () => {
      const file = join(root, doc);
      const text = readFileSync(file, 'utf8');
      const own = anchors(text);
      const found = links(text);
      expect(found.length, 'links found').to.be.greaterThan(0);
      const broken: string[] = [];
      for (const { target, n } of found) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, https:, mailto:
        const [path, anchor] = target.split('#', 2) as [string, string | undefined];
        let headings = own;
        if (path !== '') {
          const abs = resolve(dirname(file), path);
          if (relative(root, abs).startsWith('..') || !existsSync(abs)) {
            broken.push(`${doc}:${n} ${target}: no such file`);
            continue;
          }
          if (anchor === undefined) continue;
          headings = anchors(readFileSync(abs, 'utf8'));
        }
        if (anchor !== undefined && !headings.has(anchor)) broken.push(`${doc}:${n} ${target}: no such heading`);
      }
      expect(broken).to.deep.equal([]);
    });
  }
});
