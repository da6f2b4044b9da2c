/**
 * Syslog over UDP (RFC 5426): one message per datagram. A thread of its own
 * (udp-reader.ts) reads the socket into a bounded ring of shared memory
 * (udp-ring.ts); the event loop takes what the ring holds each turn, so a
 * GC, a batch written or a burst parsed does not leave the kernel's receive
 * buffer to fill and drop: what is lost is lost in the ring, counted
 * (`handoff_full`), and the kernel's own drops for the socket are exported
 * too (udp-kernel.ts). There is no connection to resolve a tenant on, so
 * peers are looked up in a bounded cache. Datagrams taken in one turn are
 * batched per tenant and submitted together. UDP cannot be slowed down:
 * while the sinks ask to slow down, datagrams wait in the ring until it is
 * half full; past that, the held-back tenant's datagrams are dropped and
 * counted, and other tenants' go on.
 *
 * Without SO_REUSEPORT (node:dgram has it from Node.js 22.12) only one
 * process can hold the port: in a node with several workers, the first to
 * bind reads; the others stand by and bind when it lets go (a rolling
 * restart, a worker that ended).
 */
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import { Worker } from 'node:worker_threads';
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
import { createRingMemory, ipv4Text, RingReader } from './udp-ring.js';
import type { ReaderCommand, ReaderMessage, ReaderSettings } from './udp-reader.js';
import { udpSocketCounters, udpReceiveErrors } from './udp-kernel.js';

const SOURCE = 'syslog_udp';
const PEER_CACHE_LIMIT = 65_536;
/** Datagrams taken from the ring before the event loop gets a turn for everything else (sink writes, other sockets). */
const DATAGRAMS_PER_TURN = 1024;
/**
 * While datagrams keep coming, the ring is looked at again after this long
 * rather than the reader thread waking the event loop: a wake-up
 * (Atomics.notify to a waitAsync) costs the reader about as much as copying
 * a few datagrams, and one per datagram or two is what an idle-fast event
 * loop would otherwise ask for. It bounds the latency it adds.
 */
const BUSY_POLL_MS = 1;
/** How often a standby worker tries to bind the port another worker holds. */
const STANDBY_RETRY_MS = 1000;
/**
 * While the sinks ask to slow down, datagrams wait in the ring rather than
 * being dropped, until it is this full: past it the held-back tenants'
 * datagrams are dropped (backpressure) so that other tenants' behind them go on.
 */
const HOLD_BACK_FILL = 0.5;
/** How often a held-back ring is looked at again. */
const HOLD_BACK_CHECK_MS = 2;
const READER_URL = new URL('./udp-reader.js', import.meta.url);

interface Peer {
  identity: SessionIdentity;
  source: SourceInfo;
}

export interface SyslogUdpOptions {
  /** The port may be held by another worker of this node: stand by instead of failing when it is (node:cluster workers). */
  standBy: boolean;
}

export class SyslogUdpSource implements Source {
  readonly name = SOURCE;
  private reader: Worker | null = null;
  private ring: RingReader | null = null;
  private bound: { address: string; port: number } | null = null;
  private listener = '';
  private standbyTimer: NodeJS.Timeout | null = null;
  /** Another worker holds the port; this one tries it again every STANDBY_RETRY_MS. */
  private standingBy = false;
  private stopping = false;
  private pumpScheduled = false;
  /** IPv4 senders by address × 65536 + port; IPv6 ones by `address|port`. */
  private readonly peers4 = new Map<number, Peer>();
  private readonly peers6 = new Map<string, Peer>();
  private pendingTenant: Tenant | null = null;
  private pending: LogRecord[] = [];
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
    private readonly options: SyslogUdpOptions = { standBy: false },
  ) {
    this.lane = pipeline.openLane(SOURCE, false);
    this.memory = pipeline.memory;
    this.records = telemetry.recordsReceived.labels({ source: SOURCE });
    this.bytes = telemetry.bytesReceived.labels({ source: SOURCE });
    this.parseErrors = telemetry.parseErrors.labels({ source: SOURCE });
    this.invalidUtf8 = telemetry.invalidUtf8.labels({ source: SOURCE });
  }

  address(): { address: string; port: number } | null {
    return this.bound;
  }

  async start(): Promise<void> {
    if (this.reader !== null || this.standingBy) return;
    this.stopping = false;
    const bound = await this.startReader();
    if (bound === 'in_use') this.standBy();
  }

  /** Start the reader thread; 'in_use' when another worker holds the port and this one may stand by. */
  private startReader(): Promise<'listening' | 'in_use'> {
    const memory = createRingMemory(this.config.handoffBufferBytes);
    const settings: ReaderSettings = {
      memory,
      type: isIPv6(this.config.address) ? 'udp6' : 'udp4',
      address: this.config.address,
      port: this.config.port,
      receiveBufferBytes: this.config.receiveBufferBytes,
    };
    const reader = new Worker(READER_URL, { workerData: settings, name: 'sluice udp reader' });
    const ring = new RingReader(memory);
    return new Promise((resolve, reject) => {
      const fail = (err: Error): void => {
        void reader.terminate();
        reject(err);
      };
      reader.once('error', fail);
      reader.on('message', (message: ReaderMessage) => {
        switch (message.event) {
          case 'listening':
            reader.off('error', fail);
            reader.on('error', (err) => this.telemetry.emit('sourceError', { source: SOURCE, error: err.message }));
            // A thread that ends on its own leaves the source unbound: the node's supervisor starts it again.
            reader.once('exit', () => {
              if (this.reader !== reader || this.stopping) return;
              while (this.pump() === DATAGRAMS_PER_TURN);
              this.closeReader();
            });
            this.reader = reader;
            this.ring = ring;
            this.bound = { address: message.address, port: message.port };
            this.listen(message);
            resolve('listening');
            return;
          case 'bindFailed':
            void reader.terminate();
            if (message.code === 'EADDRINUSE' && this.options.standBy) resolve('in_use');
            else reject(new Error(message.message));
            return;
          case 'error':
            this.telemetry.emit('sourceError', { source: SOURCE, error: message.message });
            return;
          case 'closed':
            return;
        }
      });
    });
  }

  private listen(message: Extract<ReaderMessage, { event: 'listening' }>): void {
    const { address, port } = message;
    this.listener = isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
    const ring = this.ring!;
    this.telemetry.watchUdpListener(this.listener, () => ({
      kernelDropped: udpSocketCounters(address, port)?.drops ?? null,
      handoffQueuedBytes: ring.queuedBytes,
    }));
    this.telemetry.udpHostErrors = udpReceiveErrors;
    this.telemetry.emit('listening', {
      source: SOURCE, address, port, receive_buffer: message.receiveBufferBytes, handoff_buffer: ring.capacityBytes,
    });
    this.awaitDatagrams();
  }

  private standBy(): void {
    this.standingBy = true;
    this.telemetry.emit('udpStandby', { source: SOURCE, address: this.config.address, port: this.config.port });
    const retry = async (): Promise<void> => {
      this.standbyTimer = null;
      if (this.stopping) return;
      try {
        // A thread is started only once the port looks free: a probe costs a bind, a thread some milliseconds of CPU.
        if (await this.portFree() && await this.startReader() === 'listening') {
          this.standingBy = false;
          if (this.stopping) this.closeReader();
          return;
        }
      } catch (err) {
        this.telemetry.emit('sourceError', { source: SOURCE, error: (err as Error).message });
      }
      if (!this.stopping) this.standbyTimer = setTimeout(() => void retry(), STANDBY_RETRY_MS).unref();
    };
    this.standbyTimer = setTimeout(() => void retry(), STANDBY_RETRY_MS).unref();
  }

  /** Whether this process could bind the port now (the probe socket is closed again at once). */
  private portFree(): Promise<boolean> {
    const probe = dgram.createSocket({ type: isIPv6(this.config.address) ? 'udp6' : 'udp4' });
    return new Promise((resolve) => {
      probe.once('error', () => {
        probe.close();
        resolve(false);
      });
      probe.bind({ address: this.config.address, port: this.config.port, exclusive: true }, () => probe.close(() => resolve(true)));
    });
  }

  async stop(_deadline: number): Promise<void> {
    this.stopping = true;
    this.standingBy = false;
    if (this.standbyTimer !== null) clearTimeout(this.standbyTimer);
    this.standbyTimer = null;
    const reader = this.reader;
    if (reader === null) return;
    // Close the socket, then take what the ring still holds.
    await new Promise<void>((resolve) => {
      reader.on('message', (message: ReaderMessage) => {
        if (message.event === 'closed') resolve();
      });
      reader.once('exit', () => resolve());
      reader.postMessage({ command: 'close' } satisfies ReaderCommand);
    });
    while (this.pump() === DATAGRAMS_PER_TURN);
    this.closeReader();
  }

  destroy(): void {
    this.stopping = true;
    this.standingBy = false;
    if (this.standbyTimer !== null) clearTimeout(this.standbyTimer);
    this.standbyTimer = null;
    this.closeReader();
  }

  private closeReader(): void {
    const reader = this.reader;
    if (reader === null) return;
    this.reader = null;
    this.bound = null;
    void reader.terminate();
    this.ring?.wake();
    this.ring = null;
    this.telemetry.unwatchUdpListener(this.listener);
  }

  health(): ComponentHealth {
    if (this.reader !== null) return { healthy: true };
    if (this.standingBy && !this.stopping) return { healthy: true, detail: 'standing by: another worker holds the port' };
    return { healthy: false, detail: 'not bound' };
  }

  /** Take what the ring holds when the reader thread adds something. */
  private awaitDatagrams(): void {
    const ring = this.ring;
    if (ring === null || this.pumpScheduled) return;
    this.pumpScheduled = true;
    void ring.whenWritten().then(this.pumpTurn);
  }

  private readonly pumpTurn = (): void => {
    this.pumpScheduled = false;
    const ring = this.ring;
    if (ring === null) return;
    if ((this.laneFull || this.congested.size > 0) && ring.queuedBytes < ring.capacityBytes * HOLD_BACK_FILL) {
      this.pumpScheduled = true;
      setTimeout(this.pumpTurn, HOLD_BACK_CHECK_MS);
      return;
    }
    const taken = this.pump();
    if (this.ring === null) return;
    if (taken === DATAGRAMS_PER_TURN) {
      this.pumpScheduled = true;
      setImmediate(this.pumpTurn);
    } else if (taken > 0) {
      this.pumpScheduled = true;
      setTimeout(this.pumpTurn, BUSY_POLL_MS);
    } else {
      this.awaitDatagrams();
    }
  };

  /** Take up to DATAGRAMS_PER_TURN datagrams from the ring into the pipeline; how many it took. */
  private pump(): number {
    const ring = this.ring;
    if (ring === null) return 0;
    let taken = 0;
    const nowMs = Date.now();
    const received = isoTime(nowMs);
    while (ring.next()) {
      this.accept(ring, nowMs, received);
      if (++taken === DATAGRAMS_PER_TURN) break;
    }
    ring.release();
    const dropped = ring.takeDropped();
    if (dropped > 0) this.telemetry.emit('recordsDropped', { source: SOURCE, reason: 'handoff_full', listener: this.listener }, dropped);
    this.flush();
    return taken;
  }

  /** The sender of the ring's current entry. */
  private peer(ring: RingReader): Peer {
    const port = ring.port;
    if (ring.ipv4 >= 0) {
      const key = ring.ipv4 * 65536 + port;
      let peer = this.peers4.get(key);
      if (peer === undefined) {
        if (this.peers4.size >= PEER_CACHE_LIMIT) this.peers4.clear();
        peer = this.newPeer(ipv4Text(ring.ipv4), port);
        this.peers4.set(key, peer);
      }
      return peer;
    }
    const address = ring.address();
    const key = `${address}|${port}`;
    let peer = this.peers6.get(key);
    if (peer === undefined) {
      if (this.peers6.size >= PEER_CACHE_LIMIT) this.peers6.clear();
      peer = this.newPeer(address, port);
      this.peers6.set(key, peer);
    }
    return peer;
  }

  private newPeer(address: string, port: number): Peer {
    const normalized = normalizeAddress(address);
    const directory = this.pipeline.directory;
    return { identity: new SessionIdentity(directory, directory.byAddress(normalized), null), source: new SourceInfo('udp', normalized, port) };
  }

  /** One datagram: the ring's current entry. */
  private accept(ring: RingReader, nowMs: number, received: string): void {
    // Counted per turn in flush(), not per datagram.
    this.unflushedBytes += ring.end - ring.start;
    const peer = this.peer(ring);
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
    const rec = decodeSyslogFrame(ring.bytes, ring.start, ring.end, peer.source, received, nowMs);
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
  }

  private flush(): void {
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
  }

  private readonly clearLaneFull = (): void => {
    this.laneFull = false;
  };
}
