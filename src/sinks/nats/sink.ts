/**
 * The NATS JetStream sink: each record is published to
 * `<prefix>.<tenant>.<host key>` as its NDJSON line (the file sink's
 * encoding), with a `Nats-Msg-Id` header, on the sender chain's shared lane.
 *
 * A batch is committed once JetStream has acked every publish in it, i.e.
 * the stream has stored the record. Publishes are pipelined, at most
 * max_in_flight awaiting their ack. A publish that fails for a reason that
 * retrying cannot fix (a record over the stream's or server's size limit, a
 * 400 from the stream) is dropped and counted; its batch's acks fail. Any
 * other failure (timeout, lost connection, no stream yet) has the whole batch
 * published again after a backoff: the records that had been stored are
 * then recognised by their message id and not stored twice.
 *
 * Message ids are `<sink instance id>-<sequence>`: 96 random bits drawn when
 * the sink is built, then a counter. The id is encoded into the queued frame
 * once, so every re-publish of a record carries the same id. Ids from record
 * fields (a hash of tenant, host, time and text) would collapse distinct
 * records that happen to be equal (a host repeating a line within one
 * millisecond) and would still not pair a record with the agent's re-send of
 * it after a crash (it is received again, at another time); a node-wide
 * sequence alone would collide after a restart within the window. The random
 * prefix needs no coordination between nodes or runs.
 */
import { randomBytes } from 'node:crypto';
import {
  connect, ErrorCode, Events, nanos, RetentionPolicy, StorageType,
  type JetStreamClient, type NatsConnection, type NatsError, type PubAck,
} from 'nats';
import type { Sink } from '../../core/component.js';
import type { LineAppender } from '../../core/ndjson.js';
import type { LogRecord } from '../../core/record.js';
import type { Telemetry } from '../../telemetry/telemetry.js';
import { encodeRecord } from '../../core/ndjson.js';
import { DeliverySink } from '../delivery/chain.js';
import { SinkStats } from '../delivery/stats.js';
import type { DeliveryBatch, DeliveryEncoder, DeliveryTransport } from '../delivery/transport.js';
import { checkNatsSinkConfig, type NatsSinkConfig } from './config.js';

const SPACE = 0x20;
const LF = 0x0a;
/** JetStream API error codes (nats-server's errors.json). */
const JS_MESSAGE_TOO_LARGE = 10054;
const JS_STREAM_NAME_IN_USE = 10058;

/**
 * A record as `SUBJECT SP MSG-ID LF NDJSON-LINE`. Neither the subject nor
 * the id holds a space or LF, and a JSON line holds no raw LF, so the
 * transport finds each part with two indexOf calls.
 */
export class NatsEncoder implements DeliveryEncoder<LogRecord> {
  private readonly idPrefix = randomBytes(12).toString('base64url') + '-';
  private sequence = 0;
  private lastTenant = '';
  private tenantSubject = '';

  constructor(private readonly subjectPrefix: string) {}

  encode(tenant: string, records: readonly LogRecord[], queue: LineAppender): void {
    if (tenant !== this.lastTenant) {
      this.lastTenant = tenant;
      this.tenantSubject = this.subjectPrefix + '.' + tenant + '.';
    }
    for (let i = 0; i < records.length; i++) {
      const rec = records[i]!;
      // An empty token is not a valid subject; a record without a host key still needs a subject.
      const host = rec.host === '' ? '_' : rec.host;
      queue.append(this.tenantSubject + host + ' ' + this.idPrefix + (this.sequence++).toString(36) + '\n' + encodeRecord(rec), false);
    }
  }
}

export class JetStreamTransport implements DeliveryTransport {
  private nc: NatsConnection | null = null;
  private js: JetStreamClient | null = null;
  private streamReady = false;
  /** The stream's max_msg_size (headers included), read when the stream is checked. */
  private streamMaxMessage = Infinity;
  private closing = false;
  private readonly peer: string;
  // The send in progress.
  private batch: DeliveryBatch | null = null;
  private inFlight = 0;
  private wakeAt = 0;
  private wake: (() => void) | null = null;
  private failure: Error | null = null;
  private tooLarge = 0;
  private rejected = 0;
  private duplicates = 0;
  private lastRejection = '';

  constructor(private readonly config: NatsSinkConfig, private readonly stats: SinkStats) {
    this.peer = config.servers.join(',');
  }

  async open(): Promise<void> {}

  async send(batch: DeliveryBatch): Promise<void> {
    const js = await this.ready();
    this.batch = batch;
    this.failure = null;
    this.tooLarge = this.rejected = this.duplicates = 0;
    const maxInFlight = this.config.maxInFlight;
    const timeout = this.config.publishTimeoutMs;
    const maxMessage = Math.min(this.nc?.info?.max_payload ?? Infinity, this.streamMaxMessage);
    const chunks = batch.chunks;
    for (let c = 0; c < chunks.length && this.failure === null; c++) {
      const chunk = chunks[c]!;
      let p = 0;
      while (p < chunk.length && this.failure === null) {
        const space = chunk.indexOf(SPACE, p);
        const idEnd = chunk.indexOf(LF, space);
        const end = chunk.indexOf(LF, idEnd + 1) + 1;
        // Sure to be refused (the header only adds to it): dropped here, where its
        // position is known, so only this record's write() fails its ack.
        const payloadBytes = end - idEnd - 1;
        if (payloadBytes > maxMessage) {
          this.tooLarge++;
          this.lastRejection = `${payloadBytes} bytes: over the ${maxMessage} bytes the server or stream takes`;
          batch.drop(c, p);
          p = end;
          continue;
        }
        // Refill in halves: one wait per maxInFlight/2 acks, not one per ack.
        if (this.inFlight >= maxInFlight) await this.inFlightAtMost(maxInFlight >> 1);
        if (this.failure !== null) break;
        this.inFlight++;
        js.publish(chunk.toString('latin1', p, space), chunk.subarray(idEnd + 1, end),
          { msgID: chunk.toString('latin1', space + 1, idEnd), timeout }).then(this.acked, this.publishFailed);
        p = end;
      }
    }
    await this.inFlightAtMost(0);
    this.batch = null;
    if (this.failure !== null) throw this.failure;
    // Counted only once the batch is through: a retried batch would count its refusals again.
    if (this.duplicates > 0) this.stats.duplicates.inc(this.duplicates);
    this.stats.drop('too_large', this.tooLarge, this.lastRejection);
    this.stats.drop('rejected', this.rejected, this.lastRejection);
  }

  async close(_deadline: number): Promise<void> {
    this.closing = true;
    const nc = this.nc;
    if (nc !== null && !nc.isClosed()) await nc.drain();
  }

  destroy(): void {
    this.closing = true;
    const nc = this.nc;
    this.nc = null;
    if (nc !== null && !nc.isClosed()) void nc.close();
  }

  describe(): string | null {
    if (this.nc === null) return `not connected to ${this.peer}`;
    return this.nc.isClosed() ? `connection to ${this.peer} closed` : `connected to ${this.nc.getServer()}`;
  }

  private async ready(): Promise<JetStreamClient> {
    if (this.closing) throw new Error('sink destroyed');
    if (this.nc === null) await this.connect();
    if (!this.streamReady) await this.ensureStream();
    return this.js!;
  }

  private async connect(): Promise<void> {
    const c = this.config;
    const nc = await connect({
      servers: c.servers,
      name: `sluice ${this.stats.sink}`,
      timeout: c.connectTimeoutMs,
      // Once connected, the client reconnects on its own, forever; publishes meanwhile time out and are retried.
      maxReconnectAttempts: -1,
      reconnectTimeWait: c.reconnectWaitMs,
      reconnectJitter: Math.ceil(c.reconnectWaitMs / 2),
      // Otherwise the client captures a stack trace (an Error) per publish: most of its CPU cost here.
      noAsyncTraces: true,
      ...(c.user !== null ? { user: c.user, pass: c.password ?? '' } : {}),
      ...(c.token !== null ? { token: c.token } : {}),
    });
    if (this.closing) {
      await nc.close();
      throw new Error('sink destroyed');
    }
    this.nc = nc;
    this.js = nc.jetstream({ timeout: c.publishTimeoutMs });
    this.stats.connected(nc.getServer());
    this.watch(nc).catch((err: Error) => this.stats.disconnected(this.peer, `status watch failed: ${err.message}`));
  }

  /** Connection events → log lines and the connected gauge; a closed connection is replaced on the next send. */
  private async watch(nc: NatsConnection): Promise<void> {
    void nc.closed().then((err) => {
      if (this.nc === nc) this.nc = null;
      this.stats.disconnected(this.peer, this.closing ? null : err?.message ?? 'connection closed');
    });
    for await (const status of nc.status()) {
      if (status.type === Events.Disconnect) this.stats.disconnected(String(status.data), 'disconnected; reconnecting');
      else if (status.type === Events.Reconnect) this.stats.connected(String(status.data));
    }
  }

  private async ensureStream(): Promise<void> {
    const c = this.config;
    const jsm = await this.nc!.jetstreamManager({ timeout: c.publishTimeoutMs });
    try {
      const info = await jsm.streams.info(c.stream);
      const max = info.config.max_msg_size;
      this.streamMaxMessage = max !== undefined && max > 0 ? max : Infinity;
    } catch (err) {
      if ((err as NatsError).code !== '404') throw err;
      if (!c.createStream) throw new Error(`stream ${c.stream} does not exist and create_stream is off`, { cause: err });
      try {
        await jsm.streams.add({
          name: c.stream,
          subjects: [`${c.subjectPrefix}.>`],
          storage: StorageType.File,
          retention: RetentionPolicy.Limits,
          duplicate_window: nanos(c.duplicateWindowMs),
          num_replicas: c.replicas,
        });
        this.stats.telemetry.emit('natsStreamCreated', { sink: this.stats.sink, stream: c.stream, subjects: `${c.subjectPrefix}.>` });
      } catch (addErr) {
        // Another node created it first: just as good.
        if ((addErr as NatsError).api_error?.err_code !== JS_STREAM_NAME_IN_USE) throw addErr;
      }
    }
    this.streamReady = true;
  }

  private readonly acked = (ack: PubAck): void => {
    if (ack.duplicate) this.duplicates++;
    this.settledOne();
  };

  private readonly publishFailed = (err: NatsError): void => {
    const api = err.api_error;
    // Refusals that retrying cannot change. Which record it was is not known here
    // (one shared handler, no closure per publish), so the whole batch's acks fail.
    if (err.code === ErrorCode.MaxPayloadExceeded || api?.err_code === JS_MESSAGE_TOO_LARGE) {
      this.tooLarge++;
      this.lastRejection = err.message;
      this.batch?.dropUnplaced(1);
    } else if (api?.code === 400) {
      this.rejected++;
      this.lastRejection = err.message;
      this.batch?.dropUnplaced(1);
    } else {
      // No responders: the stream is gone or JetStream is not up yet; check it again before the retry.
      if (err.code === ErrorCode.NoResponders) this.streamReady = false;
      this.failure ??= err;
    }
    this.settledOne();
  };

  private settledOne(): void {
    this.inFlight--;
    if (this.wake !== null && this.inFlight <= this.wakeAt) {
      const wake = this.wake;
      this.wake = null;
      wake();
    }
  }

  private inFlightAtMost(count: number): Promise<void> {
    if (this.inFlight <= count) return Promise.resolve();
    return new Promise((resolve) => {
      this.wakeAt = count;
      this.wake = resolve;
    });
  }
}

export class NatsSink extends DeliverySink<LogRecord> implements Sink {
  constructor(config: NatsSinkConfig, telemetry: Telemetry) {
    const problems = checkNatsSinkConfig(config);
    if (problems.length > 0) throw new Error(`nats sink ${config.name}: ${problems.join('; ')}`);
    const stats = new SinkStats(config.name, telemetry);
    super(config.name, config, new NatsEncoder(config.subjectPrefix), new JetStreamTransport(config, stats), stats, true);
  }
}
