// The in-process face: a simulated process with libc-like calls. Each call returns what libc
// would (-1 on error) and sets `errno`; kernel events it causes appear in the host's trace.

import { EINVAL, ENOMEM, errnoName } from '../kernel/errno.js';
import { EventfdCtx, eventfdFile } from '../kernel/eventfd.js';
import { File, O_CLOEXEC, O_RDWR, fput, getFile } from '../kernel/fs/file.js';
import { Stat } from '../kernel/fs/vfs.js';
import { Kernel, SyscallBlocked } from '../kernel/kernel.js';
import { Process as KProcess, ProcessOptions, execFiles, exitFiles, forkFiles } from '../kernel/process.js';
import { KGen, Task } from '../kernel/sched.js';
import {
  Dirent, MmapResult, readdirPath, sysAccess, sysClose, sysDup, sysDup2, sysDup3, sysFcntl, sysFstat, sysGetdents,
  sysIoctl, sysLseek, sysMmapFile, sysOpen, sysPread, sysPwrite, sysRead, sysReadlink, sysStat, sysWrite,
} from '../kernel/syscalls.js';
import { AddressSpace, PROT_READ, PROT_WRITE } from '../kernel/uaccess.js';
import { sysFtruncate, sysMemfdCreate } from '../kernel/memfd.js';
import { Decoded, StructDef, decode, encode } from '../uapi/layout.js';
import { FileKind, ioctlName } from '../uapi/ioctls.js';
import type { Host } from '../host/host.js';

/** What kind of VFIO/iommufd file an fd is (for naming ioctls in traces). */
export function fileKind(f: File | undefined): FileKind | undefined {
  switch (f?.fOp.name) {
    case 'vfio_device_fops':
      return 'device';
    case 'vfio_group_fops':
      return 'group';
    case 'vfio_fops':
      return 'container';
    case 'iommufd_fops':
      return 'iommufd';
  }
  return undefined;
}

/** Helpers to build ioctl arguments in the process's memory. */
export class UserMem {
  constructor(private readonly p: Process) {}
  private get mm(): AddressSpace {
    return this.p.kproc.mm as AddressSpace;
  }
  /** mmap an anonymous read/write region; returns its address */
  alloc(size: number, prot = PROT_READ | PROT_WRITE): number {
    return this.mm.map(Math.max(1, size), prot);
  }
  free(addr: number, size: number): void {
    this.mm.unmap(addr, size);
  }
  protect(addr: number, size: number, prot: number): void {
    this.mm.protect(addr, size, prot);
  }
  write(addr: number, data: Uint8Array): void {
    if (!this.mm.write(addr, data)) throw new Error(`${this.fault()} on a write to user memory at 0x${addr.toString(16)}`);
  }
  read(addr: number, len: number): Uint8Array {
    const b = this.mm.read(addr, len);
    if (!b) throw new Error(`${this.fault()} on a read of user memory at 0x${addr.toString(16)}`);
    return b;
  }
  /** the signal a failed access raised: SIGSEGV (unmapped, protection) or SIGBUS (a driver's mapping) */
  private fault(): string {
    return this.mm.lastFault ?? 'SIGSEGV';
  }
  /** Put a struct in fresh memory (size bytes, default sizeof); returns its address. */
  struct(def: StructDef<string>, values: Partial<Decoded>, size = def.size): number {
    const a = this.alloc(size);
    this.write(a, encode(def, values, size));
    return a;
  }
  /** Read a struct back. */
  readStruct(def: StructDef<string>, addr: number, size = def.size): Decoded {
    return decode(def, this.read(addr, size));
  }
  /** A NUL-terminated string in fresh memory. */
  cstring(s: string): number {
    const b = new TextEncoder().encode(s + '\0');
    const a = this.alloc(b.length);
    this.write(a, b);
    return a;
  }
  u32(addr: number): number {
    return new DataView(this.read(addr, 4).buffer).getUint32(0, true);
  }
  s32At(value: number): number {
    const a = this.alloc(4);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, value, true);
    this.write(a, b);
    return a;
  }
}

interface Mapping {
  addr: number;
  length: number;
  file: File;
}

let tidSeq = 1;

export class Process {
  readonly kproc: KProcess;
  readonly kernel: Kernel;
  /** errno of the last failed call (as libc keeps it) */
  errno = 0;
  readonly mem: UserMem;
  private readonly mappings: Mapping[] = [];

  constructor(
    readonly host: Host,
    opts: ProcessOptions & { kproc?: KProcess; /** open fds 0-2 on /dev/null (default true) */ stdio?: boolean } = {},
  ) {
    this.kernel = host.kernel;
    this.kproc = opts.kproc ?? new KProcess(host.kernel, opts);
    this.mem = new UserMem(this);
    if (!opts.kproc && opts.stdio !== false) {
      // fds 0, 1 and 2 on /dev/null, as a program started from a shell has them
      const p = this.kproc;
      const body = function* (): KGen<number> {
        for (let i = 0; i < 3; i++) yield* sysOpen(p, '/dev/null', O_RDWR);
        return 0;
      };
      this.kernel.runToCompletion(new Task(this.kernel, `${p.comm} stdio`, body(), p, p.pid));
    }
  }

  get pid(): number {
    return this.kproc.pid;
  }
  get name(): string {
    return this.kproc.comm;
  }
  get alive(): boolean {
    return this.kproc.state === 'alive';
  }
  /** "EINVAL" for the last error */
  get errnoName(): string {
    return errnoName(this.errno);
  }

  private ret(r: number): number {
    if (r < 0) {
      this.errno = -r;
      return -1;
    }
    return r;
  }

  /** A value, or null with errno set when the kernel returned a negative errno. */
  private val<T>(r: T | number): T | null {
    if (typeof r === 'number' && r < 0) {
      this.errno = -r;
      return null;
    }
    return r as T;
  }

  private check(): void {
    if (!this.alive) throw new Error(`process ${this.pid} has exited`);
  }

  /** Run a syscall body to completion; -1/errno on failure. */
  sys(name: string, args: Record<string, unknown>, body: KGen<number>): number {
    this.check();
    return this.ret(this.kernel.syscall(this.kproc, this.kproc.pid, name, args, body));
  }

  /**
   * Start a syscall that may sleep in the kernel (as another thread of this process would) and
   * return a handle; `done` tells when it has returned.
   */
  spawn(name: string, args: Record<string, unknown>, body: KGen<number>): PendingCall {
    this.check();
    const tid = this.kproc.pid * 1000 + tidSeq++;
    return new PendingCall(this, this.kernel.startSyscall(this.kproc, tid, name, args, body));
  }

  // ---- files ---------------------------------------------------------------------------------------

  open(path: string, flags = O_RDWR, mode = 0): number {
    return this.sys('open', { path, flags }, sysOpen(this.kproc, path, flags, mode));
  }

  close(fd: number): number {
    return this.sys('close', { fd }, sysClose(this.kproc, fd));
  }

  ioctl(fd: number, request: number, arg: number | bigint = 0): number {
    const f = this.kproc.fdt.get(fd);
    const a = typeof arg === 'bigint' ? arg : BigInt(arg);
    const args = { fd, request: ioctlName(request >>> 0, fileKind(f)), arg: '0x' + a.toString(16) };
    return this.sys('ioctl', args, sysIoctl(this.kproc, fd, request >>> 0, a));
  }

  read(fd: number, buf: number, count: number): number {
    return this.sys('read', { fd, count }, sysRead(this.kproc, fd, buf, count));
  }

  write(fd: number, buf: number, count: number): number {
    return this.sys('write', { fd, count }, sysWrite(this.kproc, fd, buf, count));
  }

  pread(fd: number, buf: number, count: number, offset: number | bigint): number {
    const off = BigInt(offset);
    return this.sys('pread64', { fd, count, offset: '0x' + off.toString(16) }, sysPread(this.kproc, fd, buf, count, off));
  }

  pwrite(fd: number, buf: number, count: number, offset: number | bigint): number {
    const off = BigInt(offset);
    return this.sys('pwrite64', { fd, count, offset: '0x' + off.toString(16) }, sysPwrite(this.kproc, fd, buf, count, off));
  }

  lseek(fd: number, offset: number | bigint, whence: number): number {
    const body = function* (p: KProcess): KGen<number> {
      const r = yield* sysLseek(p, fd, BigInt(offset), whence);
      return Number(r);
    };
    return this.sys('lseek', { fd, offset: String(offset), whence }, body(this.kproc));
  }

  /** read(2) into fresh memory; the bytes read, or null (errno set). */
  readBytes(fd: number, count: number, offset?: number | bigint): Uint8Array | null {
    const buf = this.mem.alloc(Math.max(1, count));
    const r = offset === undefined ? this.read(fd, buf, count) : this.pread(fd, buf, count, offset);
    const out = r < 0 ? null : this.mem.read(buf, r);
    this.mem.free(buf, Math.max(1, count));
    return out;
  }

  /** write(2) from a copy in fresh memory; bytes written or -1. */
  writeBytes(fd: number, data: Uint8Array | string, offset?: number | bigint): number {
    const b = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    const buf = this.mem.alloc(Math.max(1, b.length));
    this.mem.write(buf, b);
    const r = offset === undefined ? this.write(fd, buf, b.length) : this.pwrite(fd, buf, b.length, offset);
    this.mem.free(buf, Math.max(1, b.length));
    return r;
  }

  /** cat FILE: the whole content, or null (errno set). */
  readFile(path: string): string | null {
    const fd = this.open(path, 0);
    if (fd < 0) return null;
    let out = '';
    for (;;) {
      const b = this.readBytes(fd, 4096);
      if (b === null) {
        const e = this.errno;
        this.close(fd);
        this.errno = e;
        return null;
      }
      if (b.length === 0) break;
      out += new TextDecoder().decode(b);
    }
    this.close(fd);
    return out;
  }

  /** echo TEXT > FILE: bytes written or -1. */
  writeFile(path: string, text: string): number {
    const fd = this.open(path, 1);
    if (fd < 0) return -1;
    const r = this.writeBytes(fd, text);
    const e = this.errno;
    this.close(fd);
    this.errno = e;
    return r;
  }

  dup(fd: number): number {
    return this.sys('dup', { fd }, sysDup(this.kproc, fd));
  }

  dup2(oldfd: number, newfd: number): number {
    return this.sys('dup2', { oldfd, newfd }, sysDup2(this.kproc, oldfd, newfd));
  }

  dup3(oldfd: number, newfd: number, flags: number): number {
    return this.sys('dup3', { oldfd, newfd, flags }, sysDup3(this.kproc, oldfd, newfd, flags));
  }

  fcntl(fd: number, cmd: number, arg = 0): number {
    return this.sys('fcntl', { fd, cmd, arg }, sysFcntl(this.kproc, fd, cmd, arg));
  }

  fstat(fd: number): Stat | null {
    this.check();
    return this.val(sysFstat(this.kproc, fd));
  }

  stat(path: string): Stat | null {
    this.check();
    return this.val(sysStat(this.kproc, path, true));
  }

  lstat(path: string): Stat | null {
    this.check();
    return this.val(sysStat(this.kproc, path, false));
  }

  readlink(path: string): string | null {
    this.check();
    return this.val(this.withCurrent(() => sysReadlink(this.kproc, path)));
  }

  realpath(path: string): string | null {
    this.check();
    return this.val(this.withCurrent(() => this.kernel.vfs.realpath(path, this.kproc.cwd)));
  }

  /** opendir + readdir: the entry names (with "." and ".."), or null. */
  readdir(path: string): string[] | null {
    const r = this.readdirEntries(path);
    return r ? r.map((e) => e.name) : null;
  }

  readdirEntries(path: string): Dirent[] | null {
    this.check();
    return this.val(this.withCurrent(() => readdirPath(this.kproc, path)));
  }

  getdents(fd: number): Dirent[] | null {
    this.check();
    return this.val(sysGetdents(this.kproc, fd));
  }

  access(path: string, mode: number): number {
    this.check();
    return this.ret(this.withCurrent(() => sysAccess(this.kproc, path, mode)));
  }

  /** Path lookups that read /proc/self need a current task. */
  private withCurrent<T>(f: () => T): T {
    let out!: T;
    const body = function* (): KGen<number> {
      out = f();
      return 0;
    };
    this.kernel.runToCompletion(new Task(this.kernel, `${this.name} lookup`, body(), this.kproc, this.pid));
    return out;
  }

  /** eventfd(2) */
  eventfd(initval = 0, flags = 0): number {
    const k = this.kernel;
    const p = this.kproc;
    const body = function* (): KGen<number> {
      const f = eventfdFile(k, initval, flags);
      if (typeof f === 'number') return f;
      const fd = p.fdt.alloc(0, (flags & O_CLOEXEC) !== 0);
      if (fd < 0) {
        yield* fput(f);
        return fd;
      }
      p.fdt.install(fd, f);
      return fd;
    };
    return this.sys('eventfd2', { initval, flags }, body());
  }

  /** memfd_create(2): an fd on a new anonymous shmem file (size 0; see ftruncate). */
  memfdCreate(name: string, flags = 0): number {
    return this.sys('memfd_create', { name, flags }, sysMemfdCreate(this.kproc, name, flags));
  }

  /** ftruncate(2) */
  ftruncate(fd: number, length: number | bigint): number {
    const len = BigInt(length);
    return this.sys('ftruncate', { fd, length: '0x' + len.toString(16) }, sysFtruncate(this.kproc, fd, len));
  }

  /** The eventfd object behind an fd (in process, tests read its counter). */
  eventfdCtx(fd: number): EventfdCtx | null {
    const f = this.kproc.fdt.get(fd);
    return f && f.fOp.name === 'eventfd_fops' ? (f.privateData as EventfdCtx) : null;
  }

  /** mmap(NULL, length, prot, flags, fd, offset) of a file: the address, or -1. */
  mmap(length: number, prot: number, flags: number, fd: number, offset: number | bigint): number {
    this.check();
    let res: MmapResult | number = -EINVAL;
    const p = this.kproc;
    const body = function* (): KGen<number> {
      res = yield* sysMmapFile(p, length, prot, flags, fd, BigInt(offset));
      return typeof res === 'number' ? res : 0;
    };
    const r = this.sys('mmap', { fd, length, prot, flags, offset: String(offset) }, body());
    if (r < 0) return -1;
    const m = res as unknown as MmapResult;
    // a mapping whose every access is trapped (vm_ops) needs no memory of its own in process
    const backing = m.vma.backing ?? (m.vma.mmio ? new Uint8Array(m.vma.length) : undefined);
    if (!backing) {
      // the driver accepted the mapping but gave no memory: nothing to map
      this.kernel.warn(`mmap: driver ${m.file.fOp.name} gave no backing memory`);
      this.errno = ENOMEM;
      return -1;
    }
    const addr = (this.kproc.mm as AddressSpace).mapBacked(backing, prot, m.vma.mmio);
    this.mappings.push({ addr, length: backing.length, file: m.file });
    return addr;
  }

  /** munmap of a mapping made by mmap(); drops its file reference. */
  munmap(addr: number, length: number): number {
    this.check();
    const i = this.mappings.findIndex((m) => m.addr === addr && m.length >= length);
    if (i < 0) {
      this.errno = EINVAL;
      return -1;
    }
    const m = this.mappings.splice(i, 1)[0]!;
    (this.kproc.mm as AddressSpace).unmap(m.addr, m.length);
    const body = function* (): KGen<number> {
      yield* fput(m.file);
      return 0;
    };
    return this.sys('munmap', { addr: '0x' + addr.toString(16), length }, body());
  }

  // ---- process lifetime ---------------------------------------------------------------------------

  /** fork(): a child with a copy of memory and of the fd table. */
  fork(name?: string): Process {
    this.check();
    const kchild = new KProcess(this.kernel, {
      name: name ?? this.name,
      uid: this.kproc.cred.uid,
      gid: this.kproc.cred.gid,
      caps: this.kproc.cred.caps,
      mm: (this.kproc.mm as AddressSpace).clone(),
      rlimitNofile: this.kproc.fdt.rlimitNofile,
    });
    kchild.parent = this.kproc;
    const parent = this.kproc;
    const maps = [...this.mappings];
    const child = new Process(this.host, { kproc: kchild });
    const body = function* (): KGen<number> {
      yield* forkFiles(parent, kchild);
      for (const m of maps) {
        yield* getFile(m.file);
        child.mappings.push({ ...m });
      }
      return kchild.pid;
    };
    this.sys('fork', {}, body());
    return child;
  }

  /** execve(): close-on-exec fds are closed (the program image is not modelled). */
  exec(): number {
    const p = this.kproc;
    return this.sys('execve', {}, (function* () {
      yield* execFiles(p);
      return 0;
    })());
  }

  /** exit(): every fd closed, every mapping dropped. */
  exit(code = 0): void {
    this.check();
    const p = this.kproc;
    const maps = this.mappings.splice(0, this.mappings.length);
    const body = function* (): KGen<number> {
      yield* exitFiles(p);
      for (const m of maps) yield* fput(m.file);
      return 0;
    };
    this.sys('exit', { code }, body());
    p.state = 'exited';
    p.exitCode = code;
  }

  /** The open fds (as /proc/PID/fd lists them). */
  fds(): number[] {
    return this.kproc.fdt.fds();
  }

  /** The raw kernel file behind an fd (for inspection in tests). */
  file(fd: number): File | undefined {
    return this.kproc.fdt.get(fd);
  }
}

/** A syscall started with Process.spawn that may be sleeping in the kernel. */
export class PendingCall {
  constructor(
    readonly process: Process,
    readonly task: Task,
  ) {}
  get done(): boolean {
    return this.task.state === 'done';
  }
  /** libc-style result once done (-1 with process.errno set on error) */
  get result(): number {
    if (!this.done) throw new SyscallBlocked(this.task);
    if (this.task.error !== undefined) throw this.task.error;
    const r = this.task.result as number;
    if (r < 0) {
      this.process.errno = -r;
      return -1;
    }
    return r;
  }
}

