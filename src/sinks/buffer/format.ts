/**
 * The disk buffer's on-disk format (docs/disk-buffer.md has the full story).
 *
 * A buffer is a directory of segment files named after the id of their first
 * entry (`0000000000000001.seg`), so names sort in log order. All integers
 * are little-endian.
 *
 *   segment header (24 bytes)              entry (32-byte header + payload)
 *   0  magic "SLBF"                        0  u32 payload length
 *   4  u32 format version (1)              4  u32 CRC-32 of bytes 8..31 and the payload
 *   8  u64 id of the first entry           8  u64 entry id (consecutive within a segment)
 *   16 u64 records before the first entry  16 u64 records in all entries before this one
 *                                          24 u32 records in this entry
 *                                          28 u32 flags (0)
 *
 * The cumulative record count lets a reader that skips damaged entries say
 * exactly how many records were lost: the difference between the counts of
 * the good entries on either side of the gap.
 */
import { crc32 } from './crc32.js';

export const SEGMENT_MAGIC = 0x4642_4c53; // "SLBF" read as a little-endian u32
export const FORMAT_VERSION = 1;
export const SEGMENT_HEADER_BYTES = 24;
export const ENTRY_HEADER_BYTES = 32;

const SEGMENT_NAME = /^(\d{16})\.seg$/;

/** Where the per-tenant chains live, inside the buffer's directory. */
export const TENANTS_DIR = 'tenants';
/** A tenant id as the configuration allows it (ID_PATTERN) is its own folder name. */
const PLAIN_TENANT = /^[a-z0-9][a-z0-9_-]{0,62}$/;
/** Any other string is stored hex-encoded behind a `_`, which no plain id starts with. */
const ENCODED_TENANT = /^_((?:[0-9a-f]{2})*)$/;
/** Longest tenant (in UTF-8 bytes) a folder name can hold hex-encoded. */
export const MAX_TENANT_BYTES = 120;

export function tenantDirName(tenant: string): string {
  return PLAIN_TENANT.test(tenant) ? tenant : `_${Buffer.from(tenant, 'utf8').toString('hex')}`;
}

/** The tenant a folder under TENANTS_DIR holds, or null when the name is not one tenantDirName() makes. */
export function parseTenantDirName(name: string): string | null {
  if (PLAIN_TENANT.test(name)) return name;
  const m = ENCODED_TENANT.exec(name);
  if (m === null) return null;
  const tenant = Buffer.from(m[1]!, 'hex').toString('utf8');
  return tenantDirName(tenant) === name ? tenant : null;
}

export function segmentName(firstId: number): string {
  return `${String(firstId).padStart(16, '0')}.seg`;
}

/** The first entry id a segment file name stands for, or null when the name is not a segment's. */
export function parseSegmentName(name: string): number | null {
  const m = SEGMENT_NAME.exec(name);
  if (m === null) return null;
  const id = Number(m[1]);
  return Number.isSafeInteger(id) && id > 0 ? id : null;
}

export interface SegmentHeader {
  firstId: number;
  recordsBefore: number;
}

export function encodeSegmentHeader(header: SegmentHeader): Buffer {
  const out = Buffer.alloc(SEGMENT_HEADER_BYTES);
  out.writeUInt32LE(SEGMENT_MAGIC, 0);
  out.writeUInt32LE(FORMAT_VERSION, 4);
  writeU64(out, 8, header.firstId);
  writeU64(out, 16, header.recordsBefore);
  return out;
}

/** The header at the start of `bytes`, or why it is not one. */
export function decodeSegmentHeader(bytes: Buffer): SegmentHeader | string {
  if (bytes.length < SEGMENT_HEADER_BYTES) return 'short_segment_header';
  if (bytes.readUInt32LE(0) !== SEGMENT_MAGIC) return 'bad_magic';
  if (bytes.readUInt32LE(4) !== FORMAT_VERSION) return 'unknown_version';
  const firstId = readU64(bytes, 8);
  const recordsBefore = readU64(bytes, 16);
  if (firstId === null || firstId < 1 || recordsBefore === null) return 'bad_segment_header';
  return { firstId, recordsBefore };
}

export interface EntryHeader {
  payloadBytes: number;
  id: number;
  recordsBefore: number;
  records: number;
}

/** Write an entry header into `out` at `offset`; the CRC covers header bytes 8..31 and the payload. */
export function encodeEntryHeader(out: Buffer, offset: number, header: EntryHeader, payload: Uint8Array): void {
  out.writeUInt32LE(header.payloadBytes, offset);
  writeU64(out, offset + 8, header.id);
  writeU64(out, offset + 16, header.recordsBefore);
  out.writeUInt32LE(header.records, offset + 24);
  out.writeUInt32LE(0, offset + 28);
  const crc = crc32(payload, crc32(out.subarray(offset + 8, offset + ENTRY_HEADER_BYTES)));
  out.writeUInt32LE(crc, offset + 4);
}

/** The fields of the entry header at `offset` (not yet verified: see entryChecksumMatches). */
export function decodeEntryHeader(bytes: Buffer, offset: number): EntryHeader | string {
  if (bytes.readUInt32LE(offset + 28) !== 0) return 'bad_flags';
  const id = readU64(bytes, offset + 8);
  const recordsBefore = readU64(bytes, offset + 16);
  if (id === null || recordsBefore === null) return 'bad_entry_header';
  return { payloadBytes: bytes.readUInt32LE(offset), id, recordsBefore, records: bytes.readUInt32LE(offset + 24) };
}

export function entryChecksumMatches(header: Buffer, headerOffset: number, payload: Uint8Array): boolean {
  const expected = header.readUInt32LE(headerOffset + 4);
  return crc32(payload, crc32(header.subarray(headerOffset + 8, headerOffset + ENTRY_HEADER_BYTES))) === expected;
}

/** Ids and counts stay below 2^53: stored as u64, read back as exact JS numbers. */
function writeU64(out: Buffer, offset: number, value: number): void {
  out.writeUInt32LE(value % 0x1_0000_0000, offset);
  out.writeUInt32LE(Math.floor(value / 0x1_0000_0000), offset + 4);
}

function readU64(bytes: Buffer, offset: number): number | null {
  const high = bytes.readUInt32LE(offset + 4);
  if (high > 0x1f_ffff) return null; // past 2^53: not a value this format ever writes
  return high * 0x1_0000_0000 + bytes.readUInt32LE(offset);
}
