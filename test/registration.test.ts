// Rule 3 — registration and unregistration of a vfio_device (drivers/vfio/vfio_main.c:
// __vfio_register_dev, vfio_unregister_group_dev; drivers/vfio/group.c: vfio_device_remove_group).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  E1000E, GRP_EDU, GRP_TESTDEV, NIC, TESTDEV, U, argsOf, boot, call, cdevPath, eventsSince, getDeviceFd, getInfo,
  groupPath, groupStatus, mark, names, openViaContainer, proc, setContainer, yamlHost,
} from './helpers.js';

test('registration: the vfio index is the cdev minor, lowest free, and is reused after unbind + rebind', () => {
  const h = boot();
  const p = proc(h);
  assert.equal(h.unbind(E1000E.bdf).result, 0); // frees index 0
  assert.equal(h.unbind(TESTDEV.bdf).result, 0); // frees index 3
  assert.equal(h.unbind(NIC.bdf).result, 0);
  // the next registration takes the lowest free index: the NIC gets vfio0
  const m = mark(h);
  assert.equal(h.bind(NIC.bdf), 0);
  assert.deepEqual(argsOf(eventsSince(h, m), 'vfio_register'), [
    { device: NIC.bdf, index: 0, group: '15', dev_set: 'dev_set(bus 0000:07)' },
  ]);
  const fd = p.open('/dev/vfio/devices/vfio0');
  assert.equal(p.fstat(fd)!.rdevMinor, 0);
  assert.match(p.readFile(`/proc/self/fdinfo/${fd}`)!, /vfio-device-syspath: .*\/0000:07:00.0\n/);
  assert.equal(p.readlink('/sys/class/vfio-dev/vfio0'), '../../devices/pci0000:00/0000:00:08.0/0000:07:00.0/vfio-dev/vfio0');
  // then e1000e gets 3, testdev 9 (the IOAT has 8)
  assert.equal(h.bind(E1000E.bdf), 0);
  assert.equal(h.bind(TESTDEV.bdf), 0);
  const idx = Object.fromEntries(h.devices().filter((d) => d.vfio).map((d) => [d.name, d.vfio!.index]));
  assert.deepEqual([idx['nic'], idx['e1000e'], idx['testdev']], [0, 3, 9]);
  for (const d of h.devices().filter((x) => x.vfio)) {
    const f = p.open(`/dev/vfio/devices/vfio${d.vfio!.index}`);
    assert.equal(p.fstat(f)!.rdevMinor, d.vfio!.index);
    p.close(f);
  }
});

test('registration: the group node and the cdev node appear at registration, in that order, before the device is findable', () => {
  const h = boot();
  assert.equal(h.unbind(E1000E.bdf).result, 0);
  const m = mark(h);
  assert.equal(h.bind(E1000E.bdf), 0);
  // drivers/vfio/vfio_main.c: __vfio_register_dev: group (cdev_device_add of /dev/vfio/6), class
  // device + cdev, refcount 1, head of the group's device list
  assert.deepEqual(names(eventsSince(h, m)), ['bind', 'driver_probe', 'vfio_group_create', 'vfio_register']);
  const v = h.devices().find((d) => d.bdf === E1000E.bdf)!.vfio!;
  assert.deepEqual([v.registered, v.registrationRefcount, v.cdev, v.groupNode], [true, 1, cdevPath(E1000E), '/dev/vfio/6']);
});

test('registration: unregister order — group device list, cdev/sysfs node, registration put, then request(0,1,2,...) every 10 s', () => {
  const h = boot();
  const p = proc(h);
  const fd = p.open(cdevPath(E1000E)); // a blocked (never bound) cdev fd holds a registration reference
  const m = mark(h);
  const t = h.unbind(E1000E.bdf);
  assert.equal(t.done, false);
  const ev = eventsSince(h, m);
  assert.deepEqual(names(ev), [
    'unbind', 'vfio_unregister_start', 'group_device_unregister', 'vfio_device_del', 'registration_put', 'request', 'printk',
  ]);
  assert.deepEqual(argsOf(ev, 'registration_put'), [{ device: E1000E.bdf, refcount: 1 }]);
  assert.deepEqual(argsOf(ev, 'request'), [{ device: E1000E.bdf, count: 0 }]);
  // vfio_pci_core_request without a REQ eventfd: one notice, for count 0 only
  assert.match(ev.find((e) => e.name === 'printk')!.msg!, /No device request channel registered, blocked until released by user/);
  // every 10 s of virtual time the next request
  const counts: unknown[] = [];
  for (const step of [9_999, 1, 10_000, 5_000]) {
    const m2 = mark(h);
    h.advanceTime(step);
    counts.push(argsOf(eventsSince(h, m2), 'request').map((a) => a.count));
    assert.ok(!names(eventsSince(h, m2)).includes('printk'));
  }
  assert.deepEqual(counts, [[], [1], [2], []]);
  assert.equal(t.done, false);
  const r = call(p, () => p.close(fd));
  assert.deepEqual(r.events, [
    'registration_put', 'vfio_group_remove', 'vfio_group_free', 'vfio_unregister_done', 'vfio_device_release', 'driver_unbound',
  ]);
  assert.deepEqual(argsOf(r.trace, 'vfio_unregister_done'), [{ device: E1000E.bdf, index: 0, requests: 3 }]);
  assert.deepEqual([t.done, t.result], [true, 0]);
});

test('registration: during unregister the cdev path is ENOENT and GET_DEVICE_FD is ENODEV, open device fds keep working', () => {
  const h = boot();
  const p = proc(h);
  const { g, dev } = openViaContainer(p, E1000E);
  const t = h.unbind(E1000E.bdf);
  assert.equal(t.done, false);
  // spec "Checked against the real kernel" 6: the cdev node is gone → ENOENT
  const o = call(p, () => p.open(cdevPath(E1000E)));
  assert.deepEqual([o.ret, o.errno, o.events], [-1, 'ENOENT', []]);
  assert.equal(p.stat(`/sys/bus/pci/devices/${E1000E.bdf}/vfio-dev`), null);
  assert.equal(p.stat('/sys/class/vfio-dev/vfio0'), null);
  // vfio_device_group_unregister ran first: the name is not found any more
  const r = call(p, () => getDeviceFd(p, g, E1000E.bdf));
  assert.deepEqual([r.ret, r.errno, r.events], [-1, 'ENODEV', []]);
  // nothing changes for the open device fd
  const i = call(p, () => getInfo(p, dev).ret);
  assert.deepEqual([i.ret, i.events], [0, ['device_access']]);
  // the group node stays until the wait is over
  assert.ok(p.stat(groupPath(E1000E)) !== null);
  assert.equal(groupStatus(p, g), U.VFIO_GROUP_FLAGS_VIABLE | U.VFIO_GROUP_FLAGS_CONTAINER_SET);
  // the last device fd's close ends the wait; the group goes with its only device
  const c = call(p, () => p.close(dev));
  // no function reset at this close: the unbinding driver core holds the device lock
  // (vfio_pci_core_disable: pci_dev_trylock fails); the group teardown detaches the container
  assert.deepEqual(c.events, [
    'close_device', 'group_file_put', 'registration_put', 'container_backend_released', 'container_detach_group',
    'vfio_group_remove', 'vfio_unregister_done', 'vfio_device_release', 'driver_unbound',
  ]);
  assert.equal(t.done, true);
  // after: the node is gone, the still-open group fd is a dead group
  assert.deepEqual([p.open(groupPath(E1000E)), p.errnoName], [-1, 'ENOENT']);
  assert.deepEqual([p.open(cdevPath(E1000E)), p.errnoName], [-1, 'ENOENT']);
  assert.deepEqual([groupStatus(p, g), p.errnoName], [-1, 'ENODEV']);
  assert.deepEqual([getDeviceFd(p, g, E1000E.bdf), p.errnoName], [-1, 'ENODEV']);
  const c2 = p.open('/dev/vfio/vfio');
  assert.deepEqual([setContainer(p, g, c2), p.errnoName], [-1, 'ENODEV']); // drivers/vfio/group.c: iommu_group NULL
  assert.deepEqual([p.ioctl(g, U.VFIO_GROUP_UNSET_CONTAINER), p.errnoName], [-1, 'EINVAL']); // detached at teardown
  assert.deepEqual(call(p, () => p.close(g)).events, ['group_release', 'vfio_group_free']);
});

test('registration: an unregister blocked by a forked copy of a blocked cdev fd completes when the last copy closes', () => {
  const h = boot();
  const p = proc(h);
  const fd = p.open(cdevPath(TESTDEV));
  const child = p.fork('child');
  const t = h.unbind(TESTDEV.bdf);
  assert.deepEqual(call(p, () => p.close(fd)).events, []); // the child's copy still holds the file
  h.advanceTime(10_000);
  assert.equal(t.done, false);
  const m = mark(h);
  child.exit(0);
  assert.deepEqual(names(eventsSince(h, m)), [
    'registration_put', 'vfio_group_remove', 'vfio_group_free', 'vfio_unregister_done', 'vfio_device_release', 'driver_unbound',
  ]);
  assert.equal(t.done, true);
});

test('registration: the group node disappears after the wait and only with the last device of the group', () => {
  const h = boot();
  const p = proc(h);
  const fd = p.open(cdevPath(GRP_TESTDEV));
  // grp-edu goes at once; group 13 keeps its node for grp-testdev
  const m = mark(h);
  assert.equal(h.unbind(GRP_EDU.bdf).result, 0);
  assert.ok(!names(eventsSince(h, m)).includes('vfio_group_remove'));
  assert.deepEqual(h.groups().find((g) => g.id === 13)!.devices, [GRP_TESTDEV.bdf]);
  assert.ok(p.stat('/dev/vfio/13') !== null);
  // grp-testdev is in use: the node stays while unregister waits
  const t = h.unbind(GRP_TESTDEV.bdf);
  h.advanceTime(30_000);
  assert.equal(t.done, false);
  assert.ok(p.stat('/dev/vfio/13') !== null);
  assert.equal(p.readFile('/sys/class/vfio/13/dev'), '249:6\n');
  const r = call(p, () => p.close(fd));
  assert.ok(r.events.includes('vfio_group_remove'));
  assert.equal(p.stat('/dev/vfio/13'), null);
  assert.equal(p.stat('/sys/class/vfio/13'), null);
  // the group minor is free again: rebinding the pair recreates the node with the lowest free minor
  assert.equal(h.bind(GRP_EDU.bdf), 0);
  assert.equal(p.readFile('/sys/class/vfio/13/dev'), '249:6\n');
});

test('registration: BIND of an old blocked fd during unregister: EAGAIN if a function reset needs the held device lock', () => {
  const h = boot();
  const p = proc(h);
  const io = p.open('/dev/iommu');
  // e1000e has a function reset: vfio_pci_core_enable → pci_try_reset_function cannot take the
  // device lock the unbinding driver core holds → the open fails with EAGAIN
  const fd = p.open(cdevPath(E1000E));
  const t = h.unbind(E1000E.bdf);
  const b = call(p, () => p.ioctl(fd, U.VFIO_DEVICE_BIND_IOMMUFD, p.mem.struct(U.vfio_device_bind_iommufd, { argsz: 24, iommufd: io })));
  assert.deepEqual([b.ret, b.errno, b.events], [
    -1, 'EAGAIN', ['group_blocked', 'iommufd_bind', 'open_device_failed', 'iommufd_destroy', 'iommufd_unbind', 'group_unblocked'],
  ]);
  // testdev has no reset method (pci_try_reset_function → ENOTTY, not EAGAIN): the old fd binds
  const fd3 = p.open(cdevPath(TESTDEV));
  const t3 = h.unbind(TESTDEV.bdf);
  const b3 = call(p, () => p.ioctl(fd3, U.VFIO_DEVICE_BIND_IOMMUFD, p.mem.struct(U.vfio_device_bind_iommufd, { argsz: 24, iommufd: io })));
  assert.deepEqual([b3.ret, b3.events], [0, ['group_blocked', 'iommufd_bind', 'open_device', 'access_granted']]);
  assert.deepEqual([p.open(cdevPath(TESTDEV)), p.errnoName], [-1, 'ENOENT']);
  const c = call(p, () => p.close(fd3));
  assert.ok(c.events.includes('close_device') && c.events.includes('vfio_unregister_done'), c.events.join());
  assert.deepEqual([t3.done, t.done], [true, false]);
  p.close(fd);
  assert.equal(t.done, true);
});

test('registration: a noiommu device — no cdev to delete; its fake IOMMU group goes with it, the node after the wait', () => {
  const h = boot(yamlHost(
    '  - { bdf: "0000:01:00.0", name: nio, id: "8086:10d3", class: 0x020000, pcie: true, iommu_group: null, driver: vfio-pci, reset: [pm] }\n',
    'kernel: { noiommu: true }\n',
  ));
  const p = proc(h);
  assert.deepEqual([...p.readdir('/sys/kernel/iommu_groups')!].sort(), ['.', '..', '0', '1']);
  const m = mark(h);
  assert.equal(h.unbind('nio').result, 0);
  const ev = eventsSince(h, m);
  assert.deepEqual(argsOf(ev, 'vfio_device_del'), [{ device: '0000:01:00.0', index: 0, cdev: false }]);
  assert.deepEqual(names(ev), [
    'unbind', 'vfio_unregister_start', 'group_device_unregister', 'vfio_device_del', 'registration_put', 'vfio_group_remove',
    'vfio_group_free', 'vfio_unregister_done', 'vfio_device_release', 'driver_unbound',
  ]);
  // vfio_device_remove_group: noiommu → iommu_group_remove_device; the fake group is freed
  assert.equal(p.readlink('/sys/bus/pci/devices/0000:01:00.0/iommu_group'), null);
  assert.deepEqual(p.readdir('/sys/kernel/iommu_groups'), ['.', '..', '1']);
  assert.equal(p.stat('/dev/vfio/noiommu-0'), null);
  // a rebind makes a new fake group (and taints again)
  const m2 = mark(h);
  assert.equal(h.bind('nio'), 0);
  const taint = eventsSince(h, m2).filter((e) => e.name === 'printk').map((e) => e.msg);
  assert.deepEqual(taint, ['0000:01:00.0: Adding kernel taint for vfio-noiommu group on device']);
  assert.ok(p.stat('/dev/vfio/noiommu-0') !== null);
});
