/**
 * A request body to LogRecords, with every way a body can be wrong reported
 * as one error type: the source answers it 400, and anything else thrown
 * from here is a bug (the fuzz targets in test/fuzz hold it to that).
 */
import type { LogRecord, SourceInfo } from '../../core/record.js';
import { decodeOtlpProtobuf, otlpToRecords, OtlpError, TooManyRecordsError, type OtlpLogsRequest } from './otlp.js';
import { ndjsonToRecords, NdjsonError } from './ndjson.js';
import { ProtobufError } from './protobuf.js';

export type BodyKind = 'otlp' | 'ndjson';

/**
 * Records one request may carry. A record costs a few hundred bytes of heap
 * however small its bytes in the body, so this, not max_body alone, bounds
 * what one request can make the node hold (2 bytes of NDJSON are a record).
 */
export const DEFAULT_MAX_RECORDS = 100_000;

/** What is wrong with a body, in words for the client; `status` 400 (malformed) or 413 (too many records). */
export class BadBodyError extends Error {
  constructor(message: string, readonly status: 400 | 413 = 400) {
    super(message);
  }
}

export function decodeBody(kind: BodyKind, body: Buffer, protobuf: boolean, source: SourceInfo, received: string,
  maxRecords = DEFAULT_MAX_RECORDS): LogRecord[] {
  try {
    if (kind === 'ndjson') return ndjsonToRecords(body.toString('utf8'), source, received, maxRecords);
    const request = protobuf ? decodeOtlpProtobuf(body, maxRecords) : (JSON.parse(body.toString('utf8')) as OtlpLogsRequest);
    return otlpToRecords(request, source, received, maxRecords);
  } catch (err) {
    if (err instanceof TooManyRecordsError) throw new BadBodyError(err.message, 413);
    if (err instanceof OtlpError || err instanceof NdjsonError || err instanceof ProtobufError || err instanceof SyntaxError) {
      throw new BadBodyError(err.message);
    }
    throw err;
  }
}
