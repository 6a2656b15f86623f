/** The outbox layer: writes survive a backend outage (see layer.ts). */
export { OutboxLayer, withOutbox } from './layer.js';
export { OutboxControl, outboxOf, inspectOutbox, noOutbox, DEFAULT_MAX_BYTES, type OutboxOptions, type OutboxStatus, type DrainReport } from './control.js';
export type { DeadLetter, SpoolStep } from './entries.js';
export type { DeliveryOptions } from './delivery.js';
