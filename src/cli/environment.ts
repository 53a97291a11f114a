/**
 * Defaults for the common flags from FILEBUS_* environment variables. A
 * flag given on the command line always wins; a variable for an option that
 * does not apply (FILEBUS_WINDOW on a lossy bus) is ignored.
 * Other FILEBUS_* variables are none of our business and are ignored.
 */
export interface EnvironmentOption {
  /** The variable, e.g. FILEBUS_BLOCK_SIZE. */
  readonly variable: string;
  /** The long flag it stands for, without dashes. */
  readonly option: string;
  readonly kind: 'string' | 'boolean';
}

function variableFor(option: string): string {
  return `FILEBUS_${option.toUpperCase().replace(/-/g, '_')}`;
}

const OPTIONS: ReadonlyArray<[option: string, kind: 'string' | 'boolean']> = [
  ['filename', 'string'],
  ['back-pressure', 'boolean'],
  ['multicast', 'boolean'],
  ['window', 'string'],
  ['retain', 'string'],
  ['block-size', 'string'],
  ['sleep-interval', 'string'],
  ['file-monitoring', 'boolean'],
  ['watch', 'string'],
  ['lock', 'string'],
  ['file-mode', 'string'],
  ['progress', 'boolean'],
  ['progress-interval', 'string'],
];

export const ENVIRONMENT_OPTIONS: readonly EnvironmentOption[] = OPTIONS.map(([option, kind]) => ({ variable: variableFor(option), option, kind }));

/** The variable that sets `option`, for --help. */
export function environmentVariableOf(option: string): string | undefined {
  return ENVIRONMENT_OPTIONS.find((e) => e.option === option)?.variable;
}

/** A value taken from the environment, with the variable it came from (for error messages). */
export interface FromEnvironment {
  readonly text: string;
  readonly variable: string;
}

/**
 * The variables that are set, unparsed: a value is judged only when it is
 * used, so a flag on the command line makes a bad variable for it harmless.
 * An empty variable counts as unset, as shells make `FILEBUS_X= filebus ...`
 * the way to clear one.
 */
export function readEnvironment(env: NodeJS.ProcessEnv): Map<string, FromEnvironment> {
  const found = new Map<string, FromEnvironment>();
  for (const { variable, option } of ENVIRONMENT_OPTIONS) {
    const text = env[variable];
    if (text !== undefined && text !== '') found.set(option, { variable, text });
  }
  return found;
}

/** A boolean variable's value; anything but the usual spellings is an error naming the variable. */
export function environmentBoolean(value: FromEnvironment, fail: (message: string) => Error): boolean {
  const text = value.text.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(text)) return true;
  if (['0', 'false', 'no', 'off'].includes(text)) return false;
  throw fail(`${value.variable} must be 1, true, yes, on, 0, false, no or off, got '${value.text}'`);
}
