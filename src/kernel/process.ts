// Processes: credentials, user memory and the fd table (fs/file.c), plus /proc entries for them.

import { EBADF, EMFILE } from './errno.js';
import { File, Inode, fput, getFile } from './fs/file.js';
import { AttrNode, Credentials, DirNode, DynDirNode, LinkNode, VNode } from './fs/vfs.js';
import { Kernel } from './kernel.js';
import { KGen, currentOrNull } from './sched.js';
import { AddressSpace, UserMemory } from './uaccess.js';

const RESERVED = Symbol('reserved fd');
type Slot = File | typeof RESERVED | undefined;

/** struct files_struct: fd -> file, plus the close-on-exec bits. */
export class FdTable {
  private slots: Slot[] = [];
  private cloexec: boolean[] = [];
  constructor(public rlimitNofile = 1024) {}

  /** get_unused_fd_flags / alloc_fd: the lowest free fd >= start, reserved until install. */
  alloc(start = 0, cloexec = false): number {
    let fd = start;
    while (fd < this.slots.length && this.slots[fd] !== undefined) fd++;
    if (fd >= this.rlimitNofile) return -EMFILE;
    this.slots[fd] = RESERVED;
    this.cloexec[fd] = cloexec;
    return fd;
  }

  /** put_unused_fd */
  unreserve(fd: number): void {
    if (this.slots[fd] === RESERVED) this.slots[fd] = undefined;
  }

  /** fd_install into a reserved slot. */
  install(fd: number, f: File): void {
    this.slots[fd] = f;
  }

  get(fd: number): File | undefined {
    const s = this.slots[fd];
    return s === RESERVED ? undefined : s;
  }

  /** Remove fd from the table; returns the file (the caller drops the reference). */
  take(fd: number): File | undefined {
    const f = this.get(fd);
    if (f) {
      this.slots[fd] = undefined;
      this.cloexec[fd] = false;
    }
    return f;
  }

  isCloexec(fd: number): boolean {
    return this.cloexec[fd] === true;
  }

  setCloexec(fd: number, v: boolean): void {
    this.cloexec[fd] = v;
  }

  /** Open fds in ascending order. */
  fds(): number[] {
    const out: number[] = [];
    this.slots.forEach((s, i) => {
      if (s !== undefined && s !== RESERVED) out.push(i);
    });
    return out;
  }
}

export interface ProcessOptions {
  /** RLIMIT_MEMLOCK in bytes (default 8 MiB, Debian's default) */
  rlimitMemlock?: number;
  name?: string;
  uid?: number;
  gid?: number;
  caps?: Iterable<string>;
  mm?: UserMemory;
  rlimitNofile?: number;
  /** a given pid (the bridge: a real process's); default the next free one */
  pid?: number;
}

/** Capabilities root has in this model (the ones VFIO and iommufd look at, and DAC ones). */
export const ROOT_CAPS = ['CAP_SYS_RAWIO', 'CAP_SYS_RESOURCE', 'CAP_IPC_LOCK', 'CAP_SYS_ADMIN', 'CAP_DAC_OVERRIDE'];

export class Process {
  readonly pid: number;
  comm: string;
  readonly cred: Credentials;
  mm: UserMemory;
  fdt: FdTable;
  cwd = '/';
  state: 'alive' | 'exited' = 'alive';
  /** RLIMIT_MEMLOCK (bytes) */
  rlimitMemlock: number;
  /** mm->locked_vm and mm->pinned_vm, in pages */
  lockedVm = 0;
  pinnedVm = 0;
  exitCode: number | null = null;
  parent: Process | null = null;
  private nextTid: number;

  constructor(
    readonly kernel: Kernel,
    opts: ProcessOptions = {},
  ) {
    const table = procTable(kernel);
    this.pid = opts.pid ?? table.nextPid++;
    this.nextTid = this.pid;
    this.comm = opts.name ?? `proc${this.pid}`;
    const uid = opts.uid ?? 0;
    this.cred = {
      uid,
      gid: opts.gid ?? uid,
      caps: new Set(opts.caps ?? (uid === 0 ? ROOT_CAPS : [])),
    };
    this.mm = opts.mm ?? new AddressSpace();
    this.rlimitMemlock = opts.rlimitMemlock ?? 8 * 1024 * 1024;
    this.fdt = new FdTable(opts.rlimitNofile ?? 1024);
    table.procs.set(this.pid, this);
  }

  /** A new thread id in this process (the main thread's id is the pid). */
  newTid(): number {
    return this.nextTid === this.pid ? this.nextTid++ : this.nextTid++;
  }

  capable(cap: string): boolean {
    return this.cred.caps.has(cap);
  }
}

interface ProcTable {
  nextPid: number;
  procs: Map<number, Process>;
  /** user_struct->locked_vm per uid, in pages (iommufd's per-user accounting) */
  userLockedVm: Map<number, number>;
}

export function procTable(k: Kernel): ProcTable {
  return k.state<ProcTable>('proc', () => ({ nextPid: 100, procs: new Map(), userLockedVm: new Map() }));
}

/** fd-table side of close(): remove the fd and drop its reference. */
export function* closeFd(p: Process, fd: number): KGen<number> {
  const f = p.fdt.take(fd);
  if (!f) return -EBADF;
  yield* fput(f);
  return 0;
}

/** fork(): a copy of the address space and of the fd table (each file gets a reference). */
export function* forkFiles(parent: Process, child: Process): KGen<void> {
  for (const fd of parent.fdt.fds()) {
    const f = parent.fdt.get(fd)!;
    yield* getFile(f);
    const nfd = child.fdt.alloc(fd, parent.fdt.isCloexec(fd));
    if (nfd !== fd) throw new Error('fork: fd table copy out of order');
    child.fdt.install(fd, f);
  }
}

/** exit(): close every fd, lowest first. */
export function* exitFiles(p: Process): KGen<void> {
  for (const fd of p.fdt.fds()) yield* closeFd(p, fd);
}

/** execve(): close the close-on-exec fds. */
export function* execFiles(p: Process): KGen<void> {
  for (const fd of p.fdt.fds()) if (p.fdt.isCloexec(fd)) yield* closeFd(p, fd);
}

// ---- /proc --------------------------------------------------------------------------------------

/** Mount a /proc with /proc/self, /proc/PID/{fd,fdinfo,comm} and /proc/devices. */
export function mountProc(k: Kernel): void {
  const fs = k.procFs;
  const table = procTable(k);
  const pidDir = (p: Process): VNode => {
    const d = new DirNode(String(p.pid), fs, 0o555);
    d.add(
      new DynDirNode(
        'fd',
        fs,
        (name) => fdLink(p, name),
        () => p.fdt.fds().map((fd) => fdLink(p, String(fd))!),
      ),
    );
    d.add(
      new DynDirNode(
        'fdinfo',
        fs,
        (name) => fdinfo(p, name),
        () => p.fdt.fds().map((fd) => fdinfo(p, String(fd))!),
      ),
    );
    d.add(new AttrNode('comm', { show: () => `${p.comm}\n` }, 0o644, fs));
    return d;
  };
  const fdLink = (p: Process, name: string): VNode | undefined => {
    if (!/^\d+$/.test(name)) return undefined;
    const f = p.fdt.get(Number(name));
    if (!f) return undefined;
    const l = new LinkNode(name, f.path, fs);
    l.mode = 0o120700;
    return l;
  };
  const fdinfo = (p: Process, name: string): VNode | undefined => {
    if (!/^\d+$/.test(name)) return undefined;
    const fd = Number(name);
    const f = p.fdt.get(fd);
    if (!f) return undefined;
    return new AttrNode(
      name,
      {
        show: () => {
          const flags = f.fFlags | (p.fdt.isCloexec(fd) ? 0o2000000 : 0);
          let s = `pos:\t${f.fPos}\nflags:\t0${flags.toString(8)}\nmnt_id:\t15\nino:\t${f.inode.ino}\n`;
          if (f.fOp.showFdinfo) s += f.fOp.showFdinfo(f);
          return s;
        },
      },
      0o444,
      fs,
    );
  };
  const proc = new DynDirNode(
    'proc',
    fs,
    (name) => {
      const cur = currentPid();
      if (name === 'self') return cur !== undefined ? new LinkNode('self', String(cur), fs) : undefined;
      if (!/^\d+$/.test(name)) return undefined;
      const p = table.procs.get(Number(name));
      return p && p.state === 'alive' ? pidDir(p) : undefined;
    },
    () => [...table.procs.values()].filter((p) => p.state === 'alive').map(pidDir),
  );
  proc.add(new AttrNode('devices', { show: () => k.chrdevs.procDevices() }, 0o444, fs));
  k.vfs.root.add(proc);
}

/** /proc/self: the process of the task doing the lookup. */
function currentPid(): number | undefined {
  const p = currentOrNull()?.proc as Process | null | undefined;
  return p?.pid;
}

export function inodeOf(n: VNode): Inode {
  const anyN = n as VNode & { inode?: Inode };
  if (!anyN.inode) {
    anyN.inode = {
      ino: n.ino,
      mode: n.mode,
      uid: n.uid,
      gid: n.gid,
      rdev: n.type === 'chr' ? (n as VNode & { rdev: { major: number; minor: number } }).rdev : null,
      dev: n.fs.dev,
      nlink: n.type === 'dir' ? 2 : 1,
      size: n.type === 'attr' ? ((n as VNode & { ops?: { size?: number } }).ops?.size ?? 4096) : 0,
      node: n,
    };
  }
  return anyN.inode;
}
