/**
 * docs/cli.md and docs/api.md are generated (npm run docs) from the yargs
 * definition and the type declarations. Committed copies that differ from a
 * fresh generation have drifted from the code.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import { renderApiReference } from '../../scripts/docs/api-reference.js';
import { renderCliReference } from '../../scripts/docs/cli-reference.js';

function committed(name: string): string {
  const file = path.join(ROOT, 'docs', name);
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : `(docs/${name} does not exist)`;
}

describe('generated reference pages', () => {
  it('docs/cli.md is what defineCli prints (run npm run docs)', async () => {
    const fresh = await renderCliReference();
    expect(committed('cli.md'), 'docs/cli.md is stale: run npm run docs').toBe(fresh);
  });

  it('docs/cli.md covers every command and every option of the CLI', async () => {
    const page = await renderCliReference();
    for (const command of ['producer', 'consumer', 'remove-consumer <name>']) expect(page).toContain(`## \`filebus ${command}\``);
    for (const flag of ['--filename', '--back-pressure', '--multicast', '--window', '--retain', '--block-size', '--sleep-interval', '--file-monitoring', '--file-mode', '--blocking-read', '--name', '--from']) {
      expect(page).toContain(flag);
    }
  });

  it('docs/api.md is what the type declarations say (run npm run docs)', () => {
    const fresh = renderApiReference();
    expect(committed('api.md'), 'docs/api.md is stale: run npm run docs').toBe(fresh);
  });

  it('docs/api.md has a section for every runtime export of the package', async () => {
    const page = renderApiReference();
    const runtime = Object.keys(await import('../../src/index.js')).sort();
    expect(runtime.length).toBeGreaterThan(0);
    for (const name of runtime) expect(page, `no section for ${name}`).toContain(`\n## ${name}\n`);
  }, 60_000);
});
