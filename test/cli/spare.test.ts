import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { randomData } from '../helpers/cli.js';
import { startFilebus, waitForWatch } from '../helpers/procs.js';
import { within, until } from '../helpers/wait.js';
import { carry } from '../helpers/back-pressure.js';
import { useBusDir } from '../helpers/bus-dir.js';
import { listTree } from '../helpers/bus-layout.js';
import { RECORD_SIZE, records, parseRecords, seqsOf, isIncreasing } from '../helpers/records.js';
import { busPaths } from '../../src/wire/layout.js';
import { writeIntoSpare } from '../../src/wire/spare-chunk.js';

// The spare (src/wire/spare-chunk.ts): a back-pressure consumer keeps a
// delivered chunk's file at .BASE.spare and the next publish writes into it.

const tmp = useBusDir('filebus-spare-', { ownDir: true });

describe('the spare chunk file', () => {
  it('a stream of many chunks arrives whole and leaves no spare behind', async () => {
    const input = randomData(3_000_000);
    const output = await carry(tmp.bus, input, ['--block-size', '65536'], { waitForConsumer: true });
    expect(output.equals(input)).toBe(true);
    expect(listTree(tmp.busDir)).toEqual(['bus.lock']);
  });

  // With --file-mode the very first publish looks for a spare, so what was
  // planted is met before any consumer has left a real one.
  const plants: Array<[string, (victim: string, spare: string) => void]> = [
    ['a hard link to another file of ours', (victim, spare) => fs.linkSync(victim, spare)],
    ['a symbolic link', (victim, spare) => fs.symlinkSync(victim, spare)],
    ['a named pipe', (_victim, spare) => execFileSync('mkfifo', [spare])],
  ];
  it.each(plants)('%s planted at .BASE.spare is never written through', async (_what, plant) => {
    const victim = path.join(tmp.dir, 'victim.txt');
    const precious = Buffer.from('precious content that must survive\n');
    fs.writeFileSync(victim, precious, { mode: 0o644 });
    fs.chmodSync(victim, 0o644);
    const before = fs.statSync(victim);
    plant(victim, path.join(tmp.busDir, '.bus.spare'));

    const input = randomData(300_000);
    const output = await carry(tmp.bus, input, ['--block-size', '4096', '--file-mode', '0644'], { waitForConsumer: true });
    expect(output.equals(input)).toBe(true);
    expect(fs.readFileSync(victim).equals(precious)).toBe(true);
    const after = fs.statSync(victim);
    expect({ size: after.size, mtimeMs: after.mtimeMs }).toEqual({ size: before.size, mtimeMs: before.mtimeMs });
    expect(listTree(tmp.busDir)).toEqual(['bus.lock']);
  });

  it('a lossy consumer eavesdropping on a back-pressure bus only ever emits whole chunks, in order', async () => {
    // 1 KiB chunks of 32-byte records: a chunk rewritten while the
    // eavesdropper reads it would show as a torn record or a step back.
    const count = 20_000;
    const input = records('A', count);
    const eavesdropper = startFilebus(['--filename', tmp.bus, '--block-size', '1024', 'consumer'], { stdin: 'ignore' });
    await waitForWatch(eavesdropper.pid);
    const output = await carry(tmp.bus, input, ['--block-size', '1024'], { waitForConsumer: true });
    expect(output.equals(input)).toBe(true);
    eavesdropper.child.kill('SIGTERM');
    await within(eavesdropper.done, 10_000, 'the eavesdropper');
    const heard = eavesdropper.stdout();
    expect(heard.length % RECORD_SIZE).toBe(0);
    const seqs = seqsOf(parseRecords(heard), 'A');
    expect(seqs.length).toBeGreaterThan(0);
    expect(isIncreasing(seqs)).toBe(true);
    expect(seqs.every((seq) => seq < count)).toBe(true);
  });

  // The end marker may go to a consumer that knows nothing of spares (the
  // reference's): then ours must not leave its spare behind when stopped.
  it.each([['taken chunks', []], ['--lock mkdir (the reference\'s order)', ['--lock', 'mkdir']]] as Array<[string, string[]]>)(
    'a consumer stopped with SIGTERM mid-stream, %s, takes its spare with it',
    async (_how, extra) => {
      const common = ['--filename', tmp.bus, '--back-pressure', '--block-size', '65536', ...extra];
      const consumer = startFilebus([...common, 'consumer'], { stdin: 'ignore' });
      await waitForWatch(consumer.pid);
      const producer = startFilebus([...common, 'producer'], { stdin: 'pipe' });
      const input = randomData(300_000);
      producer.child.stdin!.write(input); // and left open: no end marker
      await until(() => consumer.stdoutBytes() >= input.length, 'the input at the consumer', 15_000);
      // The last chunk becomes the spare just after it is written out. Not
      // listTree: with --lock mkdir, FILE.lock.d comes and goes while it walks.
      await until(() => fs.readdirSync(tmp.busDir).includes('.bus.spare'), 'the spare', 15_000);
      consumer.child.kill('SIGTERM');
      await within(consumer.done, 10_000, 'the consumer after SIGTERM');
      expect(consumer.stdout().equals(input)).toBe(true);
      expect(fs.readdirSync(tmp.busDir).filter((name) => name.includes('spare'))).toEqual([]);
    },
  );

  it('a spare that is still open somewhere (a reader holds it) is not rewritten, and a closed one is', () => {
    const paths = busPaths(tmp.bus);
    const old = Buffer.from('the chunk a lossy consumer is still reading');
    fs.writeFileSync(paths.spare, old, { mode: 0o600 });
    fs.chmodSync(paths.spare, 0o600);
    const reader = fs.openSync(paths.spare, 'r');
    const next = Buffer.from('the next chunk');
    const temp = path.join(tmp.busDir, '.bus.test.1.new');
    try {
      expect(writeIntoSpare(paths, temp, [next], 0o600)).toBe(false);
      const held = Buffer.alloc(old.length);
      expect(fs.readSync(reader, held, 0, held.length, 0)).toBe(old.length);
      expect(held.equals(old)).toBe(true);
      // Refused files are removed, never handed back: nothing at either name.
      expect(fs.existsSync(paths.spare) || fs.existsSync(temp)).toBe(false);
    } finally {
      fs.closeSync(reader);
    }
    fs.writeFileSync(paths.spare, old, { mode: 0o600 });
    fs.chmodSync(paths.spare, 0o600);
    const ino = fs.statSync(paths.spare).ino;
    expect(writeIntoSpare(paths, temp, [next], 0o600)).toBe(true);
    expect(fs.readFileSync(temp).equals(next)).toBe(true);
    expect(fs.statSync(temp).ino).toBe(ino);
    expect(fs.existsSync(paths.spare)).toBe(false);
  });
});
