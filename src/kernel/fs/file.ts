// struct file, struct inode, file_operations (include/linux/fs.h) and the file refcount
// (fs/file_table.c: fput/__fput). A file is released exactly when its last reference goes:
// dup, fork, fd passing and a device file holding its group file all fall out of this.

import { KGen, KObject, Task, current } from '../sched.js';
import { Refcount, refcountDecAndTest, refcountInc } from '../sync.js';

// open(2) flags (x86-64)
export const O_ACCMODE = 0o3;
export const O_RDONLY = 0o0;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_NOCTTY = 0o400;
export const O_TRUNC = 0o1000;
export const O_APPEND = 0o2000;
export const O_NONBLOCK = 0o4000;
export const O_DIRECTORY = 0o200000;
export const O_NOFOLLOW = 0o400000;
export const O_CLOEXEC = 0o2000000;
export const O_PATH = 0o10000000;

// f_mode bits (include/linux/fs.h)
export const FMODE_READ = 0x1;
export const FMODE_WRITE = 0x2;
export const FMODE_LSEEK = 0x4;
export const FMODE_PREAD = 0x8;
export const FMODE_PWRITE = 0x10;

// st_mode
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

export interface DevT {
  major: number;
  minor: number;
}

export function devKey(d: DevT): string {
  return `${d.major}:${d.minor}`;
}

/** glibc's makedev(): the st_rdev / st_dev value userspace sees. */
export function makedev(major: number, minor: number): number {
  // (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12) | ((major & ~0xfff) << 32)
  return (minor & 0xff) + (major & 0xfff) * 0x100 + (minor - (minor & 0xff)) * 0x1000 + (major - (major & 0xfff)) * 0x100000000;
}

export interface Inode {
  ino: number;
  /** st_mode, type bits included (0 type bits for the anonymous inode) */
  mode: number;
  uid: number;
  gid: number;
  /** device number for char devices (null otherwise) */
  rdev: DevT | null;
  /** st_dev of the filesystem holding it */
  dev: DevT;
  nlink: number;
  size: number;
  /** The filesystem object behind it (a devfs/sysfs node, ...). */
  node?: unknown;
  /** i_cdev: set by chrdev_open; its `owner` is the object containing the cdev. */
  cdev?: { owner: unknown };
}

/** The kernel's struct vm_area_struct, as far as a driver's mmap needs it. */
export interface VmArea {
  start: number;
  length: number;
  pgoff: number;
  prot: number;
  shared: boolean;
  /** set by ->mmap: the memory the mapping shows (from allocDeviceMemory to be shareable) */
  backing?: Uint8Array;
  /** set by ->mmap: the mapping's vm_operations for user accesses (trapped MMIO) */
  mmio?: MmioOps;
  /**
   * set by ->mmap: every access must go through `mmio` (registers with side effects), so a real
   * process's mapping of `backing` is trapped by the bridge rather than mapped plainly
   */
  trapped?: boolean;
}

/**
 * User loads and stores through a driver's mapping (its vm_ops): `off` is the offset in the
 * mapping; a read fills `data`, a write consumes it; false is a fault (SIGBUS). In process every
 * access to such a mapping goes here; the bridge maps the backing memory directly instead.
 */
export interface MmioOps {
  access(off: number, data: Uint8Array, write: boolean): boolean;
}

/** file position argument of read/write: pos is updated by the callee. */
export interface Pos {
  pos: bigint;
}

export interface FileOperations {
  readonly name: string;
  open?(inode: Inode, file: File): KGen<number>;
  release?(inode: Inode, file: File): KGen<void>;
  read?(file: File, buf: number, count: number, pos: Pos): KGen<number>;
  write?(file: File, buf: number, count: number, pos: Pos): KGen<number>;
  unlockedIoctl?(file: File, cmd: number, arg: bigint): KGen<number>;
  mmap?(file: File, vma: VmArea): KGen<number>;
  llseek?(file: File, offset: bigint, whence: number): KGen<number | bigint>;
  /** list a directory (getdents) */
  iterate?(file: File): Array<{ name: string; type: number; ino: number }>;
  showFdinfo?(file: File): string;
}

let nextFileId = 1;

export class File extends KObject {
  readonly id: number;
  fOp: FileOperations;
  privateData: unknown = null;
  /** f_count: one per fd-table slot, plus in-kernel references (fget, get_file). */
  readonly fCount: Refcount;
  fMode: number;
  fFlags: number;
  fPos: bigint = 0n;
  readonly inode: Inode;
  /** d_path: what /proc/PID/fd/N reads as (a path, or "anon_inode:[name]"). */
  path: string;
  released = false;
  /** the cdev this file was opened through (put after release, as __fput's cdev_put) */
  cdev: { put?(): KGen<void> } | null = null;

  constructor(inode: Inode, fops: FileOperations, flags: number, path: string) {
    const id = nextFileId++;
    super(`file#${id}(${path})`);
    this.id = id;
    this.inode = inode;
    this.fOp = fops;
    this.fFlags = flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC);
    const acc = flags & O_ACCMODE;
    this.fMode =
      (acc === O_RDONLY || acc === O_RDWR ? FMODE_READ : 0) |
      (acc === O_WRONLY || acc === O_RDWR ? FMODE_WRITE : 0) |
      FMODE_LSEEK | FMODE_PREAD | FMODE_PWRITE;
    this.path = path;
    this.fCount = new Refcount(`${this.label}.f_count`, 1);
  }
}

/** get_file: take another reference on a file we already hold. */
export function* getFile(f: File): KGen<File> {
  yield* refcountInc(f.fCount);
  return f;
}

/**
 * fput: drop a reference. The last one queues __fput as task_work of the current task, so the
 * release runs when the current syscall returns (never under the caller's locks), as in the
 * kernel (fs/file_table.c: fput -> task_work_add(____fput)).
 */
export function* fput(f: File): KGen<void> {
  if (yield* refcountDecAndTest(f.fCount)) {
    const t: Task = current();
    t.taskWork.push(() => fputFinal(f));
  }
}

/** __fput: call ->release exactly once. */
export function* fputFinal(f: File): KGen<void> {
  if (f.released) return;
  f.released = true;
  const hooks = fileHooks.get(current().kernel as object);
  hooks?.beforeRelease?.(f);
  if (f.fOp.release) yield* f.fOp.release(f.inode, f);
  if (f.cdev?.put) yield* f.cdev.put();
  hooks?.afterRelease?.(f);
}

/** Observers of file releases (the trace and the explorer's invariants use them). */
export interface FileHooks {
  beforeRelease?(f: File): void;
  afterRelease?(f: File): void;
}
export const fileHooks = new WeakMap<object, FileHooks>();

/** The shared anonymous inode (fs/anon_inodes.c): mode 0600 without type bits, rdev 0. */
export function makeAnonInode(ino: number, dev: DevT): Inode {
  return { ino, mode: 0o600, uid: 0, gid: 0, rdev: null, dev, nlink: 1, size: 0 };
}
