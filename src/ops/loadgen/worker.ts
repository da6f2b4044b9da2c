/**
 * Entry point of a load generator worker process (forked by fleet.ts):
 * wires the IPC channel to an {@link AgentWorker}.
 */
import { AgentWorker } from './agent-worker.js';
import type { FromWorker, ToWorker } from './ipc.js';

/** After closing, how long connections may take to finish before the process exits anyway. */
const EXIT_GRACE_MS = 2000;

if (process.send === undefined) {
  process.stderr.write('the load generator worker runs only as a child of `sluice loadgen`\n');
  process.exit(1);
}

function send(message: FromWorker): void {
  if (process.connected) process.send!(message);
}

let worker: AgentWorker | null = null;

// Ctrl-C reaches the whole process group; the main process decides how the run ends.
process.on('SIGINT', () => undefined);

// The main process is gone: nobody will read a report, so go at once.
process.on('disconnect', () => {
  worker?.destroy();
  process.exit(0);
});

process.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'start': {
      const started = new AgentWorker(message.plan, {
        progress: send,
        stopped: (report) => send({ type: 'stopped', report }),
      });
      worker = started;
      void started.connectAll().then((outcome) => send({ type: 'connected', ...outcome }));
      break;
    }
    case 'go':
      worker?.go(message.goMicros);
      break;
    case 'stop':
      void worker?.stop();
      break;
    case 'close':
      worker?.close();
      worker = null;
      // Exit as soon as the connections are closed, or after the grace at the latest.
      setTimeout(() => process.exit(0), EXIT_GRACE_MS).unref();
      process.removeAllListeners('disconnect');
      process.disconnect();
      break;
  }
});
