// The bridge daemon: real programs (through the LD_PRELOAD shim) against the model.
//
// Every request runs as a syscall of the model's kernel (Kernel.startSyscall) in a model process
// standing for the real caller: its memory is the caller's real memory, its fd table the caller's
// real fd table. A syscall that sleeps in the model (a sysfs unbind waiting for users) is answered
// when its task completes; other requests go on meanwhile.
//
// File lifetime is the real kernel's: each emulated open file is one socket whose client end the
// caller holds; when its last reference goes (close, exit, SIGKILL, after any dup, fork, exec or
// SCM_RIGHTS), the daemon's end hangs up and the daemon drops its reference on the model's file.
// Pending hang-ups are drained before every request, so a file closed before a request was sent
// is released before that request runs (the kernel's order: a child's files are released before
// its parent's waitpid returns).

import { fstatSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { EBADF, EFAULT, EINVAL, EIO, ENODEV, ENOSYS, EPERM, errnoName } from '../kernel/errno.js';
import { File, MmioOps, fput } from '../kernel/fs/file.js';
import { DirNode, LinkNode, Stat } from '../kernel/fs/vfs.js';
import { Kernel } from '../kernel/kernel.js';
import { allocDeviceMemory, setDeviceMemoryAllocator } from '../kernel/devmem.js';
import { PAGE_SIZE } from '../kernel/uaccess.js';
import { Process as KProcess, ROOT_CAPS } from '../kernel/process.js';
import { KGen, Task } from '../kernel/sched.js';
import {
  sysAccess, sysFcntl, sysFstat, sysGetdents, sysIoctl, sysLseek, sysMmapFile, sysOpen, sysPread,
  sysPwrite, sysRead, sysReadlink, sysStat, sysWrite,
} from '../kernel/syscalls.js';
import type { Host } from '../host/host.js';
import { fileKind } from '../api/process.js';
import { ioctlName } from '../uapi/ioctls.js';
import { Addon, loadAddon } from './native.js';
import {
  AT_FDCWD, AT_SYMLINK_NOFOLLOW, FILE_SOCKET_PREFIX, MAX_MSG, OP_NAMES, Op, RESP_FD, RESP_RET_IS_FD, Request,
  decodeRequest, encodeDirents, encodeResponse, encodeStat,
} from './protocol.js';
import {
  ClientVma, RegionMaps, RemoteFdTable, RemoteMemory, SCRATCH_BASE, classifyFdLink, foreignFile, realEventfdFile,
} from './remote.js';

/** answer flag: install the passed fd close-on-exec */
export const RESP_CLOEXEC = 4;

const TAG_LISTEN = 1;
const TAG_CHANNEL = 2;
const TAG_HANGUPS = 3;
const TAG_FILE = 4;
const TAG_PROCESS = 5;

export interface DaemonOptions {
  /** path of the listening socket */
  socketPath: string;
  /** one line per bridged syscall (and daemon notices) */
  log?: (line: string) => void;
  /** advance the model's virtual clock with real time (default true) */
  realTime?: boolean;
}

interface FileRec {
  file: File;
  daemonEnd: number;
  clientIno: number;
}

interface Chan {
  fd: number;
}

interface ProcRec {
  kp: KProcess;
  pidfd: number;
}

/** Linux capability numbers of the capabilities the model looks at. */
const CAP_BITS: Record<string, number> = {
  CAP_DAC_OVERRIDE: 1,
  CAP_DAC_READ_SEARCH: 2,
  CAP_IPC_LOCK: 14,
  CAP_SYS_RAWIO: 17,
  CAP_SYS_ADMIN: 21,
  CAP_SYS_RESOURCE: 24,
};

/** The paths the shim sends to the daemon: the simulated host's device nodes and sysfs trees. */
export function emulatedPaths(k: Kernel): string[] {
  const fixed = [
    '/dev/vfio', '/dev/iommu', '/sys/bus/pci', '/sys/kernel/iommu_groups', '/sys/class/vfio', '/sys/class/vfio-dev',
    '/sys/class/misc/vfio', '/sys/class/misc/iommu', '/sys/devices/virtual/vfio', '/sys/devices/virtual/misc/vfio',
    '/sys/devices/virtual/misc/iommu', '/sys/module/vfio', '/sys/module/vfio_pci', '/sys/module/vfio_iommu_type1',
    '/sys/module/iommufd',
  ];
  const out = fixed.filter((p) => k.vfs.lookupNoFollow(p) !== undefined);
  const devices = k.vfs.lookupNoFollow('/sys/devices');
  if (devices instanceof DirNode) for (const c of devices.list()) if (/^pci[0-9a-f]{4}:[0-9a-f]{2}$/.test(c.name)) out.push(c.path());
  const under = (p: string) => out.some((q) => p === q || p.startsWith(q + '/'));
  const chr = k.vfs.lookupNoFollow('/sys/dev/char');
  if (chr instanceof DirNode) {
    for (const c of chr.list()) {
      if (!(c instanceof LinkNode)) continue;
      const r = k.vfs.resolve(c.path(), true);
      if (typeof r !== 'number' && under(r.path())) out.push(c.path());
    }
  }
  // Hidden: the Intel IOMMU's debugfs (the model has none; clients must see ENOENT there).
  out.push('/sys/kernel/debug/iommu');
  return out;
}

let fileSeq = 0;

// memfd-backed device memory: the memfd of each buffer, closed when the buffer is collected
const sharedMem = new WeakMap<ArrayBufferLike, number>();
const sharedMemFds = new FinalizationRegistry<{ fd: number; ino: number; close: (fd: number) => number }>((h) => {
  h.close(h.fd);
  if (!memByIno.get(h.ino)?.deref()) memByIno.delete(h.ino);
});
// the same buffers by their memfd's inode (what /proc/PID/maps shows of a client's mapping)
const memByIno = new Map<number, WeakRef<ArrayBuffer>>();

/** A region mapping handed out to a client (the kernel's vma, as far as the daemon needs it). */
interface MapRec {
  id: number;
  file: File;
  /** the driver's vm_ops */
  mmio?: MmioOps;
  /** every access is trapped (the client maps the memfd PROT_NONE and forwards each access) */
  trapped: boolean;
  /** prot as the program asked */
  prot: number;
  /** the memfd (inode) and the offset in it of the mapping's first byte */
  ino: number;
  memfdOff: number;
  length: number;
  /** the process that made it, and where */
  pid: number;
  start: number;
}

export class BridgeDaemon {
  readonly kernel: Kernel;
  readonly paths: string[];
  private readonly native: Addon;
  private listenFd = -1;
  private mainEp = -1;
  private hupEp = -1;
  private readonly files = new Map<number, FileRec>();
  private readonly filesByDaemonEnd = new Map<number, FileRec>();
  private readonly procs = new Map<number, ProcRec>();
  private readonly procsByPidfd = new Map<number, number>();
  /** the connected channels by fd (an object per connection: an fd number is reused after close) */
  private readonly channels = new Map<number, Chan>();
  private readonly maps = new Map<number, MapRec>();
  private mapSeq = 0;
  /** region mappings as RemoteMemory asks about them */
  private readonly regions: RegionMaps = {
    memory: (ino) => {
      const ab = memByIno.get(ino)?.deref();
      return ab ? new Uint8Array(ab) : undefined;
    },
    mapping: (pid, vma) => this.mappingOf(pid, vma),
  };
  private readonly ev = new Int32Array(3 * 256);
  private readonly rbuf = Buffer.alloc(MAX_MSG);
  private readonly wbuf = Buffer.alloc(MAX_MSG);
  private readonly creds = new Int32Array(3);
  private readonly releaser: KProcess;
  private clockTimer: NodeJS.Timeout | null = null;
  private readonly startTime = Math.floor(Date.now() / 1000);
  private stopped = false;
  /** requests answered (for tests and the benchmark) */
  requests = 0;
  /** loads and stores of trapped region mappings forwarded by clients */
  mmioAccesses = 0;
  /** model files released after their socket's last reference went away */
  releases = 0;

  constructor(
    readonly host: Host,
    readonly opts: DaemonOptions,
  ) {
    this.kernel = host.kernel;
    this.native = loadAddon();
    this.paths = emulatedPaths(this.kernel);
    this.releaser = new KProcess(this.kernel, { name: 'vfiosim-bridge' });
    // device memory a driver hands out through ->mmap is shared with the clients
    const n = this.native;
    setDeviceMemoryAllocator(this.kernel, {
      alloc: (size: number, name: string) => {
        const r = n.memfdBuffer(`vfiosim:${name}`.slice(0, 60), Math.max(PAGE_SIZE, Math.ceil(size / PAGE_SIZE) * PAGE_SIZE));
        if (typeof r === 'number') {
          this.log(`memfd for ${name} failed (${errnoName(-r)}): it cannot be mmapped by clients`);
          return new Uint8Array(size);
        }
        const [fd, ab] = r;
        const ino = fstatSync(fd).ino;
        sharedMem.set(ab, fd);
        memByIno.set(ino, new WeakRef(ab));
        sharedMemFds.register(ab, { fd, ino, close: (x) => n.close(x) });
        return new Uint8Array(ab, 0, size);
      },
    });
  }

  get socketPath(): string {
    return this.opts.socketPath;
  }

  /** Listen and serve on the Node event loop. */
  start(): void {
    const n = this.native;
    try {
      unlinkSync(this.opts.socketPath);
    } catch {
      // not there
    }
    const lfd = n.listen(this.opts.socketPath);
    if (lfd < 0) throw new Error(`cannot listen on ${this.opts.socketPath}: ${errnoName(-lfd)}`);
    this.listenFd = lfd;
    this.mainEp = n.epollCreate();
    this.hupEp = n.epollCreate();
    if (this.mainEp < 0 || this.hupEp < 0) throw new Error('epoll_create1 failed');
    n.epollAdd(this.mainEp, lfd, 1, TAG_LISTEN);
    n.epollAdd(this.mainEp, this.hupEp, 1, TAG_HANGUPS);
    n.watch(this.mainEp, () => this.onReady());
    if (this.opts.realTime !== false) {
      let last = Date.now();
      this.clockTimer = setInterval(() => {
        const now = Date.now();
        this.kernel.clock.advance(now - last);
        last = now;
      }, 250);
      this.clockTimer.unref();
    }
  }

  /** Stop serving: close every socket (the model's files stay as they are). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    const n = this.native;
    n.unwatch(this.mainEp);
    if (this.clockTimer) clearInterval(this.clockTimer);
    for (const c of this.channels.keys()) n.close(c);
    for (const r of this.files.values()) n.close(r.daemonEnd);
    for (const p of this.procs.values()) n.close(p.pidfd);
    this.channels.clear();
    if (this.listenFd >= 0) n.close(this.listenFd);
    if (this.mainEp >= 0) n.close(this.mainEp);
    if (this.hupEp >= 0) n.close(this.hupEp);
    try {
      unlinkSync(this.opts.socketPath);
    } catch {
      // gone
    }
  }

  /** Open model files (emulated files with at least one real reference). */
  get openFiles(): number {
    return this.files.size;
  }

  private log(line: string): void {
    this.opts.log?.(line);
  }

  // ---- events ----------------------------------------------------------------------------------

  private onReady(): void {
    if (this.stopped) return;
    const n = this.native;
    const cnt = n.epollDrain(this.mainEp, this.ev);
    const chans: number[] = [];
    for (let i = 0; i < cnt; i++) {
      const fd = this.ev[3 * i]!;
      const tag = this.ev[3 * i + 1]!;
      if (tag === TAG_HANGUPS) this.drainHangups();
      else if (tag === TAG_LISTEN) this.acceptAll();
      else if (tag === TAG_CHANNEL) chans.push(fd);
    }
    for (const c of chans) this.readChannel(c);
  }

  private acceptAll(): void {
    const n = this.native;
    for (;;) {
      const fd = n.accept(this.listenFd);
      if (fd < 0) break;
      this.channels.set(fd, { fd });
      n.epollAdd(this.mainEp, fd, 1, TAG_CHANNEL);
    }
  }

  /** File sockets whose last reference went away, and processes that exited. */
  private drainHangups(): void {
    const n = this.native;
    for (;;) {
      const cnt = n.epollDrain(this.hupEp, this.ev);
      if (cnt <= 0) return;
      const got: Array<[number, number]> = [];
      for (let i = 0; i < cnt; i++) got.push([this.ev[3 * i]!, this.ev[3 * i + 1]!]);
      for (const [fd, tag] of got) {
        if (tag === TAG_FILE) this.fileHangup(fd);
        else if (tag === TAG_PROCESS) this.processExit(fd);
      }
    }
  }

  private fileHangup(daemonEnd: number): void {
    const rec = this.filesByDaemonEnd.get(daemonEnd);
    const n = this.native;
    n.epollDel(this.hupEp, daemonEnd);
    n.close(daemonEnd);
    if (!rec) return;
    this.filesByDaemonEnd.delete(daemonEnd);
    this.files.delete(rec.clientIno);
    this.releases++;
    const f = rec.file;
    // its mappings are gone too (each held a reference: the last one went after them)
    for (const [id, m] of this.maps) if (m.file === f) this.maps.delete(id);
    const body = function* (): KGen<number> {
      yield* fput(f);
      return 0;
    };
    const t = this.kernel.startSyscall(this.releaser, 0, 'close', { file: f.path, why: 'last reference' }, body());
    t.whenDone((d) => {
      if (d.error !== undefined) this.log(`release of ${f.path} failed: ${String(d.error)}`);
    });
  }

  private processExit(pidfd: number): void {
    const n = this.native;
    n.epollDel(this.hupEp, pidfd);
    n.close(pidfd);
    const pid = this.procsByPidfd.get(pidfd);
    this.procsByPidfd.delete(pidfd);
    if (pid === undefined) return;
    const rec = this.procs.get(pid);
    if (rec && rec.pidfd === pidfd) {
      rec.kp.state = 'exited';
      this.procs.delete(pid);
    }
  }

  private readChannel(fd: number): void {
    const n = this.native;
    for (;;) {
      const chan = this.channels.get(fd);
      if (!chan) return;
      const r = n.recv(fd, this.rbuf, this.creds);
      if (r === -11) return; // EAGAIN
      if (r <= 0) {
        this.closeChannel(fd);
        return;
      }
      const req = decodeRequest(this.rbuf, r);
      if (!req) {
        this.closeChannel(fd);
        return;
      }
      // hang-ups first: a file closed before this request was sent is released before it runs
      this.drainHangups();
      this.handle(chan, req, this.creds[0]!, this.creds[1]!, this.creds[2]!);
    }
  }

  private closeChannel(fd: number): void {
    if (!this.channels.delete(fd)) return;
    this.native.epollDel(this.mainEp, fd);
    this.native.close(fd);
  }

  private reply(chan: Chan, ret: number | bigint, flags = 0, payload?: Uint8Array, passFd = -1): void {
    this.requests++;
    const len = encodeResponse(this.wbuf, ret, flags, payload);
    // the caller went away while the model worked (its answer must not reach a new channel that
    // got the same fd number)
    if (this.channels.get(chan.fd) !== chan) return;
    const r = this.native.send(chan.fd, this.wbuf, len, passFd);
    if (r < 0) this.closeChannel(chan.fd);
  }

  // ---- processes ---------------------------------------------------------------------------------

  /** The model process standing for real process `pid` (created at its first request). */
  private procFor(pid: number, uid: number, gid: number): KProcess | null {
    if (pid <= 0) return null;
    const rec = this.procs.get(pid);
    if (rec && rec.kp.state === 'alive') return rec.kp;
    const pidfd = this.native.pidfdOpen(pid);
    if (pidfd < 0) return null;
    let comm = `pid${pid}`;
    let caps: string[] = [];
    let memlock: number | undefined;
    try {
      comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const eff = /^CapEff:\s*([0-9a-f]+)/m.exec(status);
      if (eff) {
        const bits = BigInt('0x' + eff[1]);
        caps = Object.entries(CAP_BITS)
          .filter(([, b]) => (bits >> BigInt(b)) & 1n)
          .map(([name]) => name);
      } else if (uid === 0) caps = ROOT_CAPS;
      const limits = readFileSync(`/proc/${pid}/limits`, 'utf8');
      const ml = /^Max locked memory\s+(\S+)/m.exec(limits);
      if (ml) memlock = ml[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(ml[1]);
    } catch {
      // the process is going away; defaults will do for whatever it still asks
    }
    const mm = new RemoteMemory(pid, this.native, this.regions);
    const kp = new KProcess(this.kernel, {
      pid,
      name: comm,
      uid,
      gid,
      caps,
      mm,
      ...(memlock !== undefined ? { rlimitMemlock: memlock } : {}),
    });
    kp.fdt = new RemoteFdTable((fd) => this.resolveFd(kp, pidfd, fd));
    this.procs.set(pid, { kp, pidfd });
    this.procsByPidfd.set(pidfd, pid);
    this.native.epollAdd(this.hupEp, pidfd, 1, TAG_PROCESS);
    return kp;
  }

  /** fd N of a real process, as the model sees it: one of our files, an eventfd, or foreign. */
  private resolveFd(kp: KProcess, pidfd: number, fd: number): File | undefined {
    const c = classifyFdLink(kp.pid, fd);
    if (!c) return undefined;
    if (c.kind === 'socket') {
      const rec = this.files.get(c.ino);
      if (rec) return rec.file;
      return foreignFile(this.kernel.anonInode, `socket:[${c.ino}]`);
    }
    if (c.kind === 'eventfd') {
      const copy = this.native.pidfdGetfd(pidfd, fd);
      if (copy < 0) {
        this.log(`pidfd_getfd(${kp.pid}, ${fd}) failed: ${errnoName(-copy)}; the eventfd cannot be signalled`);
        return foreignFile(this.kernel.anonInode, 'anon_inode:[eventfd]');
      }
      return realEventfdFile(this.kernel.anonInode, this.native, copy, (cfd) => {
        const one = Buffer.alloc(8);
        one.writeBigUInt64LE(1n);
        try {
          writeSync(cfd, one);
        } catch {
          // counter full (EAGAIN): as eventfd_signal, nothing to do
        }
      });
    }
    return foreignFile(this.kernel.anonInode, c.link);
  }

  /** Hand a model file (holding one reference) to the client as a new socket; returns its end. */
  private exportFile(file: File): number | null {
    const n = this.native;
    const pair = n.socketpair(`${FILE_SOCKET_PREFIX}${process.pid}:${++fileSeq}:${file.id}`);
    if (typeof pair === 'number') {
      this.log(`socketpair failed: ${errnoName(-pair)}`);
      return null;
    }
    const [d, c] = pair;
    const ino = fstatSync(c).ino;
    const rec: FileRec = { file, daemonEnd: d, clientIno: ino };
    this.files.set(ino, rec);
    this.filesByDaemonEnd.set(d, rec);
    n.epollAdd(this.hupEp, d, 2, TAG_FILE);
    return c;
  }

  // ---- requests ------------------------------------------------------------------------------------

  private handle(chan: Chan, req: Request, pid: number, uid: number, gid: number): void {
    if (req.op === Op.ECHO) return this.reply(chan, 0);
    if (req.op === Op.INFO) {
      // "pid\nhost\npath\npath..."
      const info = [String(process.pid), this.host.topology.name, ...this.paths].join('\n');
      return this.reply(chan, 0, 0, Buffer.from(info));
    }
    const kp = this.procFor(pid, uid, gid);
    if (!kp) return this.reply(chan, -EPERM);
    const out: { stat?: Stat; payload?: Uint8Array; fdResult?: boolean; passFd?: number } = {};
    let body: KGen<number>;
    let args: Record<string, unknown>;
    const a0 = req.a0;
    const a1 = req.a1;
    const fd = req.fd;
    const name = OP_NAMES[req.op] ?? `op${req.op}`;
    switch (req.op) {
      case Op.OPEN: {
        const path = this.absPath(kp, req);
        if (typeof path === 'number') return this.reply(chan, path);
        args = { path, flags: req.flags };
        out.fdResult = true;
        body = sysOpen(kp, path, req.flags, Number(a0));
        break;
      }
      case Op.IOCTL: {
        const cmd = Number(a0 & 0xffffffffn);
        args = { fd, request: ioctlName(cmd, fileKind(kp.fdt.get(fd))), arg: '0x' + a1.toString(16) };
        out.fdResult = true;
        body = sysIoctl(kp, fd, cmd, a1);
        break;
      }
      case Op.READ:
        args = { fd, count: Number(a1) };
        body = sysRead(kp, fd, ptr(a0), clampCount(a1));
        break;
      case Op.WRITE:
        args = { fd, count: Number(a1) };
        body = sysWrite(kp, fd, ptr(a0), clampCount(a1));
        break;
      case Op.PREAD:
        args = { fd, count: Number(a1), offset: '0x' + req.a2.toString(16) };
        body = sysPread(kp, fd, ptr(a0), clampCount(a1), BigInt.asIntN(64, req.a2));
        break;
      case Op.PWRITE:
        args = { fd, count: Number(a1), offset: '0x' + req.a2.toString(16) };
        body = sysPwrite(kp, fd, ptr(a0), clampCount(a1), BigInt.asIntN(64, req.a2));
        break;
      case Op.LSEEK:
        args = { fd, offset: String(BigInt.asIntN(64, a0)), whence: Number(a1) };
        body = (function* () {
          const r = yield* sysLseek(kp, fd, BigInt.asIntN(64, a0), Number(a1));
          return Number(r);
        })();
        break;
      case Op.FCNTL:
        args = { fd, cmd: Number(a0), arg: Number(a1) };
        body = sysFcntl(kp, fd, Number(a0), Number(a1));
        break;
      case Op.FSTAT:
        args = { fd };
        body = sync(() => {
          const s = sysFstat(kp, fd);
          if (typeof s === 'number') return s;
          out.stat = s;
          return 0;
        });
        break;
      case Op.STAT: {
        const path = this.absPath(kp, req);
        if (typeof path === 'number') return this.reply(chan, path);
        const follow = !(req.flags & AT_SYMLINK_NOFOLLOW) || forcesFollow(path);
        args = { path, follow };
        body = sync(() => {
          const s = sysStat(kp, path, follow);
          if (typeof s === 'number') return s;
          out.stat = s;
          return 0;
        });
        break;
      }
      case Op.READLINK: {
        const path = this.absPath(kp, req);
        if (typeof path === 'number') return this.reply(chan, path);
        args = { path };
        body = sync(() => {
          if (forcesFollow(path)) {
            const n = this.kernel.vfs.resolve(path, true, '/', kp.cred);
            return typeof n === 'number' ? n : -EINVAL;
          }
          const s = sysReadlink(kp, path);
          if (typeof s === 'number') return s;
          out.payload = Buffer.from(s);
          return out.payload.length;
        });
        break;
      }
      case Op.ACCESS: {
        const path = this.absPath(kp, req);
        if (typeof path === 'number') return this.reply(chan, path);
        args = { path, mode: Number(a0) };
        body = sync(() => sysAccess(kp, path, Number(a0)));
        break;
      }
      case Op.GETDENTS:
        args = { fd };
        body = sync(() => {
          const d = sysGetdents(kp, fd);
          if (typeof d === 'number') return d;
          out.payload = encodeDirents(d);
          return d.length;
        });
        break;
      case Op.REALPATH: {
        const path = this.absPath(kp, req);
        if (typeof path === 'number') return this.reply(chan, path);
        args = { path };
        body = sync(() => {
          const r = this.kernel.vfs.realpath(path, '/');
          if (typeof r === 'number') return r;
          out.payload = Buffer.from(r);
          return out.payload.length;
        });
        break;
      }
      case Op.MMAP: {
        // flags = prot, a0 = length, a1 = mmap flags, a2 = offset, a3 = where the shim maps it
        const prot = req.flags;
        const start = ptr(req.a3);
        args = { fd, length: Number(a0), prot, flags: Number(a1), offset: '0x' + req.a2.toString(16), addr: '0x' + req.a3.toString(16) };
        const log = (m: string) => this.log(m);
        const alloc = this.allocShared;
        const record = (r: Omit<MapRec, 'id'>) => this.addMapping(r);
        body = (function* () {
          const r = yield* sysMmapFile(kp, Number(a0), prot, Number(a1), fd, req.a2);
          if (typeof r === 'number') return r;
          // The mapping's own file reference: the shim keeps the file open while the mapping lives.
          yield* fput(r.file);
          const vma = r.vma;
          const trapped = !!vma.trapped && !!vma.mmio;
          // a mapping whose every access is trapped needs no memory of its own (as in process)
          const backing = vma.backing ?? (trapped ? alloc(vma.length, `${r.file.path}:trap`) : undefined);
          const memfd = backing ? sharedMem.get(backing.buffer) : undefined;
          if (!backing || memfd === undefined || backing.byteOffset % PAGE_SIZE !== 0 || backing.length < vma.length) {
            log(`mmap of ${r.file.path}: the driver gave ${backing ? 'memory not from allocDeviceMemory' : 'no memory'}; clients cannot map it`);
            return -ENODEV;
          }
          const id = record({
            file: r.file,
            ...(vma.mmio ? { mmio: vma.mmio } : {}),
            trapped,
            prot,
            ino: fstatSync(memfd).ino,
            memfdOff: backing.byteOffset,
            length: vma.length,
            pid: kp.pid,
            start,
          });
          out.passFd = memfd;
          const p = Buffer.alloc(16);
          p.writeBigUInt64LE(BigInt(backing.byteOffset), 0);
          p.writeUInt32LE(id, 8);
          p.writeUInt32LE(trapped ? 1 : 0, 12);
          out.payload = p;
          return 0;
        })();
        break;
      }
      case Op.MMIO: {
        // fd = the mapping's file, a0 = mapping id, a1 = offset in the mapping, a2 = size,
        // flags = 1 for a store; a3 = the value stored (size <= 8) or the source address (64)
        const m = this.maps.get(Number(a0 & 0xffffffffn));
        const size = Number(req.a2);
        const off = Number(a1);
        const write = (req.flags & 1) !== 0;
        const f = kp.fdt.get(fd);
        if (!m || !m.mmio || f !== m.file) return this.reply(chan, -EBADF);
        if (![1, 2, 4, 8, 64].includes(size) || off < 0 || off + size > m.length) return this.reply(chan, -EINVAL);
        const data = new Uint8Array(size);
        if (write) {
          if (size <= 8) {
            let v = req.a3;
            for (let i = 0; i < size; i++, v >>= 8n) data[i] = Number(v & 0xffn);
          } else {
            const src = kp.mm.read(ptr(req.a3), size);
            if (!src) return this.reply(chan, -EFAULT);
            data.set(src);
          }
        }
        this.mmioAccesses++;
        const ok = m.mmio.access(off, data, write);
        if (this.opts.log) this.log(`${kp.comm}[${kp.pid}] mmio ${write ? 'store' : 'load'}(${m.file.path}+0x${off.toString(16)}, ${size}${write && size <= 8 ? `, 0x${req.a3.toString(16)}` : ''}) = ${ok ? (write ? 'ok' : '0x' + Buffer.from(data).reverse().toString('hex')) : 'SIGBUS'}`);
        if (!ok) return this.reply(chan, -EFAULT);
        return this.reply(chan, 0, 0, write ? undefined : data);
      }
      default:
        return this.reply(chan, -ENOSYS);
    }
    const t = this.kernel.startSyscall(kp, req.tid || kp.pid, name, args, body);
    t.whenDone((done) => this.finish(chan, kp, name, args, done, out));
  }

  private finish(
    chan: Chan,
    kp: KProcess,
    name: string,
    args: Record<string, unknown>,
    t: Task,
    out: { stat?: Stat; payload?: Uint8Array; fdResult?: boolean; passFd?: number },
  ): void {
    let ret: number;
    if (t.error !== undefined) {
      this.log(`${kp.pid} ${name}: the model failed: ${String((t.error as Error).stack ?? t.error)}`);
      ret = -EIO;
    } else ret = t.result as number;
    if (this.opts.log) this.log(`${kp.comm}[${kp.pid}] ${name}(${fmtArgs(args)}) = ${ret < 0 ? `-1 ${errnoName(-ret)}` : ret}`);
    if (out.fdResult && ret >= SCRATCH_BASE) {
      const fdt = kp.fdt as RemoteFdTable;
      const cloexec = fdt.isCloexec(ret);
      const file = fdt.take(ret);
      if (!file) return this.reply(chan, -EBADF);
      const c = this.exportFile(file);
      if (c === null) {
        this.dropRef(file);
        return this.reply(chan, -EIO);
      }
      this.reply(chan, 0, RESP_FD | RESP_RET_IS_FD | (cloexec ? RESP_CLOEXEC : 0), undefined, c);
      this.native.close(c);
      return;
    }
    if (out.passFd !== undefined && ret >= 0) return this.reply(chan, ret, RESP_FD, out.payload, out.passFd);
    if (out.stat) {
      const s = out.stat;
      return this.reply(chan, ret, 0, encodeStat({ ...s, time: this.startTime }));
    }
    this.reply(chan, ret, 0, out.payload);
  }

  private addMapping(r: Omit<MapRec, 'id'>): number {
    let id = ++this.mapSeq;
    if (id > 0xffffffff) id = this.mapSeq = 1;
    this.maps.set(id, { id, ...r });
    return id;
  }

  /** The mapping a client vma of device memory comes from: the one made there, else any of that memory. */
  private mappingOf(pid: number, v: ClientVma): MapRec | null {
    let any: MapRec | null = null;
    const off = v.offset;
    for (const m of this.maps.values()) {
      if (m.ino !== v.ino || off < m.memfdOff || off >= m.memfdOff + m.length) continue;
      if (m.pid === pid && m.start - m.memfdOff === v.start - v.offset) return m;
      any ??= m;
    }
    return any;
  }

  /** Shareable memory the model does not own (the backing of a trapped mapping without one). */
  private readonly allocShared = (size: number, name: string): Uint8Array => allocDeviceMemory(this.kernel, Math.ceil(size / PAGE_SIZE) * PAGE_SIZE, name);

  /** Region mappings handed out and not yet released (for tests). */
  get regionMappings(): number {
    return this.maps.size;
  }

  private dropRef(f: File): void {
    const body = function* (): KGen<number> {
      yield* fput(f);
      return 0;
    };
    this.kernel.startSyscall(this.releaser, 0, 'close', { file: f.path }, body());
  }

  /** The absolute path a path request names (relative ones are relative to an emulated dir fd). */
  private absPath(kp: KProcess, req: Request): string | number {
    const p = req.path;
    if (p === null) return -EFAULT;
    if (p.startsWith('/')) return p;
    if (req.fd === AT_FDCWD) return '/' + p; // the shim sends absolute paths for AT_FDCWD
    const dir = kp.fdt.get(req.fd);
    if (!dir) return -EBADF;
    if (p === '') return dir.path;
    return dir.path.replace(/\/$/, '') + '/' + p;
  }
}

/** A final "/", "/." or "/.." makes the walk follow the last symlink (fs/namei.c). */
function forcesFollow(path: string): boolean {
  return path.length > 1 && /(\/|\/\.|\/\.\.)$/.test(path);
}

function ptr(a: bigint): number {
  return a >= BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(a);
}

function clampCount(a: bigint): number {
  return a > 0x7fffffffn ? 0x7ffff000 : Number(a);
}

function sync(f: () => number): KGen<number> {
  return (function* () {
    return f();
  })();
}

function fmtArgs(args: Record<string, unknown>): string {
  return Object.entries(args)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(', ');
}
