/**
 * The option table (src/cli/option-table.ts) is the one place a flag is
 * described; these check that its rows agree with themselves and that what
 * reads it (yargs' help, the environment reader) shows every row.
 */
import { describe, expect, it } from 'vitest';
import { defineCli } from '../../src/cli/define-cli.js';
import { ENVIRONMENT_OPTIONS } from '../../src/cli/environment.js';
import { OPTION_ROWS } from '../../src/cli/option-table.js';
import { parseArgs } from '../../src/cli/parse-args.js';

async function help(argv: string[]): Promise<string> {
  const cli = defineCli(argv, '0.0.0').locale('en').exitProcess(false);
  if (argv.length === 0) return cli.getHelp();
  return new Promise<string>((resolve, reject) => {
    void cli.parse(argv, {}, (error: Error | undefined, _parsed: unknown, text: string) => (error ? reject(error) : resolve(text)));
  });
}

describe('the option table', () => {
  it('names each variable after its flag: FILEBUS_ and the flag in capitals', () => {
    for (const [name, row] of OPTION_ROWS) {
      if (row.env !== undefined) expect(row.env, name).toBe(`FILEBUS_${name.toUpperCase().replace(/-/g, '_')}`);
    }
    expect(ENVIRONMENT_OPTIONS.map((e) => e.variable)).toEqual(OPTION_ROWS.flatMap(([, row]) => (row.env === undefined ? [] : [row.env])));
  });

  it("says each option's unit in its help", () => {
    for (const [name, row] of OPTION_ROWS) {
      for (const word of row.unit?.split(' or ') ?? []) expect(row.help, name).toContain(word);
    }
  });

  it('every row, its other spellings and its variable are in the help of the commands that take it', async () => {
    const top = await help([]);
    for (const [name, row] of OPTION_ROWS) {
      const page = row.scope === 'commands' ? await help([row.commands![0]!, '--help']) : top;
      expect(page, name).toContain(`--${name}`);
      for (const alias of row.aliases ?? []) expect(page, name).toContain(alias.length === 1 ? `-${alias}, --${name}` : `--${alias}`);
      if (row.env !== undefined) expect(page.replace(/\s+/g, ' '), name).toContain(`[env ${row.env}]`);
    }
  });

  it('a value from a variable is refused naming the variable, the same value on the command line naming the flag', async () => {
    const cases: Array<[flag: string, variable: string, bad: string]> = [
      ['--block-size', 'FILEBUS_BLOCK_SIZE', '99999999999'], ['--window', 'FILEBUS_WINDOW', '0'], ['--watch', 'FILEBUS_WATCH', 'inotify'],
      ['--lock', 'FILEBUS_LOCK', 'fcntl'], ['--sleep-interval', 'FILEBUS_SLEEP_INTERVAL', 'soon'], ['--file-mode', 'FILEBUS_FILE_MODE', '1777'],
    ];
    for (const [flag, variable, bad] of cases) {
      const base = ['--filename', 'bus', '--multicast', 'producer'];
      await expect(parseArgs([...base, flag, bad], '0.0.0', { env: {} }), flag).rejects.toThrow(new RegExp(`^${flag} .*'${bad}'$`));
      await expect(parseArgs(base, '0.0.0', { env: { [variable]: bad } }), variable).rejects.toThrow(new RegExp(`^${variable} .*'${bad}'$`));
    }
  });

  it('a row that names a library option hands its value to the library with no code of its own (a flag is one row)', async () => {
    const samples: Record<string, string | undefined> = {
      'block-size': '4096', 'sleep-interval': '0.5', lock: 'mkdir', 'file-mode': '0600', window: '64MiB', 'take-over': undefined,
    };
    const rows = OPTION_ROWS.filter(([, row]) => row.library !== undefined);
    expect(rows.map(([name]) => name).sort()).toEqual(Object.keys(samples).sort());
    for (const [name, row] of rows) {
      const text = samples[name];
      const args = await parseArgs(['--filename', 'bus', '--multicast', `--${name}`, ...(text === undefined ? [] : [text]), 'producer'], '0.0.0', { env: {} });
      const expected = row.kind === 'boolean' ? true : name === 'window' ? text : name === 'file-mode' ? 0o600 : name === 'lock' ? text : Number(text);
      expect(args.library[row.library!], name).toEqual(expected);
    }
    // Not given: the library's defaults apply, except booleans, which say false.
    const plain = await parseArgs(['--filename', 'bus', 'producer'], '0.0.0', { env: {} });
    expect(plain.library).toEqual({ takeOver: false });
  });
});
