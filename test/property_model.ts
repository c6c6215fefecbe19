// Reference model and runner for the property tests of the VFIO device-access core
// (test/property.test.ts). A run boots the default host, creates a few simulated processes and
// executes a list of random operations (syscalls from those processes and administrator
// actions). Every operation's real call sits next to its model update: the model predicts the
// result (a value or an errno) from its own bookkeeping, the call is made, the result is
// compared, and the model is updated. After EVERY step the host is compared with the model:
//
//  1. open_count of each vfio device equals the number of live device files holding an open
//     (group-path device files count one each, a bound cdev file one, a blocked cdev file zero);
//  2. open_device / close_device trace events alternate per device, and each happens exactly in
//     the step where the model's count goes 0 -> 1 / 1+ -> 0;
//  3. no kernel warning (no device access before access was granted, no refcount misuse, ...);
//  4. registration refcount == 1 (while registered) + live device files, 0 once unregistered;
//  5. an unbind / hot-unplug is done exactly when the last file of its device has gone;
//  6. at most one live group file per vfio_group, and never a live group file while a cdev of
//     the group is bound;
// plus: file reference counts (f_count, including the references group files, iommufd contexts
// and bindings hold), the released state of every file, the fd tables (and FD_CLOEXEC) of every
// process, vfio indices after rebinds (lowest free), the vfio_group objects (opened_file,
// cdev_device_open_cnt, container_users, container/iommufd) and the unregistration's request
// callbacks (request(0) at once, one more per 10 s of waiting) all match the model.
//
// Operations refer to processes and fds through selectors (natural numbers taken modulo what
// exists when the operation runs), so any list of operations is valid and shrinks well.

import { AdminTask, Host, Process, errnoName, uapi as U } from '../src/api/index.js';
import type { File } from '../src/kernel/fs/file.js';
import type { VfioDevice, VfioGroup } from '../src/vfio/vfio.js';

// ---- the devices under test ----------------------------------------------------------------------

export interface DevSpec {
  name: string;
  bdf: string;
  /** IOMMU group id (the /dev/vfio/N node) */
  gid: number;
  /** vfio index at boot */
  index: number;
}

export const DEVICES: readonly DevSpec[] = [
  { name: 'e1000e', bdf: '0000:01:00.0', gid: 6, index: 0 },
  { name: 'igb0', bdf: '0000:04:00.0', gid: 10, index: 4 },
  { name: 'igb1', bdf: '0000:04:00.1', gid: 11, index: 5 },
  { name: 'grp-edu', bdf: '0000:06:01.0', gid: 13, index: 6 },
  { name: 'grp-testdev', bdf: '0000:06:02.0', gid: 13, index: 7 },
];

// ---- operations ----------------------------------------------------------------------------------

export type SetTarget = 'container' | 'iommufd' | 'other';

export type Op =
  | { t: 'openCdev'; p: number; d: number }
  | { t: 'openIommu'; p: number }
  | { t: 'bind'; p: number; f: number; i: number; other: boolean }
  | { t: 'openGroup'; p: number; d: number }
  | { t: 'openContainer'; p: number }
  | { t: 'setContainer'; p: number; f: number; c: number; target: SetTarget }
  | { t: 'unsetContainer'; p: number; f: number }
  | { t: 'setIommu'; p: number; c: number }
  | { t: 'getDeviceFd'; p: number; f: number; d: number; any: boolean }
  | { t: 'getInfo'; p: number; f: number }
  | { t: 'close'; p: number; f: number }
  | { t: 'dup'; p: number; f: number }
  | { t: 'dup2'; p: number; f: number; g: number }
  | { t: 'exec'; p: number }
  | { t: 'fork'; p: number }
  | { t: 'exit'; p: number }
  | { t: 'spawn' }
  /** busy: pick among the devices that have open device files (so the unbind has to wait) */
  | { t: 'unbind'; d: number; busy: boolean }
  | { t: 'hotUnplug'; d: number; busy: boolean }
  | { t: 'hotUnplugBridge'; b: number }
  | { t: 'advance'; ms: number }
  | { t: 'rebind'; d: number }
  // a usual program's sequence of calls, expanded into the single-call operations above (each
  // one checked like any other step); fd selector 0 is the newest fd of the kind
  | { t: 'viaContainer'; p: number; d: number }
  | { t: 'viaGroupIommufd'; p: number; d: number }
  | { t: 'viaCdev'; p: number; d: number };

/** The single-call operations a program sequence expands to. */
export function expand(op: Op): Op[] {
  switch (op.t) {
    case 'viaContainer':
      return [
        { t: 'openGroup', p: op.p, d: op.d },
        { t: 'openContainer', p: op.p },
        { t: 'setContainer', p: op.p, f: 0, c: 0, target: 'container' },
        { t: 'setIommu', p: op.p, c: 0 },
        { t: 'getDeviceFd', p: op.p, f: 0, d: op.d, any: false },
      ];
    case 'viaGroupIommufd':
      return [
        { t: 'openGroup', p: op.p, d: op.d },
        { t: 'openIommu', p: op.p },
        { t: 'setContainer', p: op.p, f: 0, c: 0, target: 'iommufd' },
        { t: 'getDeviceFd', p: op.p, f: 0, d: op.d, any: false },
      ];
    case 'viaCdev':
      return [
        { t: 'openCdev', p: op.p, d: op.d },
        { t: 'openIommu', p: op.p },
        { t: 'bind', p: op.p, f: 0, i: 0, other: false },
        { t: 'getInfo', p: op.p, f: 0 },
      ];
    default:
      return [op];
  }
}

export type OpName = Op['t'];

export interface RunConfig {
  /** the devices operations pick from (indices into DEVICES) */
  devices: readonly number[];
  /** processes at the start */
  initialProcs: number;
  /** at most this many live processes (spawn / fork are skipped beyond) */
  maxProcs: number;
  /** called on each freshly booted host (the mutation tests inject kernel bugs through it) */
  mutate?: (host: Host) => void;
}

/**
 * Bridges above the devices under test, with the devices below them in the order Linux stops
 * them on a hot-unplug of the bridge: pci_stop_and_remove_bus_device() first stops the whole
 * subtree (pci_stop_bus_device: children in REVERSE bus order, depth first, each before its
 * parent), then removes it (pci_remove_bus_device). `bridges`: the bridges that go with it.
 */
export const BRIDGES: ReadonlyArray<{ name: string; bdf: string; stopOrder: readonly string[]; bridges: readonly string[] }> = [
  { name: 'rp1', bdf: '0000:00:02.0', stopOrder: ['e1000e'], bridges: ['0000:00:02.0'] },
  { name: 'rp4', bdf: '0000:00:06.0', stopOrder: ['igb1', 'igb0'], bridges: ['0000:00:06.0'] },
  { name: 'rp5', bdf: '0000:00:07.0', stopOrder: ['grp-testdev', 'grp-edu'], bridges: ['0000:00:07.0', '0000:05:00.0'] },
  { name: 'pcie-pci-bridge', bdf: '0000:05:00.0', stopOrder: ['grp-testdev', 'grp-edu'], bridges: ['0000:05:00.0'] },
];

/** What a run covered (summed over runs for the report). */
export type Coverage = Record<string, number>;

export class ModelMismatch extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelMismatch';
  }
}

// ---- the reference model ---------------------------------------------------------------------------

type DevState = 'registered' | 'unregistering' | 'unbound' | 'removed';
type OpenMode = 'container' | 'giommufd' | 'cdev';

interface MDevice {
  spec: DevSpec;
  state: DevState;
  /** registration generation (a new vfio_device per bind) */
  gen: number;
  /** current (or last) vfio index */
  index: number;
  /** the host's vfio_device of the current/last registration */
  vdev: VfioDevice | null;
  /** the vfio_group instance the device registered in */
  ginst: MGroup | null;
  /** how the device is open (set by the first open, cleared by the last close) */
  mode: OpenMode | null;
  /** container mode: the group file pinned by the open (vfio_group_use_container) */
  pinFile: MFile | null;
  /** iommufd modes: the iommufd context the device is bound to */
  ictx: MFile | null;
  /** virtual time the unregistration started (it calls the driver's request every 10 s) */
  unregStart: number;
  /** request callbacks seen in the trace during this unregistration */
  requests: number;
  /** the unregistration had to wait (files were open when it started) */
  waits: boolean;
  /** check the request callbacks of the current (or just finished) unregistration */
  reqCheck: boolean;
  /** the function has a reset method (pci_reset_supported) */
  resettable: boolean;
  /** admin tasks waiting for this device's files */
  admin: Array<{ task: AdminTask; kind: 'unbind' | 'hotUnplug'; label: string }>;
  /** a hot-unplug is among the pending admin tasks: the device goes away when they finish */
  unplug: boolean;
}

/** One vfio_group object (a new one each time the IOMMU group gets its first vfio device). */
interface MGroup {
  gid: number;
  gen: number;
  alive: boolean;
  members: Set<MDevice>;
  openFile: MFile | null;
  container: MFile | null;
  iommufd: MFile | null;
  sut: VfioGroup;
}

type FileKind = 'cdev' | 'devfile' | 'group' | 'container' | 'iommu';

interface MFile {
  id: number;
  kind: FileKind;
  /** fd-table slots referring to it, over all processes */
  fdRefs: number;
  released: boolean;
  sut: File;
  /** cdev / devfile */
  dev?: MDevice;
  devGen?: number;
  /** cdev: BIND_IOMMUFD succeeded (access granted) */
  bound?: boolean;
  /** cdev: the iommufd the file is bound to (df->iommufd holds a file reference) */
  ictx?: MFile | null;
  /** group */
  ginst?: MGroup;
  /** container */
  cgroups?: Set<MGroup>;
  iommuSet?: boolean;
}

interface MProc {
  p: Process;
  fds: Map<number, MFile>;
  /** fds with FD_CLOEXEC (GET_DEVICE_FD's fds have it) */
  cloexec: Set<number>;
  alive: boolean;
}

const EPERM = 'EPERM';
const ENOENT = 'ENOENT';
const EBUSY = 'EBUSY';
const ENODEV = 'ENODEV';
const EINVAL = 'EINVAL';
const EBADFD = 'EBADFD';
const EAGAIN = 'EAGAIN';

/** The expected outcome of a call: success, or the errno name. */
type Expect = 'ok' | string;

export class Runner {
  readonly host: Host;
  private readonly devs: MDevice[];
  private readonly procs: MProc[] = [];
  private readonly files: MFile[] = [];
  private readonly groupGen = new Map<number, number>();
  /** the live vfio_group instance per IOMMU group id */
  private readonly curGroup = new Map<number, MGroup>();
  /** all instances ever (dead ones can still have an open group file) */
  private readonly groups: MGroup[] = [];
  /** vfio device indices in use (the IDA: a new registration takes the lowest free one) */
  private readonly usedIndices = new Set<number>();
  private nextFileId = 1;
  /** the process of the program sequence being run */
  private pinned: MProc | null = null;
  /** pending bridge hot-unplugs: devices still to stop, in Linux's order */
  private readonly bridgeJobs: Array<{ task: AdminTask; label: string; queue: MDevice[]; all: MDevice[]; finished: boolean }> = [];
  /** bridges hot-unplugged (with everything below them) */
  private readonly removedBridges = new Set<string>();
  /** per step: open_device / close_device / open_device_failed expected per BDF */
  private stepFailedOpens = new Map<string, number>();
  private stepOpens = new Map<string, number>();
  private stepCloses = new Map<string, number>();
  /** per BDF: the last of open_device/close_device seen in the trace */
  private readonly lastEvent = new Map<string, 'open_device' | 'close_device'>();
  readonly log: string[] = [];
  readonly cov: Coverage = {};
  private stepNo = 0;

  constructor(private readonly cfg: RunConfig) {
    this.host = new Host();
    this.host.kernel.trace.record();
    cfg.mutate?.(this.host);
    this.devs = DEVICES.map((spec) => ({
      spec,
      state: 'registered' as DevState,
      gen: 1,
      index: spec.index,
      vdev: null,
      ginst: null,
      mode: null,
      pinFile: null,
      ictx: null,
      admin: [],
      unplug: false,
      unregStart: 0,
      requests: 0,
      waits: false,
      reqCheck: false,
      resettable: false,
    }));
    for (const d of this.devs) {
      const fn = this.host.topology.functions.find((f) => f.bdf === d.spec.bdf);
      if (!fn) throw new Error(`no ${d.spec.bdf} in the default host`);
      d.resettable = fn.reset.length > 0;
      this.usedIndices.add(d.index);
      d.vdev = this.host.vfioDevice(d.spec.bdf);
      if (!d.vdev) throw new Error(`boot: ${d.spec.bdf} is not a vfio device`);
      d.ginst = this.joinGroup(d);
    }
    // the default host's other vfio-pci devices (nvme, edu, testdev) keep their indices
    for (const v of this.host.devices()) if (v.vfio) this.usedIndices.add(v.vfio.index);
    for (let i = 0; i < cfg.initialProcs; i++) this.newProc(`p${i}`);
    this.host.kernel.trace.clear();
    this.check('boot');
  }

  // ---- derived quantities ------------------------------------------------------------------------

  /** live device files (cdev, blocked or bound, and group-path files) of the device's current registration */
  private devFiles(d: MDevice): MFile[] {
    return this.files.filter((f) => !f.released && f.dev === d && (f.kind === 'cdev' || f.kind === 'devfile'));
  }

  /** files holding an open: group-path device files, bound cdev files */
  private openCount(d: MDevice): number {
    return this.devFiles(d).filter((f) => f.kind === 'devfile' || f.bound).length;
  }

  /**
   * vfio_pci_core_enable fails the first open with EAGAIN when pci_try_reset_function cannot
   * take the device lock: a device with a reset method while an unbind holds that lock (it
   * waits in vfio_unregister_group_dev for the device's files).
   */
  private resetBlocked(d: MDevice): boolean {
    return d.state === 'unregistering' && d.resettable;
  }

  private boundCdevs(g: MGroup): number {
    return this.files.filter((f) => !f.released && f.kind === 'cdev' && f.bound && f.dev!.ginst === g).length;
  }

  /** devices of a vfio_group open in container mode (each holds a group file reference) */
  private containerUsers(g: MGroup): number {
    return this.devs.filter((d) => d.ginst === g && d.mode === 'container' && d.state !== 'unbound' && d.state !== 'removed').length;
  }

  /** f_count the model expects for a live file */
  private expectedRefs(f: MFile): number {
    let n = f.fdRefs;
    switch (f.kind) {
      case 'group':
        n += this.devs.filter((d) => d.mode === 'container' && d.pinFile === f).length;
        break;
      case 'iommu':
        // group->iommufd, a bound cdev's df->iommufd, and each iommufd_device (iommufd_ctx_get)
        n += this.groups.filter((g) => g.iommufd === f).length;
        n += this.files.filter((x) => !x.released && x.kind === 'cdev' && x.ictx === f).length;
        n += this.devs.filter((d) => (d.mode === 'cdev' || d.mode === 'giommufd') && d.ictx === f).length;
        break;
      default:
        break;
    }
    return n;
  }

  /**
   * DMA ownership of an IOMMU group as the iommu core sees it: a legacy container claims the
   * whole group; iommufd claims per device, several devices may share one owner (the ictx).
   */
  private canClaimForIctx(gid: number, ictx: MFile): boolean {
    const g = this.curGroup.get(gid);
    if (g && g.container) return false;
    return this.devs.every((d) => d.spec.gid !== gid || d.ictx === null || d.ictx === ictx || (d.mode !== 'cdev' && d.mode !== 'giommufd'));
  }

  private canClaimForContainer(gid: number): boolean {
    const g = this.curGroup.get(gid);
    if (g && g.container) return false;
    return this.devs.every((d) => d.spec.gid !== gid || (d.mode !== 'cdev' && d.mode !== 'giommufd'));
  }

  // ---- model updates -----------------------------------------------------------------------------

  private joinGroup(d: MDevice): MGroup {
    let g = this.curGroup.get(d.spec.gid);
    if (!g) {
      const gen = (this.groupGen.get(d.spec.gid) ?? 0) + 1;
      this.groupGen.set(d.spec.gid, gen);
      const sut = this.host.vfioGroups().find((x) => x.iommuGroup?.id === d.spec.gid);
      if (!sut) throw new ModelMismatch(`no vfio_group for IOMMU group ${d.spec.gid} after ${d.spec.bdf} registered`);
      g = { gid: d.spec.gid, gen, alive: true, members: new Set(), openFile: null, container: null, iommufd: null, sut };
      this.curGroup.set(d.spec.gid, g);
      this.groups.push(g);
    }
    g.members.add(d);
    return g;
  }

  private newFile(kind: FileKind, sut: File | undefined, extra: Partial<MFile> = {}): MFile {
    if (!sut) throw new ModelMismatch(`the new ${kind} fd has no file`);
    const f: MFile = { id: this.nextFileId++, kind, fdRefs: 0, released: false, sut, ...extra };
    this.files.push(f);
    return f;
  }

  private install(mp: MProc, fd: number, f: MFile, cloexec = false): void {
    if (mp.fds.has(fd)) throw new ModelMismatch(`fd ${fd} of pid ${mp.p.pid} returned while still open`);
    mp.fds.set(fd, f);
    if (cloexec) mp.cloexec.add(fd);
    f.fdRefs++;
  }

  private dropFd(mp: MProc, fd: number): void {
    const f = mp.fds.get(fd)!;
    mp.fds.delete(fd);
    mp.cloexec.delete(fd);
    f.fdRefs--;
    if (f.fdRefs === 0 && f.kind === 'group' && this.expectedRefs(f) > 0) this.count('~ group fd closed, file pinned by an open device');
    if (f.fdRefs === 0 && f.kind === 'iommu' && this.expectedRefs(f) > 0) this.count('~ iommufd fd closed, ctx kept by a binding');
  }

  /** a device's open count went from 0 to 1 */
  private firstOpen(d: MDevice, mode: OpenMode, pin: MFile | null, ictx: MFile | null): void {
    d.mode = mode;
    d.pinFile = pin;
    d.ictx = ictx;
    this.stepOpens.set(d.spec.bdf, (this.stepOpens.get(d.spec.bdf) ?? 0) + 1);
  }

  /** the release (->release) of a file whose last reference went */
  private release(f: MFile): void {
    f.released = true;
    switch (f.kind) {
      case 'cdev':
      case 'devfile': {
        const d = f.dev!;
        const held = f.kind === 'devfile' || f.bound;
        if (held && this.openCount(d) === 0) {
          // last close: close_device, then the container/iommufd side goes
          d.mode = null;
          d.pinFile = null;
          d.ictx = null;
          this.stepCloses.set(d.spec.bdf, (this.stepCloses.get(d.spec.bdf) ?? 0) + 1);
        }
        if (f.kind === 'cdev') f.ictx = null;
        break;
      }
      case 'group': {
        const g = f.ginst!;
        if (!g.alive) this.count('~ group file of a removed vfio_group released');
        if (this.devs.some((d) => d.ginst === g && d.mode === 'giommufd'))
          this.count('~ group file released while iommufd-mode device files stay open');
        if (g.container) this.detachContainer(g);
        g.iommufd = null;
        g.openFile = null;
        break;
      }
      default:
        break;
    }
  }

  private detachContainer(g: MGroup): void {
    const c = g.container!;
    c.cgroups!.delete(g);
    // detaching the last group releases the backend
    if (c.cgroups!.size === 0) c.iommuSet = false;
    g.container = null;
  }

  /** Release every file with no reference left, then finish unregistrations with no file left. */
  private settle(): void {
    for (let changed = true; changed; ) {
      changed = false;
      for (const f of this.files) {
        if (!f.released && this.expectedRefs(f) === 0) {
          this.release(f);
          changed = true;
        }
      }
    }
    for (const d of this.devs)
      if (d.state === 'unregistering' && this.devFiles(d).length === 0 && !this.inBridgeJob(d)) this.finishUnregister(d);
    this.progressBridgeJobs();
  }

  /** vfio_unregister_group_dev: off the group's device list, cdev node gone, registration put */
  private startUnregister(d: MDevice): void {
    d.state = 'unregistering';
    d.unregStart = this.host.kernel.clock.now;
    d.requests = 0;
    d.waits = this.devFiles(d).length > 0;
    d.reqCheck = true;
  }

  private inBridgeJob(d: MDevice): boolean {
    return this.bridgeJobs.some((j) => !j.finished && j.all.includes(d));
  }

  /**
   * Bridge hot-unplug, stop phase: one device after the other (Linux's order), each unbind
   * waiting for the device's files; then the remove phase takes the whole subtree away.
   */
  private progressBridgeJobs(): void {
    for (const j of this.bridgeJobs) {
      if (j.finished) continue;
      while (j.queue.length) {
        const d = j.queue[0]!;
        if (d.state === 'registered') this.startUnregister(d);
        if (d.state === 'unregistering' && this.devFiles(d).length === 0) this.finishUnregister(d);
        if (d.state === 'unregistering') break;
        j.queue.shift();
      }
      if (!j.queue.length) {
        for (const d of j.all) d.state = 'removed';
        j.finished = true;
      }
    }
  }

  private finishUnregister(d: MDevice): void {
    if (d.waits) this.count('~ unregister finished after waiting for files');
    if (d.admin.length > 1) this.count('~ several admin tasks finished together');
    d.state = d.unplug ? 'removed' : 'unbound';
    this.usedIndices.delete(d.index);
    const g = d.ginst!;
    g.members.delete(d);
    if (g.members.size === 0) {
      // vfio_device_remove_group: the last device takes the group down and revokes the container
      if (g.openFile) this.count(`~ vfio_group removed with its file open${g.container ? ' (container revoked)' : ''}`);
      g.alive = false;
      if (g.container) this.detachContainer(g);
      this.curGroup.delete(g.gid);
    }
    this.count(d.unplug ? 'unplug completed' : 'unbind completed');
  }

  private allocIndex(): number {
    let i = 0;
    while (this.usedIndices.has(i)) i++;
    this.usedIndices.add(i);
    return i;
  }

  // ---- helpers --------------------------------------------------------------------------------

  private count(what: string): void {
    this.cov[what] = (this.cov[what] ?? 0) + 1;
  }

  private newProc(name: string): MProc {
    const mp: MProc = { p: new Process(this.host, { name }), fds: new Map(), cloexec: new Set(), alive: true };
    this.procs.push(mp);
    return mp;
  }

  private aliveProcs(): MProc[] {
    return this.procs.filter((p) => p.alive);
  }

  /**
   * The process an operation runs in: among the live processes that have an fd of each of the
   * kinds lists given (so that fd-taking calls are rarely skipped); inside a program sequence,
   * the sequence's process.
   */
  private proc(sel: number, ...needs: FileKind[][]): MProc | null {
    const has = (mp: MProc) => needs.every((kinds) => [...mp.fds.values()].some((f) => kinds.includes(f.kind)));
    if (this.pinned) return this.pinned.alive && has(this.pinned) ? this.pinned : null;
    const a = this.aliveProcs().filter(has);
    return a.length ? a[sel % a.length]! : null;
  }

  private fdsOf(mp: MProc, kinds: readonly FileKind[]): number[] {
    return [...mp.fds.entries()].filter(([, f]) => kinds.includes(f.kind)).map(([fd]) => fd).sort((a, b) => a - b);
  }

  /** selector 0 is the newest fd of the kinds (the highest number), 1 the one before, ... */
  private pickFd(mp: MProc, kinds: readonly FileKind[], sel: number): number | null {
    const l = this.fdsOf(mp, kinds);
    return l.length ? l[l.length - 1 - (sel % l.length)]! : null;
  }

  private dev(sel: number): MDevice {
    return this.devs[this.cfg.devices[sel % this.cfg.devices.length]!]!;
  }

  private fdesc(mp: MProc, fd: number): string {
    const f = mp.fds.get(fd);
    if (!f) return `${fd}`;
    const what = f.dev ? `${f.kind}:${f.dev.spec.name}` : f.ginst ? `group${f.ginst.gid}#${f.ginst.gen}` : f.kind;
    return `${fd}<${what} f${f.id}>`;
  }

  /** Compare a libc-style result with the expectation. */
  private expect(mp: MProc, tag: string, call: string, ret: number, exp: Expect): boolean {
    const got = ret < 0 ? mp.p.errnoName : 'ok';
    const desc = `pid ${mp.p.pid}: ${call} = ${ret < 0 ? `-1 ${mp.p.errnoName}` : ret}`;
    this.log.push(`#${this.stepNo} ${desc}${got === exp ? '' : `   <-- model expected ${exp}`}`);
    if (ret < 0 && ret !== -1) throw new ModelMismatch(`${desc}: libc-style call returned ${ret}`);
    if (got !== exp) throw new ModelMismatch(`${desc}, the model expected ${exp}`);
    this.count(`${tag} ${got}`);
    return ret >= 0;
  }

  private withMem<T>(p: Process, bytes: Uint8Array, f: (addr: number) => T): T {
    const a = p.mem.alloc(bytes.length);
    p.mem.write(a, bytes);
    try {
      return f(a);
    } finally {
      p.mem.free(a, bytes.length);
    }
  }

  private s32(v: number): Uint8Array {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, v, true);
    return b;
  }

  // ---- one step ---------------------------------------------------------------------------------

  /** Run one operation (skipped if nothing fits its selectors), then check the invariants. */
  step(op: Op): void {
    const ops = expand(op);
    if (ops.length > 1) {
      this.count(op.t);
      this.pinned = this.proc((op as { p: number }).p);
      try {
        for (const o of ops) this.step(o);
      } finally {
        this.pinned = null;
      }
      return;
    }
    this.stepNo++;
    this.stepOpens = new Map();
    this.stepCloses = new Map();
    this.stepFailedOpens = new Map();
    const ran = this.exec(op);
    if (!ran) {
      this.count(`skipped ${op.t}`);
      return;
    }
    this.settle();
    this.check(op.t);
  }

  private exec(op: Op): boolean {
    switch (op.t) {
      case 'viaContainer':
      case 'viaGroupIommufd':
      case 'viaCdev':
        throw new Error(`${op.t} is expanded by step()`);
      case 'openCdev': {
        const mp = this.proc(op.p);
        if (!mp) return false;
        const d = this.dev(op.d);
        // the cdev node of the index this device has (or last had); while an index is held by
        // an unregistering device its node is already gone
        const path = `/dev/vfio/devices/vfio${d.index}`;
        const target = this.devs.find((x) => x.index === d.index && x.state === 'registered') ?? null;
        const exp = target ? 'ok' : ENOENT;
        const fd = mp.p.open(path);
        if (this.expect(mp, 'open cdev', `open(${path})`, fd, exp))
          this.install(mp, fd, this.newFile('cdev', mp.p.file(fd), { dev: target!, devGen: target!.gen, bound: false, ictx: null }));
        return true;
      }
      case 'openIommu': {
        const mp = this.proc(op.p);
        if (!mp) return false;
        const fd = mp.p.open('/dev/iommu');
        if (this.expect(mp, 'open iommu', 'open(/dev/iommu)', fd, 'ok')) this.install(mp, fd, this.newFile('iommu', mp.p.file(fd)));
        return true;
      }
      case 'openContainer': {
        const mp = this.proc(op.p);
        if (!mp) return false;
        const fd = mp.p.open('/dev/vfio/vfio');
        if (this.expect(mp, 'open container', 'open(/dev/vfio/vfio)', fd, 'ok'))
          this.install(mp, fd, this.newFile('container', mp.p.file(fd), { cgroups: new Set(), iommuSet: false }));
        return true;
      }
      case 'openGroup': {
        const mp = this.proc(op.p);
        if (!mp) return false;
        const gid = this.dev(op.d).spec.gid;
        const g = this.curGroup.get(gid);
        const path = `/dev/vfio/${gid}`;
        // vfio_group_fops_open: one opener at a time, and not while a cdev of the group is bound
        const exp = !g ? ENOENT : g.openFile || this.boundCdevs(g) > 0 ? EBUSY : 'ok';
        const fd = mp.p.open(path);
        if (this.expect(mp, 'open group', `open(${path})`, fd, exp)) {
          const f = this.newFile('group', mp.p.file(fd), { ginst: g! });
          g!.openFile = f;
          this.install(mp, fd, f);
        }
        return true;
      }
      case 'bind': {
        const mp = this.proc(op.p, ['cdev'], op.other ? ['cdev', 'devfile', 'group', 'container'] : ['iommu']);
        if (!mp) return false;
        const fd = this.pickFd(mp, ['cdev'], op.f);
        if (fd === null) return false;
        const ifd = op.other ? this.pickFd(mp, ['cdev', 'devfile', 'group', 'container'], op.i) : this.pickFd(mp, ['iommu'], op.i);
        if (ifd === null) return false;
        const f = mp.fds.get(fd)!;
        const ictx = mp.fds.get(ifd)!;
        const d = f.dev!;
        // vfio_df_ioctl_bind_iommufd, checks in the kernel's order
        let exp: Expect;
        if (d.ginst!.openFile) exp = EBUSY; // vfio_device_block_group
        else if (f.bound) exp = EINVAL; // one device file cannot be bound twice
        else if (ictx.kind !== 'iommu') exp = EBADFD; // iommufd_ctx_from_fd
        else if (this.openCount(d) !== 0) exp = EINVAL; // vfio_df_open: cdev opens are exclusive
        else if (!this.canClaimForIctx(d.spec.gid, ictx)) exp = EPERM; // iommu_device_claim_dma_owner
        else if (this.resetBlocked(d)) exp = EAGAIN; // vfio_pci_core_enable: pci_try_reset_function
        else exp = 'ok';
        if (exp === EAGAIN) this.stepFailedOpens.set(d.spec.bdf, 1);
        if (exp === 'ok' && d.state === 'unregistering') this.count('~ cdev bound while its device is unregistering');
        const S = U.vfio_device_bind_iommufd;
        const ret = this.withMem(mp.p, U.encode(S, { argsz: S.size, flags: 0, iommufd: ifd, token_uuid_ptr: 0n }), (a) =>
          mp.p.ioctl(fd, U.VFIO_DEVICE_BIND_IOMMUFD, a),
        );
        if (this.expect(mp, op.other ? 'BIND(non-iommufd)' : 'BIND', `ioctl(${this.fdesc(mp, fd)}, BIND_IOMMUFD, ${this.fdesc(mp, ifd)})`, ret, exp)) {
          f.bound = true;
          f.ictx = ictx;
          this.firstOpen(d, 'cdev', null, ictx);
        }
        return true;
      }
      case 'setContainer': {
        const mp = this.proc(op.p, ['group'], op.target === 'other' ? ['cdev', 'devfile', 'group'] : ['container', 'iommu']);
        if (!mp) return false;
        const gfd = this.pickFd(mp, ['group'], op.f);
        if (gfd === null) return false;
        const order: FileKind[][] =
          op.target === 'container'
            ? [['container'], ['iommu']]
            : op.target === 'iommufd'
              ? [['iommu'], ['container']]
              : [['cdev', 'devfile', 'group']];
        let cfd: number | null = null;
        for (const kinds of order) if (cfd === null) cfd = this.pickFd(mp, kinds, op.c);
        if (cfd === null) return false;
        const gf = mp.fds.get(gfd)!;
        const cf = mp.fds.get(cfd)!;
        const g = gf.ginst!;
        // vfio_group_ioctl_set_container
        let exp: Expect;
        if (g.container || g.iommufd) exp = EINVAL;
        else if (!g.alive) exp = ENODEV;
        else if (cf.kind === 'container') exp = this.canClaimForContainer(g.gid) ? 'ok' : EPERM;
        else if (cf.kind === 'iommu') exp = 'ok';
        else exp = EBADFD;
        const ret = this.withMem(mp.p, this.s32(cfd), (a) => mp.p.ioctl(gfd, U.VFIO_GROUP_SET_CONTAINER, a));
        if (this.expect(mp, `SET_CONTAINER(${cf.kind})`, `ioctl(${this.fdesc(mp, gfd)}, SET_CONTAINER, ${this.fdesc(mp, cfd)})`, ret, exp)) {
          if (cf.kind === 'container') {
            g.container = cf;
            cf.cgroups!.add(g);
          } else g.iommufd = cf;
        }
        return true;
      }
      case 'unsetContainer': {
        const mp = this.proc(op.p, ['group']);
        if (!mp) return false;
        const gfd = this.pickFd(mp, ['group'], op.f);
        if (gfd === null) return false;
        const g = mp.fds.get(gfd)!.ginst!;
        // vfio_group_ioctl_unset_container: a container in use by an open device stays
        let exp: Expect;
        if (!g.container && !g.iommufd) exp = EINVAL;
        else if (g.container && this.containerUsers(g) > 0) exp = EBUSY;
        else exp = 'ok';
        const ret = mp.p.ioctl(gfd, U.VFIO_GROUP_UNSET_CONTAINER);
        if (this.expect(mp, 'UNSET_CONTAINER', `ioctl(${this.fdesc(mp, gfd)}, UNSET_CONTAINER)`, ret, exp)) {
          if (g.container) this.detachContainer(g);
          g.iommufd = null;
        }
        return true;
      }
      case 'setIommu': {
        const mp = this.proc(op.p, ['container']);
        if (!mp) return false;
        const cfd = this.pickFd(mp, ['container'], op.c);
        if (cfd === null) return false;
        const c = mp.fds.get(cfd)!;
        // vfio_ioctl_set_iommu: only a container with groups and no backend yet
        const exp = c.cgroups!.size === 0 || c.iommuSet ? EINVAL : 'ok';
        const ret = mp.p.ioctl(cfd, U.VFIO_SET_IOMMU, U.VFIO_TYPE1v2_IOMMU);
        if (this.expect(mp, 'SET_IOMMU', `ioctl(${this.fdesc(mp, cfd)}, SET_IOMMU, TYPE1v2)`, ret, exp)) c.iommuSet = true;
        return true;
      }
      case 'getDeviceFd': {
        const mp = this.proc(op.p, ['group']);
        if (!mp) return false;
        const gfd = this.pickFd(mp, ['group'], op.f);
        if (gfd === null) return false;
        const gf = mp.fds.get(gfd)!;
        const g = gf.ginst!;
        // mostly a device of this IOMMU group, sometimes any device
        const inGroup = this.cfg.devices.map((i) => this.devs[i]!).filter((d) => d.spec.gid === g.gid);
        const d = op.any || inGroup.length === 0 ? this.dev(op.d) : inGroup[op.d % inGroup.length]!;
        // vfio_group_ioctl_get_device_fd -> vfio_df_group_open -> vfio_df_open
        let exp: Expect;
        let first: OpenMode | null = null;
        if (!(d.state === 'registered' && d.ginst === g && g.alive)) exp = ENODEV; // not on the group's device list
        else if (!g.container && !g.iommufd) exp = EINVAL; // no container/iommufd yet
        else if (this.openCount(d) > 0) {
          exp = 'ok';
          const mode = g.container ? 'container' : 'giommufd';
          if (d.mode !== mode) throw new ModelMismatch(`model: ${d.spec.name} open in ${d.mode} mode, group in ${mode} mode`);
        } else if (g.container) {
          exp = g.container.iommuSet ? 'ok' : EINVAL; // vfio_group_use_container needs SET_IOMMU
          first = 'container';
        } else {
          exp = this.canClaimForIctx(g.gid, g.iommufd!) ? 'ok' : EPERM; // iommufd_device_bind
          first = 'giommufd';
        }
        const name = new TextEncoder().encode(d.spec.bdf + '\0');
        const ret = this.withMem(mp.p, name, (a) => mp.p.ioctl(gfd, U.VFIO_GROUP_GET_DEVICE_FD, a));
        if (this.expect(mp, `GET_DEVICE_FD${first ? `(${first})` : ''}`, `ioctl(${this.fdesc(mp, gfd)}, GET_DEVICE_FD, "${d.spec.name}")`, ret, exp)) {
          if (first === 'container') this.firstOpen(d, 'container', gf, null);
          else if (first === 'giommufd') this.firstOpen(d, 'giommufd', null, g.iommufd);
          // the device fd is O_CLOEXEC (FD_ADD(O_CLOEXEC, ...))
          this.install(mp, ret, this.newFile('devfile', mp.p.file(ret), { dev: d, devGen: d.gen }), true);
        }
        return true;
      }
      case 'getInfo': {
        const mp = this.proc(op.p, ['cdev', 'devfile']);
        if (!mp) return false;
        const fd = this.pickFd(mp, ['cdev', 'devfile'], op.f);
        if (fd === null) return false;
        const f = mp.fds.get(fd)!;
        // a blocked cdev file gets EINVAL (access not granted)
        const exp = f.kind === 'devfile' || f.bound ? 'ok' : EINVAL;
        const S = U.vfio_device_info;
        const ret = this.withMem(mp.p, U.encode(S, { argsz: S.size }), (a) => mp.p.ioctl(fd, U.VFIO_DEVICE_GET_INFO, a));
        this.expect(mp, `GET_INFO(${f.kind === 'devfile' ? 'group path' : f.bound ? 'bound cdev' : 'blocked cdev'})`, `ioctl(${this.fdesc(mp, fd)}, GET_INFO)`, ret, exp);
        return true;
      }
      case 'close': {
        const mp = this.proc(op.p, ['cdev', 'devfile', 'group', 'container', 'iommu']);
        if (!mp) return false;
        const fd = this.pickFd(mp, ['cdev', 'devfile', 'group', 'container', 'iommu'], op.f);
        if (fd === null) return false;
        const desc = `close(${this.fdesc(mp, fd)})`;
        const ret = mp.p.close(fd);
        if (this.expect(mp, 'close', desc, ret, 'ok')) this.dropFd(mp, fd);
        return true;
      }
      case 'dup': {
        const mp = this.proc(op.p, ['cdev', 'devfile', 'group', 'container', 'iommu']);
        if (!mp) return false;
        const fd = this.pickFd(mp, ['cdev', 'devfile', 'group', 'container', 'iommu'], op.f);
        if (fd === null) return false;
        const ret = mp.p.dup(fd);
        if (this.expect(mp, 'dup', `dup(${this.fdesc(mp, fd)})`, ret, 'ok')) this.install(mp, ret, mp.fds.get(fd)!);
        return true;
      }
      case 'dup2': {
        const mp = this.proc(op.p, ['cdev', 'devfile', 'group', 'container', 'iommu']);
        if (!mp) return false;
        const kinds: FileKind[] = ['cdev', 'devfile', 'group', 'container', 'iommu'];
        const oldfd = this.pickFd(mp, kinds, op.f)!;
        const newfd = this.pickFd(mp, kinds, op.g)!;
        const desc = `dup2(${this.fdesc(mp, oldfd)}, ${this.fdesc(mp, newfd)})`;
        const ret = mp.p.dup2(oldfd, newfd);
        if (this.expect(mp, oldfd === newfd ? 'dup2 same fd' : 'dup2', desc, ret, 'ok') && oldfd !== newfd) {
          // newfd's file loses a reference (it may be released), newfd now shares oldfd's file
          const f = mp.fds.get(oldfd)!;
          this.dropFd(mp, newfd);
          this.install(mp, newfd, f);
        }
        return true;
      }
      case 'exec': {
        const mp = this.proc(op.p);
        if (!mp) return false;
        const closing = [...mp.cloexec].sort((a, b) => a - b);
        const ret = mp.p.exec();
        if (this.expect(mp, closing.length ? 'exec closing device fds' : 'exec', `execve() [closes ${closing.join(',') || 'nothing'}]`, ret, 'ok'))
          for (const fd of closing) this.dropFd(mp, fd);
        return true;
      }
      case 'fork': {
        const mp = this.proc(op.p);
        if (!mp || this.aliveProcs().length >= this.cfg.maxProcs) return false;
        const child = mp.p.fork(`${mp.p.name}.c`);
        const mc: MProc = { p: child, fds: new Map(), cloexec: new Set(), alive: true };
        this.procs.push(mc);
        for (const [fd, f] of mp.fds) this.install(mc, fd, f, mp.cloexec.has(fd));
        this.log.push(`#${this.stepNo} pid ${mp.p.pid}: fork() = ${child.pid}`);
        this.count('fork');
        return true;
      }
      case 'exit': {
        const mp = this.proc(op.p);
        if (!mp) return false;
        mp.p.exit(0);
        mp.alive = false;
        for (const fd of [...mp.fds.keys()]) this.dropFd(mp, fd);
        this.log.push(`#${this.stepNo} pid ${mp.p.pid}: exit()`);
        this.count('exit');
        return true;
      }
      case 'spawn': {
        if (this.aliveProcs().length >= this.cfg.maxProcs) return false;
        const mp = this.newProc(`p${this.procs.length}`);
        this.log.push(`#${this.stepNo} new process ${mp.p.pid}`);
        this.count('spawn');
        return true;
      }
      case 'unbind':
      case 'hotUnplug': {
        let d = this.dev(op.d);
        if (op.busy) {
          const busy = this.cfg.devices.map((i) => this.devs[i]!).filter((x) => this.devFiles(x).length > 0);
          if (!busy.length) return false;
          d = busy[op.d % busy.length]!;
        }
        if (d.state === 'removed' || this.inBridgeJob(d)) return false;
        // a second unbind waits for the first (device lock) and then finds no driver; a hot-unplug
        // racing another admin operation is not generated (sysfs serialises remove in the kernel)
        if (op.t === 'hotUnplug' && d.admin.length) return false;
        const task = op.t === 'unbind' ? this.host.unbind(d.spec.bdf) : this.host.hotUnplug(d.spec.bdf);
        const label = `${op.t}(${d.spec.name})`;
        this.log.push(`#${this.stepNo} admin: ${label} (${this.devFiles(d).length} device files open)`);
        this.count(`${op.t} ${d.state}`);
        if (d.state === 'registered') this.startUnregister(d);
        if (op.t === 'hotUnplug') d.unplug = true;
        if (d.state === 'unregistering') d.admin.push({ task, kind: op.t, label });
        else {
          // nothing bound: the task finishes at once
          if (!task.done) throw new ModelMismatch(`${label} of an unbound device did not finish at once`);
          if (task.result !== 0) throw new ModelMismatch(`${label} returned ${task.result}`);
          if (op.t === 'hotUnplug') d.state = 'removed';
        }
        return true;
      }
      case 'rebind': {
        const d = this.dev(op.d);
        if (d.state !== 'unbound' || this.inBridgeJob(d)) return false;
        const r = this.host.bind(d.spec.bdf);
        this.log.push(`#${this.stepNo} admin: bind(${d.spec.name}) = ${r}`);
        if (r !== 0) throw new ModelMismatch(`bind(${d.spec.bdf}) = ${r} (${errnoName(-r)})`);
        d.state = 'registered';
        d.gen++;
        d.index = this.allocIndex();
        d.vdev = this.host.vfioDevice(d.spec.bdf);
        d.admin = [];
        d.ginst = this.joinGroup(d);
        this.count('rebind');
        return true;
      }
      case 'hotUnplugBridge': {
        const br = BRIDGES[op.b % BRIDGES.length]!;
        if (this.removedBridges.has(br.bdf)) return false;
        const devs = br.stopOrder.map((n) => this.devs.find((d) => d.spec.name === n)!);
        // pci_rescan_remove_lock serialises removals: no other admin operation below it is pending
        if (devs.some((d) => d.admin.length || this.inBridgeJob(d))) return false;
        const label = `hotUnplug(${br.name})`;
        this.log.push(`#${this.stepNo} admin: ${label} (stops ${br.stopOrder.join(', ')}; ${devs.map((d) => `${d.spec.name} ${d.state} with ${this.devFiles(d).length} files`).join('; ')})`);
        this.count('hotUnplug bridge');
        const task = this.host.hotUnplug(br.bdf);
        const all = devs.filter((d) => d.state !== 'removed');
        this.bridgeJobs.push({ task, label, queue: [...all], all, finished: false });
        for (const b of br.bridges) this.removedBridges.add(b);
        return true;
      }
      case 'advance': {
        this.host.advanceTime(op.ms);
        this.log.push(`#${this.stepNo} advance ${op.ms} ms`);
        this.count('advance');
        return true;
      }
    }
  }

  // ---- invariants -------------------------------------------------------------------------------

  private fail(what: string, msg: string): never {
    throw new ModelMismatch(`after step #${this.stepNo} (${what}): ${msg}`);
  }

  check(what: string): void {
    const h = this.host;
    const k = h.kernel;
    // (3) no WARN, no refcount misuse, no device access before access was granted
    if (k.warnings.length) this.fail(what, `kernel warnings:\n  ${k.warnings.map((w) => w.message).join('\n  ')}`);

    // (2) open_device / close_device: alternate per device, happen exactly when the model says
    const evs = k.trace.events();
    k.trace.clear();
    const opens = new Map<string, number>();
    const closes = new Map<string, number>();
    const failed = new Map<string, number>();
    const requests = new Map<string, number[]>();
    for (const e of evs) {
      if (e.kind !== 'kernel') continue;
      if (e.name === 'request') {
        const b = String(e.args?.device);
        requests.set(b, [...(requests.get(b) ?? []), Number(e.args?.count)]);
      }
      if (e.name === 'open_device_failed') {
        const b = String(e.args?.device);
        failed.set(b, (failed.get(b) ?? 0) + 1);
      }
      if (e.name !== 'open_device' && e.name !== 'close_device') continue;
      const bdf = String(e.args?.device);
      const last = this.lastEvent.get(bdf) ?? 'close_device';
      if (last === e.name) this.fail(what, `${bdf}: ${e.name} after ${last} (open/close must alternate)`);
      this.lastEvent.set(bdf, e.name);
      const m = e.name === 'open_device' ? opens : closes;
      m.set(bdf, (m.get(bdf) ?? 0) + 1);
    }
    for (const d of this.devs) {
      const b = d.spec.bdf;
      if ((failed.get(b) ?? 0) !== (this.stepFailedOpens.get(b) ?? 0))
        this.fail(what, `${d.spec.name}: ${failed.get(b) ?? 0} open_device_failed events, the model expected ${this.stepFailedOpens.get(b) ?? 0}`);
      const eo = this.stepOpens.get(b) ?? 0;
      const ec = this.stepCloses.get(b) ?? 0;
      if ((opens.get(b) ?? 0) !== eo || (closes.get(b) ?? 0) !== ec)
        this.fail(
          what,
          `${d.spec.name}: ${opens.get(b) ?? 0} open_device / ${closes.get(b) ?? 0} close_device events, the model expected ${eo} / ${ec}`,
        );
    }

    // (1) open_count, (4) registration refcount, and the device's state
    const views = new Map(h.devices().map((v) => [v.bdf, v]));
    for (const d of this.devs) {
      const b = d.spec.bdf;
      const view = views.get(b);
      const files = this.devFiles(d);
      const nFiles = files.length;
      for (const f of files) if (f.devGen !== d.gen) this.fail(what, `model: file f${f.id} of an older registration of ${d.spec.name}`);
      const oc = this.openCount(d);
      if (d.state === 'registered' || d.state === 'unregistering') {
        if (!view) this.fail(what, `${d.spec.name}: the PCI function is gone, the model expects it ${d.state}`);
        const v = h.vfioDevice(b);
        if (v !== d.vdev) this.fail(what, `${d.spec.name}: the vfio_device changed without a rebind`);
        if (!view?.vfio) this.fail(what, `${d.spec.name}: no vfio view while bound`);
        if (v!.openCount !== oc) this.fail(what, `${d.spec.name}: open_count ${v!.openCount}, the model expects ${oc}`);
        if (view.vfio.openCount !== oc) this.fail(what, `${d.spec.name}: devices() openCount ${view.vfio.openCount}, expected ${oc}`);
        const ref = (d.state === 'registered' ? 1 : 0) + nFiles;
        if (v!.refcount.value !== ref)
          this.fail(what, `${d.spec.name}: registration refcount ${v!.refcount.value}, the model expects ${ref} (${d.state}, ${nFiles} device files)`);
        if (view.vfio.registrationRefcount !== ref) this.fail(what, `${d.spec.name}: devices() registrationRefcount ${view.vfio.registrationRefcount}`);
        if (view.vfio.index !== d.index) this.fail(what, `${d.spec.name}: vfio index ${view.vfio.index}, the model expects ${d.index}`);
        if (!v!.registered) this.fail(what, `${d.spec.name}: registered flag false while ${d.state}`);
        if (view.driver !== 'vfio-pci') this.fail(what, `${d.spec.name}: driver ${view.driver}`);
      } else {
        if (nFiles) this.fail(what, `model: ${d.spec.name} ${d.state} with ${nFiles} files`);
        if (d.state === 'unbound') {
          if (!view || view.vfio || view.driver !== null) this.fail(what, `${d.spec.name}: expected unbound, view ${JSON.stringify(view)}`);
        } else if (view) this.fail(what, `${d.spec.name}: still present after hot-unplug`);
        if (d.vdev) {
          if (d.vdev.refcount.value !== 0) this.fail(what, `${d.spec.name}: old registration refcount ${d.vdev.refcount.value} after unregister`);
          if (d.vdev.registered) this.fail(what, `${d.spec.name}: old vfio_device still registered`);
          if (d.vdev.openCount !== 0) this.fail(what, `${d.spec.name}: old vfio_device open_count ${d.vdev.openCount}`);
        }
      }
      // the unregistration asks the driver to release the device at once and then every 10 s
      // of waiting: request(0), request(1), ... (vfio_unregister_group_dev)
      const reqs = requests.get(b) ?? [];
      if (reqs.length && !d.reqCheck) this.fail(what, `${d.spec.name}: request callbacks ${reqs} without an unregistration`);
      for (const c of reqs) {
        if (c !== d.requests) this.fail(what, `${d.spec.name}: request(${c}), expected request(${d.requests})`);
        d.requests++;
      }
      if (d.reqCheck) {
        if (d.state !== 'unregistering') d.reqCheck = false;
        // none if no file was open (try_wait_for_completion succeeds at once)
        const want = d.waits ? 1 + Math.floor((k.clock.now - d.unregStart) / 10_000) : 0;
        if (d.requests !== want)
          this.fail(what, `${d.spec.name}: ${d.requests} request callbacks after ${k.clock.now - d.unregStart} ms of unregistration, expected ${want}`);
      }
      // (5) unregister finishes exactly when the device's last file is gone
      for (const a of d.admin) {
        const expectDone = d.state === 'unbound' || d.state === 'removed';
        if (a.task.done !== expectDone)
          this.fail(what, `${a.label}: ${a.task.done ? 'done' : 'still waiting'} with ${nFiles} device files open (expected ${expectDone ? 'done' : 'waiting'})`);
        if (a.task.done && a.task.result !== 0) this.fail(what, `${a.label} returned ${a.task.result}`);
      }
      if (d.state === 'unbound' || d.state === 'removed') d.admin = [];
    }

    // (5) for a bridge: its hot-unplug is done once every device below it has been stopped
    for (const j of this.bridgeJobs) {
      if (j.task.done !== j.finished)
        this.fail(what, `${j.label}: ${j.task.done ? 'done' : 'still waiting'}, the model expects it ${j.finished ? 'done' : `waiting for ${j.queue[0]?.spec.name}`}`);
      if (j.task.done && j.task.result !== 0) this.fail(what, `${j.label} returned ${j.task.result}`);
    }

    // (6) group exclusion: one group file per vfio_group, none while a cdev of the group is bound
    const sutGroups = new Set(h.vfioGroups());
    for (const g of this.groups) {
      const liveFiles = this.files.filter((f) => !f.released && f.kind === 'group' && f.ginst === g);
      if (liveFiles.length > 1) this.fail(what, `model: ${liveFiles.length} live group files of group ${g.gid}#${g.gen}`);
      const bound = this.boundCdevs(g);
      if (liveFiles.length && bound) this.fail(what, `model: group ${g.gid}#${g.gen} file live with ${bound} bound cdevs`);
      const s = g.sut;
      if (sutGroups.has(s) !== g.alive) this.fail(what, `group ${g.gid}#${g.gen}: ${g.alive ? 'gone' : 'still listed'}`);
      if (!g.alive && !liveFiles.length) continue;
      const want = g.openFile?.sut ?? null;
      if (s.openedFile !== want)
        this.fail(what, `group ${g.gid}#${g.gen}: opened_file ${s.openedFile?.label ?? 'null'}, the model expects ${want?.label ?? 'null'}`);
      if (s.openedFile && s.cdevDeviceOpenCnt) this.fail(what, `group ${g.gid}: opened while cdev_device_open_cnt ${s.cdevDeviceOpenCnt}`);
      if (s.cdevDeviceOpenCnt !== bound) this.fail(what, `group ${g.gid}#${g.gen}: cdev_device_open_cnt ${s.cdevDeviceOpenCnt}, the model expects ${bound}`);
      const users = g.container ? 1 + this.containerUsers(g) : 0;
      if (s.containerUsers !== users) this.fail(what, `group ${g.gid}#${g.gen}: container_users ${s.containerUsers}, the model expects ${users}`);
      if ((s.container !== null) !== (g.container !== null)) this.fail(what, `group ${g.gid}#${g.gen}: container ${s.container ? 'set' : 'unset'}`);
      if ((s.iommufd !== null) !== (g.iommufd !== null)) this.fail(what, `group ${g.gid}#${g.gen}: iommufd ${s.iommufd ? 'set' : 'unset'}`);
      if (!g.alive && s.iommuGroup !== null) this.fail(what, `group ${g.gid}#${g.gen}: removed but still has its iommu_group`);
    }
    for (const s of sutGroups) {
      const id = s.iommuGroup?.id;
      if (id !== undefined && this.devs.some((d) => d.spec.gid === id) && this.curGroup.get(id)?.sut !== s)
        this.fail(what, `an unexpected vfio_group for IOMMU group ${id}`);
    }

    // file references and fd tables
    for (let i = 0; i < this.files.length; i++) {
      const f = this.files[i]!;
      if (f.released) {
        if (!f.sut.released) this.fail(what, `${f.kind} file f${f.id} (${f.sut.label}) not released (f_count ${f.sut.fCount.value})`);
        // checked once: it no longer takes part in anything
        if (f.kind !== 'container' && f.kind !== 'iommu' && f.kind !== 'group') {
          this.files.splice(i, 1);
          i--;
        }
        continue;
      }
      if (f.sut.released) this.fail(what, `${f.kind} file f${f.id} (${f.sut.label}) released, the model has ${this.expectedRefs(f)} references`);
      const refs = this.expectedRefs(f);
      if (f.sut.fCount.value !== refs) this.fail(what, `${f.kind} file f${f.id} (${f.sut.label}): f_count ${f.sut.fCount.value}, the model expects ${refs}`);
    }
    for (const mp of this.procs) {
      if (!mp.alive) continue;
      const fds = mp.p.fds().filter((fd) => fd > 2);
      const mfds = [...mp.fds.keys()].sort((a, b) => a - b);
      if (fds.join() !== mfds.join()) this.fail(what, `pid ${mp.p.pid}: fds [${fds}], the model has [${mfds}]`);
      for (const [fd, f] of mp.fds) {
        if (mp.p.file(fd) !== f.sut) this.fail(what, `pid ${mp.p.pid}: fd ${fd} is not file f${f.id}`);
        if (mp.p.kproc.fdt.isCloexec(fd) !== mp.cloexec.has(fd)) this.fail(what, `pid ${mp.p.pid}: fd ${fd} FD_CLOEXEC ${mp.p.kproc.fdt.isCloexec(fd)}`);
      }
    }
  }
}

/** Run a whole sequence; throws ModelMismatch (with the log of calls) on the first divergence. */
export function runSequence(cfg: RunConfig, ops: readonly Op[], cov?: Coverage): void {
  const r = new Runner(cfg);
  try {
    for (const op of ops) r.step(op);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const err = new ModelMismatch(`${msg}\n--- calls of this run ---\n${r.log.join('\n')}`);
    if (e instanceof Error && !(e instanceof ModelMismatch)) err.stack = `${err.message}\ncaused by: ${e.stack}`;
    throw err;
  } finally {
    if (cov) for (const [k, v] of Object.entries(r.cov)) cov[k] = (cov[k] ?? 0) + v;
  }
}
