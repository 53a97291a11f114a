import fs from 'node:fs';

/**
 * The permission bits of everything a bus creates. Undefined: the usual
 * 0666/0777 less the umask. A number (`--file-mode 0600`): exactly those bits
 * on files, and on directories the same plus search (x) wherever read (r)
 * is granted. Files are created owner-only and then given their mode, so a
 * file is never, even for an instant, more open than asked.
 */
export type FileMode = number | undefined;

export function directoryMode(mode: number): number {
  return mode | ((mode & 0o444) >> 2);
}

/** open(2) with O_CREAT, then the exact mode when one is set. */
export function createFile(path: string, flags: number, mode: FileMode): number {
  const fd = fs.openSync(path, flags | fs.constants.O_CREAT, mode === undefined ? 0o666 : 0o600);
  if (mode !== undefined) {
    try {
      fs.fchmodSync(fd, mode);
    } catch (error) {
      fs.closeSync(fd);
      throw error;
    }
  }
  return fd;
}

/** mkdir(2) of one directory, then the exact mode when one is set. EEXIST is thrown as usual. */
export function createDirectory(path: string, mode: FileMode): void {
  fs.mkdirSync(path, mode === undefined ? 0o777 : 0o700);
  if (mode !== undefined) fs.chmodSync(path, directoryMode(mode));
}
