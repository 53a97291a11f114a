export { Producer, type TransferStats } from './streams/producer.js';
export { Consumer } from './streams/consumer.js';
export { FilebusError, type FilebusErrorCode } from './errors.js';
export {
  BUS_MODES,
  DEFAULT_BLOCK_SIZE,
  DEFAULT_SLEEP_INTERVAL,
  type BusMode,
  type LockStrategy,
  type WatchMode,
  type StartPosition,
  type WindowSize,
  type BusOptions,
  type ConsumerOptions,
  type ProducerOptions,
} from './options.js';
export type { ConsumerPosition } from './engine/contracts.js';
export type { BusInfo } from './engine/open-bus.js';
export type { FileSystemInfo } from './watch/file-system.js';
export { removeConsumer } from './streams/remove-consumer.js';
export {
  busStatus,
  type BusStatus,
  type BusStatusMode,
  type ConsumerStatus,
  type LockStrategyName,
  type NewestChunkStatus,
  type ProducerStatus,
} from './status/bus-status.js';
