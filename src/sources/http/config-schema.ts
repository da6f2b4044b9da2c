/** The schema of the HTTP source, HttpSourceConfig (config.ts). */
import { Type } from '@sinclair/typebox';
import { address, duration, port, section, size } from '../../core/config-schema.js';
import { DEFAULT_HTTP_SOURCE_CONFIG } from './config.js';

const defaults = DEFAULT_HTTP_SOURCE_CONFIG;

/** `sources.http` in the YAML configuration. */
export const HttpSourceSchema = section(
  {
    enabled: Type.Boolean({ description: 'Accept OTLP/HTTP logs (`POST /v1/logs`) and newline-delimited records (`POST /v1/ingest`).', default: defaults.enabled }),
    address: address('Address the HTTP listener binds to.', defaults.address),
    port: port('HTTP port (4318, the OTLP/HTTP standard port); 0 picks a free port.', defaults.port),
    max_body: size(defaults.maxBodyBytes, 'Largest request body, also once decompressed; larger: HTTP 413.'),
    max_records: Type.Integer({ description: 'Records one request may carry; more: HTTP 413. A record costs a few hundred bytes of memory however few bytes it takes in the body, so this bounds what one request makes the node hold.', default: defaults.maxRecords, minimum: 1 }),
    ack_timeout: duration(defaults.ackTimeoutMs, 'Longest a request waits for its records to be committed; then it is answered 503 and the client retries.'),
    max_connections: Type.Integer({ description: 'Connections this listener holds at once on the node (all workers together); past it new ones are closed at accept and counted. 0: no cap.', default: defaults.maxConnections, minimum: 0 }),
    request_timeout: duration(defaults.requestTimeoutMs, 'Longest a client may take to send a whole request, headers and body (slowloris); then it is answered 408. 0: never.'),
  },
  'Logs over HTTP: OTLP and newline-delimited JSON or text (see http.md).',
);
