// Rule 7 — the device cdev /dev/vfio/devices/vfioX (drivers/vfio/device_cdev.c, vfio_main.c).
// "oracle" marks values observed on the real kernel (shared/oracle, default topology, e1000e = vfio0).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Process } from '../src/api/index.js';
import {
  E1000E, GRP_EDU, GRP_TESTDEV, TESTDEV, U, argsOf, attachArg, bindArg, boot, call, cdevPath, destroy, detachArg, getDeviceFd, getInfo,
  groupPath, ioasAlloc, openViaContainer, proc,
} from './helpers.js';

function badPtr(p: Process): number {
  const a = p.mem.alloc(4096);
  p.mem.protect(a, 4096, 0);
  return a;
}
const res = (r: { ret: number; errno: string | undefined }) => (r.ret === -1 ? r.errno : r.ret);

test('cdev: one node per device, minor = index, sysfs dev attribute = st_rdev; opens are blocked and unlimited', () => {
  const h = boot();
  const p = proc(h);
  const o = call(p, () => p.open(cdevPath(E1000E)));
  assert.deepEqual(o.events, ['registration_get', 'cdev_open']);
  assert.deepEqual(argsOf(o.trace, 'cdev_open').map((a) => a.blocked), [true]);
  const st = p.fstat(o.ret)!;
  assert.deepEqual([st.rdevMajor, st.rdevMinor], [248, 0]);
  assert.equal(p.readFile('/sys/class/vfio-dev/vfio0/dev'), '248:0\n');
  // any number of blocked fds, also while the group is open
  const g = p.open(groupPath(E1000E));
  assert.ok(p.open(cdevPath(E1000E)) >= 0 && p.open(cdevPath(E1000E)) >= 0);
  assert.equal(h.devices().find((d) => d.bdf === E1000E.bdf)!.vfio!.registrationRefcount, 4);
  p.close(g);
});

test('cdev: a blocked file answers EINVAL to every ioctl but BIND (unknown ones, ATTACH/DETACH too) and to read/write/mmap', () => {
  const h = boot();
  const p = proc(h);
  const d = p.open(cdevPath(E1000E));
  const buf = p.mem.alloc(4096);
  const cases: Array<[string, () => number]> = [
    ['GET_INFO', () => p.ioctl(d, U.VFIO_DEVICE_GET_INFO, p.mem.struct(U.vfio_device_info, { argsz: 24 }))],
    ['GET_REGION_INFO', () => p.ioctl(d, U.VFIO_DEVICE_GET_REGION_INFO, p.mem.struct(U.vfio_region_info, { argsz: 32 }))],
    ['FEATURE', () => p.ioctl(d, U.VFIO_DEVICE_FEATURE, buf)],
    ['RESET', () => p.ioctl(d, U.VFIO_DEVICE_RESET)],
    ['ATTACH', () => p.ioctl(d, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, attachArg(p, 1))],
    ['DETACH', () => p.ioctl(d, U.VFIO_DEVICE_DETACH_IOMMUFD_PT, detachArg(p))],
    ['0x3b99', () => p.ioctl(d, 0x3b99)],
    ['0x1234', () => p.ioctl(d, 0x1234)],
    ['read', () => p.read(d, buf, 8)],
    ['pread', () => p.pread(d, buf, 8, 0)],
    ['write', () => p.write(d, buf, 8)],
    ['mmap', () => p.mmap(4096, 1, 1, d, 0)],
  ];
  for (const [what, f] of cases) {
    const r = call(p, f);
    assert.deepEqual([what, r.ret, r.errno, r.events], [what, -1, 'EINVAL', []]); // oracle: all EINVAL
  }
  assert.equal(res(call(p, () => p.lseek(d, 0, 0))), 'ESPIPE'); // oracle
  assert.equal(res(call(p, () => p.ioctl(d, 0x5451 /* FIOCLEX */))), 0); // oracle: the VFS handles it
  assert.equal(h.kernel.warnings.length, 0);
});

test('cdev: BIND argument checks in order — EFAULT, EINVAL (argsz < 16), E2BIG, zero tail OK, EINVAL (fd < 0, flags)', () => {
  const h = boot();
  const p = proc(h);
  const d = p.open(cdevPath(E1000E));
  const io = p.open('/dev/iommu');
  const b = (arg: number) => call(p, () => p.ioctl(d, U.VFIO_DEVICE_BIND_IOMMUFD, arg));
  const ev = (r: ReturnType<typeof b>) => [res(r), r.events];
  assert.deepEqual(ev(b(badPtr(p))), ['EFAULT', []]); // oracle
  assert.deepEqual(ev(b(bindArg(p, io, { argsz: 8 }))), ['EINVAL', []]); // oracle
  assert.deepEqual(ev(b(bindArg(p, io, { argsz: 15 }))), ['EINVAL', []]); // oracle
  // argsz 32: 8 bytes beyond the struct must be zero (copy_struct_from_user)
  const garbage = bindArg(p, io, { argsz: 32 });
  p.mem.write(garbage + 27, new Uint8Array([0x55]));
  assert.deepEqual(ev(b(garbage)), ['E2BIG', []]); // oracle
  assert.deepEqual(ev(b(bindArg(p, -1))), ['EINVAL', []]); // oracle
  assert.deepEqual(ev(b(bindArg(p, -5, { argsz: 8 }))), ['EINVAL', []]); // oracle: argsz first
  assert.deepEqual(ev(b(bindArg(p, io, { flags: 2 }))), ['EINVAL', []]); // oracle
  assert.deepEqual(ev(b(bindArg(p, io, { flags: 3 }))), ['EINVAL', []]); // oracle
  // a zero tail is accepted
  const ok = bindArg(p, io, { argsz: 32 });
  const r = b(ok);
  assert.deepEqual(ev(r), [0, ['group_blocked', 'iommufd_bind', 'pci_reset_function', 'open_device', 'access_granted']]); // oracle
  assert.equal(p.mem.readStruct(U.vfio_device_bind_iommufd, ok).out_devid, 1);
});

test('cdev: BIND on a group-derived fd is EINVAL (after the argument checks); ATTACH/DETACH there are ENOTTY (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const { dev } = openViaContainer(p, E1000E);
  const io = p.open('/dev/iommu');
  assert.equal(res(call(p, () => p.ioctl(dev, U.VFIO_DEVICE_BIND_IOMMUFD, bindArg(p, io, { argsz: 8 })))), 'EINVAL');
  const r = call(p, () => p.ioctl(dev, U.VFIO_DEVICE_BIND_IOMMUFD, bindArg(p, io)));
  assert.deepEqual([res(r), r.events], ['EINVAL', []]); // lifecycle 35
  assert.equal(res(call(p, () => p.ioctl(dev, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, attachArg(p, 1)))), 'ENOTTY'); // oracle
  assert.equal(res(call(p, () => p.ioctl(dev, U.VFIO_DEVICE_DETACH_IOMMUFD_PT, detachArg(p)))), 'ENOTTY'); // oracle
  assert.equal(res(call(p, () => p.ioctl(dev, 0x3b99))), 'ENOTTY'); // oracle: vfio-pci's default
});

test('cdev: BIND vs the group — EBUSY while the group file is open (either way round), checked before the fd', () => {
  const h = boot();
  const p = proc(h);
  const d = p.open(cdevPath(E1000E));
  const io = p.open('/dev/iommu');
  const g = p.open(groupPath(E1000E));
  const r = call(p, () => p.ioctl(d, U.VFIO_DEVICE_BIND_IOMMUFD, bindArg(p, io)));
  assert.deepEqual([res(r), r.events], ['EBUSY', []]); // oracle
  assert.equal(res(call(p, () => p.ioctl(d, U.VFIO_DEVICE_BIND_IOMMUFD, bindArg(p, 999)))), 'EBUSY'); // oracle
  p.close(g);
  assert.equal(res(call(p, () => p.ioctl(d, U.VFIO_DEVICE_BIND_IOMMUFD, bindArg(p, io)))), 0);
  const o = call(p, () => p.open(groupPath(E1000E)));
  assert.deepEqual([res(o), o.events], ['EBUSY', []]); // oracle / lifecycle 12
});

test('cdev: BIND token and fd checks — TOKEN EFAULT/EINVAL before EBADF, EBADFD for non-iommufd files', () => {
  const h = boot();
  const p = proc(h);
  const d = p.open(cdevPath(E1000E));
  const io = p.open('/dev/iommu');
  const uuid = p.mem.alloc(16);
  p.mem.write(uuid, new Uint8Array([1, 2, 3]));
  const b = (fd: number, o: Parameters<typeof bindArg>[2] = {}) => {
    const r = call(p, () => p.ioctl(d, U.VFIO_DEVICE_BIND_IOMMUFD, bindArg(p, fd, o)));
    return [res(r), r.events.join(',')];
  };
  const blk = 'group_blocked,group_unblocked';
  const TOKEN = U.VFIO_DEVICE_BIND_FLAG_TOKEN;
  assert.deepEqual(b(io, { flags: TOKEN, token: 0n }), ['EFAULT', blk]); // oracle
  assert.deepEqual(b(io, { flags: TOKEN, token: BigInt(badPtr(p)) }), ['EFAULT', blk]); // oracle
  assert.deepEqual(b(io, { flags: TOKEN, token: BigInt(uuid) }), ['EINVAL', blk]); // oracle: e1000e is neither PF nor VF
  assert.deepEqual(b(io, { flags: TOKEN, token: BigInt(uuid), argsz: 16 }), ['EFAULT', blk]); // oracle: pointer zero-filled
  assert.deepEqual(b(999, { flags: TOKEN, token: BigInt(uuid) }), ['EINVAL', blk]); // oracle: token before the fd
  assert.deepEqual(b(999), ['EBADF', blk]); // oracle
  assert.deepEqual(b(p.open('/dev/null')), ['EBADFD', blk]); // oracle
  assert.deepEqual(b(p.open('/dev/vfio/vfio')), ['EBADFD', blk]); // oracle: the container is no iommufd
  assert.deepEqual(b(p.eventfd()), ['EBADFD', blk]); // oracle
  // the failed BINDs left the fd blocked and the group free
  assert.equal(h.groups().find((g) => g.id === 6)!.cdevDeviceOpenCnt, 0);
  assert.equal(res(call(p, () => p.ioctl(d, U.VFIO_DEVICE_GET_INFO, p.mem.struct(U.vfio_device_info, { argsz: 24 })))), 'EINVAL');
  // argsz 16 without the token: out_devid is still written (offset 12)
  const a = bindArg(p, io, { argsz: 16 });
  assert.equal(p.ioctl(d, U.VFIO_DEVICE_BIND_IOMMUFD, a), 0);
  assert.equal(p.mem.readStruct(U.vfio_device_bind_iommufd, a).out_devid, 1);
});

test('cdev: a second BIND is EINVAL, on the same fd (even with a bad fd) or on another fd of the open device', () => {
  const h = boot();
  const p = proc(h);
  const d = p.open(cdevPath(E1000E));
  const io = p.open('/dev/iommu');
  assert.equal(p.ioctl(d, U.VFIO_DEVICE_BIND_IOMMUFD, bindArg(p, io)), 0);
  const again = call(p, () => p.ioctl(d, U.VFIO_DEVICE_BIND_IOMMUFD, bindArg(p, io)));
  // vfio_device_block_group increments then undoes; the already-bound test is under the dev_set lock
  assert.deepEqual([res(again), again.events], ['EINVAL', ['group_blocked', 'group_unblocked']]); // oracle / lifecycle 6
  assert.equal(res(call(p, () => p.ioctl(d, U.VFIO_DEVICE_BIND_IOMMUFD, bindArg(p, 999)))), 'EINVAL'); // oracle
  const d2 = p.open(cdevPath(E1000E));
  const io2 = p.open('/dev/iommu');
  const other = call(p, () => p.ioctl(d2, U.VFIO_DEVICE_BIND_IOMMUFD, bindArg(p, io2)));
  // vfio_df_open: the cdev path cannot share an open device
  assert.deepEqual([res(other), other.events], ['EINVAL', ['group_blocked', 'group_unblocked']]); // oracle / lifecycle 10
  assert.equal(res(call(p, () => p.ioctl(d2, U.VFIO_DEVICE_GET_INFO, p.mem.struct(U.vfio_device_info, { argsz: 24 })))), 'EINVAL');
});

test('cdev: ATTACH/DETACH argument rules; PASID on vfio-pci without PASID support is EINVAL (spec item 5)', () => {
  const h = boot();
  const p = proc(h);
  const d = p.open(cdevPath(E1000E));
  const io = p.open('/dev/iommu');
  const ioas = ioasAlloc(p, io);
  assert.equal(p.ioctl(d, U.VFIO_DEVICE_BIND_IOMMUFD, bindArg(p, io)), 0);
  const at = (a: number) => res(call(p, () => p.ioctl(d, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, a)));
  const dt = (a: number) => res(call(p, () => p.ioctl(d, U.VFIO_DEVICE_DETACH_IOMMUFD_PT, a)));
  const PASID = U.VFIO_DEVICE_ATTACH_PASID;
  assert.equal(at(badPtr(p)), 'EFAULT'); // oracle
  assert.equal(at(attachArg(p, ioas, { argsz: 8 })), 'EINVAL'); // oracle
  assert.equal(at(attachArg(p, ioas, { argsz: 11 })), 'EINVAL'); // oracle
  assert.equal(at(attachArg(p, ioas, { flags: 2 })), 'EINVAL'); // oracle
  assert.equal(at(attachArg(p, ioas, { flags: PASID, pasid: 1 })), 'EINVAL'); // oracle: argsz 12 < end of pasid
  assert.equal(at(attachArg(p, ioas, { flags: PASID, pasid: 1, argsz: 16 })), 'EINVAL'); // oracle: no PASID support
  assert.equal(at(attachArg(p, 99)), 'ENOENT'); // oracle
  assert.equal(at(attachArg(p, 0)), 'ENOENT'); // oracle
  assert.equal(at(attachArg(p, 2 /* the devid */)), 'EINVAL'); // oracle: not an IOAS/HWPT
  assert.equal(dt(badPtr(p)), 'EFAULT'); // oracle
  assert.equal(dt(detachArg(p, { argsz: 4 })), 'EINVAL'); // oracle
  assert.equal(dt(detachArg(p, { flags: 2 })), 'EINVAL'); // oracle
  assert.equal(dt(detachArg(p, { flags: U.VFIO_DEVICE_DETACH_PASID })), 'EINVAL'); // oracle: argsz 8 < end of pasid
  const dp = p.mem.struct(U.vfio_device_detach_iommufd_pt, { argsz: 12, flags: U.VFIO_DEVICE_DETACH_PASID, pasid: 1 });
  assert.equal(dt(dp), 0); // oracle: unknown PASID, nothing to do
});

test('cdev: ATTACH to an IOAS returns an auto HWPT; a second ATTACH replaces; DETACH destroys the auto HWPT and frees its id', () => {
  const h = boot();
  const p = proc(h);
  const d = p.open(cdevPath(E1000E));
  const io = p.open('/dev/iommu');
  const ioas1 = ioasAlloc(p, io); // 1
  assert.equal(p.ioctl(d, U.VFIO_DEVICE_BIND_IOMMUFD, bindArg(p, io)), 0); // devid 2
  const att = (pt: number) => {
    const a = attachArg(p, pt);
    const r = call(p, () => p.ioctl(d, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, a));
    return { r, pt: p.mem.readStruct(U.vfio_device_attach_iommufd_pt, a).pt_id as number };
  };
  const a1 = att(ioas1);
  assert.deepEqual([a1.r.ret, a1.pt, a1.r.events], [0, 3, ['iommufd_auto_hwpt', 'iommufd_attach']]); // oracle: pt=3
  const ioas2 = ioasAlloc(p, io); // 4
  assert.equal(ioas2, 4); // oracle
  // replace (spec "Checked against the real kernel" 2): the old auto HWPT 3 is destroyed
  const a2 = att(ioas2);
  assert.deepEqual([a2.r.ret, a2.pt, a2.r.events], [0, 5, ['iommufd_auto_hwpt', 'iommufd_destroy', 'iommufd_attach']]); // oracle: pt2=5
  assert.deepEqual([destroy(p, io, 3), p.errnoName], [-1, 'ENOENT']); // oracle: DESTROY old hwpt = ENOENT
  // attaching to the HWPT already attached: no change
  const same = att(5);
  assert.deepEqual([same.r.ret, same.pt, same.r.events], [0, 5, ['iommufd_attach']]); // oracle
  const back = att(ioas1);
  assert.deepEqual([back.r.ret, back.pt], [0, 3]); // oracle: the lowest free id again
  const dt = call(p, () => p.ioctl(d, U.VFIO_DEVICE_DETACH_IOMMUFD_PT, detachArg(p)));
  assert.deepEqual([dt.ret, dt.events], [0, ['iommufd_destroy', 'iommufd_detach']]); // oracle: DETACH = 0
  assert.deepEqual(argsOf(dt.trace, 'iommufd_destroy'), [{ ctx: argsOf(dt.trace, 'iommufd_destroy')[0]!.ctx, id: 3, type: 'HWPT_PAGING' }]);
  const again = call(p, () => p.ioctl(d, U.VFIO_DEVICE_DETACH_IOMMUFD_PT, detachArg(p)));
  assert.deepEqual([again.ret, again.events], [0, ['iommufd_detach']]); // oracle: DETACH again = 0
  assert.equal(ioasAlloc(p, io), 3); // oracle: ioas3 = 3, the freed auto HWPT id
});

test('cdev: the binding ends only with the file\'s release — DETACH keeps it bound; close unbinds', () => {
  const h = boot();
  const p = proc(h);
  const d = p.open(cdevPath(E1000E));
  const io = p.open('/dev/iommu');
  const ioas = ioasAlloc(p, io);
  assert.equal(p.ioctl(d, U.VFIO_DEVICE_BIND_IOMMUFD, bindArg(p, io)), 0);
  assert.equal(p.ioctl(d, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, attachArg(p, ioas)), 0);
  assert.equal(p.ioctl(d, U.VFIO_DEVICE_DETACH_IOMMUFD_PT, detachArg(p)), 0);
  assert.equal(getInfo(p, d).ret, 0);
  assert.deepEqual([p.open(groupPath(E1000E)), p.errnoName], [-1, 'EBUSY']);
  assert.deepEqual([destroy(p, io, 2), p.errnoName], [-1, 'EBUSY']); // the devid lives on
  // a dup keeps the binding; the last close unbinds
  const d2 = p.dup(d);
  assert.deepEqual(call(p, () => p.close(d)).events, []);
  const c = call(p, () => p.close(d2));
  assert.deepEqual(c.events, ['close_device', 'pci_reset_function', 'iommufd_destroy', 'iommufd_unbind', 'group_unblocked', 'registration_put']);
  assert.ok(p.open(groupPath(E1000E)) >= 0);
  // the never-bound fd's close only drops the registration reference
  const b = p.open(cdevPath(TESTDEV));
  assert.deepEqual(call(p, () => p.close(b)).events, ['registration_put']);
});

test('cdev: the group path cannot be used to open a device bound through its cdev', () => {
  const h = boot();
  const p = proc(h);
  const d = p.open(cdevPath(TESTDEV));
  const io = p.open('/dev/iommu');
  assert.equal(p.ioctl(d, U.VFIO_DEVICE_BIND_IOMMUFD, bindArg(p, io)), 0);
  assert.deepEqual([p.open(groupPath(TESTDEV)), p.errnoName], [-1, 'EBUSY']);
  // so GET_DEVICE_FD is unreachable; after the close the group path works again
  p.close(d);
  const g = p.open(groupPath(TESTDEV));
  assert.equal(p.ioctl(g, U.VFIO_GROUP_SET_CONTAINER, p.mem.s32At(io)), 0);
  assert.ok(getDeviceFd(p, g, TESTDEV.bdf) >= 0);
});

test('cdev: two devices of one IOMMU group bind into the same context; another context is EPERM (DMA ownership)', () => {
  const h = boot();
  const p = proc(h);
  const io = p.open('/dev/iommu');
  const io2 = p.open('/dev/iommu');
  const a = p.open(cdevPath(GRP_EDU));
  const b = p.open(cdevPath(GRP_TESTDEV));
  assert.equal(p.ioctl(a, U.VFIO_DEVICE_BIND_IOMMUFD, bindArg(p, io)), 0);
  // iommufd_device_bind → iommu_device_claim_dma_owner: the group is owned by the first context
  const r = call(p, () => p.ioctl(b, U.VFIO_DEVICE_BIND_IOMMUFD, bindArg(p, io2)));
  assert.deepEqual([res(r), r.events], ['EPERM', ['group_blocked', 'group_unblocked']]);
  const ok = call(p, () => p.ioctl(b, U.VFIO_DEVICE_BIND_IOMMUFD, bindArg(p, io)));
  assert.deepEqual([res(ok), ok.events], [0, ['group_blocked', 'iommufd_bind', 'open_device', 'access_granted']]);
  assert.equal(h.groups().find((g) => g.id === 13)!.cdevDeviceOpenCnt, 2);
});

test('cdev: the open mode is not VFIO\'s business — an O_RDONLY cdev binds; write() is EBADF from the VFS', () => {
  const h = boot();
  const p = proc(h);
  const d = p.open(cdevPath(TESTDEV), 0 /* O_RDONLY */);
  const io = p.open('/dev/iommu');
  const buf = p.mem.alloc(8);
  // blocked: read is VFIO's EINVAL, write is the VFS's EBADF (no FMODE_WRITE)
  assert.equal(res(call(p, () => p.read(d, buf, 8))), 'EINVAL');
  assert.equal(res(call(p, () => p.write(d, buf, 8))), 'EBADF');
  assert.equal(p.ioctl(d, U.VFIO_DEVICE_BIND_IOMMUFD, bindArg(p, io)), 0);
  assert.equal(getInfo(p, d).ret, 0);
  assert.equal(res(call(p, () => p.write(d, buf, 8))), 'EBADF');
  // mmap PROT_WRITE|MAP_SHARED of a read-only file: EACCES before the driver is asked
  assert.equal(res(call(p, () => p.mmap(4096, 3, 1, d, 0))), 'EACCES');
});

test('cdev: a BIND whose out_devid cannot be written is undone; an ATTACH whose pt_id cannot be written ends detached (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const io = p.open('/dev/iommu');
  const ioas = ioasAlloc(p, io);
  const d = p.open(cdevPath(E1000E));
  // the argument is readable but not writable: copy_to_user of out_devid fails after the open
  const ro = bindArg(p, io);
  p.mem.protect(ro, 4096, 1 /* PROT_READ */);
  const b = call(p, () => p.ioctl(d, U.VFIO_DEVICE_BIND_IOMMUFD, ro));
  assert.deepEqual([res(b), b.events], ['EFAULT', [
    'group_blocked', 'iommufd_bind', 'pci_reset_function', 'open_device', 'close_device', 'pci_reset_function',
    'iommufd_destroy', 'iommufd_unbind', 'group_unblocked',
  ]]); // oracle: EFAULT
  assert.equal(getInfo(p, d).ret, -1); // oracle: still blocked (EINVAL)
  const g = p.open(groupPath(E1000E));
  assert.ok(g >= 0); // oracle: the group is free again
  p.close(g);
  const a = bindArg(p, io);
  assert.equal(p.ioctl(d, U.VFIO_DEVICE_BIND_IOMMUFD, a), 0);
  assert.equal(p.mem.readStruct(U.vfio_device_bind_iommufd, a).out_devid, 2); // oracle: devid=2 (the undone one freed)
  // vfio_df_ioctl_attach_pt: copy-out failure → detach, even for a replace
  const aro = attachArg(p, ioas);
  p.mem.protect(aro, 4096, 1);
  const r1 = call(p, () => p.ioctl(d, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, aro));
  assert.deepEqual([res(r1), r1.events], ['EFAULT', ['iommufd_auto_hwpt', 'iommufd_destroy']]); // oracle
  assert.deepEqual([destroy(p, io, 3), p.errnoName], [-1, 'ENOENT']); // oracle
  const ok = attachArg(p, ioas);
  assert.equal(p.ioctl(d, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, ok), 0);
  assert.equal(p.mem.readStruct(U.vfio_device_attach_iommufd_pt, ok).pt_id, 3); // oracle: pt=3
  assert.equal(res(call(p, () => p.ioctl(d, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, aro))), 'EFAULT'); // oracle
  assert.deepEqual([destroy(p, io, 3), p.errnoName], [-1, 'ENOENT']); // oracle: detached, the auto HWPT is gone
  assert.equal(destroy(p, io, ioas), 0); // oracle: nothing uses the IOAS any more
});
