// fs-ext ships no type declarations; these cover the calls filebus makes.
declare module 'fs-ext' {
  export type FlockFlag = 'sh' | 'ex' | 'shnb' | 'exnb' | 'un';
  export function flock(fd: number, flags: FlockFlag, callback: (error: NodeJS.ErrnoException | null) => void): void;
  export function flockSync(fd: number, flags: FlockFlag): void;
  /** fcntl(2) with a numeric command; returns its result (F_GETFL: the status flags). */
  export function fcntlSync(fd: number, cmd: number, arg?: number): number;
}
