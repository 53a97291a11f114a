/**
 * docs/api.md from the package's type declarations: what `import ... from
 * 'filebus'` offers, each export with its documentation and its declaration
 * as the compiler emits it into dist/*.d.ts.
 *
 * The declarations are emitted afresh into a temporary directory (never into
 * dist/, which tests running beside this may be using), then read through the
 * TypeScript 7 compiler API (typescript/unstable/sync, which drives the
 * native compiler): the exports of index.d.ts, each alias followed to its
 * declaration, whose text is taken from the emitted file. No parsing of our
 * own, so the page says what the compiler says.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { API, SymbolFlags, type Checker, type Project, type Symbol as TsSymbol } from 'typescript/unstable/sync';
import type { Node } from 'typescript/unstable/ast';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** One export of the package, ready to print. */
interface Entry {
  readonly name: string;
  readonly kind: string;
  readonly documentation: string;
  readonly declaration: string;
}

export function renderApiReference(): string {
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'filebus-api-docs-'));
  try {
    emitDeclarations(outDir);
    return renderPage(readEntries(outDir));
  } finally {
    fs.rmSync(outDir, { recursive: true, force: true });
  }
}

function emitDeclarations(outDir: string): void {
  const tsc = path.join(ROOT, 'node_modules', '.bin', 'tsc');
  const result = spawnSync(tsc, ['-p', 'tsconfig.build.json', '--emitDeclarationOnly', '--outDir', outDir], { cwd: ROOT, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`tsc --emitDeclarationOnly failed (${result.status ?? result.signal}):\n${result.stdout}${result.stderr}`);
  // A project of just the entry point, with the repository's @types/node so
  // that 'node:stream' and friends resolve as they do for a user.
  fs.writeFileSync(path.join(outDir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      lib: ['ES2022'],
      types: ['node'],
      typeRoots: [path.join(ROOT, 'node_modules', '@types')],
      strict: true,
      noEmit: true,
    },
    files: ['index.d.ts'],
  }));
}

function readEntries(outDir: string): Entry[] {
  const api = new API({ cwd: outDir });
  try {
    const snapshot = api.updateSnapshot({ openProjects: [path.join(outDir, 'tsconfig.json')] });
    const project = snapshot.getProjects()[0];
    if (!project) throw new Error(`the compiler opened no project in ${outDir}`);
    const index = project.program.getSourceFile(path.join(outDir, 'index.d.ts'));
    const module = index && project.checker.getSymbolAtLocation(index);
    if (!module) throw new Error('index.d.ts is not a module');
    const exported = project.checker.getExportsOfModule(module).map((symbol) => ({ symbol, at: firstPosition(symbol) }));
    // The order of index.d.ts, which groups related exports.
    exported.sort((a, b) => a.at - b.at);
    return exported.map(({ symbol }) => describe(project, symbol));
  } finally {
    api.close();
  }
}

function firstPosition(symbol: TsSymbol): number {
  const node = symbol.declarations[0]?.resolve();
  if (!node) throw new Error(`export ${symbol.name} has no declaration`);
  return node.pos;
}

function describe(project: Project, exported: TsSymbol): Entry {
  const { checker } = project;
  const symbol = exported.flags & SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
  const nodes = symbol.declarations.map((handle) => handle.resolve()).filter((node): node is Node => node !== undefined);
  if (nodes.length === 0) throw new Error(`export ${exported.name} resolves to nothing`);
  const declaration = nodes
    .map((node) => declarationText(project, symbol, node))
    .join('\n');
  return { name: exported.name, kind: kindOf(symbol), documentation: documentationOf(checker, symbol), declaration };
}

function kindOf(symbol: TsSymbol): string {
  if (symbol.flags & SymbolFlags.Class) return 'class';
  if (symbol.flags & SymbolFlags.Interface) return 'interface';
  if (symbol.flags & SymbolFlags.TypeAlias) return 'type';
  if (symbol.flags & SymbolFlags.Function) return 'function';
  if (symbol.flags & SymbolFlags.Variable) return 'constant';
  throw new Error(`export ${symbol.name} is of a kind this page does not know (symbol flags ${symbol.flags})`);
}

function documentationOf(checker: Checker, symbol: TsSymbol): string {
  const text = symbol.getDocumentationComment(checker).trim();
  const tags = symbol.getJsDocTags(checker).map((tag) => `**@${tag.name}**${tag.text ? ` ${tag.text}` : ''}`);
  return [text, ...tags].filter(Boolean).join('\n\n');
}

/**
 * The emitted text of one declaration, without its own doc comment (the
 * page prints that as prose) and without the members a reader never calls:
 * private fields and the underscore hooks Node's stream machinery calls
 * (`_write`, `_read`, ...).
 */
function declarationText(project: Project, symbol: TsSymbol, node: Node): string {
  // A `const` is declared by its whole statement: `export declare const X: T;`.
  const statement = symbol.flags & SymbolFlags.Variable ? node.parent.parent : node;
  const text = sourceText(project, statement);
  const members = [...symbol.getMembers().values()]
    .flatMap((member) => member.declarations.map((handle) => ({ member, node: handle.resolve() })))
    .filter((m): m is { member: TsSymbol; node: Node } => m.node !== undefined && m.node.pos >= statement.pos && m.node.end <= statement.end)
    .sort((a, b) => a.node.pos - b.node.pos);
  let body: string;
  if (members.length === 0) {
    body = text.slice(statement.pos, statement.end);
  } else {
    const kept = members.filter(({ member }) => isForReaders(member));
    body = text.slice(statement.pos, members[0]!.node.pos) +
      kept.map(({ node: m }) => text.slice(m.pos, m.end)).join('') +
      text.slice(members.at(-1)!.node.end, statement.end);
  }
  return withoutLeadingDocComment(body);
}

function isForReaders(member: TsSymbol): boolean {
  if (member.flags & SymbolFlags.Constructor) return true;
  return !member.name.startsWith('_') && !member.name.startsWith('#');
}

function sourceText(project: Project, node: Node): string {
  let file: Node = node;
  while (file.parent) file = file.parent;
  const fileName = (file as { fileName?: string }).fileName;
  const source = fileName === undefined ? undefined : project.program.getSourceFile(fileName);
  if (!source) throw new Error('a declaration outside any source file');
  return source.text;
}

function withoutLeadingDocComment(text: string): string {
  return text.replace(/^\s*(\/\*\*[\s\S]*?\*\/\s*)*/, '').trimEnd();
}

function renderPage(entries: readonly Entry[]): string {
  const lines: string[] = [
    '# Library API reference',
    '',
    '<!-- Generated by `npm run docs` (scripts/docs/api-reference.ts) from the type declarations; edit the JSDoc in src/, not this file. -->',
    '',
    'Everything `filebus` exports, in the order of its entry point, with the',
    'declarations the package ships (`dist/index.d.ts` and the files it',
    're-exports). Members that only Node\'s stream machinery calls (`_write`,',
    '`_read`, ...) and private fields are left out. filebus is an ES module:',
    '',
    '```ts',
    `import { ${entries.filter((e) => e.kind === 'class' || e.kind === 'function').map((e) => e.name).join(', ')} } from 'filebus';`,
    '```',
    '',
    'See [getting started](getting-started.md) for a walk-through and',
    '[examples/library.ts](../examples/library.ts) for a complete script.',
    '',
    '| export | kind | summary |',
    '| --- | --- | --- |',
    ...entries.map((e) => `| [${e.name}](#${anchor(e.name)}) | ${e.kind} | ${summary(e.documentation)} |`),
  ];
  for (const entry of entries) {
    lines.push('', `## ${entry.name}`, '', `*${entry.kind}*`);
    if (entry.documentation) lines.push('', entry.documentation);
    lines.push('', '```ts', entry.declaration, '```');
  }
  return `${lines.join('\n')}\n`;
}

/** GitHub's anchor for a heading made of an identifier. */
function anchor(name: string): string {
  return name.toLowerCase();
}

/** The first sentence of the documentation, fit for a table cell. */
function summary(documentation: string): string {
  const paragraph = documentation.split('\n\n')[0]!.replace(/\s+/g, ' ').trim();
  const sentence = /^(.*?\.)(\s|$)/.exec(paragraph)?.[1] ?? paragraph;
  return sentence.replace(/\|/g, '\\|');
}
