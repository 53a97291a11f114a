import { waitFor } from '../util/abortable.js';

/** The generation counter and wake-up that every event-driven watcher shares. */
export class WakeSignal {
  #generation = 0;
  #wake: (() => void) | undefined;
  #wakePromise: Promise<void> | undefined;

  get generation(): number {
    return this.#generation;
  }

  async changedSince(seen: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.#generation !== seen) return;
    this.#wakePromise ??= new Promise<void>((resolve) => { this.#wake = resolve; });
    await waitFor(this.#wakePromise, timeoutMs, signal);
  }

  bump(): void {
    this.#generation++;
    const wake = this.#wake;
    this.#wake = undefined;
    this.#wakePromise = undefined;
    wake?.();
  }
}
