// Rule 8 — /dev/iommu (drivers/iommu/iommufd/main.c, device.c, vfio_compat.c). "oracle" marks
// values observed on the real kernel (shared/oracle, default topology).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Process } from '../src/api/index.js';
import {
  E1000E, TESTDEV, U, argsOf, attach, attachArg, bind, bindArg, boot, call, cdevPath, destroy, detach, getDeviceFd,
  getInfo, groupPath, ioasAlloc, proc, setContainer,
} from './helpers.js';

function badPtr(p: Process): number {
  const a = p.mem.alloc(4096);
  p.mem.protect(a, 4096, 0);
  return a;
}
const res = (r: { ret: number; errno: string | undefined }) => (r.ret === -1 ? r.errno : r.ret);
const IO = (type: string, nr: number) => (type.charCodeAt(0) << 8) | nr;

test('iommufd: object ids are the lowest free >= 1, shared by every object type (IOAS 1, devid 2, auto HWPT 3, reused)', () => {
  const h = boot();
  const p = proc(h);
  const io = p.open('/dev/iommu');
  const a = call(p, () => p.ioctl(io, U.IOMMU_IOAS_ALLOC, p.mem.struct(U.iommu_ioas_alloc, { size: 12 })));
  assert.deepEqual(a.events, ['iommufd_ioas_alloc']);
  assert.deepEqual(argsOf(a.trace, 'iommufd_ioas_alloc').map((x) => x.id), [1]);
  const d = p.open(cdevPath(E1000E));
  assert.equal(bind(p, d, io), 2); // spec 7.6 example
  assert.equal(attach(p, d, 1), 3);
  const dt = call(p, () => detach(p, d));
  assert.deepEqual(argsOf(dt.trace, 'iommufd_destroy').map((x) => [x.id, x.type]), [[3, 'HWPT_PAGING']]);
  assert.equal(ioasAlloc(p, io), 3); // the freed id
  assert.equal(ioasAlloc(p, io), 4);
  assert.equal(destroy(p, io, 1), 0);
  assert.equal(ioasAlloc(p, io), 1);
  // a second context has its own id space
  const io2 = p.open('/dev/iommu');
  assert.equal(ioasAlloc(p, io2), 1);
});

test('iommufd: IOMMU_DESTROY — EBUSY for the devid, an attached HWPT, an IOAS used by a HWPT; ENOENT for unknown ids', () => {
  const h = boot();
  const p = proc(h);
  const io = p.open('/dev/iommu');
  const ioas = ioasAlloc(p, io);
  const d = p.open(cdevPath(E1000E));
  const devid = bind(p, d, io);
  const hwpt = attach(p, d, ioas);
  const ds = (id: number) => {
    const r = call(p, () => destroy(p, io, id));
    return [res(r), r.events];
  };
  assert.deepEqual(ds(devid), ['EBUSY', []]); // oracle
  assert.deepEqual(ds(hwpt), ['EBUSY', []]); // oracle
  assert.deepEqual(ds(ioas), ['EBUSY', []]); // oracle
  assert.deepEqual(ds(99), ['ENOENT', []]); // oracle
  assert.deepEqual(ds(0), ['ENOENT', []]); // oracle
  // a manual HWPT (IOMMU_HWPT_ALLOC) pins its IOAS until destroyed
  detach(p, d);
  const ha = p.mem.struct(U.iommu_hwpt_alloc, { size: U.iommu_hwpt_alloc.size, dev_id: devid, pt_id: ioas });
  assert.equal(p.ioctl(io, U.IOMMU_HWPT_ALLOC, ha), 0);
  const manual = p.mem.readStruct(U.iommu_hwpt_alloc, ha).out_hwpt_id as number;
  assert.equal(manual, 3);
  assert.deepEqual(ds(ioas), ['EBUSY', []]);
  assert.deepEqual(ds(manual), [0, ['iommufd_destroy']]);
  assert.deepEqual(ds(ioas), [0, ['iommufd_destroy']]);
  assert.deepEqual(ds(ioas), ['ENOENT', []]);
  assert.deepEqual(ds(devid), ['EBUSY', []]); // still bound
});

test('iommufd: dispatcher size rules — EFAULT, ENOTTY, EINVAL (size < minimum), E2BIG, zero tail accepted (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const io = p.open('/dev/iommu');
  const good = p.mem.struct(U.iommu_ioas_alloc, { size: 12 });
  const bad = badPtr(p);
  const r = (cmd: number, arg: number) => {
    const x = call(p, () => p.ioctl(io, cmd, arg));
    return res(x);
  };
  assert.equal(r(U.IOMMU_IOAS_ALLOC, bad), 'EFAULT'); // oracle
  // an unused nr inside the table (CONFIG_IOMMUFD_TEST: the table runs to 0xa0): size read first
  assert.equal(r(IO(';', 0x95), good), 'ENOTTY'); // oracle
  assert.equal(r(IO(';', 0x95), bad), 'EFAULT'); // oracle
  assert.equal(r(IO(';', 0x9f), good), 'ENOTTY'); // oracle
  // beyond the table / below 0x80: the VFIO-compat handler, which knows nothing → ENOTTY
  assert.equal(r(IO(';', 0xa1), good), 'ENOTTY'); // oracle
  assert.equal(r(IO(';', 0xa1), bad), 'ENOTTY'); // oracle: no size read
  assert.equal(r(IO(';', 0x50), good), 'ENOTTY'); // oracle
  assert.equal(r(IO(';', 0x64), 0), 0); // oracle: VFIO_GET_API_VERSION through the compat handler
  // the full command must match: another type byte or size bits → ENOTTY, but after the size read
  assert.equal(r(IO('x', 0x81), good), 'ENOTTY'); // oracle
  assert.equal(r(IO('x', 0x81), bad), 'EFAULT'); // oracle
  assert.equal(r(((3 << 30) | (12 << 16) | IO(';', 0x81)) >>> 0, good), 'ENOTTY'); // oracle: _IOWR
  assert.equal(r(U.IOMMU_IOAS_ALLOC, p.mem.struct(U.iommu_ioas_alloc, { size: 8 })), 'EINVAL'); // oracle
  assert.equal(r(U.IOMMU_IOAS_ALLOC, p.mem.struct(U.iommu_ioas_alloc, { size: 11 })), 'EINVAL'); // oracle
  const big = p.mem.alloc(24);
  const b = new Uint8Array(24);
  new DataView(b.buffer).setUint32(0, 20, true);
  b[12] = 1;
  p.mem.write(big, b);
  const e2 = call(p, () => p.ioctl(io, U.IOMMU_IOAS_ALLOC, big));
  assert.deepEqual([res(e2), e2.events], ['E2BIG', []]); // oracle
  b[12] = 0;
  p.mem.write(big, b);
  const ok = call(p, () => p.ioctl(io, U.IOMMU_IOAS_ALLOC, big));
  assert.deepEqual([res(ok), ok.events], [0, ['iommufd_ioas_alloc']]); // oracle
  assert.equal(p.mem.u32(big + 8), 1);
  b[4] = 1;
  p.mem.write(big, b);
  assert.equal(r(U.IOMMU_IOAS_ALLOC, big), 'EOPNOTSUPP'); // oracle: flags != 0
  // the tail check faults: EFAULT
  const m = p.mem.alloc(8192);
  p.mem.free(m + 4096, 4096);
  const t = new Uint8Array(12);
  new DataView(t.buffer).setUint32(0, 16, true);
  p.mem.write(m + 4096 - 12, t);
  assert.equal(r(U.IOMMU_IOAS_ALLOC, m + 4096 - 12), 'EFAULT'); // oracle
  // read/write have no methods
  const buf = p.mem.alloc(8);
  assert.deepEqual([p.read(io, buf, 8), p.errnoName], [-1, 'EINVAL']); // oracle
  assert.deepEqual([p.write(io, buf, 8), p.errnoName], [-1, 'EINVAL']);
});

test('iommufd: IOMMU_VFIO_IOAS get / set / clear (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const io = p.open('/dev/iommu');
  const v = (op: number, id = 0, reserved = 0) => {
    const a = p.mem.struct(U.iommu_vfio_ioas, { size: 12, op, ioas_id: id, __reserved: reserved });
    const r = call(p, () => p.ioctl(io, U.IOMMU_VFIO_IOAS, a));
    return [res(r), p.mem.readStruct(U.iommu_vfio_ioas, a).ioas_id];
  };
  const { GET, SET, CLEAR } = { GET: U.IOMMU_VFIO_IOAS_GET, SET: U.IOMMU_VFIO_IOAS_SET, CLEAR: U.IOMMU_VFIO_IOAS_CLEAR };
  assert.deepEqual(v(GET)[0], 'ENODEV');
  assert.deepEqual(v(SET, 99)[0], 'ENOENT');
  const d = p.open(cdevPath(E1000E));
  const devid = bind(p, d, io);
  assert.deepEqual(v(SET, devid)[0], 'ENOENT'); // not an IOAS
  const ioas = ioasAlloc(p, io);
  assert.deepEqual(v(SET, ioas)[0], 0);
  assert.deepEqual(v(GET), [0, ioas]);
  assert.deepEqual(v(CLEAR)[0], 0);
  assert.deepEqual(v(GET)[0], 'ENODEV');
  assert.deepEqual(v(3)[0], 'EOPNOTSUPP');
  assert.deepEqual(v(GET, 0, 1)[0], 'EOPNOTSUPP');
  // CLEAR does not destroy it; the group path then makes a fresh compat IOAS
  assert.equal(destroy(p, io, ioas), 0);
  const g = p.open(groupPath(TESTDEV));
  assert.equal(setContainer(p, g, io), 0);
  assert.deepEqual(v(GET), [0, ioas]); // devid 1 is taken: the new compat IOAS reuses the freed id 2
  // destroying the compat IOAS clears the pointer
  assert.equal(destroy(p, io, ioas), 0);
  assert.deepEqual(v(GET)[0], 'ENODEV');
});

test('iommufd: the context outlives its fd while a bound cdev holds it (close the iommufd fd first)', () => {
  const h = boot();
  const p = proc(h);
  const io = p.open('/dev/iommu');
  const ioas = ioasAlloc(p, io);
  const d = p.open(cdevPath(E1000E));
  assert.equal(bind(p, d, io), 2);
  const c = call(p, () => p.close(io));
  assert.deepEqual([c.ret, c.events], [0, []]); // oracle: close(io) = 0, nothing destroyed
  assert.equal(getInfo(p, d).ret, 0); // oracle
  // the objects are still there: ATTACH to the old IOAS id works
  const a = attachArg(p, ioas);
  assert.equal(p.ioctl(d, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, a), 0); // oracle
  assert.equal(p.mem.readStruct(U.vfio_device_attach_iommufd_pt, a).pt_id, 3);
  // the cdev's release unbinds, then the context's last reference goes
  const r = call(p, () => p.close(d));
  assert.deepEqual(r.events, [
    'close_device', 'pci_reset_function', 'iommufd_destroy', 'iommufd_destroy', 'iommufd_unbind', 'group_unblocked',
    'registration_put', 'iommufd_release',
  ]);
});

test('iommufd: the context outlives its fd while a group holds it; and while group-path devices are bound', () => {
  const h = boot();
  const p = proc(h);
  const io = p.open('/dev/iommu');
  const g = p.open(groupPath(E1000E));
  assert.equal(setContainer(p, g, io), 0);
  assert.deepEqual(call(p, () => p.close(io)).events, []);
  const dev = call(p, () => getDeviceFd(p, g, E1000E.bdf));
  // the first open binds and attaches to the compat IOAS (auto HWPT)
  assert.deepEqual(dev.events, [
    'registration_get', 'iommufd_bind', 'pci_reset_function', 'open_device', 'iommufd_auto_hwpt', 'access_granted',
  ]);
  assert.deepEqual(argsOf(dev.trace, 'iommufd_bind'), [{ device: E1000E.bdf, devid: 2 }]);
  assert.deepEqual(call(p, () => p.close(g)).events, ['group_release']); // the device still holds the context
  const r = call(p, () => p.close(dev.ret));
  assert.equal(r.events[r.events.length - 1], 'iommufd_release');
  // a context whose user fd closes with nothing else holding it goes at once
  const io2 = p.open('/dev/iommu');
  assert.deepEqual(call(p, () => p.close(io2)).events, ['iommufd_release']);
});

test('iommufd: BIND of a second device of another group into the same context gets the next id', () => {
  const h = boot();
  const p = proc(h);
  const io = p.open('/dev/iommu');
  const a = p.open(cdevPath(E1000E));
  const b = p.open(cdevPath(TESTDEV));
  assert.equal(bind(p, a, io), 1);
  assert.equal(bind(p, b, io), 2);
  p.close(a);
  const c = p.open(cdevPath(E1000E));
  const r = p.ioctl(c, U.VFIO_DEVICE_BIND_IOMMUFD, bindArg(p, io));
  assert.equal(r, 0);
  assert.equal(ioasAlloc(p, io), 3); // devid 1 was reused by the rebind
});

test('iommufd: the group path shares the id space — compat IOAS 1, devid 2, auto HWPT 3; VFIO compat ioctls (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const io = p.open('/dev/iommu');
  const g = p.open(groupPath(E1000E));
  assert.equal(setContainer(p, g, io), 0);
  const dev = call(p, () => getDeviceFd(p, g, E1000E.bdf));
  assert.deepEqual(argsOf(dev.trace, 'iommufd_bind'), [{ device: E1000E.bdf, devid: 2 }]);
  assert.deepEqual(argsOf(dev.trace, 'iommufd_auto_hwpt').map((a) => [a.id, a.ioas]), [[3, 1]]);
  assert.equal(ioasAlloc(p, io), 4); // oracle: next ioas=4
  const ds = (id: number) => res(call(p, () => destroy(p, io, id)));
  assert.deepEqual([ds(1), ds(2), ds(3), ds(4)], ['EBUSY', 'EBUSY', 'EBUSY', 0]); // oracle
  const d2 = getDeviceFd(p, g, E1000E.bdf);
  // drivers/iommu/iommufd/vfio_compat.c: iommufd_vfio_check_extension / iommufd_vfio_set_iommu
  const ce = (e: number) => res(call(p, () => p.ioctl(io, U.VFIO_CHECK_EXTENSION, e)));
  assert.deepEqual([ce(U.VFIO_DMA_CC_IOMMU), ce(U.VFIO_TYPE1_IOMMU), ce(U.VFIO_NOIOMMU_IOMMU), ce(U.VFIO_UPDATE_VADDR)], [0, 1, 1, 0]); // oracle
  const si = (t: number) => res(call(p, () => p.ioctl(io, U.VFIO_SET_IOMMU, t)));
  assert.deepEqual([si(U.VFIO_TYPE1v2_IOMMU), si(U.VFIO_TYPE1v2_IOMMU), si(99)], [0, 0, 'EINVAL']); // oracle: no "already set" state
  p.close(dev.ret);
  p.close(d2);
  assert.equal(ioasAlloc(p, io), 2); // oracle: the devid and the auto HWPT ids are free again
  // a context without a compat IOAS
  const io2 = p.open('/dev/iommu');
  assert.equal(res(call(p, () => p.ioctl(io2, U.VFIO_CHECK_EXTENSION, U.VFIO_DMA_CC_IOMMU))), 'ENODEV'); // oracle
  assert.equal(res(call(p, () => p.ioctl(io2, U.VFIO_SET_IOMMU, U.VFIO_TYPE1v2_IOMMU))), 'ENODEV'); // oracle
  assert.equal(res(call(p, () => p.ioctl(io2, U.VFIO_GET_API_VERSION))), 0); // oracle
});
