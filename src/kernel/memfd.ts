// memfd_create(2) and ftruncate(2) (mm/memfd.c, mm/shmem.c, fs/open.c): an unlinked shmem file
// with its own pages. The pages are allocated when first touched (read/write leave holes as
// zeros; a pin allocates them, as memfd_pin_folios does), and a pin keeps the page buffers
// alive whatever later happens to the file (truncation drops them from the file only).

import { EBADF, EFAULT, EINVAL } from './errno.js';
import { currentMm } from './current.js';
import { FMODE_WRITE, File, FileOperations, Inode, O_RDWR, Pos, S_IFMT, S_IFREG } from './fs/file.js';
import { Kernel } from './kernel.js';
import { Process } from './process.js';
import { KGen, KObject } from './sched.js';
import { PAGE_SIZE, SegmentPages, copyFromUser, copyToUser } from './uaccess.js';

export const MFD_CLOEXEC = 0x1;
export const MFD_ALLOW_SEALING = 0x2;
export const MFD_HUGETLB = 0x4;
export const MFD_NOEXEC_SEAL = 0x8;
export const MFD_EXEC = 0x10;
/** NAME_MAX - strlen("memfd:") */
export const MFD_NAME_MAX_LEN = 249;

const MAX_LFS_FILESIZE = Number.MAX_SAFE_INTEGER;

/** The page cache of one shmem inode. */
export class Shmem extends KObject {
  /** i_size in bytes */
  size = 0;
  readonly pages = new Map<number, Uint8Array>();
  constructor(readonly inode: Inode, name: string) {
    super(`shmem(${name})`);
  }
  private page(i: number, alloc: boolean): Uint8Array | undefined {
    let p = this.pages.get(i);
    if (!p && alloc) {
      p = new Uint8Array(PAGE_SIZE);
      this.pages.set(i, p);
    }
    return p;
  }
  /** Bytes [off, off+len) of the file (holes read as zeros). */
  read(off: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    let at = 0;
    while (at < len) {
      const i = Math.floor((off + at) / PAGE_SIZE);
      const o = (off + at) % PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - o, len - at);
      const p = this.page(i, false);
      if (p) out.set(p.subarray(o, o + n), at);
      at += n;
    }
    return out;
  }
  write(off: number, data: Uint8Array): void {
    let at = 0;
    while (at < data.length) {
      const i = Math.floor((off + at) / PAGE_SIZE);
      const o = (off + at) % PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - o, data.length - at);
      this.page(i, true)!.set(data.subarray(at, at + n), o);
      at += n;
    }
  }
  /** shmem_setattr(ATTR_SIZE): pages wholly beyond the new size leave the page cache. */
  setSize(size: number): void {
    if (size < this.size) {
      const keep = Math.ceil(size / PAGE_SIZE);
      for (const i of [...this.pages.keys()]) if (i >= keep) this.pages.delete(i);
      const tail = size % PAGE_SIZE;
      const last = this.pages.get(keep - 1);
      if (tail && last) last.fill(0, tail);
    }
    this.size = size;
    this.inode.size = size;
  }
  /**
   * memfd_pin_folios (mm/gup.c) for the bytes [start, end]: -EINVAL past i_size; missing pages
   * are allocated. Returns the pinned pages from the page holding `start`.
   */
  pin(start: number, end: number): SegmentPages | number {
    if (start < 0 || start > end) return -EINVAL;
    if (end >= this.size) return -EINVAL;
    const first = Math.floor(start / PAGE_SIZE);
    const last = Math.floor(end / PAGE_SIZE);
    const segs: Array<{ data: Uint8Array; off: number; len: number }> = [];
    for (let i = first; i <= last; i++) segs.push({ data: this.page(i, true)!, off: 0, len: PAGE_SIZE });
    return new SegmentPages(segs);
  }
}

function* shmemRead(file: File, buf: number, count: number, pos: Pos): KGen<number> {
  const sh = file.privateData as Shmem;
  const p = Number(pos.pos);
  if (p >= sh.size) return 0;
  const n = Math.min(count, sh.size - p);
  if (copyToUser(currentMm(), buf, sh.read(p, n)) < 0) return -EFAULT;
  pos.pos += BigInt(n);
  return n;
}

function* shmemWrite(file: File, buf: number, count: number, pos: Pos): KGen<number> {
  const sh = file.privateData as Shmem;
  const p = Number(pos.pos);
  if (p + count > MAX_LFS_FILESIZE) return -EINVAL;
  const b = copyFromUser(currentMm(), buf, count);
  if (typeof b === 'number') return -EFAULT;
  sh.write(p, b);
  if (p + count > sh.size) sh.setSize(p + count);
  pos.pos += BigInt(count);
  return count;
}

function* shmemLlseek(file: File, offset: bigint, whence: number): KGen<number | bigint> {
  const sh = file.privateData as Shmem;
  let base: bigint;
  switch (whence) {
    case 0:
      base = 0n;
      break;
    case 1:
      base = file.fPos;
      break;
    case 2:
      base = BigInt(sh.size);
      break;
    default:
      return -EINVAL;
  }
  const np = base + offset;
  if (np < 0n) return -EINVAL;
  file.fPos = np;
  return np;
}

export const shmemFileOperations: FileOperations = {
  name: 'shmem_file_operations',
  read: shmemRead,
  write: shmemWrite,
  llseek: shmemLlseek,
};

/** shmem_file(): the shmem behind a file, or null for any other kind of file. */
export function shmemFile(f: File): Shmem | null {
  return f.fOp === shmemFileOperations ? (f.privateData as Shmem) : null;
}

/** shmem inode numbers (the internal shm mount's own sequence) */
function nextIno(k: Kernel): number {
  return k.state<{ ino: number }>('shmem', () => ({ ino: 1 })).ino++;
}

/** memfd_create(name, flags): a new fd on an unlinked shmem file "/memfd:NAME (deleted)". */
export function* sysMemfdCreate(p: Process, name: string, flags: number): KGen<number> {
  const k: Kernel = p.kernel;
  // MFD_HUGETLB (hugetlbfs-backed memfds) is not modelled
  if (flags & ~(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL | MFD_EXEC)) return -EINVAL;
  if (flags & MFD_NOEXEC_SEAL && flags & MFD_EXEC) return -EINVAL;
  if (new TextEncoder().encode(name).length > MFD_NAME_MAX_LEN) return -EINVAL;
  const fd = p.fdt.alloc(0, (flags & MFD_CLOEXEC) !== 0);
  if (fd < 0) return fd;
  const inode: Inode = {
    ino: nextIno(k),
    mode: S_IFREG | (flags & MFD_NOEXEC_SEAL ? 0o666 : 0o777),
    uid: p.cred.uid,
    gid: p.cred.gid,
    rdev: null,
    dev: { major: 0, minor: 1 },
    nlink: 0,
    size: 0,
  };
  const f = new File(inode, shmemFileOperations, O_RDWR, `/memfd:${name} (deleted)`);
  f.privateData = new Shmem(inode, name);
  p.fdt.install(fd, f);
  k.event('memfd_create', { name, fd });
  return fd;
}

/** ftruncate(fd, length) (do_sys_ftruncate / do_ftruncate). */
export function* sysFtruncate(p: Process, fd: number, length: bigint): KGen<number> {
  if (length < 0n) return -EINVAL;
  const f = p.fdt.get(fd);
  if (!f) return -EBADF;
  if ((f.inode.mode & S_IFMT) !== S_IFREG || !(f.fMode & FMODE_WRITE)) return -EINVAL;
  const sh = shmemFile(f);
  if (sh) {
    if (length > BigInt(MAX_LFS_FILESIZE)) return -EINVAL;
    sh.setSize(Number(length));
  }
  // other regular files (sysfs/procfs attributes) have no size of their own in this model
  return 0;
}
