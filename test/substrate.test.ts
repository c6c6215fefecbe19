// Rule 1 — the substrate: visible operations with footprints, user-memory copies, file
// references, the fd table, the char-device registry, devfs/sysfs/procfs and the trace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kernel } from '../src/kernel/kernel.js';
import { Footprint, KGen, RunScheduler, Task, footprintOf } from '../src/kernel/sched.js';
import {
  Completion, Mutex, Refcount, atomicRmw, complete, mutexLock, mutexUnlock, refcountDecAndTest, refcountInc,
  refcountIncNotZero, smpLoadAcquire, smpStoreRelease, waitForCompletion, waitForCompletionTimeout, Atomic,
} from '../src/kernel/sync.js';
import {
  AddressSpace, PROT_READ, PROT_WRITE, copyFromUser, copyStructFromUser, copyToUser,
} from '../src/kernel/uaccess.js';
import { ChrNode } from '../src/kernel/fs/vfs.js';
import { S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../src/kernel/fs/file.js';
import { E2BIG, EFAULT } from '../src/kernel/errno.js';
import {
  E1000E, GRP_EDU, O_RDWR, TESTDEV, U, argsOf, bind, boot, call, cdevPath, eventsSince, groupPath, mark,
  names, openViaContainer, proc,
} from './helpers.js';

/** A bare kernel whose run scheduler reports every executed op as (task, footprint). */
function observed(): { k: Kernel; log: Array<[string, Footprint]> } {
  const k = new Kernel();
  const log: Array<[string, Footprint]> = [];
  (k.sched as RunScheduler).opObserver = (t: Task, op) => log.push([t.name, footprintOf(op)]);
  return { k, log };
}
const fp = (l: Array<[string, Footprint]>) => l.map(([t, f]) => `${t} ${f.kind} ${f.label} ${f.access} ${f.order}`);

test('substrate: mutex lock/unlock are visible ops with footprints; a held mutex blocks the next locker until unlock', () => {
  const { k, log } = observed();
  const m = new Mutex('m');
  const gate = new Completion('gate');
  const a = k.spawnKernelTask('A', (function* (): KGen<void> {
    yield* mutexLock(m);
    yield* waitForCompletion(gate);
    yield* mutexUnlock(m);
  })());
  const b = k.spawnKernelTask('B', (function* (): KGen<void> {
    yield* mutexLock(m);
    yield* mutexUnlock(m);
  })());
  // A holds m and waits for the gate; B is blocked on m
  assert.deepEqual([a.state, b.state], ['blocked', 'blocked']);
  assert.deepEqual(fp(log), ['A mutex_lock m write acquire']);
  k.spawnKernelTask('C', (function* (): KGen<void> {
    yield* complete(gate);
  })());
  assert.deepEqual([a.state, b.state], ['done', 'done']);
  assert.deepEqual(fp(log), [
    'A mutex_lock m write acquire',
    'C complete gate write release',
    'A wait gate write acquire',
    'A mutex_unlock m write release',
    'B mutex_lock m write acquire',
    'B mutex_unlock m write release',
  ]);
});

test('substrate: refcount and atomic operations are visible ops; refcount misuse is a WARN in the trace', () => {
  const { k, log } = observed();
  k.trace.record();
  const r = new Refcount('r', 1);
  const z = new Refcount('z', 0);
  const flag = new Atomic('flag', false);
  const ctr = new Atomic('ctr', 5);
  const t = k.spawnKernelTask('T', (function* (): KGen<unknown> {
    yield* refcountInc(r);
    const inz = yield* refcountIncNotZero(z);
    const last1 = yield* refcountDecAndTest(r);
    const last2 = yield* refcountDecAndTest(r);
    yield* refcountDecAndTest(r); // underflow: a WARN, the count stays 0
    yield* smpStoreRelease(flag, true);
    const seen = yield* smpLoadAcquire(flag);
    const old = yield* atomicRmw(ctr, (v) => v + 1);
    return [inz, last1, last2, seen, old, ctr.value, r.value];
  })());
  assert.deepEqual(t.result, [false, false, true, true, 5, 6, 0]);
  assert.deepEqual(fp(log), [
    'T ref_get r write relaxed',
    'T ref_get z write relaxed',
    'T ref_put r write release',
    'T ref_put r write release',
    'T ref_put r write release',
    'T atomic_store flag write release',
    'T atomic_load flag read acquire',
    'T atomic_rmw ctr write seq_cst',
  ]);
  assert.deepEqual(names(k.trace.events()), ['WARN']);
  assert.match(k.warnings[0]!.message, /refcount_t: underflow; use-after-free of r/);
});

test('substrate: wait_for_completion_timeout runs on virtual time (0 on timeout, remaining time when completed)', () => {
  const k = new Kernel();
  const c = new Completion('c');
  const waits: number[] = [];
  const t = k.spawnKernelTask('W', (function* (): KGen<void> {
    waits.push(yield* waitForCompletionTimeout(c, 10_000));
    waits.push(yield* waitForCompletionTimeout(c, 10_000));
  })());
  assert.equal(t.state, 'blocked');
  k.clock.advance(9_999);
  assert.deepEqual(waits, []);
  k.clock.advance(1);
  assert.deepEqual(waits, [0]); // timed out exactly at the deadline
  k.clock.advance(4_000);
  k.spawnKernelTask('C', (function* (): KGen<void> {
    yield* complete(c);
  })());
  assert.deepEqual(waits, [0, 6_000]);
  assert.equal(t.state, 'done');
});

test('substrate: a VFIO syscall yields its locks, refcounts and the access_granted store-release as footprints', () => {
  const h = boot();
  const p = proc(h);
  const dev = p.open(cdevPath(E1000E));
  const io = p.open('/dev/iommu');
  const log: string[] = [];
  (h.kernel.sched as RunScheduler).opObserver = (_t, op) => {
    const f = footprintOf(op);
    log.push(`${f.kind} ${f.label} ${f.access} ${f.order}`);
  };
  assert.ok(bind(p, dev, io) > 0);
  const kinds = [...log];
  const at = (s: string) => kinds.findIndex((x) => x.startsWith(s));
  // vfio_df_ioctl_bind_iommufd: group lock (block the group), then the dev_set lock around the
  // open, and the access_granted store-release before the dev_set unlock
  assert.ok(at('mutex_lock vfio_group 6->group_lock') >= 0);
  assert.ok(at('mutex_lock dev_set(bus 0000:01)->lock') > at('mutex_unlock vfio_group 6->group_lock'));
  const store = at('atomic_store vfio_device_file(0000:01:00.0)->access_granted write release');
  assert.ok(store > at('mutex_lock dev_set(bus 0000:01)->lock'));
  assert.ok(store < at('mutex_unlock dev_set(bus 0000:01)->lock'));
  // the ioctl after the bind reads it with load-acquire before anything else of VFIO runs; the
  // device access that follows reads the driver's state of the open device (READ_ONCE, a visible
  // op so that the explorer sees an access racing with close_device)
  log.length = 0;
  const info = p.mem.struct(U.vfio_device_info, { argsz: U.vfio_device_info.size });
  assert.equal(p.ioctl(dev, U.VFIO_DEVICE_GET_INFO, info), 0);
  assert.deepEqual(log.filter((s) => !s.includes('f_count')), [
    'atomic_load vfio_device_file(0000:01:00.0)->access_granted read acquire',
    'atomic_load vfio_device(0000:01:00.0) driver state read once',
  ]);
});

test('substrate: copy_from_user / copy_to_user fault with EFAULT on unmapped or protected memory', () => {
  const mm = new AddressSpace();
  const a = mm.map(4096);
  assert.equal(copyToUser(mm, a, new Uint8Array([1, 2, 3])), 0);
  assert.deepEqual(copyFromUser(mm, a, 3), new Uint8Array([1, 2, 3]));
  // crossing into the guard page after the mapping
  assert.equal(copyFromUser(mm, a + 4094, 4), -EFAULT);
  assert.equal(copyToUser(mm, a + 4094, new Uint8Array(4)), -EFAULT);
  // a fault leaves no partial write
  assert.deepEqual(copyFromUser(mm, a + 4094, 2), new Uint8Array([0, 0]));
  assert.equal(copyFromUser(mm, -1, 1), -EFAULT);
  mm.protect(a, 4096, PROT_READ);
  assert.equal(copyToUser(mm, a, new Uint8Array([9])), -EFAULT);
  assert.deepEqual(copyFromUser(mm, a, 1), new Uint8Array([1]));
  mm.protect(a, 4096, 0);
  assert.equal(copyFromUser(mm, a, 1), -EFAULT);
  mm.protect(a, 4096, PROT_READ | PROT_WRITE);
  mm.unmap(a, 4096);
  assert.equal(copyFromUser(mm, a, 1), -EFAULT);
});

test('substrate: copy_struct_from_user zero-extends a short struct, accepts a zero tail, E2BIG on a non-zero tail, EFAULT on a fault', () => {
  const mm = new AddressSpace();
  const a = mm.map(8192);
  mm.write(a, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
  // short user struct (usize 4 < ksize 8): zero-extended
  assert.deepEqual(copyStructFromUser(mm, 8, a, 4), new Uint8Array([1, 2, 3, 4, 0, 0, 0, 0]));
  // equal sizes
  assert.deepEqual(copyStructFromUser(mm, 8, a, 8), new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
  // larger user struct with an all-zero tail: accepted, truncated to ksize
  assert.deepEqual(copyStructFromUser(mm, 4, a + 100, 16), new Uint8Array(4));
  // larger user struct with a non-zero byte in the tail
  assert.equal(copyStructFromUser(mm, 4, a, 8), -E2BIG);
  // the tail runs into unmapped memory: EFAULT (check_zeroed_user faults)
  mm.unmap(a + 4096, 4096);
  assert.equal(copyStructFromUser(mm, 4, a + 4096 - 4, 8), -EFAULT);
  // a non-zero byte ahead of the fault wins: check_zeroed_user stops at it (oracle: E2BIG)
  mm.write(a + 4000, new Uint8Array([1]));
  assert.equal(copyStructFromUser(mm, 8, a, 4097), -E2BIG);
  mm.write(a + 4000, new Uint8Array([0]));
  assert.equal(copyStructFromUser(mm, 8, a, 4097), -EFAULT);
  assert.equal(copyStructFromUser(mm, 8, a, 0xffffffff), -EFAULT); // a 4 GiB size is scanned, not copied
  // the head itself unmapped
  assert.equal(copyStructFromUser(mm, 8, a + 4096, 8), -EFAULT);
});

test('substrate: copy_struct_from_user through a real ioctl (IOMMU_IOAS_ALLOC size 12/16/20)', () => {
  const h = boot();
  const p = proc(h);
  const io = p.open('/dev/iommu');
  const alloc = (bytes: number[]) => {
    const a = p.mem.alloc(32);
    p.mem.write(a, new Uint8Array(bytes));
    return call(p, () => p.ioctl(io, U.IOMMU_IOAS_ALLOC, a));
  };
  // size 16, zero tail: accepted (oracle: 0)
  assert.deepEqual(alloc([16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).events, ['iommufd_ioas_alloc']);
  // size 16, garbage in the tail (oracle: E2BIG), nothing allocated
  const r = alloc([16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0]);
  assert.deepEqual([r.ret, r.errno, r.events], [-1, 'E2BIG', []]);
});

test('substrate: a non-zero tail byte before an unmapped page is E2BIG, a zero tail running into it EFAULT (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const io = p.open('/dev/iommu');
  const dev = p.open(cdevPath(E1000E));
  // two mapped pages, the third unmapped
  const m = p.mem.alloc(3 * 4096);
  p.mem.free(m + 8192, 4096);
  const put32 = (a: number, v: number) => p.mem.write(a, new Uint8Array(new Uint32Array([v]).buffer));
  const ioas = (size: number) => {
    put32(m, size);
    const r = call(p, () => p.ioctl(io, U.IOMMU_IOAS_ALLOC, m));
    return r.ret === -1 ? r.errno : r.ret;
  };
  p.mem.write(m, new Uint8Array(8192));
  assert.equal(ioas(0xffffffff), 'EFAULT'); // oracle: zero tail then a fault
  assert.equal(ioas(8193), 'EFAULT'); // oracle
  assert.equal(ioas(8192), 0); // oracle: a zero tail within the mapping
  p.mem.write(m + 5000, new Uint8Array([1]));
  assert.equal(ioas(0xffffffff), 'E2BIG'); // oracle: non-zero then a fault
  assert.equal(ioas(8193), 'E2BIG'); // oracle
  assert.equal(ioas(8192), 'E2BIG'); // oracle
  // the same rule in VFIO_DEVICE_BIND_IOMMUFD (vfio_df_ioctl_bind_iommufd uses copy_struct_from_user)
  p.mem.write(m, new Uint8Array(8192));
  put32(m, 0xffffffff);
  put32(m + 8, io);
  assert.deepEqual([p.ioctl(dev, U.VFIO_DEVICE_BIND_IOMMUFD, m), p.errnoName], [-1, 'EFAULT']); // oracle
  p.mem.write(m + 6000, new Uint8Array([1]));
  assert.deepEqual([p.ioctl(dev, U.VFIO_DEVICE_BIND_IOMMUFD, m), p.errnoName], [-1, 'E2BIG']); // oracle
});

test('substrate: the fd table gives the lowest free fd, EMFILE at RLIMIT_NOFILE, EBADF for a closed fd', () => {
  const h = boot();
  const p = proc(h, { rlimitNofile: 6 });
  assert.deepEqual(p.fds(), [0, 1, 2]); // stdio on /dev/null
  assert.equal(p.open('/dev/null'), 3);
  assert.equal(p.open('/dev/null'), 4);
  assert.equal(p.close(3), 0);
  assert.equal(p.open('/dev/iommu'), 3); // lowest free
  assert.equal(p.open('/dev/null'), 5);
  const r = call(p, () => p.open('/dev/iommu'));
  assert.deepEqual([r.ret, r.errno, r.events], [-1, 'EMFILE', []]); // no context was created
  assert.deepEqual([p.dup(0), p.errnoName], [-1, 'EMFILE']);
  assert.equal(p.close(4), 0);
  assert.deepEqual([p.close(4), p.errnoName], [-1, 'EBADF']);
  assert.deepEqual([p.ioctl(4, U.VFIO_GET_API_VERSION), p.errnoName], [-1, 'EBADF']);
  assert.deepEqual([p.dup(4), p.errnoName], [-1, 'EBADF']);
  assert.deepEqual([p.dup2(4, 7), p.errnoName], [-1, 'EBADF']);
  assert.deepEqual([p.dup2(0, 6), p.errnoName], [-1, 'EBADF']); // newfd >= RLIMIT_NOFILE
  assert.equal(p.fstat(42), null);
  assert.equal(p.errnoName, 'EBADF');
  assert.equal(p.dup2(0, 4), 4);
});

test('substrate: GET_DEVICE_FD at RLIMIT_NOFILE is EMFILE and the device is not opened', () => {
  const h = boot();
  const p = proc(h, { rlimitNofile: 6 });
  const { dev } = openViaContainer(p, E1000E); // fds 3 (group), 4 (container), 5 (device)
  assert.equal(dev, 5);
  assert.equal(p.close(dev), 0);
  p.open('/dev/null'); // fills fd 5
  const r = call(p, () => p.ioctl(3, U.VFIO_GROUP_GET_DEVICE_FD, p.mem.cstring(E1000E.bdf)));
  // drivers/vfio/group.c: vfio_group_ioctl_get_device_fd reserves the fd before the open
  assert.deepEqual([r.ret, r.errno, r.events], [-1, 'EMFILE', ['registration_get', 'registration_put']]);
});

test('substrate: a file is released exactly on its last put (dup, dup2, close ordering)', () => {
  const h = boot();
  const p = proc(h);
  const io = p.open('/dev/iommu');
  const d = p.dup(io);
  assert.deepEqual(call(p, () => p.close(io)).events, []); // the dup keeps the file
  assert.deepEqual(call(p, () => p.close(d)).events, ['iommufd_release']);
  // dup2 over an open fd drops the file that was there
  const a = p.open('/dev/iommu');
  const ob = call(p, () => p.open('/dev/iommu'));
  const b = ob.ret;
  const r = call(p, () => p.dup2(a, b));
  assert.deepEqual([r.ret, r.events], [b, ['iommufd_release']]);
  // the context released is b's (the one dup2 replaced), not a's
  assert.deepEqual(argsOf(r.trace, 'iommufd_release'), argsOf(ob.trace, 'iommufd_open'));
  assert.deepEqual(call(p, () => p.dup2(a, a)).events, []); // same fd: nothing happens
  assert.deepEqual(call(p, () => p.close(a)).events, []);
  assert.deepEqual(call(p, () => p.close(b)).events, ['iommufd_release']);
});

test('substrate: fork shares files with the child; exit closes every fd; the last holder releases', () => {
  const h = boot();
  const p = proc(h);
  const g = p.open(groupPath(TESTDEV));
  const io = p.open('/dev/iommu');
  const child = p.fork('child');
  assert.deepEqual(child.fds(), p.fds());
  assert.deepEqual(child.readlink(`/proc/self/fd/${g}`), groupPath(TESTDEV));
  // the parent's close does not release anything: the child still holds both files
  assert.deepEqual(call(p, () => p.close(g)).events, []);
  assert.deepEqual(call(p, () => p.close(io)).events, []);
  // the group stays "open" (one opener at a time), so a new open is EBUSY
  assert.deepEqual([p.open(groupPath(TESTDEV)), p.errnoName], [-1, 'EBUSY']);
  const m = mark(h);
  child.exit(0);
  assert.deepEqual(names(eventsSince(h, m)), ['group_release', 'iommufd_release']); // lowest fd first
  assert.equal(child.alive, false);
  assert.ok(p.open(groupPath(TESTDEV)) >= 0);
});

test('substrate: close-on-exec fds go at exec, others stay', () => {
  const h = boot();
  const p = proc(h);
  const { dev } = openViaContainer(p, E1000E);
  const keep = p.open('/dev/iommu');
  assert.equal(p.fcntl(dev, 1 /* F_GETFD */), 1); // GET_DEVICE_FD installs with O_CLOEXEC
  const m = mark(h);
  assert.equal(p.exec(), 0);
  const ev = names(eventsSince(h, m));
  assert.ok(ev.includes('close_device'), ev.join(','));
  assert.ok(!ev.includes('iommufd_release'));
  assert.ok(p.fds().includes(keep) && !p.fds().includes(dev));
});

test('substrate: opening a device node with no registered cdev is ENXIO (char-device registry)', () => {
  const h = boot();
  const p = proc(h);
  // mknod /dev/stale c 248 99 (a minor of the vfio-dev region nobody registered) and c 250 0
  h.kernel.vfs.addNode('/dev/stale', (n, fs) => new ChrNode(n, { major: 248, minor: 99 }, 0o600, fs));
  h.kernel.vfs.addNode('/dev/nomajor', (n, fs) => new ChrNode(n, { major: 250, minor: 0 }, 0o600, fs));
  for (const path of ['/dev/stale', '/dev/nomajor']) {
    const r = call(p, () => p.open(path));
    assert.deepEqual([r.ret, r.errno, r.events], [-1, 'ENXIO', []]);
  }
  // a node left over from an unregistered device (vfio0 unbound, node recreated by hand)
  assert.equal(h.unbind(E1000E.bdf).result, 0);
  h.kernel.vfs.addNode('/dev/vfio/devices/vfio0', (n, fs) => new ChrNode(n, { major: 248, minor: 0 }, 0o600, fs));
  assert.deepEqual([p.open(cdevPath(E1000E)), p.errnoName], [-1, 'ENXIO']);
});

test('substrate: fstat st_mode/st_rdev of every node kind (oracle: ls -l /dev/vfio, fstat)', () => {
  const h = boot();
  const p = proc(h);
  const st = (fd: number) => {
    const s = p.fstat(fd)!;
    return [s.mode.toString(8), `${s.rdevMajor}:${s.rdevMinor}`];
  };
  const { g, c, dev } = openViaContainer(p, E1000E);
  const io = p.open('/dev/iommu');
  const cd = p.open(cdevPath(TESTDEV));
  assert.deepEqual(st(c), ['20666', '10:196']); // oracle: container mode=020666 rdev=10:196
  assert.deepEqual(st(io), ['20660', '10:257']); // oracle: iommu mode=020660 rdev=10:257
  assert.deepEqual(st(g), ['20600', '249:0']); // oracle: group mode=020600 rdev=249:0
  assert.deepEqual(st(cd), ['20600', '248:3']); // oracle: /dev/vfio/devices/vfio3 248,3
  assert.deepEqual(st(dev), ['600', '0:0']); // oracle: gdev mode=0600 rdev=0:0 (anon inode, no type bits)
  assert.equal(p.fstat(dev)!.mode & S_IFMT, 0);
  // the anonymous inode is shared by every anon file (eventfd too)
  assert.equal(p.fstat(dev)!.ino, p.fstat(p.eventfd())!.ino);
  // sysfs / proc / dirs / links
  assert.equal(p.stat('/sys/class/vfio/6/dev')!.mode & S_IFMT, S_IFREG);
  assert.equal(p.stat('/sys/class/vfio/6/dev')!.mode & 0o777, 0o444);
  assert.equal(p.stat('/dev/vfio')!.mode & S_IFMT, S_IFDIR);
  assert.equal(p.lstat('/sys/class/vfio/6')!.mode, S_IFLNK | 0o777);
  assert.equal(p.stat('/sys/class/vfio/6')!.mode & S_IFMT, S_IFDIR); // followed
  assert.equal(p.stat('/dev/vfio/vfio')!.mode & S_IFMT, S_IFCHR);
  // st_dev: devtmpfs vs sysfs vs anon_inodefs
  assert.notEqual(p.fstat(c)!.dev, p.stat('/sys/class/vfio/6/dev')!.dev);
});

test('substrate: readlink of sysfs links and /proc/PID/fd (oracle: readlink)', () => {
  const h = boot();
  const p = proc(h);
  const { g, c, dev } = openViaContainer(p, E1000E);
  const io = p.open('/dev/iommu');
  const cd = p.open(cdevPath(TESTDEV));
  const ev = p.eventfd();
  const links: Record<string, string> = {
    '/sys/bus/pci/devices/0000:01:00.0': '../../../devices/pci0000:00/0000:00:02.0/0000:01:00.0',
    '/sys/bus/pci/devices/0000:01:00.0/iommu_group': '../../../../kernel/iommu_groups/6',
    '/sys/bus/pci/devices/0000:01:00.0/driver': '../../../../bus/pci/drivers/vfio-pci',
    '/sys/class/vfio/6': '../../devices/virtual/vfio/6',
    '/sys/class/vfio-dev/vfio0': '../../devices/pci0000:00/0000:00:02.0/0000:01:00.0/vfio-dev/vfio0',
    '/sys/class/vfio-dev/vfio0/device': '../../../0000:01:00.0',
    '/sys/dev/char/10:196': '../../devices/virtual/misc/vfio',
    '/sys/dev/char/249:0': '../../devices/virtual/vfio/6',
    '/sys/dev/char/248:0': '../../devices/pci0000:00/0000:00:02.0/0000:01:00.0/vfio-dev/vfio0',
    '/sys/kernel/iommu_groups/6/devices/0000:01:00.0': '../../../../devices/pci0000:00/0000:00:02.0/0000:01:00.0',
  };
  for (const [l, target] of Object.entries(links)) assert.equal(p.readlink(l), target, l); // oracle
  assert.equal(p.readlink(`/proc/self/fd/${g}`), '/dev/vfio/6');
  assert.equal(p.readlink(`/proc/${p.pid}/fd/${c}`), '/dev/vfio/vfio');
  assert.equal(p.readlink(`/proc/self/fd/${io}`), '/dev/iommu');
  assert.equal(p.readlink(`/proc/self/fd/${cd}`), '/dev/vfio/devices/vfio3');
  assert.equal(p.readlink(`/proc/self/fd/${dev}`), 'anon_inode:[vfio-device]');
  assert.equal(p.readlink(`/proc/self/fd/${ev}`), 'anon_inode:[eventfd]');
  assert.equal(p.readlink('/sys/class/vfio/6/dev'), null);
  assert.equal(p.errnoName, 'EINVAL'); // not a link
  assert.equal(p.readlink('/sys/class/vfio/99'), null);
  assert.equal(p.errnoName, 'ENOENT');
  // the realpath through the class link
  assert.equal(p.realpath('/sys/class/vfio-dev/vfio0/device'), '/sys/devices/pci0000:00/0000:00:02.0/0000:01:00.0');
  // fdinfo of a device fd names the parent device (both flavours)
  assert.match(p.readFile(`/proc/self/fdinfo/${dev}`)!, /vfio-device-syspath: \/sys\/devices\/pci0000:00\/0000:00:02.0\/0000:01:00.0\n/);
  assert.match(p.readFile(`/proc/self/fdinfo/${cd}`)!, /vfio-device-syspath: \/sys\/devices\/pci0000:00\/0000:00:05.0\n/);
});

test('substrate: readdir of devfs, sysfs and /proc/PID/fd', () => {
  const h = boot();
  const p = proc(h);
  const sorted = (x: string[] | null) => [...(x ?? [])].sort();
  assert.deepEqual(sorted(p.readdir('/dev/vfio')), ['.', '..', '10', '11', '13', '16', '4', '6', '7', '8', 'devices', 'vfio']);
  assert.deepEqual(sorted(p.readdir('/dev/vfio/devices')), ['.', '..', ...[0, 1, 2, 3, 4, 5, 6, 7, 8].map((i) => `vfio${i}`)].sort());
  // oracle: ls /sys/class/vfio-dev/vfio0/ = dev device power subsystem uevent; /sys/class/vfio/6/ = dev power subsystem uevent
  assert.deepEqual(sorted(p.readdir('/sys/class/vfio-dev/vfio0')), ['.', '..', 'dev', 'device', 'power', 'subsystem', 'uevent']);
  assert.deepEqual(sorted(p.readdir('/sys/class/vfio/6')), ['.', '..', 'dev', 'power', 'subsystem', 'uevent']);
  assert.deepEqual(sorted(p.readdir('/sys/kernel/iommu_groups/13/devices')), ['.', '..', '0000:05:00.0', GRP_EDU.bdf, '0000:06:02.0']);
  const io = p.open('/dev/iommu');
  assert.deepEqual(sorted(p.readdir(`/proc/${p.pid}/fd`)), ['.', '..', '0', '1', '2', String(io)]);
  const e = p.readdirEntries('/dev/vfio')!.find((x) => x.name === 'vfio')!;
  assert.equal(e.type, 2); // DT_CHR
  assert.equal(p.readdir('/dev/vfio/vfio'), null);
  assert.equal(p.errnoName, 'ENOTDIR');
  // /proc/devices lists the dynamic majors (oracle: 248 vfio-dev, 249 vfio)
  assert.match(p.readFile('/proc/devices')!, /\n248 vfio-dev\n249 vfio\n/);
  // uevent of the class devices (oracle)
  assert.equal(p.readFile('/sys/class/vfio/6/uevent'), 'MAJOR=249\nMINOR=0\nDEVNAME=vfio/6\n');
  assert.equal(p.readFile('/sys/class/vfio-dev/vfio0/uevent'), 'MAJOR=248\nMINOR=0\nDEVNAME=vfio/devices/vfio0\n');
});

test('substrate: every syscall is an enter/exit pair in the trace; kernel events point at the syscall that caused them', () => {
  const h = boot();
  const p = proc(h);
  const m = mark(h);
  const fd = p.open(cdevPath(E1000E), O_RDWR);
  const bad = p.ioctl(fd, U.VFIO_DEVICE_GET_INFO, 0);
  assert.equal(bad, -1);
  const ev = eventsSince(h, m);
  const shape = ev.map((e) => [e.kind, e.phase ?? '', e.name, e.ret ?? '', e.errno ?? '']);
  assert.deepEqual(shape, [
    ['syscall', 'enter', 'open', '', ''],
    ['kernel', '', 'registration_get', '', ''],
    ['kernel', '', 'cdev_open', '', ''],
    ['syscall', 'exit', 'open', fd, ''],
    ['syscall', 'enter', 'ioctl', '', ''],
    ['syscall', 'exit', 'ioctl', -1, 'EINVAL'],
  ]);
  const [enter, reg, cdev, exit, ienter] = ev;
  assert.equal(reg!.cause, enter!.seq);
  assert.equal(cdev!.cause, enter!.seq);
  assert.equal(exit!.cause, enter!.seq);
  assert.equal(reg!.pid, p.pid);
  assert.deepEqual(enter!.args, { path: cdevPath(E1000E), flags: O_RDWR });
  assert.deepEqual(ienter!.args, { fd, request: 'VFIO_DEVICE_GET_INFO', arg: '0x0' });
  assert.deepEqual(reg!.args, { device: E1000E.bdf, refcount: 2 });
  // admin operations are events too, and the kernel work they cause points at them
  const m2 = mark(h);
  assert.equal(p.close(fd), 0);
  const t = h.unbind(TESTDEV.bdf);
  assert.equal(t.result, 0);
  const adm = eventsSince(h, m2).filter((e) => e.kind === 'admin');
  assert.deepEqual(adm.map((e) => [e.name, e.args]), [['unbind', { device: TESTDEV.bdf, driver: 'vfio-pci' }]]);
  const caused = eventsSince(h, m2).filter((e) => e.cause === adm[0]!.seq).map((e) => e.name);
  assert.ok(caused.includes('vfio_unregister_start') && caused.includes('driver_unbound'), caused.join(','));
});
