/** The program node:cluster forks for each worker (see primary.ts). */
import { runWorker } from './worker.js';

runWorker();
