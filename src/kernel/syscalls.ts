// The syscall layer: what a process can ask of the simulated kernel, with the VFS's own checks
// (fs/open.c, fs/ioctl.c, fs/read_write.c, fs/file.c, mm/mmap.c) before any driver code runs.

import {
  EACCES, EBADF, EEXIST, EFAULT, EINVAL, EISDIR, ELOOP, ENODEV, ENOENT, ENOIOCTLCMD, ENOTDIR, ENOTTY,
  EROFS, ESPIPE,
} from './errno.js';
import { chrdevOpen } from './fs/chrdev.js';
import {
  FMODE_LSEEK, FMODE_PREAD, FMODE_PWRITE, FMODE_READ, FMODE_WRITE, File, FileOperations, Inode, O_ACCMODE,
  O_APPEND, O_CLOEXEC, O_CREAT, O_DIRECTORY, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY, Pos,
  S_IFMT, S_IFREG, VmArea, fput, makedev,
} from './fs/file.js';
import { AttrNode, DirNode, LinkNode, Stat, VNode, dtype, mayOpen } from './fs/vfs.js';
import { Process, closeFd, inodeOf } from './process.js';
import { KGen } from './sched.js';
import { refcountIncNotZero } from './sync.js';
import { currentMm } from './current.js';
import { PAGE_SIZE, TASK_SIZE, copyFromUser, copyToUser, getUserS32 } from './uaccess.js';

export const MAX_RW_COUNT = 0x7ffff000;
const LLONG_MAX = (1n << 63n) - 1n;

// fs/ioctl.c handles these itself
export const FIONCLEX = 0x5450;
export const FIOCLEX = 0x5451;
export const FIONBIO = 0x5421;
export const FIOASYNC = 0x5452;
export const FIOQSIZE = 0x5460;

// fcntl
export const F_DUPFD = 0;
export const F_GETFD = 1;
export const F_SETFD = 2;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const F_DUPFD_CLOEXEC = 1030;
export const FD_CLOEXEC = 1;

// mmap
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_SHARED_VALIDATE = 0x03;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;

export const SEEK_SET = 0;
export const SEEK_CUR = 1;
export const SEEK_END = 2;

// access(2)
export const F_OK = 0;
export const X_OK = 1;
export const W_OK = 2;
export const R_OK = 4;

const placeholderFops: FileOperations = { name: 'def_chr_fops' };

// ---- open / close -------------------------------------------------------------------------------

/** openat(AT_FDCWD, path, flags, mode) */
export function* sysOpen(p: Process, path: string, flags: number, _mode = 0): KGen<number> {
  const k = p.kernel;
  const follow = !(flags & O_NOFOLLOW);
  let node = k.vfs.resolve(path, follow, p.cwd, p.cred);
  if (typeof node === 'number') {
    if (node === -ENOENT && flags & O_CREAT) return -EROFS;
    return node;
  }
  if (flags & O_CREAT && flags & O_EXCL) return -EEXIST;
  if (node.type === 'link') return -ELOOP;
  if (flags & O_DIRECTORY && node.type !== 'dir') return -ENOTDIR;
  const acc = flags & O_ACCMODE;
  const wantR = acc === O_RDONLY || acc === O_RDWR;
  const wantW = acc === O_WRONLY || acc === O_RDWR;
  const perm = mayOpen(node, p.cred, wantR, wantW);
  if (perm) return perm;
  const fd = p.fdt.alloc(0, (flags & O_CLOEXEC) !== 0);
  if (fd < 0) return fd;
  const inode = inodeOf(node);
  const file = new File(inode, placeholderFops, flags, node.path());
  let ret = 0;
  switch (node.type) {
    case 'chr':
      ret = yield* chrdevOpen(k.chrdevs, inode, file);
      break;
    case 'dir':
      file.fOp = dirFops(node as DirNode);
      break;
    case 'attr':
      ret = kernfsOpen(node as AttrNode, file);
      break;
  }
  if (ret < 0) {
    p.fdt.unreserve(fd);
    return ret;
  }
  finishOpen(file);
  p.fdt.install(fd, file);
  return fd;
}

/** do_dentry_open's final f_mode adjustments. */
export function finishOpen(file: File): void {
  if (!file.fOp.llseek) file.fMode &= ~FMODE_LSEEK;
}

/** Install an already-created file (anon_inode_getfile result) at a reserved fd. */
export function fdInstall(p: Process, fd: number, file: File): void {
  p.fdt.install(fd, file);
}

export function* sysClose(p: Process, fd: number): KGen<number> {
  return yield* closeFd(p, fd);
}

// ---- sysfs attribute files (fs/kernfs/file.c) ---------------------------------------------------

function kernfsOpen(node: AttrNode, file: File): number {
  const S_IWUGO = 0o222;
  const S_IRUGO = 0o444;
  if (file.fMode & FMODE_WRITE && (!(node.mode & S_IWUGO) || !node.ops.store)) return -EACCES;
  if (file.fMode & FMODE_READ && (!(node.mode & S_IRUGO) || !node.ops.show)) return -EACCES;
  file.fOp = attrFops;
  file.privateData = { node, buf: null as Uint8Array | null };
  return 0;
}

const attrFops: FileOperations = {
  name: 'kernfs_file_fops',
  *read(file: File, buf: number, count: number, pos: Pos): KGen<number> {
    const st = file.privateData as { node: AttrNode; buf: Uint8Array | null };
    if (pos.pos === 0n || !st.buf) {
      const v = st.node.ops.show!();
      st.buf = typeof v === 'number' ? null : typeof v === 'string' ? new TextEncoder().encode(v) : v;
      if (typeof v === 'number') return v;
    }
    const data = st.buf!;
    const start = Number(pos.pos);
    if (start >= data.length) return 0;
    const chunk = data.subarray(start, Math.min(data.length, start + count));
    if (copyToUser(currentMm(), buf, chunk) < 0) return -EFAULT;
    pos.pos += BigInt(chunk.length);
    return chunk.length;
  },
  *write(file: File, buf: number, count: number, pos: Pos): KGen<number> {
    const st = file.privateData as { node: AttrNode };
    if (count === 0) return 0;
    const len = Math.min(count, PAGE_SIZE);
    const b = copyFromUser(currentMm(), buf, len);
    if (typeof b === 'number') return b;
    const ret = yield* st.node.ops.store!(new TextDecoder().decode(b));
    if (ret > 0) pos.pos += BigInt(ret);
    return ret;
  },
  *llseek(file: File, offset: bigint, whence: number): KGen<bigint | number> {
    if (whence === SEEK_SET && offset >= 0n) {
      file.fPos = offset;
      return offset;
    }
    if (whence === SEEK_CUR && file.fPos + offset >= 0n) {
      file.fPos += offset;
      return file.fPos;
    }
    return -EINVAL;
  },
};

function dirFops(node: DirNode): FileOperations {
  return {
    name: 'dir_fops',
    iterate: () => {
      const out = [
        { name: '.', type: 4, ino: node.ino },
        { name: '..', type: 4, ino: node.parent?.ino ?? node.ino },
      ];
      for (const c of node.list()) out.push({ name: c.name, type: dtype(c), ino: c.ino });
      return out;
    },
    *read(): KGen<number> {
      return -EISDIR;
    },
    *llseek(file: File, offset: bigint): KGen<bigint | number> {
      file.fPos = offset;
      return offset;
    },
  };
}

// ---- fget ------------------------------------------------------------------------------------------

/**
 * fget (fs/file.c: __fget_files): look the fd up and take a reference, atomically with respect to
 * a concurrent close. A file whose last reference is already gone (get_file_rcu fails: the
 * refcount is zero) is not taken; the lookup is retried and then finds the fd closed.
 */
export function* fdget(p: Process, fd: number): KGen<File | null> {
  for (;;) {
    const f = p.fdt.get(fd);
    if (!f) return null;
    if (yield* refcountIncNotZero(f.fCount)) return f;
  }
}

// ---- ioctl ----------------------------------------------------------------------------------------

export function* sysIoctl(p: Process, fd: number, cmd: number, arg: bigint): KGen<number> {
  const f = yield* fdget(p, fd);
  if (!f) return -EBADF;
  let ret: number;
  cmd = cmd >>> 0;
  switch (cmd) {
    case FIOCLEX:
      p.fdt.setCloexec(fd, true);
      ret = 0;
      break;
    case FIONCLEX:
      p.fdt.setCloexec(fd, false);
      ret = 0;
      break;
    case FIONBIO:
    case FIOASYNC: {
      const r = getUserS32(p.mm, argPtr(arg));
      if (!r.ok) ret = r.err;
      else {
        if (cmd === FIONBIO) f.fFlags = r.v ? f.fFlags | O_NONBLOCK : f.fFlags & ~O_NONBLOCK;
        ret = 0;
      }
      break;
    }
    case FIOQSIZE:
      if ((f.inode.mode & S_IFMT) === 0o040000 || (f.inode.mode & S_IFMT) === S_IFREG) {
        const b = new Uint8Array(8);
        new DataView(b.buffer).setBigInt64(0, BigInt(f.inode.size), true);
        ret = copyToUser(p.mm, argPtr(arg), b);
      } else ret = -ENOTTY;
      break;
    default:
      if (!f.fOp.unlockedIoctl) ret = -ENOTTY;
      else {
        ret = yield* f.fOp.unlockedIoctl(f, cmd, arg);
        if (ret === -ENOIOCTLCMD) ret = -ENOTTY;
      }
  }
  yield* fput(f);
  return ret;
}

function argPtr(arg: bigint): number {
  return arg < 0n || arg >= BigInt(TASK_SIZE) ? -1 : Number(arg);
}

// ---- read / write ------------------------------------------------------------------------------

function rwVerifyArea(pos: bigint | null, count: number): number {
  if (count < 0) return -EINVAL;
  if (pos !== null) {
    if (pos < 0n) return -EINVAL;
    if (pos + BigInt(count) > LLONG_MAX) return -EINVAL;
  }
  return 0;
}

function accessOk(buf: number, count: number): boolean {
  return buf >= 0 && buf + count <= TASK_SIZE;
}

function* vfsRead(p: Process, f: File, buf: number, count: number, ppos: Pos | null): KGen<number> {
  if (!(f.fMode & FMODE_READ)) return -EBADF;
  if (!f.fOp.read) return -EINVAL;
  if (!accessOk(buf, count)) return -EFAULT;
  const v = rwVerifyArea(ppos ? ppos.pos : null, count);
  if (v) return v;
  if (count > MAX_RW_COUNT) count = MAX_RW_COUNT;
  return yield* f.fOp.read(f, buf, count, ppos ?? { pos: 0n });
}

function* vfsWrite(p: Process, f: File, buf: number, count: number, ppos: Pos | null): KGen<number> {
  if (!(f.fMode & FMODE_WRITE)) return -EBADF;
  if (!f.fOp.write) return -EINVAL;
  if (!accessOk(buf, count)) return -EFAULT;
  const v = rwVerifyArea(ppos ? ppos.pos : null, count);
  if (v) return v;
  if (count > MAX_RW_COUNT) count = MAX_RW_COUNT;
  return yield* f.fOp.write(f, buf, count, ppos ?? { pos: 0n });
}

export function* sysRead(p: Process, fd: number, buf: number, count: number): KGen<number> {
  const f = yield* fdget(p, fd);
  if (!f) return -EBADF;
  const pos: Pos = { pos: f.fPos };
  const ret = yield* vfsRead(p, f, buf, count, pos);
  if (ret >= 0) f.fPos = pos.pos;
  yield* fput(f);
  return ret;
}

export function* sysWrite(p: Process, fd: number, buf: number, count: number): KGen<number> {
  const f = yield* fdget(p, fd);
  if (!f) return -EBADF;
  const pos: Pos = { pos: f.fFlags & O_APPEND ? BigInt(f.inode.size) : f.fPos };
  const ret = yield* vfsWrite(p, f, buf, count, pos);
  if (ret >= 0) f.fPos = pos.pos;
  yield* fput(f);
  return ret;
}

export function* sysPread(p: Process, fd: number, buf: number, count: number, off: bigint): KGen<number> {
  if (off < 0n) return -EINVAL;
  const f = yield* fdget(p, fd);
  if (!f) return -EBADF;
  if (!(f.fMode & FMODE_PREAD)) {
    yield* fput(f);
    return -ESPIPE;
  }
  const ret = yield* vfsRead(p, f, buf, count, { pos: off });
  yield* fput(f);
  return ret;
}

export function* sysPwrite(p: Process, fd: number, buf: number, count: number, off: bigint): KGen<number> {
  if (off < 0n) return -EINVAL;
  const f = yield* fdget(p, fd);
  if (!f) return -EBADF;
  if (!(f.fMode & FMODE_PWRITE)) {
    yield* fput(f);
    return -ESPIPE;
  }
  const ret = yield* vfsWrite(p, f, buf, count, { pos: off });
  yield* fput(f);
  return ret;
}

export function* sysLseek(p: Process, fd: number, offset: bigint, whence: number): KGen<number | bigint> {
  const f = p.fdt.get(fd);
  if (!f) return -EBADF;
  if (whence < 0 || whence > 4) return -EINVAL;
  if (!(f.fMode & FMODE_LSEEK) || !f.fOp.llseek) return -ESPIPE;
  return yield* f.fOp.llseek(f, offset, whence);
}

// ---- dup / fcntl -----------------------------------------------------------------------------------

export function* sysDup(p: Process, fd: number): KGen<number> {
  return yield* dupTo(p, fd, 0, false);
}

function* dupTo(p: Process, fd: number, minfd: number, cloexec: boolean): KGen<number> {
  const f = p.fdt.get(fd);
  if (!f) return -EBADF;
  if (minfd < 0 || minfd >= p.fdt.rlimitNofile) return -EINVAL;
  const nfd = p.fdt.alloc(minfd, cloexec);
  if (nfd < 0) return nfd;
  const g = yield* fdget(p, fd);
  if (!g) {
    p.fdt.unreserve(nfd);
    return -EBADF;
  }
  p.fdt.install(nfd, g);
  return nfd;
}

export function* sysDup3(p: Process, oldfd: number, newfd: number, flags: number): KGen<number> {
  if (flags & ~O_CLOEXEC) return -EINVAL;
  if (oldfd === newfd) return -EINVAL;
  return yield* doDup2(p, oldfd, newfd, (flags & O_CLOEXEC) !== 0);
}

export function* sysDup2(p: Process, oldfd: number, newfd: number): KGen<number> {
  if (oldfd === newfd) return p.fdt.get(oldfd) ? newfd : -EBADF;
  return yield* doDup2(p, oldfd, newfd, false);
}

function* doDup2(p: Process, oldfd: number, newfd: number, cloexec: boolean): KGen<number> {
  if (newfd < 0 || newfd >= p.fdt.rlimitNofile) return -EBADF;
  const f = yield* fdget(p, oldfd);
  if (!f) return -EBADF;
  const old = p.fdt.take(newfd);
  if (p.fdt.alloc(newfd, cloexec) !== newfd) throw new Error('dup2: slot not free');
  p.fdt.install(newfd, f);
  if (old) yield* fput(old);
  return newfd;
}

export function* sysFcntl(p: Process, fd: number, cmd: number, arg = 0): KGen<number> {
  const f = p.fdt.get(fd);
  if (!f) return -EBADF;
  switch (cmd) {
    case F_DUPFD:
      return yield* dupTo(p, fd, arg, false);
    case F_DUPFD_CLOEXEC:
      return yield* dupTo(p, fd, arg, true);
    case F_GETFD:
      return p.fdt.isCloexec(fd) ? FD_CLOEXEC : 0;
    case F_SETFD:
      p.fdt.setCloexec(fd, (arg & FD_CLOEXEC) !== 0);
      return 0;
    case F_GETFL:
      return f.fFlags;
    case F_SETFL: {
      const mask = O_APPEND | O_NONBLOCK;
      f.fFlags = (f.fFlags & ~mask) | (arg & mask);
      return 0;
    }
  }
  return -EINVAL;
}

// ---- stat / readlink / readdir / access ------------------------------------------------------------

export function statOf(inode: Inode): Stat {
  const r = inode.rdev;
  return {
    dev: makedev(inode.dev.major, inode.dev.minor),
    devMajor: inode.dev.major,
    devMinor: inode.dev.minor,
    ino: inode.ino,
    mode: inode.mode,
    nlink: inode.nlink,
    uid: inode.uid,
    gid: inode.gid,
    rdev: r ? makedev(r.major, r.minor) : 0,
    rdevMajor: r ? r.major : 0,
    rdevMinor: r ? r.minor : 0,
    size: inode.size,
    blksize: 4096,
    blocks: 0,
  };
}

export function sysFstat(p: Process, fd: number): Stat | number {
  const f = p.fdt.get(fd);
  if (!f) return -EBADF;
  return statOf(f.inode);
}

export function sysStat(p: Process, path: string, follow = true): Stat | number {
  const n = p.kernel.vfs.resolve(path, follow, p.cwd, p.cred);
  if (typeof n === 'number') return n;
  return statOf(inodeOf(n));
}

export function sysReadlink(p: Process, path: string): string | number {
  const n = p.kernel.vfs.resolve(path, false, p.cwd, p.cred);
  if (typeof n === 'number') return n;
  if (n.type !== 'link') return -EINVAL;
  return (n as LinkNode).target;
}

export interface Dirent {
  name: string;
  type: number;
  ino: number;
}

/** getdents64 over a directory fd, from position 0 (the whole listing). */
export function sysGetdents(p: Process, fd: number): Dirent[] | number {
  const f = p.fdt.get(fd);
  if (!f) return -EBADF;
  if (!f.fOp.iterate) return -ENOTDIR;
  return f.fOp.iterate(f);
}

/** opendir + readdir + closedir of a path. */
export function readdirPath(p: Process, path: string): Dirent[] | number {
  const n = p.kernel.vfs.resolve(path, true, p.cwd, p.cred);
  if (typeof n === 'number') return n;
  if (n.type !== 'dir') return -ENOTDIR;
  const d = n as DirNode;
  return [
    { name: '.', type: 4, ino: d.ino },
    { name: '..', type: 4, ino: d.parent?.ino ?? d.ino },
    ...d.list().map((c) => ({ name: c.name, type: dtype(c), ino: c.ino })),
  ];
}

export function sysAccess(p: Process, path: string, mode: number): number {
  const n = p.kernel.vfs.resolve(path, true, p.cwd, p.cred);
  if (typeof n === 'number') return n;
  if (mode === F_OK) return 0;
  if (p.cred.uid === 0) {
    // root: read/write always; execute needs some x bit (or a directory)
    if (mode & X_OK && n.type !== 'dir' && !(n.mode & 0o111)) return -EACCES;
    return 0;
  }
  const bits = accessBits(n, p);
  if ((mode & R_OK && !(bits & 4)) || (mode & W_OK && !(bits & 2)) || (mode & X_OK && !(bits & 1))) return -EACCES;
  return 0;
}

function accessBits(n: VNode, p: Process): number {
  if (p.cred.uid === n.uid) return (n.mode >> 6) & 7;
  if (p.cred.gid === n.gid) return (n.mode >> 3) & 7;
  return n.mode & 7;
}

// ---- mmap ---------------------------------------------------------------------------------------

export interface MmapResult {
  addr: number;
  vma: VmArea;
  file: File;
}

/**
 * mmap of a file (the VFS checks of mm/mmap.c: do_mmap). The driver's ->mmap decides; the
 * mapping holds a file reference until munmap or exit.
 */
export function* sysMmapFile(
  p: Process,
  len: number,
  prot: number,
  flags: number,
  fd: number,
  off: bigint,
): KGen<MmapResult | number> {
  const f = p.fdt.get(fd);
  if (!f) return -EBADF;
  if (len <= 0) return -EINVAL;
  if (off % BigInt(PAGE_SIZE) !== 0n || off < 0n) return -EINVAL;
  const type = flags & MAP_SHARED_VALIDATE;
  if (type !== MAP_SHARED && type !== MAP_PRIVATE && type !== MAP_SHARED_VALIDATE) return -EINVAL;
  if (!(f.fMode & FMODE_READ)) return -EACCES;
  if (type !== MAP_PRIVATE && prot & 2 && !(f.fMode & FMODE_WRITE)) return -EACCES;
  if (!f.fOp.mmap) return -ENODEV;
  const vma: VmArea = {
    start: 0,
    length: Math.ceil(len / PAGE_SIZE) * PAGE_SIZE,
    pgoff: Number(off / BigInt(PAGE_SIZE)),
    prot,
    shared: type !== MAP_PRIVATE,
  };
  const g = yield* fdget(p, fd);
  if (g !== f) {
    if (g) yield* fput(g);
    return -EBADF;
  }
  const ret = yield* f.fOp.mmap(f, vma);
  if (ret < 0) {
    yield* fput(f);
    return ret;
  }
  return { addr: vma.start, vma, file: f };
}

