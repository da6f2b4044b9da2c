/** The schema keys of the delivery settings, DeliveryConfig (config.ts). */
import { duration, size } from '../../core/config-schema.js';
import { DEFAULT_DELIVERY } from './config.js';

/**
 * The schema keys of the batching every sink does (the file sink too): a
 * sink type's schema spreads them among its own.
 */
export function deliveryProperties() {
  const defaults = DEFAULT_DELIVERY;
  return {
    batch_size: size(defaults.batchBytes, 'Encoded bytes buffered before a write is issued.'),
    batch_delay: duration(defaults.batchDelayMs, 'Longest a record waits in the batch before it is written.'),
    queue_high_water: size(defaults.queueHighWaterBytes, 'Bytes queued for this sink above which the sources are asked to slow down.'),
  };
}
