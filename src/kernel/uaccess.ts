// User memory as the kernel sees it (include/linux/uaccess.h). Ioctls receive a user pointer;
// the model reads and writes it with the kernel's semantics. In process the memory is a
// simulated address space (AddressSpace); the bridge supplies the client's real memory.

import { E2BIG, EFAULT, EINVAL } from './errno.js';
import type { MmioOps } from './fs/file.js';

export const PAGE_SIZE = 4096;
/** Highest user address + 1 on x86-64 with 4-level paging. */
export const TASK_SIZE = 0x7ffffffff000;

/** What the kernel needs of a process's memory. Reads/writes fail (null/false) on a fault. */
export interface UserMemory {
  read(addr: number, len: number): Uint8Array | null;
  write(addr: number, data: Uint8Array): boolean;
  /**
   * pin_user_pages: the pages backing [addr, addr+len), which stay valid (and keep their content)
   * whatever the process later does to its mappings; null if a page is unmapped or lacks the
   * access (write access when `write`).
   */
  pin?(addr: number, len: number, write: boolean): PinnedPages | null;
  /**
   * Whether [addr, addr+len) touches a VM_IO | VM_PFNMAP mapping (a driver's mmap of device
   * memory), which get_user_pages refuses (check_vma_flags: -EFAULT).
   */
  ioMapped?(addr: number, len: number): boolean;
}

/** Pinned memory (struct page references): what an IOMMU maps and a device reads and writes. */
export interface PinnedPages {
  readonly length: number;
  read(off: number, len: number): Uint8Array;
  write(off: number, data: Uint8Array): void;
}

/** Pinned pages over a list of (buffer, offset, length) segments. */
export class SegmentPages implements PinnedPages {
  readonly length: number;
  constructor(private readonly segs: Array<{ data: Uint8Array; off: number; len: number }>) {
    this.length = segs.reduce((a, s) => a + s.len, 0);
  }
  private walk(off: number, len: number, f: (data: Uint8Array, o: number, n: number, at: number) => void): void {
    if (off < 0 || off + len > this.length) throw new RangeError(`pinned pages: [${off}, +${len}) out of ${this.length}`);
    let pos = 0;
    let at = 0;
    for (const s of this.segs) {
      const end = pos + s.len;
      if (off < end && off + len > pos) {
        const from = Math.max(off, pos);
        const to = Math.min(off + len, end);
        f(s.data, s.off + (from - pos), to - from, at);
        at += to - from;
      }
      pos = end;
      if (pos >= off + len) break;
    }
  }
  read(off: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    this.walk(off, len, (d, o, n, at) => out.set(d.subarray(o, o + n), at));
    return out;
  }
  write(off: number, data: Uint8Array): void {
    this.walk(off, data.length, (d, o, n, at) => d.set(data.subarray(at, at + n), o));
  }
  /** A sub-range [off, off+len) of these pages. */
  slice(off: number, len: number): SegmentPages {
    const segs: Array<{ data: Uint8Array; off: number; len: number }> = [];
    this.walk(off, len, (data, o, n) => segs.push({ data, off: o, len: n }));
    return new SegmentPages(segs);
  }
}

export const PROT_READ = 1;
export const PROT_WRITE = 2;

interface Vma {
  start: number;
  end: number; // exclusive
  prot: number;
  data: Uint8Array;
  /** offset of `start` inside `data` (a split VMA keeps sharing its buffer) */
  off: number;
  /** a driver's mmap (VM_IO | VM_PFNMAP) */
  io?: boolean;
  /** the driver's vm_operations: every access goes through them (trapped MMIO) */
  mmio?: MmioOps;
}

/**
 * A simulated user address space: page-granular mappings backed by byte arrays.
 * Addresses are JS numbers (user addresses are below 2^47).
 */
export class AddressSpace implements UserMemory {
  private vmas: Vma[] = []; // sorted by start, non-overlapping
  private nextHint = 0x10000000;

  /** mmap(NULL, len, prot, MAP_PRIVATE|MAP_ANONYMOUS): returns the address. */
  map(len: number, prot = PROT_READ | PROT_WRITE, at?: number): number {
    if (len <= 0) throw new Error('map: length must be positive');
    const size = roundUp(len, PAGE_SIZE);
    let addr: number;
    if (at !== undefined) {
      if (at % PAGE_SIZE !== 0) throw new Error('map: address not page aligned');
      addr = at;
      this.unmap(addr, size);
    } else {
      addr = this.findFree(size);
    }
    const vma: Vma = { start: addr, end: addr + size, prot, data: new Uint8Array(size), off: 0 };
    this.insert(vma);
    return addr;
  }

  /**
   * Map an existing buffer (device memory shared with the model) at a free address; with `mmio`,
   * every access goes through the driver's handler instead of the buffer.
   */
  mapBacked(data: Uint8Array, prot: number, mmio?: MmioOps): number {
    if (data.length % PAGE_SIZE !== 0) throw new Error('mapBacked: length must be page aligned');
    const addr = this.findFree(data.length);
    this.insert({ start: addr, end: addr + data.length, prot, data, off: 0, io: true, ...(mmio ? { mmio } : {}) });
    return addr;
  }

  /** the signal the last failed access would raise ('SIGBUS': a driver's mapping refused it) */
  lastFault: 'SIGSEGV' | 'SIGBUS' | null = null;

  /** Whether [addr, addr+len) touches a mapping made by mapBacked (VM_IO | VM_PFNMAP). */
  ioMapped(addr: number, len: number): boolean {
    for (let i = this.find(addr); i < this.vmas.length && this.vmas[i]!.start < addr + len; i++) if (this.vmas[i]!.io) return true;
    return false;
  }

  /** munmap: removes whole or partial mappings in [addr, addr+len). */
  unmap(addr: number, len: number): void {
    const end = addr + roundUp(len, PAGE_SIZE);
    const out: Vma[] = [];
    for (const v of this.vmas) {
      if (v.end <= addr || v.start >= end) {
        out.push(v);
        continue;
      }
      if (v.start < addr) out.push({ ...v, end: addr });
      if (v.end > end) out.push({ ...v, start: end, off: v.off + (end - v.start) });
    }
    this.vmas = out;
  }

  /** mprotect */
  protect(addr: number, len: number, prot: number): void {
    const end = addr + roundUp(len, PAGE_SIZE);
    const out: Vma[] = [];
    for (const v of this.vmas) {
      if (v.end <= addr || v.start >= end) {
        out.push(v);
        continue;
      }
      const s = Math.max(v.start, addr);
      const e = Math.min(v.end, end);
      if (v.start < s) out.push({ ...v, end: s });
      out.push({ ...v, start: s, end: e, prot, off: v.off + (s - v.start) });
      if (v.end > e) out.push({ ...v, start: e, off: v.off + (e - v.start) });
    }
    this.vmas = out;
  }

  read(addr: number, len: number): Uint8Array | null {
    return this.access(addr, len, PROT_READ, null);
  }

  write(addr: number, data: Uint8Array): boolean {
    return this.access(addr, data.length, PROT_WRITE, data) !== null;
  }

  /** pin_user_pages (FOLL_LONGTERM): the backing buffers of the range, or null on a fault. */
  pin(addr: number, len: number, write: boolean): PinnedPages | null {
    if (!Number.isSafeInteger(addr) || addr < 0 || len < 0 || addr + len > TASK_SIZE) return null;
    const segs: Array<{ data: Uint8Array; off: number; len: number }> = [];
    let a = addr;
    const end = addr + len;
    let i = this.find(a);
    const need = write ? PROT_WRITE : PROT_READ;
    while (a < end) {
      const v = this.vmas[i];
      if (!v || v.start > a || !(v.prot & need)) return null;
      const e = Math.min(end, v.end);
      segs.push({ data: v.data, off: v.off + (a - v.start), len: e - a });
      a = e;
      i++;
    }
    return new SegmentPages(segs);
  }

  /** A copy for fork(): same layout, private copies of the bytes. */
  clone(): AddressSpace {
    const a = new AddressSpace();
    const copies = new Map<Uint8Array, Uint8Array>();
    a.vmas = this.vmas.map((v) => {
      let d = copies.get(v.data);
      if (!d) {
        d = v.data.slice();
        copies.set(v.data, d);
      }
      return { ...v, data: d };
    });
    a.nextHint = this.nextHint;
    return a;
  }

  mappings(): Array<{ start: number; end: number; prot: number }> {
    return this.vmas.map((v) => ({ start: v.start, end: v.end, prot: v.prot }));
  }

  private access(addr: number, len: number, need: number, src: Uint8Array | null): Uint8Array | null {
    if (!Number.isSafeInteger(addr) || addr < 0 || len < 0 || addr + len > TASK_SIZE) return null;
    const out = src ? src : new Uint8Array(len);
    if (len === 0) return out;
    const end = addr + len;
    let i = this.find(addr);
    const v0 = this.vmas[i];
    if (v0 && v0.start <= addr && end <= v0.end && !v0.mmio) {
      // the common case: one plain mapping holds the whole range
      if (!(v0.prot & need)) {
        this.lastFault = 'SIGSEGV';
        return null;
      }
      const o = v0.off + (addr - v0.start);
      if (src) v0.data.set(src, o);
      else out.set(v0.data.subarray(o, o + len));
      return out;
    }
    // First check the whole range (a fault must not leave a partial write in this model).
    let a = addr;
    const segs: Array<[Vma, number, number]> = [];
    while (a < end) {
      const v = this.vmas[i];
      if (!v || v.start > a || !(v.prot & need)) {
        this.lastFault = 'SIGSEGV';
        return null;
      }
      const e = Math.min(end, v.end);
      segs.push([v, a, e]);
      a = e;
      i++;
    }
    for (const [v, s, e] of segs) {
      const o = v.off + (s - v.start);
      if (v.mmio) {
        const part = src ? src.subarray(s - addr, e - addr) : out.subarray(s - addr, e - addr);
        if (!v.mmio.access(o, part, !!src)) {
          this.lastFault = 'SIGBUS';
          return null;
        }
      } else if (src) v.data.set(src.subarray(s - addr, e - addr), o);
      else out.set(v.data.subarray(o, o + (e - s)), s - addr);
    }
    return out;
  }

  private find(addr: number): number {
    // index of the vma containing addr, or of the first vma after it
    let lo = 0;
    let hi = this.vmas.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.vmas[mid]!.end <= addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private insert(v: Vma): void {
    const i = this.find(v.start);
    this.vmas.splice(i, 0, v);
  }

  private findFree(size: number): number {
    let addr = this.nextHint;
    for (;;) {
      const i = this.find(addr);
      const v = this.vmas[i];
      if (!v || v.start >= addr + size) {
        if (addr + size > TASK_SIZE) throw new Error('address space exhausted');
        this.nextHint = addr + size + PAGE_SIZE; // leave a guard page between mappings
        return addr;
      }
      addr = v.end + PAGE_SIZE;
    }
  }
}

export function roundUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** Normalise an ioctl argument (unsigned long) to a user pointer; invalid values fault later. */
export function uptr(arg: bigint | number): number {
  const v = typeof arg === 'bigint' ? arg : BigInt(arg);
  if (v < 0n || v >= BigInt(TASK_SIZE)) return -1;
  return Number(v);
}

// ---- copy helpers; they return negative errnos like the kernel's -------------------------------

/** copy_from_user: the bytes, or -EFAULT. */
export function copyFromUser(mm: UserMemory, addr: number, len: number): Uint8Array | number {
  if (addr < 0) return -EFAULT;
  const b = mm.read(addr, len);
  return b ?? -EFAULT;
}

/** copy_to_user: 0 or -EFAULT. */
export function copyToUser(mm: UserMemory, addr: number, data: Uint8Array): number {
  if (addr < 0) return -EFAULT;
  return mm.write(addr, data) ? 0 : -EFAULT;
}

/** get_user of a u32 (little-endian): the value, or -EFAULT (as a tagged result). */
export function getUserU32(mm: UserMemory, addr: number): { ok: true; v: number } | { ok: false; err: number } {
  const b = copyFromUser(mm, addr, 4);
  if (typeof b === 'number') return { ok: false, err: b };
  return { ok: true, v: new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true) };
}

export function getUserS32(mm: UserMemory, addr: number): { ok: true; v: number } | { ok: false; err: number } {
  const b = copyFromUser(mm, addr, 4);
  if (typeof b === 'number') return { ok: false, err: b };
  return { ok: true, v: new DataView(b.buffer, b.byteOffset, 4).getInt32(0, true) };
}

/**
 * check_zeroed_user (lib/usercopy.c): scans [addr, addr+size) in order and stops at the first
 * non-zero byte (0) or the first fault (-EFAULT); 1 if every byte is zero. A non-zero byte ahead
 * of an unmapped page therefore wins over the fault, as the kernel's word-by-word loop does.
 */
export function checkZeroedUser(mm: UserMemory, addr: number, size: number): number {
  if (size === 0) return 1;
  // user_read_access_begin: access_ok of the whole range
  if (addr < 0 || addr + size > TASK_SIZE) return -EFAULT;
  let a = addr;
  let left = size;
  while (left > 0) {
    // mappings are page-granular: a page-bounded chunk is either readable or a fault
    const chunk = Math.min(left, PAGE_SIZE - (a % PAGE_SIZE));
    const b = mm.read(a, chunk);
    if (!b) return -EFAULT;
    for (const x of b) if (x !== 0) return 0;
    a += chunk;
    left -= chunk;
  }
  return 1;
}

/**
 * copy_struct_from_user(dst of ksize, src, usize): a smaller user struct is zero-extended; a
 * larger one must have an all-zero tail (else -E2BIG; a fault before a non-zero byte is -EFAULT).
 * Returns a buffer of exactly ksize bytes, or a negative errno.
 */
export function copyStructFromUser(mm: UserMemory, ksize: number, addr: number, usize: number): Uint8Array | number {
  const size = Math.min(ksize, usize);
  const rest = usize - size;
  if (rest > 0) {
    const ret = checkZeroedUser(mm, addr + size, rest);
    if (ret <= 0) return ret < 0 ? ret : -E2BIG;
  }
  const head = copyFromUser(mm, addr, size);
  if (typeof head === 'number') return head;
  const out = new Uint8Array(ksize);
  out.set(head);
  return out;
}

/**
 * strndup_user(src, n): the string, -EFAULT if unreadable before a NUL, -EINVAL if no NUL
 * within n bytes.
 */
export function strndupUser(mm: UserMemory, addr: number, n: number): string | number {
  if (addr < 0) return -EFAULT;
  // strnlen_user reads until the NUL, a fault, or n bytes; mappings are page-granular, so read
  // one page-bounded chunk at a time.
  const parts: Uint8Array[] = [];
  let a = addr;
  let left = n;
  while (left > 0) {
    const chunk = Math.min(left, PAGE_SIZE - (a % PAGE_SIZE));
    const b = mm.read(a, chunk);
    if (!b) return -EFAULT;
    const z = b.indexOf(0);
    if (z >= 0) {
      parts.push(b.subarray(0, z));
      return new TextDecoder().decode(concat(parts));
    }
    parts.push(b);
    a += chunk;
    left -= chunk;
  }
  return -EINVAL;
}

export function concat(parts: Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
