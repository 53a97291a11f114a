/**
 * Runs an example the way its README tells a newcomer to: `bash run.sh`,
 * with FILEBUS naming this repository's bin/filebus. Each run is its own
 * process group (startProcess), so killAll() in afterEach also ends the
 * pipelines a failed script left in the background.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BIN, ROOT } from './cli.js';
import { startProcess } from './procs.js';
import { within } from './wait.js';

export interface ScriptRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export async function runExample(script: string, args: readonly string[] = [], env: NodeJS.ProcessEnv = {}, timeoutMs = 120_000): Promise<ScriptRun> {
  const file = path.join(ROOT, 'examples', script);
  if (!fs.existsSync(file)) throw new Error(`no example ${file}`);
  const proc = startProcess('bash', [file, ...args], { cwd: ROOT, env: { FILEBUS: BIN, ...env }, stdin: 'ignore' });
  const exit = await within(proc.done, timeoutMs, `examples/${script} to finish`);
  return { ...exit, stdout: proc.stdout().toString(), stderr: proc.stderr() };
}

/** For assertion messages: everything a failed script said. */
export function transcript(run: ScriptRun): string {
  return `exit ${run.code} (signal ${run.signal})\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;
}
