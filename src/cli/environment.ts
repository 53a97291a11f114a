/**
 * Defaults for the common flags from FILEBUS_* environment variables. A
 * flag given on the command line always wins; a variable for an option that
 * does not apply (FILEBUS_WINDOW on a lossy bus) is ignored.
 * Other FILEBUS_* variables are none of our business and are ignored.
 */
import { OPTION_ROWS, takes, type OptionName, type OptionRow } from './option-table.js';
import { UsageError } from './usage-error.js';

export interface EnvironmentOption {
  /** The variable, e.g. FILEBUS_BLOCK_SIZE. */
  readonly variable: string;
  /** The long flag it stands for, without dashes. */
  readonly option: OptionName;
  readonly row: OptionRow;
}

/** The options a variable can set, in the table's order (option-table.ts). */
export const ENVIRONMENT_OPTIONS: readonly EnvironmentOption[] = OPTION_ROWS.flatMap(([option, row]) =>
  row.env === undefined ? [] : [{ variable: row.env, option, row }]);

/** A value taken from the environment, with the variable it came from (for error messages). */
export interface FromEnvironment {
  readonly text: string;
  readonly variable: string;
}

/**
 * The variables that are set, unparsed, of the options `command` takes: a
 * value is judged only when it is used, so a flag on the command line makes
 * a bad variable for it harmless. An empty variable counts as unset, as
 * shells make `FILEBUS_X= filebus ...` the way to clear one.
 */
export function readEnvironment(env: NodeJS.ProcessEnv, command: string | undefined): Map<OptionName, FromEnvironment> {
  const found = new Map<OptionName, FromEnvironment>();
  for (const { variable, option, row } of ENVIRONMENT_OPTIONS) {
    if (!takes(row, command)) continue;
    const text = env[variable];
    if (text !== undefined && text !== '') found.set(option, { variable, text });
  }
  return found;
}

/** A boolean variable's value; anything but the usual spellings is an error naming the variable. */
export function environmentBoolean(value: FromEnvironment): boolean {
  const text = value.text.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(text)) return true;
  if (['0', 'false', 'no', 'off'].includes(text)) return false;
  throw new UsageError(`${value.variable} must be 1, true, yes, on, 0, false, no or off, got '${value.text}'`);
}
