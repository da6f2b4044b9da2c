/**
 * Just enough of the protobuf wire format to read OTLP: varints, fixed32/64
 * and length-delimited fields, with every read bounds-checked so hostile
 * bytes give a clean error (never a throw from a random place, never an
 * endless loop).
 */

export class ProtobufError extends Error {}

export const WireType = { Varint: 0, Fixed64: 1, LengthDelimited: 2, Fixed32: 5 } as const;

export class ProtobufReader {
  pos: number;

  constructor(readonly buf: Buffer, start = 0, readonly end = buf.length) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  /** A field's tag: [field number, wire type]. */
  tag(): [number, number] {
    const key = this.varint();
    return [Math.floor(key / 8), key % 8];
  }

  /** A varint up to 2^53 (larger values are never used by OTLP for what we read). */
  varint(): number {
    let result = 0;
    let multiplier = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtobufError('truncated varint');
      const byte = this.buf[this.pos++]!;
      result += (byte & 0x7f) * multiplier;
      if (byte < 0x80) return result;
      multiplier *= 128;
    }
    throw new ProtobufError('varint longer than 10 bytes');
  }

  fixed64(): bigint {
    if (this.pos + 8 > this.end) throw new ProtobufError('truncated fixed64');
    const value = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    return value;
  }

  double(): number {
    if (this.pos + 8 > this.end) throw new ProtobufError('truncated double');
    const value = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return value;
  }

  /** A length-delimited field as a reader over its bytes (no copy). */
  sub(): ProtobufReader {
    const length = this.varint();
    if (this.pos + length > this.end) throw new ProtobufError('length past the end of the message');
    const reader = new ProtobufReader(this.buf, this.pos, this.pos + length);
    this.pos += length;
    return reader;
  }

  string(): string {
    const r = this.sub();
    return r.buf.toString('utf8', r.pos, r.end);
  }

  bytesHex(): string {
    const r = this.sub();
    return r.buf.toString('hex', r.pos, r.end);
  }

  skip(wireType: number): void {
    switch (wireType) {
      case WireType.Varint: this.varint(); return;
      case WireType.Fixed64: this.advance(8); return;
      case WireType.LengthDelimited: this.sub(); return;
      case WireType.Fixed32: this.advance(4); return;
      default: throw new ProtobufError(`unsupported wire type ${wireType}`);
    }
  }

  private advance(n: number): void {
    if (this.pos + n > this.end) throw new ProtobufError('truncated field');
    this.pos += n;
  }
}
