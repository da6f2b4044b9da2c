/**
 * Syslog message parser: RFC 5424, RFC 3164 and the variants real senders emit.
 *
 * Hot path. Hand-written scanning (charCodeAt/indexOf), no regular
 * expressions, no closures, no try/catch, and no allocation besides the
 * substrings stored in the record and the structured-data result (plus a
 * throw-away object when an SD name misses the intern cache). Scanner
 * state is passed back through module-level variables for the same reason.
 * Every read is bounded by `end` (charCodeAt past the end yields NaN, which
 * would slip through naive range checks), so no input can make it throw.
 *
 * Variant rules, and why:
 * - Trailing NUL/CR/LF are stripped: senders terminate frames with them, they
 *   are never part of the message. A leading U+FEFF is stripped because some
 *   senders prefix the whole frame with a BOM.
 * - PRI: 1-3 digits, value <= 191. Leading zeros (`<013>`) are accepted because
 *   rejecting them would drop otherwise useful messages; anything else (`<>`,
 *   `<ab>`, `<999>`, `<1234>`, `<12` unterminated) is a parse error, as a `<`
 *   that opens a broken PRI means we cannot trust the rest of the frame.
 * - RFC 5424 is recognised by `<PRI>` + 1-3 digits + SP (VERSION is at most 3
 *   digits). Once recognised the grammar is strict, so a broken 5424 message is
 *   reported instead of half-parsed: VERSION must be 1, header fields are
 *   non-empty tokens separated by exactly one SP, SD is mandatory. Header tokens
 *   may hold non-ASCII characters (seen in the wild; rejecting them loses whole
 *   messages) or even control characters: a token is simply a non-empty run
 *   up to the next SP, found with indexOf, because validating every character
 *   costs more than the rest of the header. RFC length limits are not enforced.
 * - SD values: `\"`, `\\`, `\]` are unescaped; any other backslash is kept
 *   (RFC 5424 6.3.3). An unescaped `]` inside a quoted value is accepted since
 *   the quotes make it unambiguous. A repeated SD-ID merges into one object, a
 *   repeated PARAM-NAME becomes an array. Names are stored as own properties
 *   even when they are `__proto__`, so hostile input cannot alter prototypes.
 * - Everything else is treated as RFC 3164 / BSD. After PRI, spaces are
 *   skipped, and so is Cisco's message counter (`91: `, NX-OS's bare `: `),
 *   with the device's origin hostname after it (`91: router1: `) when a
 *   timestamp follows. The timestamp is either `Mmm dd hh:mm:ss` (day space- or
 *   zero-padded, or a single digit; month case-insensitive; optional
 *   `.fraction`; optional `yyyy ` between day and time for Cisco gear; Cisco's
 *   `*`/`.` clock marks before it), NX-OS's `yyyy Mmm dd hh:mm:ss`, or an RFC
 *   3339 timestamp (rsyslog forward format). It may end in Cisco's `:` or
 *   ` ZONE:` and must then be followed by SP or the end of the message.
 * - BSD timestamps carry no year and usually no zone: they are read in the
 *   process's local zone (in UTC when they say UTC or GMT), the year is the one
 *   of `nowMs` unless that lands more than 7 days in the future (Dec/Jan wrap).
 *   A calendar date that does not exist (`Feb 30`, `2003-09-31`, Feb 29 of a
 *   common year: leap years are Gregorian) keeps the message structure but
 *   uses the receive time, in RFC 5424 too: it is a wrong clock, not an event
 *   time. BSD conversions are cached (64 slots, not 1: see the cache) together
 *   with the range of `nowMs` for which each stays valid, so the steady state
 *   allocates no Date.
 * - After the timestamp the next token is the TAG when it looks like one
 *   (`app:`, `app[pid]:` or `app[pid]` followed by SP or the end, or `app[pid]:`
 *   glued to the message; `app` non-empty, not all digits, without quotes,
 *   braces, `<>=` or controls), which means the sender left the hostname out;
 *   a lone `:` is an empty TAG. Otherwise it is the HOSTNAME (`-` → null) when
 *   it has no such characters and does not end in one `:` (IPv6 may end in
 *   `::`), then an optional lone `:` (Cisco ASA), and the token after it is the
 *   TAG if it looks like one, else the message. `app:text` is not a TAG: as
 *   often an IPv6 address, a URL, a time or a key. Exactly one SP after the tag
 *   is dropped so indentation in MSG survives.
 * - `<PRI>` followed by no recognisable timestamp is a bare message, not an
 *   error (common from embedded devices): a TAG may open it (`<27>xapi: …`),
 *   else the whole text after PRI is the message. Without PRI *and* without
 *   timestamp there is nothing to say it is syslog at all, so it is a parse
 *   error.
 * - On a parse error `msg` is the raw text (leading BOM and trailing NUL/CR/LF
 *   stripped, as docs/record.md promises for every `msg`) and facility/severity
 *   come from the PRI if it was valid.
 */
import { DEFAULT_FACILITY, DEFAULT_SEVERITY, type LogRecord, type StructuredData } from '../../core/record.js';

const NUL = 0;
const LF = 10;
const CR = 13;
const SP = 32;
const QUOTE = 34;
const STAR = 42;
const PLUS = 43;
const DASH = 45;
const DOT = 46;
const COLON = 58;
const LT = 60;
const EQ = 61;
const GT = 62;
const UPPER_T = 84;
const UPPER_Z = 90;
const LBRACKET = 91;
const BACKSLASH = 92;
const RBRACKET = 93;
const LOWER_T = 116;
const LOWER_Z = 122;
const DEL = 127;
const BOM = 0xfeff;

const SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000;

/** Where the caller's BOM is (see parseSyslog), and whether the parser dropped it. */
let bomAt = -1;
let bomDropped = false;

/**
 * Parse `text` into `rec`. `byteOrderMark` ≥ 0: the text is a frame decoded
 * as Latin-1 whose only non-ASCII bytes, the UTF-8 BOM, are the three
 * characters at that index. They are dropped where a BOM (U+FEFF) is dropped
 * (first in the frame, or first in the MSG of an RFC 5424 message), and then
 * the record is what parsing the UTF-8 text would have made: everything the
 * parser decided before reaching them depended only on the ASCII before them
 * (whatever read further ended past them). Returns false when they were not
 * dropped there: the caller must parse the UTF-8 text instead.
 */
export function parseSyslog(text: string, rec: LogRecord, nowMs: number, byteOrderMark = -1): boolean {
  let end = text.length;
  while (end > 0) {
    const c = text.charCodeAt(end - 1);
    if (c === NUL || c === LF || c === CR) end--;
    else break;
  }
  bomAt = byteOrderMark;
  bomDropped = byteOrderMark === 0;
  const start = bomDropped ? 3 : end > 0 && text.charCodeAt(0) === BOM ? 1 : 0;
  let p = start;

  rec.facility = DEFAULT_FACILITY;
  rec.severity = DEFAULT_SEVERITY;
  rec.ts = rec.received;
  rec.hostname = null;
  rec.app = null;
  rec.procid = null;
  rec.msgid = null;
  rec.sd = null;
  rec.msg = '';
  rec.parseError = false;

  let hasPri = false;
  if (p < end && text.charCodeAt(p) === LT) {
    let q = p + 1;
    let pri = 0;
    while (q < end && q - p <= 3) {
      const d = text.charCodeAt(q) - 48;
      if (!(d >= 0 && d <= 9)) break;
      pri = pri * 10 + d;
      q++;
    }
    if (q === p + 1 || q >= end || text.charCodeAt(q) !== GT || pri > 191) {
      fail(text, start, end, rec);
      return bomAt < 0 || bomDropped;
    }
    rec.facility = pri >> 3;
    rec.severity = pri & 7;
    hasPri = true;
    p = q + 1;

    // RFC 5424: VERSION (1-3 digits) followed by SP.
    let v = p;
    while (v < end && v - p < 3) {
      const d = text.charCodeAt(v) - 48;
      if (!(d >= 0 && d <= 9)) break;
      v++;
    }
    if (v > p && v < end && text.charCodeAt(v) === SP) {
      if (v !== p + 1 || text.charCodeAt(p) !== 49 || !parse5424(text, v + 1, end, rec)) fail(text, start, end, rec);
      return bomAt < 0 || bomDropped;
    }
  }
  if (!parse3164(text, p, end, rec, hasPri, nowMs)) fail(text, start, end, rec);
  return bomAt < 0 || bomDropped;
}

/** A header field's value: NILVALUE (`-`) is null. */
function headerValue(text: string, start: number, end: number): string | null {
  return end === start + 1 && text.charCodeAt(start) === DASH ? null : text.slice(start, end);
}

/** Marks `rec` as unparsable, keeping facility/severity as already set. */
function fail(text: string, start: number, end: number, rec: LogRecord): void {
  rec.parseError = true;
  rec.msg = text.slice(start, end);
  rec.ts = rec.received;
  rec.hostname = null;
  rec.app = null;
  rec.procid = null;
  rec.msgid = null;
  rec.sd = null;
}

// ---------------------------------------------------------------- RFC 5424

function parse5424(text: string, p: number, end: number, rec: LogRecord): boolean {
  if (p >= end) return false;
  if (text.charCodeAt(p) === DASH && p + 1 < end && text.charCodeAt(p + 1) === SP) {
    p += 2;
  } else {
    const e = scanRfc3339(text, p, end);
    if (e < 0 || e >= end || text.charCodeAt(e) !== SP) return false;
    setIsoTimestamp(text, p, e, rec);
    p = e + 1;
  }

  let e = headerToken(text, p, end);
  if (e < 0) return false;
  rec.hostname = headerValue(text, p, e);
  p = e + 1;
  e = headerToken(text, p, end);
  if (e < 0) return false;
  rec.app = headerValue(text, p, e);
  p = e + 1;
  e = headerToken(text, p, end);
  if (e < 0) return false;
  rec.procid = headerValue(text, p, e);
  p = e + 1;
  e = headerToken(text, p, end);
  if (e < 0) return false;
  rec.msgid = headerValue(text, p, e);
  p = e + 1;

  if (p >= end) return false;
  const c = text.charCodeAt(p);
  if (c === DASH) {
    p++;
  } else if (c === LBRACKET) {
    p = parseStructuredData(text, p, end, rec);
    if (p < 0) return false;
  } else {
    return false;
  }

  if (p < end) {
    if (text.charCodeAt(p) !== SP) return false;
    p++;
    if (p === bomAt) {
      p += 3;
      bomDropped = true;
    } else if (p < end && text.charCodeAt(p) === BOM) {
      p++;
    }
    rec.msg = text.slice(p, end);
  }
  return true;
}

/** End of a non-empty header token at `p` (the index of the SP after it), or -1. */
function headerToken(text: string, p: number, end: number): number {
  const q = text.indexOf(' ', p);
  return q <= p || q >= end ? -1 : q;
}

/** Parses SD-ELEMENTs starting at `[`, sets rec.sd, returns the index after the last `]` or -1. */
function parseStructuredData(text: string, p: number, end: number, rec: LogRecord): number {
  const sd: StructuredData = {};
  let backslash = -2; // index of the next backslash, -1 if none, -2 not searched yet
  for (;;) {
    // text[p] is '['
    p++;
    let q = p;
    while (q < end) {
      const c = text.charCodeAt(q);
      if (c === SP || c === RBRACKET) break;
      if (c === EQ || c === QUOTE || c < SP || c === DEL) return -1;
      q++;
    }
    if (q === p || q >= end) return -1;
    const id = internKey(text, p, q);
    let elem = Object.hasOwn(sd, id) ? sd[id] : undefined;
    if (elem === undefined) {
      elem = {};
      setOwn(sd, id, elem);
    }
    p = q;
    while (text.charCodeAt(p) === SP) {
      p++;
      q = p;
      while (q < end) {
        const c = text.charCodeAt(q);
        if (c === EQ) break;
        if (c === SP || c === RBRACKET || c === QUOTE || c < SP || c === DEL) return -1;
        q++;
      }
      if (q === p || q + 1 >= end || text.charCodeAt(q + 1) !== QUOTE) return -1;
      const name = internKey(text, p, q);
      p = q + 2;
      // Fast path: no backslash before the next quote. `backslash` is the next
      // backslash at or after p, searched again only once p has passed it, so
      // the whole SD costs one scan for backslashes rather than one per value.
      if (backslash !== -1 && backslash < p) backslash = text.indexOf('\\', p);
      const close = text.indexOf('"', p);
      if (close < 0 || close >= end) return -1;
      let value: string;
      if (backslash === -1 || backslash > close) {
        value = text.slice(p, close);
        p = close;
      } else {
        let seg = p;
        value = '';
        for (;;) {
          if (p >= end) return -1;
          const c = text.charCodeAt(p);
          if (c === QUOTE) break;
          if (c === BACKSLASH && p + 1 < end) {
            const n = text.charCodeAt(p + 1);
            if (n === QUOTE || n === BACKSLASH || n === RBRACKET) {
              value += text.slice(seg, p);
              seg = p + 1;
              p += 2;
              continue;
            }
          }
          p++;
        }
        value += text.slice(seg, p);
      }
      p++; // closing quote
      if (p >= end) return -1;
      if (Object.hasOwn(elem, name)) {
        const prev = elem[name];
        if (typeof prev === 'string') elem[name] = [prev, value];
        else if (prev !== undefined) prev.push(value);
      } else {
        setOwn(elem, name, value);
      }
    }
    if (text.charCodeAt(p) !== RBRACKET) return -1;
    p++;
    if (p >= end || text.charCodeAt(p) !== LBRACKET) break;
  }
  rec.sd = sd;
  return p;
}

// Direct-mapped cache of recently seen SD-IDs and PARAM-NAMEs, holding
// internalized strings. A freshly sliced key costs V8 a string-table lookup on
// every property store; comparing the slice with the interned copy and
// storing that instead is cheaper. (A comparison slice is cheaper than a
// charCodeAt loop or text.startsWith(key, p), both measured slower in V8.)
const KEY_SLOTS = 64;
const keyCache: string[] = new Array<string>(KEY_SLOTS).fill('');

/** text[p, q) (q > p) as an internalized string, from the cache when possible. */
function internKey(text: string, p: number, q: number): string {
  const len = q - p;
  if (len > 64) return text.slice(p, q); // do not let hostile input pin large strings
  const slot = (len * 31 + text.charCodeAt(p) * 7 + text.charCodeAt(q - 1)) & (KEY_SLOTS - 1);
  const cached = keyCache[slot];
  const key = text.slice(p, q);
  if (cached === key) return cached;
  // Property names are internalized; a computed key also keeps `__proto__` an own property.
  const interned = Object.keys({ [key]: 0 })[0] ?? key;
  keyCache[slot] = interned;
  return interned;
}

/** Assigns an own property; `__proto__` needs defineProperty or it would replace the prototype. */
function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  if (key === '__proto__') {
    Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    obj[key] = value;
  }
}

// ---------------------------------------------------------------- RFC 3164

/**
 * Classes of the characters of an RFC 3164 HOSTNAME or TAG. A name character
 * is printable, and none of the quotes, braces, angle brackets or `=` that
 * open a payload (JSON, key=value, XML) rather than name a host or a program;
 * anything beyond ASCII is one, as in RFC 5424 header tokens. Digits, `:`,
 * `[` and `]` are name characters with a class of their own: a TAG's
 * structure, or a counter (all digits) rather than a TAG.
 */
const NOT_NAME = 0;
const NAME = 1;
const NAME_DIGIT = 2;
const NAME_COLON = 3;
const NAME_LBRACKET = 4;
const NAME_RBRACKET = 5;
const NAME_CLASSES = new Uint8Array(128);
for (let c = 33; c < DEL; c++) NAME_CLASSES[c] = NAME;
for (const c of '"\'{}<>=') NAME_CLASSES[c.charCodeAt(0)] = NOT_NAME;
for (let c = 48; c <= 57; c++) NAME_CLASSES[c] = NAME_DIGIT;
NAME_CLASSES[COLON] = NAME_COLON;
NAME_CLASSES[LBRACKET] = NAME_LBRACKET;
NAME_CLASSES[RBRACKET] = NAME_RBRACKET;

function nameClass(c: number): number {
  return c < 128 ? (NAME_CLASSES[c] ?? NOT_NAME) : NAME;
}

function skipSpaces(text: string, p: number, end: number): number {
  while (p < end && text.charCodeAt(p) === SP) p++;
  return p;
}

function parse3164(text: string, p: number, end: number, rec: LogRecord, hasPri: boolean, nowMs: number): boolean {
  // A message without a recognised header keeps all the text after PRI.
  const body = p;
  let q: number;
  let hostnameRead = false;
  if (hasPri) {
    p = skipSpaces(text, p, end);
    const c = text.charCodeAt(p);
    const afterSequence = (c >= 48 && c <= 57) || c === COLON ? ciscoSequence(text, p, end) : p;
    q = scanTimestamp(text, afterSequence, end, afterSequence > p, rec, nowMs);
    if (q < 0 && afterSequence > p) {
      // Cisco IOS `seq: origin: timestamp`: the origin is the device's hostname.
      const colon = originColon(text, afterSequence, end);
      if (colon > 0) {
        q = scanTimestamp(text, colon + 2, end, true, rec, nowMs);
        if (q >= 0) {
          rec.hostname = headerValue(text, afterSequence, colon);
          hostnameRead = true;
        }
      }
    }
    if (q < 0) {
      // No timestamp: a TAG may still open the message (embedded devices, Cisco without timestamps).
      const m = parseTag(text, afterSequence, end, rec);
      rec.msg = text.slice(m >= 0 ? m : body, end);
      return true;
    }
  } else {
    q = scanTimestamp(text, p, end, false, rec, nowMs);
    if (q < 0) return false;
  }

  p = skipSpaces(text, q, end);
  if (p >= end) return true;
  if (isLoneColon(text, p, end)) {
    // An empty TAG: no hostname before it, the message after it.
    p = skipColon(text, p, end);
    hostnameRead = true;
  }
  let m = parseTag(text, p, end, rec);
  if (m < 0 && !hostnameRead) {
    let e = tagScan.end;
    if (!tagScan.plain) {
      e = text.indexOf(' ', p);
      if (e < 0 || e > end) e = end;
    }
    if (tagScan.plain || isHostname(text, p, e)) {
      rec.hostname = headerValue(text, p, e);
      p = skipSpaces(text, e, end);
      if (p >= end) return true;
      // Cisco ASA's device-id is followed by ` : ` before the message.
      if (isLoneColon(text, p, end)) p = skipColon(text, p, end);
      m = parseTag(text, p, end, rec);
    }
  }
  rec.msg = text.slice(m >= 0 ? m : p, end);
  return true;
}

/** After Cisco's message counter at p (`123: `, or NX-OS's bare `: `), else p. */
function ciscoSequence(text: string, p: number, end: number): number {
  let q = p;
  while (q < end) {
    const d = text.charCodeAt(q) - 48;
    if (!(d >= 0 && d <= 9)) break;
    q++;
  }
  return q + 1 < end && text.charCodeAt(q) === COLON && text.charCodeAt(q + 1) === SP ? q + 2 : p;
}

/** The index of the `:` ending a hostname token at p (`router1: `), or -1. */
function originColon(text: string, p: number, end: number): number {
  let e = text.indexOf(' ', p);
  if (e < 0 || e > end) e = end;
  const colon = e - 1;
  return e < end && colon > p && text.charCodeAt(colon) === COLON && isHostname(text, p, colon) ? colon : -1;
}

/** A lone `:` at p, followed by SP or the end. */
function isLoneColon(text: string, p: number, end: number): boolean {
  return text.charCodeAt(p) === COLON && (p + 1 === end || text.charCodeAt(p + 1) === SP);
}

/** Past a lone `:` at p and the one SP after it. */
function skipColon(text: string, p: number, end: number): number {
  return p + 1 < end ? p + 2 : p + 1;
}

/**
 * text[s, e) (e > s) is a plausible hostname: name characters only, and not
 * ending in one colon (an IPv6 address may end in `::`, never in one `:`).
 */
function isHostname(text: string, s: number, e: number): boolean {
  if (text.charCodeAt(e - 1) === COLON && (e - 1 === s || text.charCodeAt(e - 2) !== COLON)) return false;
  for (let i = s; i < e; i++) {
    if (nameClass(text.charCodeAt(i)) === NOT_NAME) return false;
  }
  return true;
}

/**
 * Set by parseTag when it returns -1: where its scan stopped, and whether the
 * token up to there is plain (name characters other than `:[]`, followed by
 * SP or the end): then it is a hostname, and need not be scanned again. The
 * fields of one object rather than two module-level `let`s: 67 instructions
 * fewer per BSD message, measured.
 */
const tagScan = { end: 0, plain: false };

/**
 * Recognises a TAG at s: `app:`, `app[pid]:` or `app[pid]`, followed by SP or
 * the end, or `app[pid]:` glued to the message. `app` is made of name
 * characters other than `]`, and is not all digits (that is a counter). Sets
 * rec.app/rec.procid and returns where MSG starts (after one SP), or -1.
 */
function parseTag(text: string, s: number, end: number, rec: LogRecord): number {
  let i = s;
  let digitsOnly = true;
  let k = NOT_NAME;
  for (; i < end; i++) {
    k = nameClass(text.charCodeAt(i));
    if (k === NAME) digitsOnly = false;
    else if (k !== NAME_DIGIT) break;
  }
  if (i === end || (k !== NAME_COLON && k !== NAME_LBRACKET) || i === s || digitsOnly) {
    tagScan.end = i;
    tagScan.plain = i > s && (i === end || text.charCodeAt(i) === SP);
    return -1;
  }
  tagScan.plain = false;
  const appEnd = i;
  let procid: string | null = null;
  let bracketed = false;
  if (k === NAME_LBRACKET) {
    let b = i + 1;
    let c = 0;
    while (b < end) {
      c = text.charCodeAt(b);
      if (c === RBRACKET || c === SP) break;
      b++;
    }
    if (b >= end || c !== RBRACKET) return -1;
    if (b > i + 1) procid = text.slice(i + 1, b);
    bracketed = true;
    i = b + 1;
    if (i < end && text.charCodeAt(i) !== COLON) {
      if (text.charCodeAt(i) !== SP) return -1;
      i--; // `app[pid] msg`: no colon, the SP after `]` is the one dropped
    }
  }
  // text[i] is the colon (or, after `app[pid]`, what stands for it); i may be end.
  i++;
  if (i < end) {
    if (text.charCodeAt(i) === SP) i++;
    // `app:text` is as often an IPv6 address, a URL, a time or a key: only `]:` may be glued to the message.
    else if (!bracketed) return -1;
  }
  rec.app = text.slice(s, appEnd);
  rec.procid = procid;
  return i > end ? end : i;
}

// ---------------------------------------------------------------- timestamps

/**
 * Where the message's timestamp, at p, ends (after a Cisco `:` or ` ZONE:`),
 * or -1 when there is none; it is followed by SP or the end. `cisco`: Cisco's
 * message counter came before it. Sets rec.ts when the date exists:
 * `2003-09-31` or `Feb 29` of a common year is a timestamp of a wrong clock,
 * not an event time, and leaves the receive time.
 */
function scanTimestamp(text: string, p: number, end: number, cisco: boolean, rec: LogRecord, nowMs: number): number {
  if (p >= end) return -1;
  let c = text.charCodeAt(p);
  if (c >= 48 && c <= 57) {
    const q = scanRfc3339(text, p, end);
    if (q >= 0) {
      const after = timestampEnd(text, q, end, NO_ZONE, false);
      if (after >= 0) setIsoTimestamp(text, p, q, rec);
      return after;
    }
    // NX-OS: `yyyy Mmm dd hh:mm:ss[.frac][ ZONE]:`. Only with Cisco's colon: RFC 3164's own
    // example "1990 Oct 22 10:52:01 TZ-6 …" is a message whose timestamp was not understood.
    if (end - p < 5 || text.charCodeAt(p + 4) !== SP || d2(text, p) < 0 || d2(text, p + 2) < 0) return -1;
    const bsdEnd = scanBsd(text, p + 5, end);
    if (bsdEnd < 0 || bsdYear >= 0) return -1;
    bsdYear = d2(text, p) * 100 + d2(text, p + 2);
    return bsdTimestamp(text, bsdEnd, end, ANY_ZONE, true, rec, nowMs);
  }
  // Cisco marks a clock it does not trust with `*`, one that lost NTP with `.`.
  if (c === STAR || c === DOT) {
    cisco = true;
    p++;
    c = text.charCodeAt(p);
  }
  if (!((c | 0x20) >= 97 && (c | 0x20) <= 122)) return -1;
  const bsdEnd = scanBsd(text, p, end);
  if (bsdEnd < 0) return -1;
  return bsdTimestamp(text, bsdEnd, end, cisco || bsdFraction ? ANY_ZONE : UTC_ZONE, false, rec, nowMs);
}

/** The end of a scanned BSD timestamp (see scanTimestamp); sets rec.ts. */
function bsdTimestamp(text: string, q: number, end: number, zones: number, colonRequired: boolean, rec: LogRecord, nowMs: number): number {
  const after = timestampEnd(text, q, end, zones, colonRequired);
  if (after < 0) return -1;
  const iso = bsdToIso(nowMs);
  if (iso !== '') rec.ts = iso;
  return after;
}

/** Which zone names timestampEnd takes: none (RFC 3339 has its offset), UTC and GMT only, or any. */
const NO_ZONE = 0;
const UTC_ZONE = 1;
const ANY_ZONE = 2;

/**
 * Past what may follow a timestamp ending at q: nothing, `:` (Cisco), or, for a
 * BSD timestamp, ` ZONE:` (Cisco's `show-timezone`). UTC and GMT are honoured.
 * Another zone (3-5 capitals) is taken only from a timestamp that is otherwise
 * Cisco's (a counter before it, a `*`/`.` mark, or fractional seconds), so a
 * TAG such as `CRON:` right after a plain timestamp stays a TAG; it is read
 * like a BSD time without a zone. What follows must be SP or the end.
 * Returns -1 if it is not.
 */
function timestampEnd(text: string, q: number, end: number, zones: number, colonRequired: boolean): number {
  bsdUtc = false;
  if (q === end) return colonRequired ? -1 : q;
  const c = text.charCodeAt(q);
  if (c === COLON) return q + 1 === end || text.charCodeAt(q + 1) === SP ? q + 1 : -1;
  if (c !== SP) return -1;
  if (zones !== NO_ZONE && isCapital(text.charCodeAt(q + 1))) {
    let z = q + 2;
    while (z < end && z - q <= 5 && isCapital(text.charCodeAt(z))) z++;
    if (z - q > 3 && isLoneColon(text, z, end)) {
      const utc = z === q + 4 && (text.startsWith('UTC', q + 1) || text.startsWith('GMT', q + 1));
      if (utc || zones === ANY_ZONE) {
        bsdUtc = utc;
        return z + 1;
      }
    }
  }
  return colonRequired ? -1 : q;
}

function isCapital(c: number): boolean {
  return c >= 65 && c <= 90;
}

/** Set by scanRfc3339, how the timestamp becomes rec.ts: as sent, uppercased (it has a `t` or `z`), or not at all (no such date). */
const ISO_AS_SENT = 0;
const ISO_LOWER = 1;
const ISO_NO_SUCH_DATE = 2;
let isoKind = ISO_AS_SENT;

/** Sets rec.ts from the RFC 3339 timestamp text[p, e) just scanned, unless its date does not exist. */
function setIsoTimestamp(text: string, p: number, e: number, rec: LogRecord): void {
  if (isoKind === ISO_AS_SENT) rec.ts = text.slice(p, e);
  else if (isoKind === ISO_LOWER) rec.ts = text.slice(p, e).toUpperCase();
}

/** Months (1-12) with 31 days. */
const LONG_MONTHS = new Uint8Array([0, 1, 0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1]);

/** Gregorian leap years: every fourth, but not every hundredth unless every four hundredth. */
function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

/** Two decimal digits at i (caller guarantees i + 1 < end), or -1. */
function d2(text: string, i: number): number {
  const a = text.charCodeAt(i) - 48;
  const b = text.charCodeAt(i + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

/** Scans `YYYY-MM-DDTHH:MM:SS[.1-9 digits](Z|±HH:MM)` at p; returns its end or -1. */
function scanRfc3339(text: string, p: number, end: number): number {
  if (end - p < 20) return -1;
  if (d2(text, p) < 0 || d2(text, p + 2) < 0 || text.charCodeAt(p + 4) !== DASH) return -1;
  const month = d2(text, p + 5);
  if (month < 1 || month > 12 || text.charCodeAt(p + 7) !== DASH) return -1;
  const day = d2(text, p + 8);
  if (day < 1 || day > 31) return -1;
  // The year is read only for February 29th: the W1 path pays two comparisons.
  const exists = day <= 28 || (month === 2 ? day === 29 && isLeapYear(d2(text, p) * 100 + d2(text, p + 2)) : day <= 30 || LONG_MONTHS[month] === 1);
  let c = text.charCodeAt(p + 10);
  let lower = c === LOWER_T;
  if (c !== UPPER_T && !lower) return -1;
  const hour = d2(text, p + 11);
  if (hour < 0 || hour > 23 || text.charCodeAt(p + 13) !== COLON) return -1;
  const minute = d2(text, p + 14);
  if (minute < 0 || minute > 59 || text.charCodeAt(p + 16) !== COLON) return -1;
  const second = d2(text, p + 17);
  if (second < 0 || second > 60) return -1;
  let q = p + 19;
  c = text.charCodeAt(q);
  if (c === DOT) {
    q++;
    const f = q;
    while (q < end && q - f < 9) {
      const d = text.charCodeAt(q) - 48;
      if (!(d >= 0 && d <= 9)) break;
      q++;
    }
    if (q === f || q >= end) return -1;
    c = text.charCodeAt(q);
  }
  if (c === UPPER_Z || c === LOWER_Z) {
    if (c === LOWER_Z) lower = true;
    q++;
  } else if (c === PLUS || c === DASH) {
    if (end - q < 6) return -1;
    const oh = d2(text, q + 1);
    if (oh < 0 || oh > 23 || text.charCodeAt(q + 3) !== COLON) return -1;
    const om = d2(text, q + 4);
    if (om < 0 || om > 59) return -1;
    q += 6;
  } else {
    return -1;
  }
  isoKind = !exists ? ISO_NO_SUCH_DATE : lower ? ISO_LOWER : ISO_AS_SENT;
  return q;
}

// Fields of the last BSD timestamp scanned (module-level to avoid allocation).
let bsdMonth = 0;
let bsdDay = 0;
let bsdYear = -1;
let bsdHour = 0;
let bsdMinute = 0;
let bsdSecond = 0;
let bsdMs = 0;
/** The last BSD timestamp scanned had fractional seconds. */
let bsdFraction = false;
/** Set by timestampEnd: the BSD timestamp said UTC (or GMT). */
let bsdUtc = false;

/** Month index 0-11 of a case-insensitive English abbreviation, or -1. */
function monthIndex(a: number, b: number, c: number): number {
  switch (((a | 0x20) << 16) | ((b | 0x20) << 8) | (c | 0x20)) {
    case 0x6a616e: return 0; // jan
    case 0x666562: return 1; // feb
    case 0x6d6172: return 2; // mar
    case 0x617072: return 3; // apr
    case 0x6d6179: return 4; // may
    case 0x6a756e: return 5; // jun
    case 0x6a756c: return 6; // jul
    case 0x617567: return 7; // aug
    case 0x736570: return 8; // sep
    case 0x6f6374: return 9; // oct
    case 0x6e6f76: return 10; // nov
    case 0x646563: return 11; // dec
    default: return -1;
  }
}

/** Scans `Mmm dd [yyyy ]hh:mm:ss[.frac]` at p; returns its end or -1. */
function scanBsd(text: string, p: number, end: number): number {
  if (end - p < 14) return -1;
  const month = monthIndex(text.charCodeAt(p), text.charCodeAt(p + 1), text.charCodeAt(p + 2));
  if (month < 0 || text.charCodeAt(p + 3) !== SP) return -1;
  let q = p + 4;
  let d = text.charCodeAt(q) - 48;
  if (d === SP - 48) {
    q++;
    d = text.charCodeAt(q) - 48;
  }
  if (!(d >= 0 && d <= 9)) return -1;
  let day = d;
  q++;
  d = text.charCodeAt(q) - 48;
  if (d >= 0 && d <= 9) {
    day = day * 10 + d;
    q++;
  }
  if (day < 1 || day > 31 || text.charCodeAt(q) !== SP) return -1;
  q++;
  let year = -1;
  if (end - q >= 13 && text.charCodeAt(q + 2) !== COLON && text.charCodeAt(q + 4) === SP) {
    const hi = d2(text, q);
    const lo = d2(text, q + 2);
    if (hi < 0 || lo < 0) return -1;
    year = hi * 100 + lo;
    q += 5;
  }
  if (end - q < 8) return -1;
  const hour = d2(text, q);
  if (hour < 0 || hour > 23 || text.charCodeAt(q + 2) !== COLON) return -1;
  const minute = d2(text, q + 3);
  if (minute < 0 || minute > 59 || text.charCodeAt(q + 5) !== COLON) return -1;
  const second = d2(text, q + 6);
  if (second < 0 || second > 60) return -1;
  q += 8;
  let ms = 0;
  const fraction = q < end && text.charCodeAt(q) === DOT;
  if (fraction) {
    q++;
    const f = q;
    let scale = 100;
    while (q < end && q - f < 9) {
      d = text.charCodeAt(q) - 48;
      if (!(d >= 0 && d <= 9)) break;
      ms += d * scale;
      scale /= 10;
      q++;
    }
    if (q === f) return -1;
    ms = Math.floor(ms);
  }
  bsdMonth = month;
  bsdDay = day;
  bsdYear = year;
  bsdHour = hour;
  bsdMinute = minute;
  bsdSecond = second;
  bsdMs = ms;
  bsdFraction = fraction;
  return q;
}

// Direct-mapped cache of BSD timestamp → ISO result ('' = no such date), each
// entry valid for nowMs in [tsLo, tsHi). Many slots rather than one: with
// thousands of senders whose clocks disagree by a second or two, consecutive
// messages rarely share a timestamp and a single entry would thrash. The key
// is the scanned fields packed into one exact integer (< 2^53), not the text,
// so a hit costs a few number comparisons: no substring, no Date.
const TS_SLOTS = 64;
const tsKeys = new Float64Array(TS_SLOTS).fill(-1);
const tsIsos: string[] = new Array<string>(TS_SLOTS).fill('');
const tsLo = new Float64Array(TS_SLOTS);
const tsHi = new Float64Array(TS_SLOTS); // all 0: no slot is valid yet

// Local calendar year of nowMs and its bounds, recomputed only when nowMs leaves them.
let yearOfNow = 0;
let yearStartMs = 0;
let yearEndMs = -1;

/** The last scanned BSD timestamp as a Date in `year` (local time unless it said UTC), or null if that date does not exist. */
function bsdDate(year: number): Date | null {
  if (bsdUtc) {
    const d = new Date(Date.UTC(year, bsdMonth, bsdDay, bsdHour, bsdMinute, bsdSecond, bsdMs));
    if (year < 100) d.setUTCFullYear(year);
    return d.getUTCMonth() === bsdMonth && d.getUTCDate() === bsdDay ? d : null;
  }
  const d = new Date(year, bsdMonth, bsdDay, bsdHour, bsdMinute, bsdSecond, bsdMs);
  if (year < 100) d.setFullYear(year);
  return d.getMonth() === bsdMonth && d.getDate() === bsdDay ? d : null;
}

/** ISO string (UTC, ms) for the BSD timestamp just scanned, or '' if no such date. */
function bsdToIso(nowMs: number): string {
  const slot = (bsdSecond + bsdMinute * 61 + bsdHour * 3721 + bsdDay * 7 + bsdMs) & (TS_SLOTS - 1);
  // < 12*32*24*60*61 * 1e7 * 2 ≈ 6.8e14: exact in a double.
  const key = ((((((bsdMonth * 32 + bsdDay) * 24 + bsdHour) * 60 + bsdMinute) * 61 + bsdSecond) * 10001 + bsdYear + 1) * 1000 + bsdMs) * 2 + (bsdUtc ? 1 : 0);
  if (tsKeys[slot] === key && nowMs >= (tsLo[slot] ?? 0) && nowMs < (tsHi[slot] ?? 0)) {
    return tsIsos[slot] ?? '';
  }
  let d: Date | null;
  let lo: number;
  let hi: number;
  if (bsdYear >= 0) {
    d = bsdDate(bsdYear);
    lo = -Infinity;
    hi = Infinity;
  } else {
    if (!(nowMs >= yearStartMs && nowMs < yearEndMs)) {
      yearOfNow = new Date(nowMs).getFullYear();
      yearStartMs = new Date(yearOfNow, 0, 1).getTime();
      yearEndMs = new Date(yearOfNow + 1, 0, 1).getTime();
    }
    d = bsdDate(yearOfNow);
    lo = yearStartMs;
    hi = yearEndMs;
    if (d !== null) {
      // Pick the previous year when this one is more than 7 days ahead.
      const threshold = d.getTime() - SEVEN_DAYS_MS;
      if (nowMs < threshold) {
        d = bsdDate(yearOfNow - 1);
        hi = threshold;
      } else {
        lo = Math.max(lo, threshold);
      }
    }
  }
  const iso = d === null ? '' : d.toISOString();
  if (nowMs >= lo && nowMs < hi) {
    tsKeys[slot] = key;
    tsIsos[slot] = iso;
    tsLo[slot] = lo;
    tsHi[slot] = hi;
  }
  // else nowMs is NaN or outside what was computed: do not cache.
  return iso;
}
