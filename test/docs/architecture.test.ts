/**
 * docs/architecture.md stays true: its module table names every file in
 * src/ and no other, every import between layers is one its import table
 * allows, and no chain of imports in src/ comes back to where it started.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const doc = fs.readFileSync(path.join(root, 'docs/architecture.md'), 'utf8');

function sourceFiles(dir = path.join(root, 'src')): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path.relative(root, full)] : [];
  });
}

/** Relative imports of a file (static, re-exports and dynamic), as paths from the repository root. */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(path.join(root, file), 'utf8');
  const specifiers = [
    ...text.matchAll(/^(?:import|export)\s[^;]*?\sfrom\s+'(\.[^']+)'/gms),
    ...text.matchAll(/\bimport\('(\.[^']+)'\)/g),
  ].map((m) => m[1]!);
  return specifiers.map((s) => path.join(path.dirname(file), s.replace(/\.js$/, '.ts')));
}

/** A file's layer: its folder under src/, or its own name for the files at the top (errors, options, index). */
function layerOf(file: string): string {
  const parts = path.relative('src', file).split(path.sep);
  return parts.length > 1 ? parts[0]! : parts[0]!.replace(/\.ts$/, '');
}

function section(title: string): string {
  const start = doc.indexOf(`\n## ${title}\n`);
  expect(start, `docs/architecture.md has a section "${title}"`).toBeGreaterThanOrEqual(0);
  const end = doc.indexOf('\n## ', start + 1);
  return doc.slice(start, end === -1 ? undefined : end);
}

/** The "may import" table: layer → the layers it may import. */
function allowedImports(): Map<string, Set<string>> {
  const allowed = new Map<string, Set<string>>();
  for (const line of section('Import graph').split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 4 || !/^`\w[\w-]*`$/.test(cells[1]!)) continue;
    const names = [...cells[2]!.matchAll(/`([\w-]+)`/g)].map((m) => m[1]!);
    allowed.set(cells[1]!.slice(1, -1), new Set(names));
  }
  return allowed;
}

describe('docs/architecture.md', () => {
  const files = sourceFiles();

  it('its module table names every source file, and only files that exist', () => {
    const listed = new Set([...section('Modules').matchAll(/^\| `(src\/[^`]+\.ts)` \|/gm)].map((m) => m[1]!));
    expect([...listed].filter((f) => !files.includes(f)), 'listed but not in src/').toEqual([]);
    expect(files.filter((f) => !listed.has(f)), 'in src/ but not listed').toEqual([]);
  });

  it('every import between layers is one the import table allows', () => {
    const allowed = allowedImports();
    const layers = new Set(files.map(layerOf));
    expect([...layers].filter((l) => !allowed.has(l)).sort(), 'layers missing from the import table').toEqual([]);
    const wrong: string[] = [];
    for (const file of files) {
      for (const target of importsOf(file)) {
        const from = layerOf(file);
        const to = layerOf(target);
        if (from !== to && !allowed.get(from)?.has(to)) wrong.push(`${file} imports ${target}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('no import circle in src/', () => {
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const circles: string[] = [];
    const visit = (file: string): void => {
      state.set(file, 'open');
      stack.push(file);
      for (const target of importsOf(file)) {
        if (state.get(target) === 'open') circles.push([...stack.slice(stack.indexOf(target)), target].join(' → '));
        else if (!state.has(target) && files.includes(target)) visit(target);
      }
      stack.pop();
      state.set(file, 'done');
    };
    for (const file of files) if (!state.has(file)) visit(file);
    expect(circles).toEqual([]);
  });
});
