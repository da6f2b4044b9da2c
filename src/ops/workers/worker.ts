/**
 * One worker process of a multi-process node: it waits for its configuration
 * from the primary, runs a SluiceNode in its slot (listeners shared with the
 * other workers through node:cluster), answers the primary's control calls,
 * and drains when told to (or on SIGTERM).
 *
 * SIGINT is ignored: Ctrl-C reaches the whole process group, and the primary
 * drains its workers itself. When the primary disappears, node:cluster exits
 * the worker at once; what it acknowledged is already durable.
 */
import { createNodeLogger, flushLogger } from '../log-output.js';
import type { Logger } from 'pino';
import { SluiceNode } from '../node.js';
import type { NodeControl } from '../control.js';
import { LocalControl } from '../admin/local-control.js';
import { isSluiceMessage, MEMORY_REPORT_MS, WORKER_ID_ENV, type FromWorker, type ToWorker } from './protocol.js';
import { TailForwarder } from './tail-forwarder.js';
import { REPORT_INTERVAL_MS, URGENT_REPORT_MS } from './limit-shares.js';
import { HostmetaChannelClient } from './hostmeta-channel.js';

function send(message: FromWorker): void {
  process.send?.(message);
}

/** Send, and call `written` once the message is in the channel (or the channel is gone). */
function sendTracked(message: FromWorker, written: () => void): void {
  if (process.send === undefined || !process.connected) {
    written();
    return;
  }
  process.send(message, undefined, {}, () => written());
}

export function runWorker(makeControl: (node: SluiceNode) => NodeControl = (node) => new LocalControl(node)): void {
  const workerId = Number(process.env[WORKER_ID_ENV]);
  if (!Number.isSafeInteger(workerId) || workerId < 1 || process.send === undefined) {
    process.stderr.write(`a sluice worker is started by the primary (${WORKER_ID_ENV} and an IPC channel missing)\n`);
    process.exit(2);
  }
  let node: SluiceNode | null = null;
  let logger: Logger | null = null;
  /** Exit once the last log lines are out (a syslog receiver may be slow). */
  const exit = async (status: number): Promise<never> => {
    if (logger !== null) await flushLogger(logger, 2000);
    process.exit(status);
  };
  let control: NodeControl | null = null;
  let draining: Promise<void> | null = null;
  const tails = new Map<number, () => void>();
  /** The last allotment message applied: reports say so, so the primary knows which allowances have landed. */
  let allotmentsApplied = 0;
  let hostmeta: HostmetaChannelClient | null = null;

  const drain = (deadline: number): Promise<void> => {
    draining ??= (async () => {
      for (const stop of tails.values()) stop();
      tails.clear();
      if (node === null) process.exit(0);
      node.telemetry.emit('workerDraining', { worker: workerId });
      const complete = await node.stop(deadline);
      const metrics = await node.telemetry.registry.getMetricsAsJSON();
      await new Promise<void>((resolve) => { if (process.send?.({ sluice: 'final', metrics }, () => resolve()) !== true) resolve(); });
      await exit(complete ? 0 : 1);
    })();
    return draining;
  };

  const start = async (message: Extract<ToWorker, { sluice: 'start' }>): Promise<void> => {
    logger = createNodeLogger(message.config.log);
    // Answers to metadata calls come back on the channel (the primary runs the service when the client has no url).
    // send() answers false also when its backlog is long; the message is queued all the same, so only a closed channel fails a call.
    hostmeta = new HostmetaChannelClient((call) => {
      if (!process.connected) return false;
      send(call);
      return true;
    }, message.config.hostmeta.client.headersTimeoutMs);
    node = new SluiceNode(message.config, logger.child({ worker: workerId }), { workerId, sharedLimits: true, primaryHostmeta: hostmeta });
    control = makeControl(node);
    reportLimitUse(node, () => allotmentsApplied);
    try {
      await node.start();
    } catch (err) {
      node.telemetry.emit('startFailed', { error: (err as Error).message, worker: workerId });
      send({ sluice: 'failed', error: (err as Error).message });
      await exit(1);
    }
    send({ sluice: 'ready', addresses: node.addresses() });
    // The primary sums every process's memory for the governors (see core/memory.ts).
    setInterval(() => send({ sluice: 'memory', rssBytes: process.memoryUsage.rss() }), MEMORY_REPORT_MS).unref();
  };

  const call = async (message: Extract<ToWorker, { sluice: 'call' }>): Promise<void> => {
    try {
      if (control === null) throw new Error('worker not started');
      let value: unknown;
      if (message.method === 'tail') {
        const [filter, subscription] = message.args as [Parameters<NodeControl['tail']>[0], number];
        tails.get(subscription)?.();
        const forwarder = new TailForwarder(subscription, sendTracked);
        const stop = await control.tail(filter, forwarder);
        tails.set(subscription, () => {
          forwarder.stop();
          stop();
        });
      } else if (message.method === 'untail') {
        const [subscription] = message.args as [number];
        tails.get(subscription)?.();
        tails.delete(subscription);
      } else {
        const method = (control as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>)[message.method];
        if (typeof method !== 'function') throw new Error(`no control method ${message.method}`);
        value = await method.apply(control, message.args);
      }
      send({ sluice: 'result', id: message.id, value });
    } catch (err) {
      send({ sluice: 'error', id: message.id, message: (err as Error).message });
    }
  };

  process.on('message', (message: unknown) => {
    if (!isSluiceMessage(message)) return;
    const m = message as ToWorker;
    if (m.sluice === 'allot') {
      node?.setLimitAllotments(m.allotments);
      allotmentsApplied = m.seq;
    }
    else if (m.sluice === 'start') void start(m);
    else if (m.sluice === 'drain') void drain(m.deadline);
    else if (m.sluice === 'call') void call(m);
    else if (m.sluice === 'memory') node?.pipeline.memory.setOtherProcesses(m.othersBytes);
    else if (m.sluice === 'hostmetaReply') hostmeta?.settle(m);
  });
  send({ sluice: 'hello' });
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => { void drain(Date.now() + (node?.config.shutdownTimeoutMs ?? 0)); });
}

/**
 * Report the node's use of its part of the tenant limits to the primary: at
 * once (so it is given a part), every REPORT_INTERVAL_MS, and soon after a
 * tenant starts to want more than it holds.
 */
function reportLimitUse(node: SluiceNode, applied: () => number): void {
  let last = performance.now();
  let urgent: NodeJS.Timeout | null = null;
  /** The last report had a tenant short of tokens: the primary knows, no need to hurry the next. */
  let knownShort = false;
  const report = (): void => {
    const now = performance.now();
    const used = node.limitUse(Math.max(0.001, (now - last) / 1000));
    last = now;
    knownShort = Object.values(used).some((u) => u.starved || u.connectionsRefused);
    if (Object.keys(used).length > 0) send({ sluice: 'use', report: used, applied: applied() });
  };
  report();
  setInterval(report, REPORT_INTERVAL_MS).unref();
  node.onLimitStarved(() => {
    if (urgent !== null || knownShort) return;
    urgent = setTimeout(() => {
      urgent = null;
      report();
    }, Math.max(0, URGENT_REPORT_MS - (performance.now() - last)));
    urgent.unref();
  });
}
