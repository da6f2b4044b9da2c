/** The schema of a file sink, FileSinkConfig (config.ts). */
import { Type } from '@sinclair/typebox';
import { duration, size } from '../../core/config-schema.js';
import { sinkSchema } from '../config-schema.js';
import { deliveryProperties } from '../delivery/config-schema.js';

/** A `type: file` entry of `sinks` in the YAML configuration. */
export const FileSinkSchema = sinkSchema('file', 'A sink writing one file per tenant.', {
  path: Type.Union([Type.String({ minLength: 1 }), Type.Null()], {
    description:
      'Folder the files go to, as `<path>/<tenant>/`; a relative path is relative to the working directory. `null` means `<data_dir>/logs`.',
    default: null,
    'x-type': 'string or null',
    'x-expected': 'a folder path, or null for <data_dir>/logs',
  }),
  rotate_size: size(100 * 1024 ** 2, 'A file is rotated once it reaches this size.'),
  rotate_interval: duration(3_600_000, 'A file is rotated once it is this old; 0 turns rotation by time off.'),
  max_files: Type.Integer({
    description: 'Rotated files kept per tenant; 0 keeps all.',
    default: 0,
    minimum: 0,
  }),
  ...deliveryProperties(),
  fsync_interval: duration(20, 'Records from acknowledged protocols are acknowledged once fsync\'d; their fsyncs are grouped, at most one per this interval per file.'),
});
