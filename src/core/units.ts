/**
 * Durations and sizes as the configuration writes them: `10s`, `500ms`, `1h`;
 * `64KiB`, `100MiB`, or bare numbers (seconds, bytes). Parsed into ms and
 * bytes, and the other way round, so a default written once in a component's
 * constant (in ms or bytes) reads the same in the schema and the docs.
 */

/** `<number><unit>`; a bare number (seconds) is the other branch of the union. */
export const DURATION_PATTERN = '^(\\d+(?:\\.\\d+)?)(ms|s|m|h|d)$';
export const DURATION_EXPECTED = 'a duration such as 10s, 500ms or 1h';
export const DURATION_UNITS_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** `<number><unit>`; a bare integer (bytes) is the other branch of the union. */
export const SIZE_PATTERN = '^(\\d+(?:\\.\\d+)?)(B|KB|MB|GB|KiB|MiB|GiB)$';
export const SIZE_EXPECTED = 'a size such as 64KiB, 100MiB or a number of bytes';
export const SIZE_UNITS_BYTES: Readonly<Record<string, number>> = {
  B: 1,
  KB: 1000,
  MB: 1000 ** 2,
  GB: 1000 ** 3,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
};

const DURATION_RE = new RegExp(DURATION_PATTERN, 'u');
const SIZE_RE = new RegExp(SIZE_PATTERN, 'u');

/** Milliseconds for a duration (seconds as a number, or `<number><ms|s|m|h|d>`); null when it is not one. */
export function parseDuration(value: unknown): number | null {
  let ms: number;
  if (typeof value === 'number') {
    ms = value * 1000;
  } else if (typeof value === 'string') {
    const m = DURATION_RE.exec(value);
    const unit = m?.[2] === undefined ? undefined : DURATION_UNITS_MS[m[2]];
    if (m?.[1] === undefined || unit === undefined) return null;
    ms = Number(m[1]) * unit;
  } else {
    return null;
  }
  if (!Number.isFinite(ms) || ms < 0) return null;
  const rounded = Math.round(ms);
  // A positive duration never rounds to 0, which would mean "off" to some settings.
  return rounded === 0 && ms > 0 ? 1 : rounded;
}

/** Bytes for a size (an integer of bytes, or `<number><B|KB|MB|GB|KiB|MiB|GiB>`); null when it is not one. */
export function parseSize(value: unknown): number | null {
  let bytes: number;
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) return null;
    bytes = value;
  } else if (typeof value === 'string') {
    const m = SIZE_RE.exec(value);
    const unit = m?.[2] === undefined ? undefined : SIZE_UNITS_BYTES[m[2]];
    if (m?.[1] === undefined || unit === undefined) return null;
    bytes = Math.round(Number(m[1]) * unit);
  } else {
    return null;
  }
  return Number.isSafeInteger(bytes) && bytes >= 0 ? bytes : null;
}

/** `ms` in the largest unit that writes it whole: 30000 → `30s`, 7200000 → `2h`, 0 → `0s`. */
export function durationText(ms: number): string {
  if (ms === 0) return '0s';
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = DURATION_UNITS_MS[unit]!;
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** `bytes` in the largest binary unit that writes it whole: 262144 → `256KiB`, 480 → `480B`. */
export function sizeText(bytes: number): string {
  if (bytes === 0) return '0B';
  for (const unit of ['GiB', 'MiB', 'KiB'] as const) {
    const size = SIZE_UNITS_BYTES[unit]!;
    if (bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}B`;
}
