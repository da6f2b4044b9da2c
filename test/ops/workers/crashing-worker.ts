/**
 * A worker program for the crash-loop test: the worker of slot 2 dies at
 * every start, before it could serve; every other slot runs the real worker.
 */
import { runWorker } from '../../../src/ops/workers/worker.js';
import { WORKER_ID_ENV } from '../../../src/ops/workers/protocol.js';

if (process.env[WORKER_ID_ENV] === '2') {
  process.stderr.write('slot 2: failing at start (test)\n');
  process.exit(1);
}
runWorker();
