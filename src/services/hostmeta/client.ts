/**
 * The collector's HTTP client for the host metadata service: a keep-alive
 * undici pool with connect, headers and body timeouts.
 *
 * Every response must name its own request: the `x-hostmeta-tenant` and
 * `x-hostmeta-key` headers are compared with the request's tenant and key
 * before anything else is read (a batch's answer names no key in a header:
 * each host it lists must be the one asked at its place), and a response that
 * does not match is discarded and counted — never taken for the answer (the
 * seed's httpc handed a PUT's 204 to a GET). Results carry the tenant and key
 * the response named.
 *
 * Only GET and the get-or-create batch are retried (with backoff): repeating
 * them changes nothing; a write that timed out may have been applied, so
 * repeating it is the caller's decision.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Counter } from 'prom-client';
import { Pool, type Dispatcher } from 'undici';
import { backoffDelay } from '../../core/backoff.js';
import type { Telemetry } from '../../telemetry/telemetry.js';
import type { HostmetaClientConfig } from './config.js';
import { isHostKey, isTenantId, KEY_HEADER, TENANT_HEADER } from './keys.js';
import type { HostMetadata, HostMetadataPatch } from './schema.js';
import type { BatchAnswer, BatchItem } from './store.js';

export type HostmetaMethod = 'GET' | 'PUT' | 'PATCH' | 'DELETE' | 'POST';

/** How one HTTP exchange ended (the `outcome` label of the requests counter). */
export type RequestOutcome =
  | 'ok' | 'not_found' | 'exists' | 'denied' | 'rejected' | 'server_error'
  | 'timeout' | 'network_error' | 'mismatch' | 'invalid_body';

export { HostmetaRequestError, type HostmetaFailure, type HostLookup, type HostWrite, type HostCreate, type HostDelete } from './request-error.js';
import { HostmetaRequestError, type HostLookup, type HostWrite, type HostCreate, type HostDelete } from './request-error.js';

interface Answer { status: number; tenant: string; key: string; body: unknown }

/** A 200's body that is not what was asked: not the shape the route answers (`invalid_body`), or a host other than one asked (its key). */
type BodyProblem = 'invalid_body' | { otherKey: string } | null;

const documentProblem = (body: unknown): BodyProblem =>
  (typeof body === 'object' && body !== null && !Array.isArray(body) ? null : 'invalid_body');

/**
 * A batch's answer lists hosts, each with its key, a document (or null) and
 * `created`; they must be exactly the hosts asked, in order — an answer
 * listing others (or more, or fewer) is another request's.
 */
function batchProblem(items: readonly BatchItem[]): (body: unknown) => BodyProblem {
  return (body) => {
    const hosts = (body as { hosts?: unknown } | null)?.hosts;
    if (!Array.isArray(hosts)) return 'invalid_body';
    for (const host of hosts as (Partial<BatchAnswer> | null)[]) {
      if (typeof host !== 'object' || host === null || typeof host.key !== 'string' || typeof host.created !== 'boolean') return 'invalid_body';
      if (host.metadata !== null && documentProblem(host.metadata) !== null) return 'invalid_body';
    }
    const answered = hosts as BatchAnswer[];
    const other = answered.find((host, i) => host.key !== items[i]?.key);
    if (other !== undefined) return { otherKey: other.key };
    return answered.length === items.length ? null : { otherKey: `${answered.length} hosts for ${items.length}` };
  };
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
const CLOSED_CODES = new Set(['UND_ERR_DESTROYED', 'UND_ERR_CLOSED']);

function outcomeOfStatus(status: number): RequestOutcome {
  if (status < 300) return 'ok';
  if (status === 404) return 'not_found';
  if (status === 412) return 'exists';
  if (status === 401 || status === 403) return 'denied';
  return status >= 500 ? 'server_error' : 'rejected';
}

export class HostmetaClient {
  private readonly pool: Pool;
  /**
   * The batches' own connections (lookupBatchesInFlight of them): a lookup
   * never queues behind writes — after a restart every known host's refresh
   * (PATCH) is sent at once, and records wait for lookups, not for refreshes.
   */
  private readonly batchPool: Pool;
  /** Path prefix of the service URL, when it sits behind a proxy under one. */
  private readonly basePath: string;
  private readonly outcomes = new Map<string, Counter.Internal>();
  /** Headers every request carries: the credential, when there is one. */
  private readonly credential: Record<string, string>;
  private readonly closeSignal = new AbortController();
  private closing: Promise<void> | null = null;
  /** Since when every exchange has failed (network error, timeout, 5xx), epoch ms; null while the service answers. */
  private failingSince: number | null = null;

  constructor(private readonly config: HostmetaClientConfig, private readonly telemetry: Telemetry) {
    const url = new URL(config.url);
    this.basePath = url.pathname.replace(/\/+$/, '');
    this.credential = config.token === null ? {} : { authorization: `Bearer ${config.token}` };
    const options: Pool.Options = {
      // One request per connection at a time: a response can only answer the one request outstanding on its connection.
      pipelining: 1,
      keepAliveTimeout: config.keepAliveTimeoutMs,
      keepAliveMaxTimeout: config.keepAliveTimeoutMs,
      connect: { timeout: config.connectTimeoutMs },
      headersTimeout: config.headersTimeoutMs,
      bodyTimeout: config.bodyTimeoutMs,
      maxResponseSize: config.maxResponseBytes,
    };
    this.pool = new Pool(url.origin, { ...options, connections: config.connections });
    this.batchPool = new Pool(url.origin, { ...options, connections: config.lookupBatchesInFlight });
  }

  /** The document, or null when the service has none (404). Retried on network errors, timeouts and 5xx. */
  get(tenant: string, key: string): Promise<HostLookup> {
    return this.retrying(async () => {
      const answer = await this.exchange('GET', tenant, key, null);
      if (answer.status === 200) return { tenant: answer.tenant, key: answer.key, metadata: answer.body as HostMetadata };
      if (answer.status === 404) return { tenant: answer.tenant, key: answer.key, metadata: null };
      throw this.unexpected('GET', answer.status);
    });
  }

  /**
   * Get-or-create many hosts of one tenant in one request (`POST
   * /host_metadata/:tenant`): each host's document, created from its `create`
   * when it has none; answers in the order of `items`. Retried as a GET is.
   */
  getOrCreateMany(tenant: string, items: readonly BatchItem[]): Promise<BatchAnswer[]> {
    const invalid = items.find((item) => !isHostKey(item.key));
    if (invalid !== undefined) {
      return Promise.reject(new HostmetaRequestError('invalid_id', `not a valid host key: ${JSON.stringify(invalid.key)}`));
    }
    return this.retrying(async () => {
      const answer = await this.exchange('POST', tenant, null, { hosts: items }, {}, batchProblem(items));
      if (answer.status !== 200) throw this.unexpected('POST', answer.status);
      return (answer.body as { hosts: BatchAnswer[] }).hosts;
    });
  }

  /** `attempt`, again after network errors, timeouts and 5xx (getRetries times, with backoff): for requests that change nothing when repeated. */
  private async retrying<T>(attempt: () => Promise<T>): Promise<T> {
    for (let tries = 0; ; tries++) {
      try {
        return await attempt();
      } catch (err) {
        if (!(err instanceof HostmetaRequestError && err.transient) || tries >= this.config.getRetries) throw err;
      }
      try {
        await sleep(backoffDelay(tries, this.config.retryBackoff), undefined, { signal: this.closeSignal.signal });
      } catch {
        throw new HostmetaRequestError('closed', 'host metadata client closed');
      }
    }
  }

  /** Create or replace the whole document. */
  async put(tenant: string, key: string, metadata: HostMetadata): Promise<HostWrite> {
    const answer = await this.exchange('PUT', tenant, key, metadata);
    if (answer.status !== 204) throw this.unexpected('PUT', answer.status);
    return { tenant: answer.tenant, key: answer.key };
  }

  /** Create the document only when there is none (`If-None-Match: *`); `created` is false when one exists. */
  async create(tenant: string, key: string, metadata: HostMetadata): Promise<HostCreate> {
    const answer = await this.exchange('PUT', tenant, key, metadata, { 'if-none-match': '*' });
    if (answer.status !== 204 && answer.status !== 412) throw this.unexpected('PUT', answer.status);
    return { tenant: answer.tenant, key: answer.key, created: answer.status === 204 };
  }

  /** Replace the named top-level fields (null removes one), creating the document when missing. */
  async patch(tenant: string, key: string, fields: HostMetadataPatch): Promise<HostWrite> {
    const answer = await this.exchange('PATCH', tenant, key, fields);
    if (answer.status !== 204) throw this.unexpected('PATCH', answer.status);
    return { tenant: answer.tenant, key: answer.key };
  }

  async delete(tenant: string, key: string): Promise<HostDelete> {
    const answer = await this.exchange('DELETE', tenant, key, null);
    if (answer.status !== 204 && answer.status !== 404) throw this.unexpected('DELETE', answer.status);
    return { tenant: answer.tenant, key: answer.key, deleted: answer.status === 204 };
  }

  /** Let requests in flight finish, then release the connections. Safe to call twice. */
  close(): Promise<void> {
    this.closeSignal.abort();
    this.closing ??= Promise.all([this.pool.close(), this.batchPool.close()]).then(() => undefined);
    return this.closing;
  }

  /** Drop requests in flight and the connections now. */
  async destroy(): Promise<void> {
    this.closeSignal.abort();
    await Promise.all([this.pool.destroy(), this.batchPool.destroy()]);
  }

  /**
   * One request about `key` of `tenant` (null: the tenant's route, a batch, sent on the batches' own connections),
   * its answer checked against the request: the echo headers, then a 200's
   * body by `problem`.
   */
  private async exchange(method: HostmetaMethod, tenant: string, key: string | null, body: object | null,
    extraHeaders: Record<string, string> = {}, problem: (body: unknown) => BodyProblem = documentProblem): Promise<Answer> {
    if (this.closeSignal.signal.aborted) throw new HostmetaRequestError('closed', 'host metadata client closed');
    if (!isTenantId(tenant) || (key !== null && !isHostKey(key))) {
      throw new HostmetaRequestError('invalid_id', `not a valid tenant and host key: ${JSON.stringify(tenant)}, ${JSON.stringify(key)}`);
    }
    const headers = body === null ? { ...this.credential, ...extraHeaders } : { 'content-type': 'application/json', ...this.credential, ...extraHeaders };
    let response;
    try {
      response = await (key === null ? this.batchPool : this.pool).request({
        method,
        path: key === null ? `${this.basePath}/host_metadata/${tenant}` : `${this.basePath}/host_metadata/${tenant}/${key}`,
        headers,
        body: body === null ? null : JSON.stringify(body),
      });
    } catch (err) {
      throw this.failed(method, err);
    }
    const { statusCode } = response;
    const echoedTenant = response.headers[TENANT_HEADER];
    const echoedKey = response.headers[KEY_HEADER];
    if (echoedTenant !== tenant || echoedKey !== (key ?? undefined)) {
      await response.body.dump().catch(() => undefined);
      // A proxy's or a closing server's 5xx names no request at all: an ordinary server error, not someone else's answer.
      if (statusCode >= 500 && echoedTenant === undefined && echoedKey === undefined) {
        this.count(method, 'server_error');
        throw this.unexpected(method, statusCode);
      }
      throw this.mismatched(method, tenant, key, statusCode, String(echoedTenant), String(echoedKey));
    }
    return this.answerOf(method, tenant, key, response, problem);
  }

  private async answerOf(method: HostmetaMethod, tenant: string, key: string | null, response: Dispatcher.ResponseData,
    problem: (body: unknown) => BodyProblem): Promise<Answer> {
    const { statusCode } = response;
    let parsed: unknown = null;
    try {
      if (statusCode === 200) parsed = JSON.parse(await response.body.text());
      else await response.body.dump();
    } catch (err) {
      throw this.failed(method, err);
    }
    const wrong = statusCode === 200 ? problem(parsed) : null;
    if (wrong === 'invalid_body') {
      this.count(method, 'invalid_body');
      throw new HostmetaRequestError('invalid_body', `${method} ${tenant}/${key ?? ''}: the answer is not the JSON object asked for`, statusCode);
    }
    if (wrong !== null) throw this.mismatched(method, tenant, key, statusCode, tenant, wrong.otherKey);
    this.count(method, outcomeOfStatus(statusCode));
    return { status: statusCode, tenant, key: key ?? '', body: parsed };
  }

  /** A response that names another request than its own: counted, logged, and the call's failure. */
  private mismatched(method: HostmetaMethod, tenant: string, key: string | null, status: number, responseTenant: string,
    responseKey: string): HostmetaRequestError {
    this.count(method, 'mismatch');
    this.telemetry.hostmetaMismatches.labels(method).inc();
    this.telemetry.emit('hostmetaResponseMismatch', {
      reason: 'mismatch', method, tenant, key, status, response_tenant: responseTenant, response_key: responseKey,
    });
    return new HostmetaRequestError('mismatch', `${method} ${tenant}/${key ?? ''}: the response names ${responseTenant}/${responseKey}; discarded`, status);
  }

  private failed(method: HostmetaMethod, err: unknown): HostmetaRequestError {
    const error = err as Error & { code?: string };
    if (error instanceof SyntaxError || error.code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') {
      this.count(method, 'invalid_body');
      return new HostmetaRequestError('invalid_body', `${method}: ${error.message}`);
    }
    if (error.code !== undefined && TIMEOUT_CODES.has(error.code)) {
      this.count(method, 'timeout');
      return new HostmetaRequestError('timeout', `${method}: ${error.message}`);
    }
    if (error.code !== undefined && CLOSED_CODES.has(error.code)) {
      return new HostmetaRequestError('closed', `${method}: ${error.message}`);
    }
    this.count(method, 'network_error');
    return new HostmetaRequestError('network', `${method}: ${error.message}`);
  }

  private unexpected(method: HostmetaMethod, status: number): HostmetaRequestError {
    return new HostmetaRequestError('status', `${method}: unexpected status ${status}`, status);
  }

  /** How long every exchange has failed (0: the last one got an answer). */
  failingForMs(now = Date.now()): number {
    return this.failingSince === null ? 0 : now - this.failingSince;
  }

  private count(method: HostmetaMethod, outcome: RequestOutcome): void {
    if (outcome === 'network_error' || outcome === 'timeout' || outcome === 'server_error') this.failingSince ??= Date.now();
    else this.failingSince = null;
    const id = `${method} ${outcome}`;
    let counter = this.outcomes.get(id);
    if (!counter) {
      counter = this.telemetry.hostmetaRequests.labels(method, outcome);
      this.outcomes.set(id, counter);
    }
    counter.inc();
  }
}
