/**
 * Every relative link and image in README.md, docs/*.md and the examples' READMEs
 * points at a file that exists, and every #anchor at a heading of that file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import { anchors, targets } from '../helpers/markdown.js';

function markdownFiles(): string[] {
  const files = ['README.md', 'examples/README.md'];
  for (const name of fs.readdirSync(path.join(ROOT, 'docs')).sort()) if (name.endsWith('.md')) files.push(`docs/${name}`);
  for (const name of fs.readdirSync(path.join(ROOT, 'examples')).sort()) {
    if (fs.existsSync(path.join(ROOT, 'examples', name, 'README.md'))) files.push(`examples/${name}/README.md`);
  }
  return files;
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
