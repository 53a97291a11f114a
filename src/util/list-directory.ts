import fs from 'node:fs';
import { FilebusError, errnoCode, ioError } from '../errors.js';

/**
 * The names in `dir`, in the order readdir(3) gives them. A directory that
 * does not exist is an empty list: the bus's directories come and go (a
 * multicast directory before its first producer, FILE.producers/ removed
 * by the last producer of a lossy bus, a bus deleted under a running
 * process), and every caller treats "gone" as "nothing there". Something
 * else at the name is ERR_FILEBUS_BAD_PATH; any other failure an I/O error.
 */
export function listDirectory(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT') return [];
    if (code === 'ENOTDIR') throw new FilebusError('ERR_FILEBUS_BAD_PATH', `${dir} is not a directory`, { path: dir, cause: error });
    throw ioError('list', dir, error);
  }
}
