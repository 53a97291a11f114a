import { BackPressurePublisher } from './back-pressure-publisher.js';
import type { Publisher } from './contracts.js';
import { LossyPublisher } from './lossy-publisher.js';
import { MulticastPublisher } from './multicast-publisher.js';
import type { Bus } from './open-bus.js';
import { RegisteredPublisher, registerProducer } from './registered-publisher.js';

/** The publisher for the bus's mode, registered in FILE.producers/ (see registered-publisher.ts). */
export function createPublisher(bus: Bus): Publisher {
  const registration = registerProducer(bus);
  try {
    const inner = bus.options.mode === 'lossy' ? new LossyPublisher(bus)
      : bus.options.mode === 'back-pressure' ? new BackPressurePublisher(bus)
        : new MulticastPublisher(bus, registration!);
    return new RegisteredPublisher(inner, registration);
  } catch (error) {
    registration?.close();
    throw error;
  }
}
