/**
 * A request body to LogRecords, with every way a body can be wrong reported
 * as one error type: the source answers it 400, and anything else thrown
 * from here is a bug (the fuzz targets in test/fuzz hold it to that).
 */
import type { LogRecord, SourceInfo } from '../../core/record.js';
import { decodeOtlpProtobuf, otlpToRecords, OtlpError, type OtlpLogsRequest } from './otlp.js';
import { ndjsonToRecords, NdjsonError } from './ndjson.js';
import { ProtobufError } from './protobuf.js';

export type BodyKind = 'otlp' | 'ndjson';

/** What is wrong with a body, in words for the client. */
export class BadBodyError extends Error {}

export function decodeBody(kind: BodyKind, body: Buffer, protobuf: boolean, source: SourceInfo, received: string): LogRecord[] {
  try {
    if (kind === 'ndjson') return ndjsonToRecords(body.toString('utf8'), source, received);
    const request = protobuf ? decodeOtlpProtobuf(body) : (JSON.parse(body.toString('utf8')) as OtlpLogsRequest);
    return otlpToRecords(request, source, received);
  } catch (err) {
    if (err instanceof OtlpError || err instanceof NdjsonError || err instanceof ProtobufError || err instanceof SyntaxError) {
      throw new BadBodyError(err.message);
    }
    throw err;
  }
}
