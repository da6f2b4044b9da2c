/** The schema of a sink's disk buffer settings, DiskBufferConfig (config.ts). */
import { Type } from '@sinclair/typebox';
import { duration, section, size } from '../../core/config-schema.js';
import { DEFAULT_DISK_BUFFER_CONFIG } from './config.js';

/** `sinks.<name>.buffer` in the YAML configuration, the same for every sink type. */
export const DiskBufferSchema = section(
  {
    type: Type.Union([Type.Literal('memory'), Type.Literal('disk')], {
      description: '`memory`: the sink\'s own bounded queue only. `disk`: records are acknowledged once fsync\'d to an on-disk buffer under `<data_dir>/buffers/<sink>/`, and leave it once the sink has committed them, so a sink that is down (or a node that is killed) loses nothing acknowledged. See disk-buffer.md.',
      default: 'memory',
    }),
    max_size: size(DEFAULT_DISK_BUFFER_CONFIG.maxBytes, 'Disk buffer: most bytes it holds on disk.'),
    when_full: Type.Union([Type.Literal('block'), Type.Literal('drop_newest')], {
      description: 'Disk buffer, when full: `block` (sources are slowed; a batch that finds no room within `block_timeout` is refused) or `drop_newest` (the new batch is refused at once). Refusals are counted in `sluice_buffer_dropped_records_total`; acknowledged protocols see them as failures.',
      default: DEFAULT_DISK_BUFFER_CONFIG.whenFull,
    }),
    block_timeout: duration(DEFAULT_DISK_BUFFER_CONFIG.blockTimeoutMs, 'Disk buffer with `block`: longest a batch waits for room.'),
  },
  'Optional disk buffer in front of this sink.',
);
