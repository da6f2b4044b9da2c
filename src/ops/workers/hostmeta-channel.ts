/**
 * A worker's calls to the metadata service its primary runs, over the
 * node:cluster IPC channel rather than loopback HTTP: the worker loads no HTTP
 * client (undici held ~5 MiB of heap and ~19 MiB of resident memory in each
 * worker at rest), and a batch costs one JSON message each way instead of an
 * HTTP exchange parsed, routed and authenticated at both ends — which is what
 * 10,000 hosts appearing at once are paid in. The channel is private to the
 * node's own processes, so no credential is shown; a remote service is still
 * reached over HTTP (services/hostmeta/client.ts).
 */
import type { HostmetaCalls } from '../../services/hostmeta/local-client.js';
import { HostmetaRequestError, type HostWrite } from '../../services/hostmeta/request-error.js';
import type { HostMetadataPatch } from '../../services/hostmeta/schema.js';
import type { BatchAnswer, BatchItem } from '../../services/hostmeta/store.js';

/** Worker → primary: one call. */
export type HostmetaCall =
  | { sluice: 'hostmetaBatch'; id: number; tenant: string; items: readonly BatchItem[] }
  | { sluice: 'hostmetaPatch'; id: number; tenant: string; key: string; fields: HostMetadataPatch };

/** Primary → worker: the call's answer (a batch's hosts; none for a patch) or how it failed. */
export type HostmetaReply =
  | { sluice: 'hostmetaReply'; id: number; hosts: BatchAnswer[] | null }
  | { sluice: 'hostmetaReply'; id: number; failure: { reason: HostmetaRequestError['reason']; message: string; status: number | null } };

interface Waiting {
  resolve: (hosts: BatchAnswer[] | null) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** The worker's end: the calls the metadata cache makes, sent to the primary. */
export class HostmetaChannelClient implements HostmetaCalls {
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 1;
  private closed = false;

  /**
   * `send` puts a message on the channel (false: the channel is closed). An answer
   * not back within `timeoutMs` fails the call as an HTTP client's would (a
   * store that hangs must not hold the cache's batches in flight for ever).
   */
  constructor(private readonly send: (call: HostmetaCall) => boolean, private readonly timeoutMs: number) {}

  async getOrCreateMany(tenant: string, items: readonly BatchItem[]): Promise<BatchAnswer[]> {
    const hosts = await this.call({ sluice: 'hostmetaBatch', id: this.nextId++, tenant, items });
    if (hosts === null) throw new HostmetaRequestError('invalid_body', 'the primary answered a batch without its hosts');
    return hosts;
  }

  async patch(tenant: string, key: string, fields: HostMetadataPatch): Promise<HostWrite> {
    await this.call({ sluice: 'hostmetaPatch', id: this.nextId++, tenant, key, fields });
    return { tenant, key };
  }

  /** A reply from the primary (ones for calls given up on are dropped). */
  settle(reply: HostmetaReply): void {
    const call = this.waiting.get(reply.id);
    if (call === undefined) return;
    this.waiting.delete(reply.id);
    clearTimeout(call.timer);
    if ('failure' in reply) call.reject(new HostmetaRequestError(reply.failure.reason, reply.failure.message, reply.failure.status));
    else call.resolve(reply.hosts);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const [id, call] of this.waiting) {
      clearTimeout(call.timer);
      call.reject(new HostmetaRequestError('closed', 'the metadata client was closed'));
      this.waiting.delete(id);
    }
  }

  private call(message: HostmetaCall): Promise<BatchAnswer[] | null> {
    const id = message.id;
    if (this.closed) return Promise.reject(new HostmetaRequestError('closed', 'the metadata client was closed'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new HostmetaRequestError('timeout', `the primary did not answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.waiting.set(id, { resolve, reject, timer });
      if (!this.send(message)) {
        clearTimeout(timer);
        this.waiting.delete(id);
        reject(new HostmetaRequestError('network', 'no channel to the primary'));
      }
    });
  }
}

/**
 * The primary's end: answer one call with `calls` (the service's store). A
 * store that fails (a database gone) answers as the HTTP service would, with
 * a 503: transient, the cache retries later.
 */
export async function answerHostmetaCall(calls: HostmetaCalls, call: HostmetaCall): Promise<HostmetaReply> {
  try {
    if (call.sluice === 'hostmetaBatch') return { sluice: 'hostmetaReply', id: call.id, hosts: await calls.getOrCreateMany(call.tenant, call.items) };
    await calls.patch(call.tenant, call.key, call.fields);
    return { sluice: 'hostmetaReply', id: call.id, hosts: null };
  } catch (err) {
    const failure = err instanceof HostmetaRequestError
      ? { reason: err.reason, message: err.message, status: err.status }
      : { reason: 'status' as const, message: (err as Error).message, status: 503 };
    return { sluice: 'hostmetaReply', id: call.id, failure };
  }
}
