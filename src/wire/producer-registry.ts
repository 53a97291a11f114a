import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { FilebusError, errnoCode, ioError } from '../errors.js';
import type { Holding, Liveness } from '../lock/liveness.js';
import { HOST, type BusPaths } from './paths.js';
import { createDirectory, createFile, type FileMode } from '../util/permissions.js';

/**
 * Multicast producers announce themselves in `FILE.producers/`: one empty
 * file each, `HOST.PID.HEX.producer`, held while the producer runs (an
 * exclusive flock, or a fresh mtime on mkdir buses: lock/liveness.ts). A stream ends when its last producer finishes, so a
 * finishing producer that sees another live one leaves the end marker to it.
 */
export function producersDir(paths: BusPaths): string {
  return `${paths.file}.producers`;
}

const SUFFIX = '.producer';

export class ProducerRegistration {
  readonly #dir: string;
  readonly #name: string;
  readonly #liveness: Liveness;
  #fd: number;
  #holding: Holding | undefined;

  private constructor(dir: string, name: string, fd: number, liveness: Liveness) {
    this.#dir = dir;
    this.#name = name;
    this.#fd = fd;
    this.#liveness = liveness;
    this.#holding = liveness.hold(fd, path.join(dir, name), true);
  }

  static create(paths: BusPaths, mode: FileMode, liveness: Liveness): ProducerRegistration {
    const dir = producersDir(paths);
    try {
      createDirectory(dir, mode);
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST') throw ioError('create directory', dir, error);
    }
    if (!fs.lstatSync(dir).isDirectory()) throw new FilebusError('ERR_FILEBUS_BAD_PATH', `${dir} is not a directory`, { path: dir });
    const name = `${HOST}.${process.pid}.${randomBytes(4).toString('hex')}${SUFFIX}`;
    const file = path.join(dir, name);
    let fd: number;
    try {
      fd = createFile(file, fs.constants.O_RDWR | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, mode);
    } catch (error) {
      throw ioError('register producer', file, error);
    }
    return new ProducerRegistration(dir, name, fd, liveness);
  }

  /**
   * Whether another producer is running on this bus. Registrations of
   * producers that died are removed on the way. Call under the bus lock.
   */
  othersRunning(): boolean {
    let others = false;
    for (const name of fs.readdirSync(this.#dir)) {
      if (!name.endsWith(SUFFIX) || name === this.#name) continue;
      const file = path.join(this.#dir, name);
      let fd: number;
      try {
        fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      } catch {
        continue;
      }
      try {
        if (this.#liveness.isHeld(fd, file)) others = true;
        else fs.rmSync(file, { force: true });
      } finally {
        fs.closeSync(fd);
      }
    }
    return others;
  }

  close(): void {
    if (this.#fd < 0) return;
    fs.rmSync(path.join(this.#dir, this.#name), { force: true });
    this.#holding?.release();
    fs.closeSync(this.#fd);
    this.#fd = -1;
  }
}
