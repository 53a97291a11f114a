/**
 * `filebus completion`: the script yargs generates, and the completions it
 * asks filebus for, down to a real bash running the completion function.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN } from '../helpers/cli.js';
import { runFilebus } from '../helpers/procs.js';

const COMMANDS = ['producer', 'consumer', 'remove-consumer', 'status', 'completion'];

async function complete(...words: string[]): Promise<string[]> {
  const result = await runFilebus(['--get-yargs-completions', 'filebus', ...words], { stdin: 'ignore', env: { SHELL: '/bin/bash' } });
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return result.stdout.toString().split('\n').filter((line) => line !== '');
}

describe('filebus completion', () => {
  it('prints a bash script that bash accepts, exit 0, nothing on stderr', async () => {
    const result = await runFilebus(['completion'], { stdin: 'ignore', env: { SHELL: '/bin/bash' } });
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    const script = result.stdout.toString();
    expect(script).toContain('###-begin-filebus-completions-###');
    expect(script).toContain('filebus --get-yargs-completions');
    expect(script).toMatch(/^complete .* filebus$/m);
    const syntax = spawnSync('bash', ['-n'], { input: script });
    expect(syntax.status, syntax.stderr.toString()).toBe(0);
  });

  it('prints a zsh script when $SHELL is zsh', async () => {
    const result = await runFilebus(['completion'], { stdin: 'ignore', env: { SHELL: '/usr/bin/zsh' } });
    expect(result.code).toBe(0);
    expect(result.stdout.toString()).toMatch(/^#compdef filebus$/m);
    expect(result.stdout.toString()).toContain('--get-yargs-completions');
  });
});

describe('--get-yargs-completions', () => {
  it('completes every command', async () => {
    expect((await complete('')).sort()).toEqual([...COMMANDS].sort());
  });

  it('completes options, global and per command, leaving out those already given', async () => {
    const globals = await complete('--fil');
    for (const option of ['--filename', '--multicast', '--back-pressure', '--block-size', '--progress', '--json', '--help']) {
      expect(globals).toContain(option);
    }
    expect(globals.every((word) => word.startsWith('--'))).toBe(true);
    expect(await complete('--filename', 'bus', '--')).not.toContain('--filename');
    expect(await complete('consumer', '--')).toEqual(expect.arrayContaining(['--name', '--from']));
    expect(await complete('producer', '--')).toContain('--blocking-read');
  });

  it('an unknown option in the line being typed does not turn into an error', async () => {
    expect((await complete('--bogus', '')).sort()).toEqual([...COMMANDS].sort());
  });

  it('a real bash, with the script sourced, completes "filebus pro" to producer and "filebus --filen" to --filename', () => {
    const body = [
      'source <(filebus completion)',
      'COMP_WORDS=(filebus pro); COMP_CWORD=1; _filebus_yargs_completions; echo "commands: ${COMPREPLY[*]}"',
      'COMP_WORDS=(filebus --filen); COMP_CWORD=1; _filebus_yargs_completions; echo "options: ${COMPREPLY[*]}"',
      'COMP_WORDS=(filebus --filename bus st); COMP_CWORD=3; _filebus_yargs_completions; echo "after a flag: ${COMPREPLY[*]}"',
    ].join('\n');
    const result = spawnSync('bash', ['-c', body], {
      env: { ...process.env, SHELL: '/bin/bash', PATH: `${path.dirname(BIN)}:${process.env['PATH']}` },
      timeout: 60_000,
    });
    expect(result.status, result.stderr.toString()).toBe(0);
    expect(result.stdout.toString().split('\n')).toEqual(['commands: producer', 'options: --filename', 'after a flag: status', '']);
  });
});
