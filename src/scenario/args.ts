// Syscall arguments from scenario values, as `vfiosim run` (runner.ts) and the explorer's thread
// steps (explore/threads.ts) both build them: $name and $name.field references, constant names,
// open flags, byte strings, and ioctl arguments (structs encoded in the process's memory, with
// { uuid } / { bytes } / { buffer } fields and `fault` pointers). Each caller passes its own
// resolver and error class, so its errors stay its own and read the same.

import { Process, fileKind } from '../api/process.js';
import { Decoded, StructDef, decode, encode } from '../uapi/layout.js';
import { IOCTLS, IoctlInfo, ioctlByName } from '../uapi/ioctls.js';
import * as U from '../uapi/vfio.js';
import * as I from '../uapi/iommufd.js';
import type { Expect, Value } from './scenario.js';

export const CONSTANTS: Record<string, number> = {};
for (const [k, v] of Object.entries({ ...U, ...I })) if (typeof v === 'number') CONSTANTS[k] = v;
export const OPEN_FLAGS: Record<string, number> = {
  O_RDONLY: 0, O_WRONLY: 1, O_RDWR: 2, O_CREAT: 0o100, O_EXCL: 0o200, O_NONBLOCK: 0o4000, O_DIRECTORY: 0o200000,
  O_NOFOLLOW: 0o400000, O_CLOEXEC: 0o2000000,
};

/** The error class a caller reports a scenario's mistakes with. */
export type ErrorClass = new (message: string) => Error;

/** A name a step defined (`as:`): fds, written-back structs and values can be used as values. */
export type NamedVar =
  | { kind: 'fd'; fd: number }
  | { kind: 'struct'; fields: Decoded }
  | { kind: 'value'; value: number }
  | { kind: 'admin' | 'pending' | 'other' };

/** How scenario values become numbers. */
export interface ArgResolver {
  /** $name, $name.field, constant names, numbers */
  resolve(v: Value): Value;
  num(v: Value | undefined, what: string): number;
}

/** The resolver of both callers: names from `lookup`; the errors for unbound names are the caller's. */
export class ValueResolver implements ArgResolver {
  constructor(
    private readonly lookup: (name: string) => NamedVar | undefined,
    private readonly Err: ErrorClass,
    /** $name is not bound */
    private readonly unbound: (name: string) => Error,
    /** a bare name where an fd goes is not a bound fd */
    private readonly noFd: (name: string, what: string) => Error,
  ) {}

  resolve(v: Value): Value {
    if (typeof v === 'string') {
      if (v.startsWith('$')) {
        const [name, field] = v.slice(1).split('.', 2) as [string, string | undefined];
        const x = this.lookup(name);
        if (!x) throw this.unbound(name);
        if (field !== undefined) {
          if (x.kind !== 'struct') throw new this.Err(`"${name}" has no fields`);
          const f = x.fields[field];
          if (f === undefined) throw new this.Err(`"${name}" has no field "${field}"`);
          return f as Value;
        }
        if (x.kind === 'fd') return x.fd;
        if (x.kind === 'value') return x.value;
        throw new this.Err(`"${name}" is not a value`);
      }
      if (v in CONSTANTS) return CONSTANTS[v]!;
      if (/^-?(0x[0-9a-fA-F]+|\d+)$/.test(v)) return v.startsWith('-') ? -Number(v.slice(1)) : Number(v);
    }
    return v;
  }

  num(v: Value | undefined, what: string): number {
    const r = this.resolve(v ?? 0);
    if (typeof r === 'bigint') return Number(r);
    if (typeof r !== 'number') throw new this.Err(`${what}: expected a number, got ${JSON.stringify(r)}`);
    return r;
  }

  /** an fd: a bare name of an fd, or a number */
  fd(v: Value | undefined, what = 'fd'): number {
    if (typeof v === 'string' && !v.startsWith('$')) {
      const x = this.lookup(v);
      if (x?.kind === 'fd') return x.fd;
      if (!/^(0x)?[0-9a-fA-F]+$/.test(v)) throw this.noFd(v, what);
    }
    return this.num(v, what);
  }
}

/** open(2) flags: a number or O_ names joined with | (default O_RDWR). */
export function openFlags(v: Value | undefined, Err: ErrorClass): number {
  if (v === undefined) return 2;
  if (typeof v === 'number') return v;
  return String(v)
    .split('|')
    .map((s) => s.trim())
    .reduce((acc, s) => {
      if (!(s in OPEN_FLAGS)) throw new Err(`unknown open flag ${s}`);
      return acc | OPEN_FLAGS[s]!;
    }, 0);
}

/** Data: hex ("00 11" or "00:11"), other text as UTF-8, or a list of numbers. */
export function parseBytes(v: Value, Err: ErrorClass): Uint8Array {
  if (typeof v === 'string') {
    const hex = v.replace(/[\s:]/g, '');
    if (/^([0-9a-fA-F]{2})*$/.test(hex) && hex.length) return Uint8Array.from(hex.match(/../g)!.map((x) => parseInt(x, 16)));
    return new TextEncoder().encode(v);
  }
  if (Array.isArray(v)) return Uint8Array.from(v.map((x) => Number(x)));
  throw new Err('bytes: expected a hex string or a list of numbers');
}

function uuidBytes(s: string): Uint8Array | null {
  const h = s.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(h)) return null;
  return Uint8Array.from(h.match(/../g)!.map((x) => parseInt(x, 16)));
}

/** Why a return value fails a step's `expect`, if it does. */
export function retFailure(e: Expect, ret: number, errno: string | undefined): string | undefined {
  if (e.kind === 'ret' && ret !== e.value) return `expected ${e.value}, got ${ret}${errno ? ' ' + errno : ''}`;
  if (e.kind === 'ok' && ret < 0) return `expected success, got -1 ${errno}`;
  if (e.kind === 'errno' && (ret !== -1 || errno !== e.name)) return `expected -1 ${e.name}, got ${ret}${errno ? ' ' + errno : ''}`;
  return undefined;
}

/** The struct an ioctl argument points to, to decode what the call wrote back. */
export interface ReadBack {
  def: StructDef<string>;
  ptr: number;
  size: number;
}

export function readBack(p: Process, rb: ReadBack): Decoded {
  return decode(rb.def, p.mem.read(rb.ptr, rb.size));
}

export interface IoctlArg {
  info: IoctlInfo | undefined;
  cmd: number;
  /** the ioctl's name, or its number in hex */
  name: string;
  arg: bigint;
  /**
   * how `arg` was built: 'pointer' ('fault' or 'NULL'), 'value', 'none', 'string' (a C string in
   * memory), 'struct' (encoded in memory), 's32' (a pointer to an s32)
   */
  form: 'pointer' | 'value' | 'none' | 'string' | 'struct' | 's32';
  /** form 'string': the string */
  str?: string;
  /** form 'struct': the fields given (size fields defaulted) */
  fields?: Decoded;
  /** form 'struct': the struct to read back */
  readBack: ReadBack | null;
}

/** An ioctl's request (a name or a number) and its argument, built in the process's memory. */
export function ioctlArg(p: Process, fd: number, req: Value | undefined, argv: Value | undefined, r: ArgResolver, Err: ErrorClass): IoctlArg {
  const kind = fileKind(p.file(fd));
  let info: IoctlInfo | undefined;
  let cmd: number;
  if (typeof req === 'string' && !/^(0x)?[0-9a-fA-F]+$/.test(req)) {
    info = ioctlByName(req);
    if (!info) throw new Err(`unknown ioctl ${req}`);
    cmd = info.value;
  } else {
    cmd = r.num(req, 'ioctl');
    info = IOCTLS.find((i) => i.value === cmd && (!kind || i.files.includes(kind)));
  }
  const name = info?.name ?? '0x' + cmd.toString(16);
  const out = { info, cmd, name, readBack: null };
  if (argv === 'fault' || argv === 'NULL') return { ...out, arg: argv === 'NULL' ? 0n : 1n, form: 'pointer' };
  if (info?.arg === 'value' || (info === undefined && typeof argv !== 'object'))
    return { ...out, arg: BigInt(r.num(argv ?? 0, 'arg')), form: 'value' };
  if (info?.arg === 'none') return { ...out, arg: 0n, form: 'none' };
  if (info?.arg === 'string') {
    const str = String(r.resolve(argv ?? ''));
    return { ...out, arg: BigInt(p.mem.cstring(str)), form: 'string', str };
  }
  if (info?.struct && typeof argv === 'object' && argv !== null && !Array.isArray(argv)) {
    const def = info.struct;
    const fields: Decoded = {};
    let size = def.size;
    for (const [k, v] of Object.entries(argv)) {
      if (k === 'bytes') {
        size = r.num(v, 'bytes');
        continue;
      }
      fields[k] = structValue(p, v, `${name}.${k}`, r, Err);
    }
    const sf = info.sizeField;
    if (sf && fields[sf] === undefined) fields[sf] = def.size;
    size = Math.max(size, sf ? Number(fields[sf]) : def.size, def.size);
    const ptr = p.mem.alloc(size);
    p.mem.write(ptr, encode(def, fields, size));
    return { ...out, arg: BigInt(ptr), form: 'struct', fields, readBack: { def, ptr, size: def.size } };
  }
  // a pointer to an s32 (VFIO_GROUP_SET_CONTAINER)
  return { ...out, arg: BigInt(p.mem.s32At(r.num(argv ?? 0, 'arg'))), form: 's32' };
}

/** A struct field value: numbers, $refs, constants, or { uuid } / { bytes } / { buffer } put in memory (a pointer). */
function structValue(p: Process, v: Value, what: string, r: ArgResolver, Err: ErrorClass): number | bigint {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    const o = v as Record<string, Value>;
    if (typeof o.uuid === 'string') {
      const b = uuidBytes(o.uuid);
      if (!b) throw new Err(`${what}: "${o.uuid}" is not a UUID`);
      const ptr = p.mem.alloc(16);
      p.mem.write(ptr, b);
      return BigInt(ptr);
    }
    if (o.bytes !== undefined) {
      const b = parseBytes(o.bytes, Err);
      const ptr = p.mem.alloc(Math.max(1, b.length));
      p.mem.write(ptr, b);
      return BigInt(ptr);
    }
    if (o.buffer !== undefined) return BigInt(p.mem.alloc(r.num(o.buffer, what)));
    throw new Err(`${what}: a nested value must be { uuid: ... }, { bytes: ... } or { buffer: SIZE }`);
  }
  if (v === 'fault') return 1n;
  const x = r.resolve(v);
  if (typeof x === 'number' || typeof x === 'bigint') return x;
  throw new Err(`${what}: expected a number, got ${JSON.stringify(x)}`);
}
