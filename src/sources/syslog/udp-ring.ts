/**
 * The hand-off between the UDP reader thread (udp-reader.ts) and the node's
 * event loop: a bounded ring of datagrams in a SharedArrayBuffer, one writer
 * (the reader thread) and one reader (the main thread), no locks.
 *
 *   control (Int32Array, shared)        data (SharedArrayBuffer, `capacity` bytes)
 *   ┌───────┬──────┬─────────┬────────┐ ┌──────────────────────────────────────────────┐
 *   │ WRITE │ READ │ WAITING │ DROPPED│ │ …│len│port│fam│alen│addr…│datagram…│len│…│-1│ │
 *   └───────┴──────┴─────────┴────────┘ └──────────────────────────────────────────────┘
 *                                             ▲ READ: next entry          ▲ WRAP: go to 0
 *
 * An entry is a 32-bit length, the sender's port (16 bits), address family
 * and address length (8 bits each), the address (4 bytes for IPv4, the text
 * for IPv6), then the datagram; each part padded to 4 bytes. An entry that
 * does not fit before the end starts at 0 after a WRAP marker. WRITE == READ
 * means empty, so the writer never fills the ring to the last byte. What does
 * not fit is dropped by the writer and counted in DROPPED: the reader thread
 * never waits, so the kernel's buffer is drained whatever the event loop does.
 *
 * The main thread sleeps with Atomics.waitAsync on WRITE only after it set
 * WAITING; the writer calls Atomics.notify only then, so a busy ring costs
 * no notification per datagram.
 */

// Each word on a cache line of its own (16 × 4 bytes): the writer's stores to WRITE do not
// evict the line the reader stores READ to, and the other way round.
const WRITE = 0;
const READ = 16;
const WAITING = 32;
const DROPPED = 48;
const CONTROL_WORDS = 64;

const WRAP = -1;
const HEADER_BYTES = 8;
export const MAX_ADDRESS_BYTES = 255;

/** Atomics.waitAsync (Node.js 16+; in TypeScript's lib from es2024 on). */
const waitAsync = (Atomics as unknown as {
  waitAsync(array: Int32Array, index: number, value: number): { async: false; value: string } | { async: true; value: Promise<string> };
}).waitAsync;

function pad4(n: number): number {
  return (n + 3) & ~3;
}

/** The shared memory of one ring, as passed to the reader thread. */
export interface RingMemory {
  control: SharedArrayBuffer;
  data: SharedArrayBuffer;
}

export function createRingMemory(capacityBytes: number): RingMemory {
  // Not touched here: a page becomes resident when the ring first reaches it (a page fault every ~15 datagrams on the
  // first pass), so a node that takes little or no UDP does not hold the whole ring (16 MiB by default) at rest.
  const data = new SharedArrayBuffer(Math.max(4096, capacityBytes & ~3));
  return { control: new SharedArrayBuffer(CONTROL_WORDS * 4), data };
}

/** The reader thread's side. */
export class RingWriter {
  private readonly control: Int32Array;
  private readonly bytes: Buffer;
  private readonly view: DataView;
  private readonly capacity: number;
  /** Only this side moves WRITE, so it keeps its own copy. */
  private write = 0;
  /** READ as last loaded: the reader only moves it forward, so the space it shows is never more than there is. */
  private read = 0;

  constructor(memory: RingMemory) {
    this.control = new Int32Array(memory.control);
    this.bytes = Buffer.from(memory.data);
    this.view = new DataView(memory.data);
    this.capacity = memory.data.byteLength;
    this.write = Atomics.load(this.control, WRITE);
    this.read = Atomics.load(this.control, READ);
  }

  /**
   * Append one datagram; false (and counted in DROPPED) when it does not fit.
   * `ipv4` is the address as a number for IPv4 senders, else -1 and `address` the text.
   */
  push(datagram: Buffer, ipv4: number, address: string, port: number): boolean {
    const addressBytes = ipv4 >= 0 ? 4 : Math.min(address.length, MAX_ADDRESS_BYTES);
    const need = HEADER_BYTES + pad4(addressBytes) + pad4(datagram.length);
    if (!this.fits(need)) {
      this.read = Atomics.load(this.control, READ);
      if (!this.fits(need)) return this.drop();
    }
    let at = this.write;
    if (at >= this.read && !this.fitsAtEnd(need)) {
      this.view.setInt32(at, WRAP, true);
      at = 0;
    }
    const v = this.view;
    v.setInt32(at, datagram.length, true);
    v.setUint16(at + 4, port, true);
    v.setUint8(at + 6, ipv4 >= 0 ? 4 : 6);
    v.setUint8(at + 7, addressBytes);
    if (ipv4 >= 0) v.setUint32(at + HEADER_BYTES, ipv4, true);
    else this.bytes.write(address, at + HEADER_BYTES, addressBytes, 'latin1');
    datagram.copy(this.bytes, at + HEADER_BYTES + pad4(addressBytes));
    let next = at + need;
    if (next === this.capacity) next = 0;
    this.write = next;
    Atomics.store(this.control, WRITE, next);
    if (Atomics.load(this.control, WAITING) === 1) {
      Atomics.store(this.control, WAITING, 0);
      Atomics.notify(this.control, WRITE);
    }
    return true;
  }

  /**
   * Whether an entry of `need` bytes fits with READ at this.read: free are
   * [write, capacity) and [0, read) when write ≥ read, else [write, read);
   * the entry never reaches READ (full would read as empty).
   */
  private fits(need: number): boolean {
    if (this.write < this.read) return need < this.read - this.write;
    return this.fitsAtEnd(need) || need < this.read;
  }

  /** Whether the entry fits between WRITE and the end (when WRITE ≥ READ): filling to the last byte is fine unless READ is 0. */
  private fitsAtEnd(need: number): boolean {
    const tail = this.capacity - this.write;
    return need < tail || (need === tail && this.read !== 0);
  }

  private drop(): false {
    Atomics.add(this.control, DROPPED, 1);
    return false;
  }
}

/** The main thread's side: read entries in place, then release them. */
export class RingReader {
  private readonly control: Int32Array;
  /** The whole ring as a Buffer: an entry's datagram is bytes[start, end). */
  readonly bytes: Buffer;
  private readonly view: DataView;
  private readonly capacity: number;
  private read: number;
  /** WRITE as last loaded: loaded again only once the entries up to it are read. */
  private write: number;
  private droppedSeen = 0;

  /** The entry next() stopped at. */
  start = 0;
  end = 0;
  port = 0;
  /** The sender's IPv4 address as a number, or -1 for IPv6 (then see address()). */
  ipv4 = -1;
  private addressAt = 0;
  private addressBytes = 0;

  constructor(memory: RingMemory) {
    this.control = new Int32Array(memory.control);
    this.bytes = Buffer.from(memory.data);
    this.view = new DataView(memory.data);
    this.capacity = memory.data.byteLength;
    this.read = Atomics.load(this.control, READ);
    this.write = this.read;
  }

  /** Step to the next entry (its fields set above); false when the ring is empty. The entry stays valid until release(). */
  next(): boolean {
    if (this.read === this.write) {
      this.write = Atomics.load(this.control, WRITE);
      if (this.read === this.write) return false;
    }
    let at = this.read;
    let length = this.view.getInt32(at, true);
    if (length === WRAP) {
      at = 0;
      length = this.view.getInt32(0, true);
    }
    const v = this.view;
    this.port = v.getUint16(at + 4, true);
    const family = v.getUint8(at + 6);
    this.addressBytes = v.getUint8(at + 7);
    this.addressAt = at + HEADER_BYTES;
    this.ipv4 = family === 4 ? v.getUint32(this.addressAt, true) : -1;
    this.start = this.addressAt + pad4(this.addressBytes);
    this.end = this.start + length;
    let next = this.start + pad4(length);
    if (next === this.capacity) next = 0;
    this.read = next;
    return true;
  }

  /** The current entry's IPv6 address text. */
  address(): string {
    return this.bytes.toString('latin1', this.addressAt, this.addressAt + this.addressBytes);
  }

  /** Give the entries read so far back to the writer. */
  release(): void {
    Atomics.store(this.control, READ, this.read);
  }

  /** Bytes the ring holds that have not been read. */
  get queuedBytes(): number {
    const write = Atomics.load(this.control, WRITE);
    return write >= this.read ? write - this.read : this.capacity - this.read + write;
  }

  get capacityBytes(): number {
    return this.capacity;
  }

  /** Datagrams the writer dropped since the previous call. */
  takeDropped(): number {
    const total = Atomics.load(this.control, DROPPED);
    const dropped = (total - this.droppedSeen) | 0;
    this.droppedSeen = total;
    return dropped;
  }

  /**
   * Resolve when the writer has added something (at once if it already has).
   * `wake()` resolves it too (to stop).
   */
  whenWritten(): Promise<unknown> {
    const write = Atomics.load(this.control, WRITE);
    Atomics.store(this.control, WAITING, 1);
    if (this.read !== write || Atomics.load(this.control, WRITE) !== write) {
      Atomics.store(this.control, WAITING, 0);
      return Promise.resolve();
    }
    const wait = waitAsync(this.control, WRITE, write);
    return wait.async ? wait.value : Promise.resolve();
  }

  wake(): void {
    Atomics.notify(this.control, WRITE);
  }
}

/** An IPv4 address in dotted form as a number (the ring's key for it), or -1. */
export function ipv4Number(address: string): number {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < address.length; i++) {
    const c = address.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || part > 255) return -1;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 0x30 && c <= 0x39) {
      part = part * 10 + (c - 0x30);
      digits++;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0 || part > 255) return -1;
  return value * 256 + part;
}

export function ipv4Text(value: number): string {
  return `${Math.floor(value / 16777216) & 255}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}
