/**
 * Every relative link and image in README.md, docs/*.md and the examples' READMEs
 * points at a file that exists, and every #anchor at a heading of that file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';

function markdownFiles(): string[] {
  const files = ['README.md', 'examples/README.md'];
  for (const name of fs.readdirSync(path.join(ROOT, 'docs')).sort()) if (name.endsWith('.md')) files.push(`docs/${name}`);
  for (const name of fs.readdirSync(path.join(ROOT, 'examples')).sort()) {
    if (fs.existsSync(path.join(ROOT, 'examples', name, 'README.md'))) files.push(`examples/${name}/README.md`);
  }
  return files;
}

/** Markdown with code blocks and code spans blanked out: links in code are examples, not links. */
function prose(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '');
}

/** Targets of [text](target), ![alt](target), [label]: target and src="target". */
function targets(markdown: string): string[] {
  const text = prose(markdown);
  const found: string[] = [];
  for (const m of text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) found.push(m[1]!);
  for (const m of text.matchAll(/^\s*\[[^\]]+\]:\s*(\S+)/gm)) found.push(m[1]!);
  for (const m of text.matchAll(/\ssrc="([^"]+)"/g)) found.push(m[1]!);
  return found;
}

/** The anchors GitHub gives the headings of a Markdown file. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const m of markdown.replace(/^```[\s\S]*?^```/gm, '').matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const slug = m[1]!.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/ /g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    result.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return result;
}

describe('links in the documentation', () => {
  const files = markdownFiles();

  it('finds the pages to check', () => {
    expect(files).toContain('docs/README.md');
    expect(files.length).toBeGreaterThan(8);
  });

  for (const file of files) {
    it(`${file}: every relative link resolves`, () => {
      const markdown = fs.readFileSync(path.join(ROOT, file), 'utf8');
      const broken: string[] = [];
      for (const target of targets(markdown)) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
        const [filePart, anchor] = target.split('#', 2) as [string, string | undefined];
        const resolved = filePart === '' ? path.join(ROOT, file) : path.resolve(path.dirname(path.join(ROOT, file)), decodeURIComponent(filePart));
        if (!fs.existsSync(resolved)) {
          broken.push(`${target}: no such file`);
          continue;
        }
        if (anchor !== undefined && resolved.endsWith('.md') && !anchors(fs.readFileSync(resolved, 'utf8')).has(anchor)) {
          broken.push(`${target}: no heading with that anchor`);
        }
      }
      expect(broken).toEqual([]);
    });
  }
});
