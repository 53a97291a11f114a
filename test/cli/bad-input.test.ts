import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../helpers/cli.js';
import { runFilebus, killAll } from '../helpers/procs.js';
import { listTree } from '../helpers/bus-layout.js';

let dir: string;

beforeAll(() => {
  dir = tempDir('filebus-cli-bad-');
  fs.writeFileSync(path.join(dir, 'plain-file'), 'not a directory\n');
  fs.mkdirSync(path.join(dir, 'a-directory'));
  execFileSync('mkfifo', [path.join(dir, 'a-fifo')]);
  fs.mkdirSync(path.join(dir, 'locked-out.lock'));
});

afterEach(async () => {
  await killAll();
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * Runs filebus in `dir` and checks the usage-error contract: exit 2, one
 * `filebus: ...` line on stderr matching `problem`, no stack trace, nothing
 * on stdout, and the directory tree exactly as it was.
 */
async function expectUsageError(args: string[], problem: RegExp, cwd = dir, timeoutMs = 20_000): Promise<void> {
  const before = listTree(dir);
  const result = await runFilebus(args, { cwd, input: 'some input that must not go anywhere\n', timeoutMs });
  expect(result.stderr).toMatch(/^filebus: [^\n]+\n$/);
  expect(result.stderr).not.toMatch(/^\s+at /m);
  expect(result.stderr).toMatch(problem);
  expect(result.stdout.toString()).toBe('');
  expect({ code: result.code, signal: result.signal }).toEqual({ code: 2, signal: null });
  expect(listTree(dir)).toEqual(before);
}

describe('bad command lines exit 2 with one line naming the problem', () => {
  const cases: Array<[name: string, args: string[], problem: RegExp]> = [
    ['missing --filename (producer)', ['producer'], /--filename.*required/],
    ['missing --filename (back-pressure consumer)', ['--back-pressure', 'consumer'], /--filename.*required/],
    ['--filename without a value', ['producer', '--filename'], /filename/],
    ['empty --filename', ['--filename', '', 'producer'], /--filename.*required/],
    ['no command', ['--filename', 'bus'], /command.*(producer|consumer)/],
    ['no command, with other flags', ['--back-pressure', '--filename', 'bus', '--block-size', '10'], /command/],
    ['unknown command', ['--filename', 'bus', 'publish'], /unknown command 'publish'/],
    ['an extra argument after the command', ['--filename', 'bus', 'producer', 'extra'], /'extra'/],
    ['unknown flag --bogus', ['--filename', 'bus', '--bogus', 'producer'], /unknown option '--bogus'/],
    ['unknown flag --bogus before --filename', ['--bogus', '--filename', 'bus', 'consumer'], /unknown option '--bogus'/],
    ['unknown short flag', ['--filename', 'bus', '-x', 'producer'], /unknown option '-x'/],
    ['--block-size 0', ['--filename', 'bus', '--block-size', '0', 'producer'], /--block-size.*'0'/],
    ['--block-size -3', ['--filename', 'bus', '--block-size', '-3', 'producer'], /--block-size.*'-3'/],
    ['--block-size 1.5', ['--filename', 'bus', '--block-size', '1.5', 'producer'], /--block-size.*'1\.5'/],
    ['--block-size abc', ['--filename', 'bus', '--block-size', 'abc', 'producer'], /--block-size.*'abc'/],
    ['--block-size abc (consumer)', ['--filename', 'bus', '--block-size', 'abc', 'consumer'], /--block-size.*'abc'/],
    ['--block-size=0', ['--filename', 'bus', '--block-size=0', 'producer'], /--block-size.*'0'/],
    ['--block-size far too large', ['--filename', 'bus', '--block-size', '99999999999', 'producer'], /--block-size/],
    ['--sleep-interval -1', ['--filename', 'bus', '--sleep-interval', '-1', 'consumer'], /--sleep-interval.*'-1'/],
    ['--sleep-interval abc', ['--filename', 'bus', '--sleep-interval', 'abc', 'consumer'], /--sleep-interval.*'abc'/],
    ['--sleep-interval -1 (producer)', ['--filename', 'bus', '--back-pressure', '--sleep-interval', '-1', 'producer'], /--sleep-interval.*'-1'/],
    ['--sleep-interval abc (producer)', ['--filename', 'bus', '--sleep-interval', 'abc', 'producer'], /--sleep-interval.*'abc'/],
  ];
  for (const [name, args, problem] of cases) {
    it(name, async () => {
      await expectUsageError(args, problem);
    });
  }
});

describe('bad bus paths exit 2 with one line naming the problem', () => {
  const roles: Array<[role: string, flags: string[]]> = [
    ['producer', ['producer']],
    ['back-pressure producer', ['--back-pressure', 'producer']],
    ['consumer', ['consumer']],
    ['back-pressure consumer', ['--back-pressure', 'consumer']],
  ];
  for (const [role, flags] of roles) {
    it(`FILE is a directory (${role})`, async () => {
      await expectUsageError(['--filename', path.join(dir, 'a-directory'), ...flags], /a-directory.*is a directory|is a directory.*a-directory/);
    });
    it(`a regular file where a parent directory should be (${role})`, async () => {
      await expectUsageError(['--filename', path.join(dir, 'plain-file', 'bus'), ...flags], /plain-file.*not a directory/);
    });
    it(`a regular file deeper up the path (${role})`, async () => {
      await expectUsageError(['--filename', path.join(dir, 'plain-file', 'sub', 'bus'), ...flags], /plain-file.*not a directory/);
    });
  }
  // A named pipe at FILE: opening it for reading would block until a writer
  // comes (a consumer stuck in open(2) cannot even be stopped by SIGTERM).
  // Killed after 10 s, which fails the exit-code check.
  for (const [role, flags] of roles.filter(([r]) => r.includes('consumer'))) {
    it(`FILE is a named pipe (${role})`, async () => {
      await expectUsageError(['--filename', path.join(dir, 'a-fifo'), ...flags], /a-fifo.*(not a (regular|bus) file|named pipe|fifo)/i, dir, 10_000);
    });
  }

  // FILE.lock is a path the bus needs (src/errors.ts: ERR_FILEBUS_BAD_PATH is
  // "FILE, or a path the bus needs, exists but is the wrong kind of thing").
  // Producers need it for their first chunk.
  for (const [role, flags] of roles.filter(([r]) => r.includes('producer'))) {
    it(`FILE.lock is a directory (${role})`, async () => {
      await expectUsageError(['--filename', path.join(dir, 'locked-out'), ...flags], /locked-out\.lock.*(directory|EISDIR)/i);
    });
  }

  // Scripts read the last line of stderr; a path with a newline or a
  // terminal escape in it must not split the message or reach the terminal raw.
  it('a FILE whose name holds a newline and an escape code: -v lines and the error stay one line each, the name escaped', async () => {
    const odd = 'odd\nname\u001b[31m';
    fs.mkdirSync(path.join(dir, odd));
    try {
      const result = await runFilebus(['-v', '--filename', odd, 'consumer'], { cwd: dir, timeoutMs: 20_000 });
      expect({ code: result.code, signal: result.signal }).toEqual({ code: 2, signal: null });
      const lines = result.stderr.split('\n');
      expect(lines.pop()).toBe('');
      expect(lines.length).toBeGreaterThanOrEqual(2);
      expect(lines.slice(0, -1).every((l) => l.startsWith('filebus consumer: '))).toBe(true);
      expect(lines.at(-1)).toMatch(/^filebus: .*odd\\nname\\x1b\[31m.*is a directory/);
      expect(result.stderr).not.toContain('\u001b');
    } finally {
      fs.rmdirSync(path.join(dir, odd));
    }
  });

  it('a relative FILE that is a directory, resolved against the working directory', async () => {
    await expectUsageError(['--filename', 'a-directory', 'producer'], /a-directory.*is a directory/);
  });
});

describe('a bus directory on a read-only file system', () => {
  let ro: string;
  let mounted = false;

  beforeAll(() => {
    ro = path.join(dir, 'read-only');
    fs.mkdirSync(ro);
    // Must work here (tests run as root); a failure fails these tests rather than skipping them.
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', ro], { stdio: 'pipe' });
    mounted = true;
  });

  afterAll(() => {
    if (mounted) execFileSync('umount', [ro], { stdio: 'pipe' });
  });

  it('the mount really is read-only', () => {
    expect(() => fs.writeFileSync(path.join(ro, 'probe'), 'x')).toThrow(/EROFS/);
  });

  it('producer: FILE in a directory that cannot be written', async () => {
    await expectUsageError(['--filename', path.join(ro, 'bus'), 'producer'], /read-only/);
  });

  it('back-pressure producer: FILE in a directory that cannot be written', async () => {
    await expectUsageError(['--filename', path.join(ro, 'bus'), '--back-pressure', 'producer'], /read-only/);
  });

  it('back-pressure consumer (it deletes chunks): FILE in a directory that cannot be written', async () => {
    await expectUsageError(['--filename', path.join(ro, 'bus'), '--back-pressure', 'consumer'], /read-only/);
  });

  it('producer: FILE in a missing directory that cannot be created on the read-only file system', async () => {
    await expectUsageError(['--filename', path.join(ro, 'sub', 'bus'), 'producer'], /read-only/);
  });
});

describe('--help and --version', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };

  for (const flag of ['--help', '-h']) {
    it(`${flag} prints the usage to stdout and exits 0`, async () => {
      const before = listTree(dir);
      const result = await runFilebus([flag], { cwd: dir });
      expect(result.stderr).toBe('');
      expect({ code: result.code, signal: result.signal }).toEqual({ code: 0, signal: null });
      const text = result.stdout.toString();
      for (const word of ['producer', 'consumer', '--filename', '--back-pressure', '--lossless', '--block-size', '--sleep-interval', '--no-file-monitoring']) {
        expect(text).toContain(word);
      }
      expect(listTree(dir)).toEqual(before);
    });
  }

  it('--version prints the package version to stdout and exits 0', async () => {
    const result = await runFilebus(['--version'], { cwd: dir });
    expect(result.stderr).toBe('');
    expect({ code: result.code, signal: result.signal }).toEqual({ code: 0, signal: null });
    expect(result.stdout.toString()).toBe(`${pkg.version}\n`);
  });
});
