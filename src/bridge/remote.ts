// A real client process as the model sees it: its memory (UserMemory over process_vm_readv /
// process_vm_writev, so page protections and EFAULT are the real ones) and its fd table (fds are
// resolved in the process's own table, /proc/PID/fd/N, so a process can name only its own files).

import { readFileSync, readlinkSync } from 'node:fs';
import { EventfdCtx, eventfdFops } from '../kernel/eventfd.js';
import { File, FileOperations, O_RDWR } from '../kernel/fs/file.js';
import { FdTable } from '../kernel/process.js';
import { PinnedPages, TASK_SIZE, UserMemory } from '../kernel/uaccess.js';
import type { Addon } from './native.js';

/** The client's memory. Reads and writes fail (null/false) exactly where the client would fault. */
export class RemoteMemory implements UserMemory {
  constructor(
    readonly pid: number,
    private readonly native: Addon,
  ) {}

  read(addr: number, len: number): Uint8Array | null {
    if (!Number.isSafeInteger(addr) || addr < 0 || len < 0 || addr + len > TASK_SIZE) return null;
    const b = new Uint8Array(len);
    if (len === 0) return b;
    return this.native.vmRead(this.pid, addr, b, len) === len ? b : null;
  }

  write(addr: number, data: Uint8Array): boolean {
    if (!Number.isSafeInteger(addr) || addr < 0 || addr + data.length > TASK_SIZE) return false;
    if (data.length === 0) return true;
    return this.native.vmWrite(this.pid, addr, data, data.length) === data.length;
  }

  /**
   * pin_user_pages: the range must be mapped with the access asked for (as /proc/PID/maps says).
   * Unlike the kernel, the pages are not frozen: the device reads and writes the client's live
   * virtual addresses, so a client that unmaps or remaps a pinned range sees the difference.
   */
  pin(addr: number, len: number, write: boolean): PinnedPages | null {
    if (!Number.isSafeInteger(addr) || addr < 0 || len < 0 || addr + len > TASK_SIZE) return null;
    let maps: string;
    try {
      maps = readFileSync(`/proc/${this.pid}/maps`, 'utf8');
    } catch {
      return null;
    }
    const vmas = maps
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+)/.exec(l)!;
        return { start: parseInt(m[1]!, 16), end: parseInt(m[2]!, 16), perms: m[3]! };
      });
    let a = addr;
    const end = addr + len;
    for (const v of vmas) {
      if (a >= end) break;
      if (v.end <= a) continue;
      if (v.start > a) return null;
      if (v.perms[0] !== 'r' || (write && v.perms[1] !== 'w')) return null;
      a = v.end;
    }
    if (a < end) return null;
    const mm = this;
    return {
      length: len,
      read(off: number, n: number): Uint8Array {
        return mm.read(addr + off, n) ?? new Uint8Array(n);
      },
      write(off: number, data: Uint8Array): void {
        mm.write(addr + off, data);
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
