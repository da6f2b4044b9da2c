/**
 * A LogRecord re-encoded as a syslog message: RFC 5424 (the default) or the
 * BSD format of RFC 3164, for receivers that know nothing else.
 *
 * RFC 5424 header fields are PRINTUSASCII tokens with length limits; what
 * the parser accepted from the wild (spaces, non-ASCII, over-long names) is
 * made legal here: each character outside `!`..`~` becomes `_` and the
 * token is cut to its limit, so a strict receiver never rejects the frame.
 * SD-PARAM values are escaped (`"`, `\`, `]`); MSG is written without a BOM.
 * RFC 3164 has no structured data: it is left out.
 */
import type { LogRecord, StructuredData } from '../../core/record.js';

export type SyslogFormat = 'rfc5424' | 'rfc3164';

const NIL = '-';
const HOSTNAME_MAX = 255;
const APP_NAME_MAX = 48;
const PROCID_MAX = 128;
const MSGID_MAX = 32;
const SD_NAME_MAX = 32;
/** What RFC 3164 allows a TAG; longer application names are cut. */
const TAG_MAX = 32;

/** RFC 5424 TIMESTAMP: RFC 3339 with at most 6 fraction digits and an uppercase T and Z. */
const VALID_TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)$/;
const LONG_FRACTION = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6})\d+(Z|[+-]\d\d:\d\d)$/;
const SD_VALUE_ESCAPES = /["\\\]]/g;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function pri(rec: LogRecord): string {
  const facility = rec.facility >= 0 && rec.facility <= 23 ? rec.facility : 1;
  const severity = rec.severity >= 0 && rec.severity <= 7 ? rec.severity : 5;
  return '<' + (facility * 8 + severity) + '>';
}

/** `value` as a legal header token of at most `max` characters; null or empty → NILVALUE. */
export function headerToken(value: string | null, max: number): string {
  if (value === null || value === '') return NIL;
  let clean = true;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 33 || c > 126) {
      clean = false;
      break;
    }
  }
  if (clean) return value.length <= max ? value : value.slice(0, max);
  let out = '';
  const n = Math.min(value.length, max);
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    out += c < 33 || c > 126 ? '_' : value[i];
  }
  return out;
}

/** SD-NAME (an SD-ID or PARAM-NAME): a header token that also excludes `=`, `]` and `"`. */
function sdName(name: string): string {
  return name === '' ? '_' : headerToken(name, SD_NAME_MAX).replace(/[=\]"]/g, '_');
}

function sdValue(value: string): string {
  return value.replace(SD_VALUE_ESCAPES, '\\$&');
}

export function encodeStructuredData(sd: StructuredData): string {
  let out = '';
  for (const id of Object.keys(sd)) {
    out += '[' + sdName(id);
    const params = sd[id]!;
    for (const name of Object.keys(params)) {
      const value = params[name]!;
      const param = sdName(name);
      if (typeof value === 'string') out += ' ' + param + '="' + sdValue(value) + '"';
      else for (const v of value) out += ' ' + param + '="' + sdValue(v) + '"';
    }
    out += ']';
  }
  return out;
}

function timestamp(rec: LogRecord): string {
  if (VALID_TIMESTAMP.test(rec.ts)) return rec.ts;
  const long = LONG_FRACTION.exec(rec.ts);
  if (long !== null) return long[1]! + long[2]!;
  return rec.received;
}

/**
 * RFC 5424: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG]`.
 * `extraSd` (already encoded, may be empty) is appended to the record's own.
 */
export function encodeRfc5424(rec: LogRecord, extraSd: string): string {
  const sd = rec.sd === null ? extraSd : encodeStructuredData(rec.sd) + extraSd;
  const head = pri(rec) + '1 ' + timestamp(rec)
    + ' ' + headerToken(rec.hostname, HOSTNAME_MAX)
    + ' ' + headerToken(rec.app, APP_NAME_MAX)
    + ' ' + headerToken(rec.procid, PROCID_MAX)
    + ' ' + headerToken(rec.msgid, MSGID_MAX)
    + ' ' + (sd === '' ? NIL : sd);
  return rec.msg === '' ? head : head + ' ' + rec.msg;
}

/**
 * RFC 3164: `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG`. The timestamp is
 * the record's wall-clock time in its own offset (the format has no zone);
 * the TAG is left out when the record has no app name.
 */
export function encodeRfc3164(rec: LogRecord): string {
  const ts = timestamp(rec);
  const month = MONTHS[Number(ts.slice(5, 7)) - 1] ?? 'Jan';
  const day = ts.charCodeAt(8) === 48 ? ' ' + ts[9] : ts.slice(8, 10);
  let out = pri(rec) + month + ' ' + day + ' ' + ts.slice(11, 19) + ' ' + headerToken(rec.hostname, HOSTNAME_MAX);
  if (rec.app !== null && rec.app !== '') {
    out += ' ' + headerToken(rec.app, TAG_MAX).replace(/[:[\]]/g, '_');
    if (rec.procid !== null && rec.procid !== '') out += '[' + headerToken(rec.procid, PROCID_MAX).replace(/[[\]]/g, '_') + ']';
    out += ':';
  }
  return rec.msg === '' ? out : out + ' ' + rec.msg;
}

/**
 * `message` cut to at most `maxBytes` of UTF-8 without splitting a
 * character; `bytes` is its current UTF-8 length.
 */
export function truncateUtf8(message: string, bytes: number, maxBytes: number): string {
  if (bytes <= maxBytes) return message;
  const buf = Buffer.from(message, 'utf8');
  let end = maxBytes;
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--; // back up to the start of a character
  return buf.toString('utf8', 0, end);
}
