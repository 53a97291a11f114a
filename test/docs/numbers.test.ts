/**
 * Numbers the docs quote from the code come from the code: every sentence
 * of the user docs that speaks of the lossy catch-up ring gives its size as
 * src/wire/recent-chunks.ts has it (the ring holds up to RING_CHUNKS
 * chunks and RING_BYTES bytes, and is cut to half of both at once).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RING_BYTES, RING_CHUNKS } from '../../src/wire/recent-chunks.js';

const root = path.resolve(import.meta.dirname, '../..');
const MiB = 1024 * 1024;
/** History pages quote what the code was then. */
const HISTORY = new Set(['docs/performance.md', 'docs/distributed-findings.md']);

function userDocs(): string[] {
  const docs = fs.readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`);
  return ['README.md', 'examples/README.md', ...docs].filter((f) => !HISTORY.has(f));
}

describe('the catch-up ring in the docs', () => {
  const chunks = new Set([RING_CHUNKS, RING_CHUNKS / 2]);
  const mebibytes = new Set([RING_BYTES / MiB, RING_BYTES / MiB / 2]);

  it(`every sentence on the ring says ${RING_CHUNKS / 2} to ${RING_CHUNKS} chunks and ${RING_BYTES / MiB} MiB, as the code does`, () => {
    const wrong: string[] = [];
    let sentences = 0;
    for (const file of userDocs()) {
      // Sentence by sentence: a paragraph on the ring may quote other numbers (descriptors kept open, say).
      for (const sentence of fs.readFileSync(path.join(root, file), 'utf8').split(/\n\s*\n|[.;:](?:\s|$)/)) {
        if (!/\bring\b/i.test(sentence)) continue;
        sentences += 1;
        for (const m of sentence.matchAll(/(\d[\d,]*)\s+(?:chunks|entries)(?! a second)/g)) {
          if (!chunks.has(Number(m[1]!.replace(/,/g, '')))) wrong.push(`${file}: "${m[0]}"`);
        }
        for (const m of sentence.matchAll(/(\d+)\s*MiB/g)) {
          if (!mebibytes.has(Number(m[1]))) wrong.push(`${file}: "${m[0]}"`);
        }
      }
    }
    expect(sentences).toBeGreaterThan(3);
    expect(wrong).toEqual([]);
  });

  it('the README and the modes page state the whole size', () => {
    const phrase = `the last ${RING_CHUNKS / 2} to ${RING_CHUNKS} chunks, at most ${RING_BYTES / MiB} MiB`;
    for (const file of ['README.md', 'docs/modes.md']) {
      expect(fs.readFileSync(path.join(root, file), 'utf8'), file).toContain(phrase);
    }
  });
});
