/**
 * The one record type that flows from sources through the core to sinks.
 *
 * Every field is assigned in the constructor so all records share one hidden
 * class (V8 keeps property access monomorphic on the hot path). Absent values
 * are `null`, never `undefined`, for the same reason.
 */

/** Where a record came from. One instance is shared by every record of a session. */
export class SourceInfo {
  /** Pre-encoded JSON object, so sinks do not re-encode it per record. */
  readonly json: string;
  /** `json` is ASCII (an address is, but it is checked, not assumed). */
  readonly jsonAscii: boolean;
  /** The parts of an NDJSON line its records repeat, kept by the encoder (ndjson.ts); null until a record is encoded. */
  lineParts: object | null = null;

  constructor(
    readonly protocol: 'udp' | 'tcp' | 'tls' | 'relp' | 'http',
    readonly address: string,
    readonly port: number,
  ) {
    this.json = `{"protocol":"${protocol}","address":${JSON.stringify(address)},"port":${port}}`;
    this.jsonAscii = isAscii(this.json);
  }
}

/** Whether every character of `s` is ASCII (not for the hot path: once per session or per metadata object). */
export function isAscii(s: string): boolean {
  return /^[\x00-\x7f]*$/.test(s);
}

/** RFC 5424 structured data: SD-ID → PARAM-NAME → value (an array when a name repeats). */
export type StructuredData = Record<string, Record<string, string | string[]>>;

export const DEFAULT_FACILITY = 1; // user-level, what RFC 3164 prescribes for a missing PRI
export const DEFAULT_SEVERITY = 5; // notice

export class LogRecord {
  /** Tenant id, set by identity resolution. */
  tenant = '';
  /** 40 lowercase hex host key: SHA-1 of tenant and host identity. */
  host = '';
  /** Event time as RFC 3339; the receive time when the message carries none. */
  ts = '';
  /** Receive time as RFC 3339 UTC with milliseconds. */
  received = '';
  facility = DEFAULT_FACILITY;
  severity = DEFAULT_SEVERITY;
  hostname: string | null = null;
  app: string | null = null;
  procid: string | null = null;
  msgid: string | null = null;
  sd: StructuredData | null = null;
  msg = '';
  source: SourceInfo | null = null;
  /** The message did not parse as RFC 5424 or RFC 3164; `msg` holds the raw text. */
  parseError = false;
  /** The frame held bytes that are not UTF-8; they were replaced by U+FFFD. */
  invalidUtf8 = false;
  /**
   * No string field needs JSON escaping: every field is a substring of a
   * frame that has no quote, backslash or control character, so encoders may
   * skip their per-field checks. (Structured data is always fully encoded.)
   */
  jsonSafe = false;
  /**
   * No string field holds anything but ASCII (every field is a substring of a
   * frame of ASCII, with at most a dropped BOM), so with jsonSafe the encoded
   * line is ASCII and needs no UTF-8 encoding.
   */
  ascii = false;
  /** Size of the frame on the wire, in bytes (for accounting and limits). */
  size = 0;
  /** Host metadata attached by enrichment. */
  meta: Record<string, unknown> | null = null;
  /** Enrichment could not get the host's metadata in time (`timeout`) or at all (`unavailable`): the record goes on without. */
  metaMissing: 'timeout' | 'unavailable' | null = null;
}
