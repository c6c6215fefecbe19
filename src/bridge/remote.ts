// A real client process as the model sees it: its memory (UserMemory over process_vm_readv /
// process_vm_writev, so page protections and EFAULT are the real ones) and its fd table (fds are
// resolved in the process's own table, /proc/PID/fd/N, so a process can name only its own files).

import { readFileSync, readlinkSync } from 'node:fs';
import { EventfdCtx, eventfdFops } from '../kernel/eventfd.js';
import { File, FileOperations, MmioOps, O_RDWR } from '../kernel/fs/file.js';
import { FdTable } from '../kernel/process.js';
import { PinnedPages, TASK_SIZE, UserMemory } from '../kernel/uaccess.js';
import type { Addon } from './native.js';

/** One line of /proc/PID/maps. */
export interface ClientVma {
  start: number;
  end: number;
  perms: string;
  /** file offset of `start` */
  offset: number;
  ino: number;
  path: string;
}

/** /proc/PID/maps, parsed (null if the process is gone). */
export function readMaps(pid: number): ClientVma[] | null {
  let maps: string;
  try {
    maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
  } catch {
    return null;
  }
  const out: ClientVma[] = [];
  for (const l of maps.split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) ([0-9a-f]+) \S+ (\d+)\s*(.*)$/.exec(l);
    if (!m) continue;
    out.push({ start: parseInt(m[1]!, 16), end: parseInt(m[2]!, 16), perms: m[3]!, offset: parseInt(m[4]!, 16), ino: Number(m[5]), path: m[6]! });
  }
  return out;
}

/** memfds of device memory are named "vfiosim:..." (the daemon's allocator): a region mapping. */
export const DEVMEM_MAP_PREFIX = '/memfd:vfiosim:';

/**
 * What the daemon knows about region mappings: the device memory behind a memfd, and the mapping
 * a client vma comes from (its prot as the program asked, whether accesses are trapped, the
 * driver's vm_ops), so that the kernel's accesses to that memory (pin for DMA, copy_from_user)
 * see what they would see on a BAR mapping.
 */
export interface RegionMaps {
  /** the device memory (the whole memfd buffer) behind memfd inode `ino` */
  memory(ino: number): Uint8Array | undefined;
  /** the mapping `vma` of process `pid` shows (null: a device memfd the daemon did not hand out) */
  mapping(pid: number, vma: ClientVma): { prot: number; trapped: boolean; memfdOff: number; length: number; mmio?: MmioOps } | null;
}

const PROT_R = 1;
const PROT_W = 2;

/** The client's memory. Reads and writes fail (null/false) exactly where the client would fault. */
export class RemoteMemory implements UserMemory {
  constructor(
    readonly pid: number,
    private readonly native: Addon,
    private readonly regions?: RegionMaps,
  ) {}

  read(addr: number, len: number): Uint8Array | null {
    if (!Number.isSafeInteger(addr) || addr < 0 || len < 0 || addr + len > TASK_SIZE) return null;
    const b = new Uint8Array(len);
    if (len === 0) return b;
    if (this.native.vmRead(this.pid, addr, b, len) === len) return b;
    return this.trappedAccess(addr, b, false) ? b : null;
  }

  write(addr: number, data: Uint8Array): boolean {
    if (!Number.isSafeInteger(addr) || addr < 0 || addr + data.length > TASK_SIZE) return false;
    if (data.length === 0) return true;
    if (this.native.vmWrite(this.pid, addr, data, data.length) === data.length) return true;
    return this.trappedAccess(addr, data, true);
  }

  /**
   * A kernel access (copy_from_user / copy_to_user) that touches a trapped region mapping, which
   * the client's page tables refuse (PROT_NONE): the driver's vm_ops take those bytes, as the
   * fault handler of a VM_IO mapping would; the rest is the client's memory. The whole range is
   * checked before anything is written.
   */
  private trappedAccess(addr: number, buf: Uint8Array, write: boolean): boolean {
    const vmas = this.regions ? readMaps(this.pid) : null;
    if (!vmas) return false;
    const end = addr + buf.length;
    const parts: Array<{ s: number; e: number; mmio?: MmioOps; off: number }> = [];
    let a = addr;
    for (const v of vmas) {
      if (a >= end) break;
      if (v.end <= a) continue;
      if (v.start > a) return false;
      const e = Math.min(end, v.end);
      const m = v.path.startsWith(DEVMEM_MAP_PREFIX) ? this.regions!.mapping(this.pid, v) : null;
      if (m?.trapped) {
        if (!(m.prot & (write ? PROT_W : PROT_R)) || !m.mmio) return false;
        parts.push({ s: a, e, mmio: m.mmio, off: v.offset + (a - v.start) - m.memfdOff });
      } else {
        if (v.perms[write ? 1 : 0] === '-') return false;
        parts.push({ s: a, e, off: 0 });
      }
      a = e;
    }
    if (a < end) return false;
    for (const p of parts) {
      const piece = buf.subarray(p.s - addr, p.e - addr);
      if (p.mmio) {
        if (!p.mmio.access(p.off, piece, write)) return false;
      } else if (write) {
        if (this.native.vmWrite(this.pid, p.s, piece, piece.length) !== piece.length) return false;
      } else if (this.native.vmRead(this.pid, p.s, piece, piece.length) !== piece.length) return false;
    }
    return true;
  }

  /** get_user_pages refuses VM_IO | VM_PFNMAP vmas: the client's mappings of device memory. */
  ioMapped(addr: number, len: number): boolean {
    const vmas = readMaps(this.pid);
    if (!vmas) return false;
    return vmas.some((v) => v.start < addr + len && v.end > addr && v.path.startsWith(DEVMEM_MAP_PREFIX));
  }

  /**
   * pin_user_pages: the range must be mapped with the access asked for (as /proc/PID/maps says,
   * or for a region mapping, as the program asked for it). A region mapping pins the device
   * memory itself (vfio_iommu_type1 follows the PFNs of a VM_PFNMAP vma); other memory is the
   * client's: unlike the kernel, its pages are not frozen, the device reads and writes the
   * client's live virtual addresses, so a client that unmaps or remaps a pinned range sees the
   * difference.
   */
  pin(addr: number, len: number, write: boolean): PinnedPages | null {
    if (!Number.isSafeInteger(addr) || addr < 0 || len < 0 || addr + len > TASK_SIZE) return null;
    const vmas = readMaps(this.pid);
    if (!vmas) return null;
    const pieces: Array<{ at: number; len: number; addr: number; dev?: Uint8Array }> = [];
    let a = addr;
    const end = addr + len;
    for (const v of vmas) {
      if (a >= end) break;
      if (v.end <= a) continue;
      if (v.start > a) return null;
      const e = Math.min(end, v.end);
      let dev: Uint8Array | undefined;
      let prot = (v.perms[0] === 'r' ? PROT_R : 0) | (v.perms[1] === 'w' ? PROT_W : 0);
      if (v.path.startsWith(DEVMEM_MAP_PREFIX) && this.regions) {
        const m = this.regions.mapping(this.pid, v);
        if (m) prot = m.prot;
        const mem = this.regions.memory(v.ino);
        const o = v.offset + (a - v.start);
        if (mem && o + (e - a) <= mem.length) dev = mem.subarray(o, o + (e - a));
      }
      if (!(prot & PROT_R) || (write && !(prot & PROT_W))) return null;
      pieces.push({ at: a - addr, len: e - a, addr: a, ...(dev ? { dev } : {}) });
      a = e;
    }
    if (a < end) return null;
    const mm = this;
    const walk = (off: number, n: number, f: (p: (typeof pieces)[number], from: number, cnt: number, at: number) => void) => {
      for (const p of pieces) {
        if (off >= p.at + p.len || off + n <= p.at) continue;
        const from = Math.max(off, p.at);
        const to = Math.min(off + n, p.at + p.len);
        f(p, from - p.at, to - from, from - off);
      }
    };
    return {
      length: len,
      read(off: number, n: number): Uint8Array {
        const out = new Uint8Array(n);
        walk(off, n, (p, from, cnt, at) => {
          if (p.dev) out.set(p.dev.subarray(from, from + cnt), at);
          else {
            const b = mm.read(p.addr + from, cnt);
            if (b) out.set(b, at);
          }
        });
        return out;
      },
      write(off: number, data: Uint8Array): void {
        walk(off, data.length, (p, from, cnt, at) => {
          if (p.dev) p.dev.set(data.subarray(at, at + cnt), from);
          else mm.write(p.addr + from, data.subarray(at, at + cnt));
        });
      },
    };
  }
}

/** fds at and above this are the model's own scratch slots (a file the model just installed). */
export const SCRATCH_BASE = 1 << 20;

/**
 * A remote process's fd table. Lookups of real fd numbers go to `resolve` (the daemon: the
 * caller's /proc/PID/fd/N); the model's own installs (open, GET_DEVICE_FD) land in scratch slots
 * from SCRATCH_BASE up, which the daemon takes out and hands to the client as real fds.
 */
export class RemoteFdTable extends FdTable {
  constructor(private readonly resolve: (fd: number) => File | undefined) {
    super(1 << 30);
  }
  override alloc(start = 0, cloexec = false): number {
    return super.alloc(Math.max(start, SCRATCH_BASE), cloexec);
  }
  override get(fd: number): File | undefined {
    if (fd >= SCRATCH_BASE) return super.get(fd);
    return Number.isInteger(fd) && fd >= 0 ? this.resolve(fd) : undefined;
  }
  override take(fd: number): File | undefined {
    return fd >= SCRATCH_BASE ? super.take(fd) : undefined;
  }
}

const foreignFops: FileOperations = { name: 'bridge_foreign_fops' };

/** What /proc/PID/fd/N names: the inode of one of our sockets, an eventfd, or something else. */
export function classifyFdLink(pid: number, fd: number): { kind: 'socket'; ino: number } | { kind: 'eventfd' } | { kind: 'other'; link: string } | null {
  let link: string;
  try {
    link = readlinkSync(`/proc/${pid}/fd/${fd}`);
  } catch {
    return null;
  }
  const m = /^socket:\[(\d+)\]$/.exec(link);
  if (m) return { kind: 'socket', ino: Number(m[1]) };
  if (link === 'anon_inode:[eventfd]') return { kind: 'eventfd' };
  return { kind: 'other', link };
}

// A daemon-side copy of a client's eventfd lives as long as the model keeps its context.
const eventfdCopies = new FinalizationRegistry<{ fd: number; native: Addon }>((h) => {
  h.native.close(h.fd);
});

/**
 * A model file for a real eventfd of the client (fetched with pidfd_getfd): the model signals
 * it through eventfd_signal, which writes the real counter.
 */
export function realEventfdFile(anonInode: File['inode'], native: Addon, copyFd: number, write: (fd: number) => void): File {
  const ctx = new EventfdCtx(0, 0);
  ctx.notify = () => write(copyFd);
  eventfdCopies.register(ctx, { fd: copyFd, native });
  const f = new File(anonInode, eventfdFops, O_RDWR, 'anon_inode:[eventfd]');
  f.privateData = ctx;
  return f;
}

/** A model file standing for a real fd the model knows nothing about (a regular file, a pipe...). */
export function foreignFile(anonInode: File['inode'], link: string): File {
  return new File(anonInode, foreignFops, O_RDWR, link);
}
