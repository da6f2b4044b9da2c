/**
 * Syslog over UDP (RFC 5426): one message per datagram. There is no
 * connection to resolve a tenant on, so peers are looked up in a bounded
 * cache. Datagrams that arrive in one event-loop turn are batched per tenant
 * and submitted together. UDP cannot be slowed down: while the sinks ask a
 * tenant to slow down, that tenant's datagrams are dropped and counted; other
 * tenants' go on.
 */
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Counter } from 'prom-client';
import type { Source, ComponentHealth } from '../../core/component.js';
import type { Lane, Pipeline } from '../../core/pipeline.js';
import { MemoryState, type MemoryGovernor } from '../../core/memory.js';
import { normalizeAddress, SessionIdentity, type Tenant } from '../../core/identity.js';
import { SourceInfo, type LogRecord } from '../../core/record.js';
import { isoTime } from '../../core/clock.js';
import type { SyslogUdpSourceConfig } from './config.js';
import type { Telemetry } from '../../telemetry/telemetry.js';
import { decodeSyslogFrame } from './decode.js';

const SOURCE = 'syslog_udp';
const PEER_CACHE_LIMIT = 65_536;

interface Peer {
  identity: SessionIdentity;
  source: SourceInfo;
}

export class SyslogUdpSource implements Source {
  readonly name = SOURCE;
  private socket: dgram.Socket | null = null;
  private readonly peers = new Map<string, Peer>();
  private pendingTenant: Tenant | null = null;
  private pending: LogRecord[] = [];
  private flushScheduled = false;
  /** Tenants the sinks asked to slow down: their datagrams are dropped until the sinks drain. */
  private readonly congested = new Set<Tenant>();
  /** The lane holds as much as it may (behind a host lookup): everything is dropped until it empties. */
  private laneFull = false;
  private readonly lane: Lane;
  private readonly records: Counter.Internal;
  private readonly bytes: Counter.Internal;
  private readonly parseErrors: Counter.Internal;
  private readonly invalidUtf8: Counter.Internal;
  private parseErrorCount = 0;
  private unflushedBytes = 0;
  private droppedBackpressure = 0;
  private droppedRateLimited = 0;
  private droppedMemory = 0;
  private readonly memory: MemoryGovernor;
  private invalidUtf8Count = 0;

  constructor(
    private readonly config: SyslogUdpSourceConfig,
    private readonly pipeline: Pipeline,
    private readonly telemetry: Telemetry,
  ) {
    this.lane = pipeline.openLane(SOURCE, false);
    this.memory = pipeline.memory;
    this.records = telemetry.recordsReceived.labels({ source: SOURCE });
    this.bytes = telemetry.bytesReceived.labels({ source: SOURCE });
    this.parseErrors = telemetry.parseErrors.labels({ source: SOURCE });
    this.invalidUtf8 = telemetry.invalidUtf8.labels({ source: SOURCE });
  }

  address(): { address: string; port: number } | null {
    return this.socket ? this.socket.address() : null;
  }

  async start(): Promise<void> {
    if (this.socket) return;
    const socket = dgram.createSocket({ type: isIPv6(this.config.address) ? 'udp6' : 'udp4' });
    this.socket = socket;
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ address: this.config.address, port: this.config.port }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    if (this.config.receiveBufferBytes > 0) socket.setRecvBufferSize(this.config.receiveBufferBytes);
    socket.on('message', this.onMessage);
    socket.on('error', (err) => this.telemetry.emit('sourceError', { source: SOURCE, error: err.message }));
    const bound = socket.address();
    this.telemetry.emit('listening', {
      source: SOURCE, address: bound.address, port: bound.port, receive_buffer: socket.getRecvBufferSize(),
    });
  }

  async stop(_deadline: number): Promise<void> {
    const socket = this.socket;
    if (!socket) return;
    this.socket = null;
    await new Promise<void>((resolve) => socket.close(() => resolve()));
    this.flush();
  }

  destroy(): void {
    this.socket?.close();
    this.socket = null;
  }

  health(): ComponentHealth {
    return this.socket ? { healthy: true } : { healthy: false, detail: 'not bound' };
  }

  private peer(address: string, port: number): Peer {
    const key = `${address}|${port}`;
    let peer = this.peers.get(key);
    if (peer === undefined) {
      if (this.peers.size >= PEER_CACHE_LIMIT) this.peers.clear();
      const normalized = normalizeAddress(address);
      const directory = this.pipeline.directory;
      peer = { identity: new SessionIdentity(directory, directory.byAddress(normalized), null), source: new SourceInfo('udp', normalized, port) };
      this.peers.set(key, peer);
    }
    return peer;
  }

  private readonly onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    // Counted per event-loop turn in flush(), not per datagram.
    this.unflushedBytes += msg.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
    const peer = this.peer(rinfo.address, rinfo.port);
    const identity = peer.identity;
    if (!identity.canAuthenticate) {
      // Not worth parsing: nothing in it could name a tenant.
      this.telemetry.emit('connectionRefused', { source: SOURCE, reason: 'no_tenant', peer: peer.source.address });
      return;
    }
    if (this.laneFull) {
      this.droppedBackpressure++;
      return;
    }
    // Dropped before decoding when the peer's tenant is known to be held back.
    if (this.congested.size > 0 && identity.tenant !== null && this.congested.has(identity.tenant)) {
      this.droppedBackpressure++;
      return;
    }
    if (this.memory.state === MemoryState.Hard) {
      this.droppedMemory++;
      return;
    }
    const nowMs = Date.now();
    const rec = decodeSyslogFrame(msg, 0, msg.length, peer.source, isoTime(nowMs), nowMs);
    if (rec.parseError) this.parseErrorCount++;
    if (rec.invalidUtf8) this.invalidUtf8Count++;
    const tenant = identity.attribute(rec, peer.source.address);
    if (tenant === null) {
      this.telemetry.emit('recordRefused', { source: SOURCE, reason: identity.refusal, peer: peer.source.address });
      return;
    }
    if (this.congested.size > 0 && this.congested.has(tenant)) {
      this.droppedBackpressure++;
      return;
    }
    if (!tenant.limiter.unlimited && !tenant.limiter.admit(rec.size, nowMs)) {
      this.droppedRateLimited++;
      return;
    }
    if (this.pendingTenant !== tenant) {
      this.flush();
      this.pendingTenant = tenant;
    }
    this.pending.push(rec);
  };

  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.unflushedBytes > 0) this.bytes.inc(this.unflushedBytes);
    this.unflushedBytes = 0;
    if (this.droppedBackpressure > 0) this.telemetry.emit('recordsDropped', { source: SOURCE, reason: 'backpressure' }, this.droppedBackpressure);
    if (this.droppedRateLimited > 0) this.telemetry.emit('recordsDropped', { source: SOURCE, reason: 'rate_limited' }, this.droppedRateLimited);
    if (this.droppedMemory > 0) this.telemetry.emit('recordsDropped', { source: SOURCE, reason: 'memory' }, this.droppedMemory);
    this.droppedBackpressure = 0;
    this.droppedRateLimited = 0;
    this.droppedMemory = 0;
    if (this.parseErrorCount > 0) this.parseErrors.inc(this.parseErrorCount);
    if (this.invalidUtf8Count > 0) this.invalidUtf8.inc(this.invalidUtf8Count);
    this.parseErrorCount = 0;
    this.invalidUtf8Count = 0;
    const tenant = this.pendingTenant;
    const batch = this.pending;
    if (tenant === null || batch.length === 0) return;
    this.pending = [];
    this.records.inc(batch.length);
    if (this.lane.submit(tenant, batch, null)) return;
    if (this.pipeline.congested(tenant)) {
      if (!this.congested.has(tenant)) {
        this.congested.add(tenant);
        this.pipeline.whenDrained(() => this.congested.delete(tenant), tenant);
      }
    } else if (!this.laneFull) {
      this.laneFull = true;
      this.lane.whenReady(this.clearLaneFull);
    }
  };

  private readonly clearLaneFull = (): void => {
    this.laneFull = false;
  };
}
