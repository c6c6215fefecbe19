// Struct layouts of the uAPI (x86-64, little-endian, natural alignment) and the one codec that
// every face uses: the kernel model reads/writes user structs through it, the typed API builds
// arguments with it, the CLI and traces print with it, the explorer's C export emits from it.

export type Prim = 'u8' | 'u16' | 'u32' | 's32' | 'u64' | 's64';

/** A field type: a primitive, a fixed byte array, a fixed array of primitives, or a nested struct. */
export type FieldType =
  | Prim
  | { bytes: number }
  | { array: Prim; count: number }
  | StructDef<string>;

export interface Field {
  readonly name: string;
  readonly type: FieldType;
  readonly offset: number;
  readonly size: number;
}

export interface StructDef<N extends string = string> {
  readonly name: string;
  readonly size: number;
  readonly align: number;
  readonly fields: readonly Field[];
  readonly byName: Readonly<Record<N, Field>>;
  /** A flexible array member at the end (offset = size). */
  readonly flex?: { readonly name: string; readonly elem: Prim | StructDef<string> };
  /** phantom for field-name checking */
  readonly __names?: N;
}

const PRIM_SIZE: Record<Prim, number> = { u8: 1, u16: 2, u32: 4, s32: 4, u64: 8, s64: 8 };

export function sizeOfType(t: FieldType): number {
  if (typeof t === 'string') return PRIM_SIZE[t];
  if ('bytes' in t) return t.bytes;
  if ('array' in t) return PRIM_SIZE[t.array] * t.count;
  return t.size;
}

export function alignOfType(t: FieldType): number {
  if (typeof t === 'string') return PRIM_SIZE[t];
  if ('bytes' in t) return 1;
  if ('array' in t) return PRIM_SIZE[t.array];
  return t.align;
}

type FieldSpec = readonly [string, FieldType] | readonly [string, FieldType, { offset: number }];

/**
 * Define a struct with natural alignment (as the C compiler lays it out), or with explicit
 * offsets for unions/packed members. A trailing flexible array is given in opts.flex.
 */
export function defStruct<const F extends readonly FieldSpec[]>(
  name: string,
  fields: F,
  opts: { flex?: { name: string; elem: Prim | StructDef<string> }; size?: number; packed?: boolean } = {},
): StructDef<F[number][0]> {
  let off = 0;
  let align = 1;
  const out: Field[] = [];
  for (const spec of fields) {
    const [fname, type] = spec;
    const a = opts.packed ? 1 : alignOfType(type);
    align = Math.max(align, a);
    const explicit = spec.length === 3 ? spec[2].offset : undefined;
    const o = explicit ?? Math.ceil(off / a) * a;
    const s = sizeOfType(type);
    out.push({ name: fname, type, offset: o, size: s });
    off = Math.max(off, o + s);
  }
  if (opts.flex) align = Math.max(align, typeof opts.flex.elem === 'string' ? PRIM_SIZE[opts.flex.elem] : opts.flex.elem.align);
  const size = opts.size ?? Math.ceil(off / align) * align;
  const byName = Object.fromEntries(out.map((f) => [f.name, f])) as Record<F[number][0], Field>;
  return { name, size, align, fields: out, byName, ...(opts.flex ? { flex: opts.flex } : {}) };
}

/** offsetofend(struct, field) */
export function offsetofend<N extends string>(s: StructDef<N>, field: N): number {
  const f = s.byName[field];
  if (!f) throw new Error(`${s.name} has no field ${field}`);
  return f.offset + f.size;
}

export function offsetof<N extends string>(s: StructDef<N>, field: N): number {
  const f = s.byName[field];
  if (!f) throw new Error(`${s.name} has no field ${field}`);
  return f.offset;
}

export type Value = number | bigint | Uint8Array | number[] | bigint[] | Decoded;
export interface Decoded {
  [field: string]: Value;
}

function readPrim(dv: DataView, o: number, t: Prim, avail: number): number | bigint {
  if (o + PRIM_SIZE[t] > avail) return t === 'u64' || t === 's64' ? 0n : 0;
  switch (t) {
    case 'u8':
      return dv.getUint8(o);
    case 'u16':
      return dv.getUint16(o, true);
    case 'u32':
      return dv.getUint32(o, true);
    case 's32':
      return dv.getInt32(o, true);
    case 'u64':
      return dv.getBigUint64(o, true);
    case 's64':
      return dv.getBigInt64(o, true);
  }
}

function writePrim(dv: DataView, o: number, t: Prim, v: number | bigint): void {
  switch (t) {
    case 'u8':
      dv.setUint8(o, Number(v) & 0xff);
      return;
    case 'u16':
      dv.setUint16(o, Number(v) & 0xffff, true);
      return;
    case 'u32':
      dv.setUint32(o, Number(BigInt.asUintN(32, BigInt(v))), true);
      return;
    case 's32':
      dv.setInt32(o, Number(BigInt.asIntN(32, BigInt(v))), true);
      return;
    case 'u64':
      dv.setBigUint64(o, BigInt.asUintN(64, BigInt(v)), true);
      return;
    case 's64':
      dv.setBigInt64(o, BigInt.asIntN(64, BigInt(v)), true);
      return;
  }
}

/** Decode a struct from bytes; fields beyond the buffer read as 0 (a short user struct). */
export function decode(s: StructDef<string>, b: Uint8Array, base = 0): Decoded {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: Decoded = {};
  for (const f of s.fields) out[f.name] = decodeField(dv, base + f.offset, f.type, b.byteLength);
  return out;
}

function decodeField(dv: DataView, o: number, t: FieldType, avail: number): Value {
  if (typeof t === 'string') return readPrim(dv, o, t, avail);
  if ('bytes' in t) {
    const out = new Uint8Array(t.bytes);
    for (let i = 0; i < t.bytes && o + i < avail; i++) out[i] = dv.getUint8(o + i);
    return out;
  }
  if ('array' in t) {
    const sz = PRIM_SIZE[t.array];
    const arr: Array<number | bigint> = [];
    for (let i = 0; i < t.count; i++) arr.push(readPrim(dv, o + i * sz, t.array, avail));
    return arr as number[] | bigint[];
  }
  const sub = new Uint8Array(dv.buffer, dv.byteOffset, avail);
  return decode(t, sub, o);
}

/** Encode a struct (missing fields are 0) into `size` bytes (default sizeof). */
export function encode(s: StructDef<string>, v: Partial<Decoded>, size = s.size): Uint8Array {
  const b = new Uint8Array(Math.max(size, s.size));
  encodeInto(s, v, b, 0);
  return size >= s.size ? b : b.subarray(0, size);
}

export function encodeInto(s: StructDef<string>, v: Partial<Decoded>, b: Uint8Array, base: number): void {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (const f of s.fields) {
    const x = v[f.name];
    if (x === undefined) continue;
    const o = base + f.offset;
    const t = f.type;
    if (typeof t === 'string') writePrim(dv, o, t, x as number | bigint);
    else if ('bytes' in t) b.set((x as Uint8Array).subarray(0, t.bytes), o);
    else if ('array' in t) {
      const sz = PRIM_SIZE[t.array];
      (x as Array<number | bigint>).forEach((e, i) => {
        if (i < t.count) writePrim(dv, o + i * sz, t.array, e);
      });
    } else encodeInto(t, x as Decoded, b, o);
  }
}

/**
 * A typed view of a struct in a byte buffer: the kernel model's way to read and fill user
 * structs. get() of a u64 returns a bigint, of anything else a number.
 */
export class StructBuf<N extends string> {
  readonly dv: DataView;
  constructor(
    readonly def: StructDef<N>,
    readonly buf: Uint8Array = new Uint8Array(def.size),
  ) {
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  private field(name: N): Field {
    const f = this.def.byName[name];
    if (!f) throw new Error(`${this.def.name} has no field ${name}`);
    return f;
  }
  get(name: N): number {
    const f = this.field(name);
    const v = readPrim(this.dv, f.offset, f.type as Prim, this.buf.byteLength);
    return Number(v);
  }
  big(name: N): bigint {
    const f = this.field(name);
    return BigInt(readPrim(this.dv, f.offset, f.type as Prim, this.buf.byteLength));
  }
  set(name: N, v: number | bigint): this {
    const f = this.field(name);
    if (f.offset + f.size <= this.buf.byteLength) writePrim(this.dv, f.offset, f.type as Prim, v);
    return this;
  }
  bytes(name: N): Uint8Array {
    const f = this.field(name);
    return this.buf.subarray(f.offset, f.offset + f.size);
  }
  /** The first n bytes (for copy_to_user of a prefix). */
  head(n: number): Uint8Array {
    return this.buf.subarray(0, n);
  }
  toObject(): Decoded {
    return decode(this.def, this.buf);
  }
}

/** _IO/_IOR/_IOW/_IOWR encodings (include/uapi/asm-generic/ioctl.h). */
export const _IOC_NONE = 0;
export const _IOC_WRITE = 1;
export const _IOC_READ = 2;
export function _IOC(dir: number, type: number, nr: number, size: number): number {
  return ((dir << 30) | (size << 16) | (type << 8) | nr) >>> 0;
}
export function _IO(type: number | string, nr: number): number {
  return _IOC(_IOC_NONE, typeof type === 'string' ? type.charCodeAt(0) : type, nr, 0);
}
export function _IOC_NR(cmd: number): number {
  return cmd & 0xff;
}
export function _IOC_TYPE(cmd: number): number {
  return (cmd >>> 8) & 0xff;
}
