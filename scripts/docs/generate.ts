/**
 * npm run docs: rewrites the generated reference pages. test/docs fails
 * whenever they differ from what this would write, so run it after changing
 * the command line (src/cli/parse-args.ts) or the library's exports and JSDoc.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderApiReference } from './api-reference.js';
import { renderCliReference } from './cli-reference.js';

const DOCS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs');

const pages: Array<[string, string]> = [
  ['cli.md', await renderCliReference()],
  ['api.md', renderApiReference()],
];
for (const [name, text] of pages) {
  const file = path.join(DOCS, name);
  const before = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined;
  fs.writeFileSync(file, text);
  console.log(`${path.relative(process.cwd(), file)}: ${before === text ? 'unchanged' : 'written'}`);
}
