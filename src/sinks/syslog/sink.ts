/**
 * The syslog forwarding sink: records re-encoded as syslog (encode.ts) and
 * sent to one receiver over UDP (udp.ts) or TCP/TLS (tcp.ts), on the sender
 * chain's shared lane (delivery/chain.ts). Over TCP/TLS a batch is committed
 * once its bytes are written to the socket; UDP commits nothing
 * (acknowledges = false). The node's own syslog log output uses the same
 * transports (ops/log-output.ts).
 */
import type { Sink } from '../../core/component.js';
import type { LineAppender } from '../../core/ndjson.js';
import type { LogRecord } from '../../core/record.js';
import type { Telemetry } from '../../telemetry/telemetry.js';
import { DeliverySink } from '../delivery/chain.js';
import { SinkStats, type DeliveryStats } from '../delivery/stats.js';
import type { DeliveryEncoder } from '../delivery/transport.js';
import { checkSyslogSinkConfig, type SyslogSinkConfig } from './config.js';
import { encodeRfc3164, encodeRfc5424, truncateUtf8 } from './encode.js';
import { StreamTransport } from './tcp.js';
import { UdpTransport } from './udp.js';

/**
 * A record as an octet-counted frame, `LEN SP MSG`: the wire format over
 * TCP/TLS, and over UDP how the transport finds each datagram in a chunk.
 */
export class SyslogEncoder implements DeliveryEncoder<LogRecord> {
  private readonly rfc5424: boolean;
  private readonly maxBytes: number;
  private readonly identitySdId: string | null;

  constructor(config: SyslogSinkConfig, private readonly stats: DeliveryStats) {
    this.rfc5424 = config.format === 'rfc5424';
    this.maxBytes = config.maxMessageBytes;
    this.identitySdId = config.identitySdId;
  }

  encode(tenant: string, records: readonly LogRecord[], queue: LineAppender): void {
    for (let i = 0; i < records.length; i++) queue.append(this.frame(tenant, records[i]!), false);
  }

  private frame(tenant: string, rec: LogRecord): string {
    let message = this.rfc5424 ? encodeRfc5424(rec, this.identity(tenant, rec)) : encodeRfc3164(rec);
    let bytes = Buffer.byteLength(message);
    if (this.maxBytes > 0 && bytes > this.maxBytes) {
      message = truncateUtf8(message, bytes, this.maxBytes);
      bytes = Buffer.byteLength(message);
      this.stats.truncated(1);
    }
    return bytes + ' ' + message;
  }

  /** Tenant ids and host keys need no SD escaping (validated ids, hex). */
  private identity(tenant: string, rec: LogRecord): string {
    return this.identitySdId === null ? '' : '[' + this.identitySdId + ' tenant="' + tenant + '" host="' + rec.host + '"]';
  }
}

export class SyslogSink extends DeliverySink<LogRecord> implements Sink {
  constructor(config: SyslogSinkConfig, telemetry: Telemetry) {
    const problems = checkSyslogSinkConfig(config);
    if (problems.length > 0) throw new Error(`syslog sink ${config.name}: ${problems.join('; ')}`);
    const stats = new SinkStats(config.name, telemetry);
    const transport = config.protocol === 'udp' ? new UdpTransport(config, stats) : new StreamTransport(config, stats);
    super(config.name, config, new SyslogEncoder(config, stats), transport, stats, config.protocol !== 'udp');
  }
}
