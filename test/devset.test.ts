// Rule 4 — device sets (drivers/vfio/vfio_main.c: vfio_assign_device_set, vfio_df_open/close;
// drivers/vfio/pci/vfio_pci_core.c: vfio_pci_core_register_device, vfio_pci_dev_set_try_reset).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RunScheduler, footprintOf } from '../src/kernel/sched.js';
import {
  E1000E, GRP_EDU, GRP_TESTDEV, IGB0, IGB1, TESTDEV, U, argsOf, bindArg, boot, call, cdevPath, getDeviceFd, groupPath,
  openViaCdev, openViaContainer, openViaGroupIommufd, proc, setContainer, yamlHost,
} from './helpers.js';

const setOf = (h: ReturnType<typeof boot>, bdf: string) => h.deviceSets().find((s) => s.devices.includes(bdf))!;

test('devset: set_id keying — root bus → the device itself, slot with reset → the slot, otherwise the bus', () => {
  const h = boot();
  assert.deepEqual(
    h.deviceSets().map((s) => [s.label, s.devices]),
    [
      ['dev_set(bus 0000:01)', [E1000E.bdf]],
      ['dev_set(bus 0000:02)', ['0000:02:00.0']],
      ['dev_set(bus 0000:03)', ['0000:03:00.0']],
      ['dev_set(0000:00:05.0)', [TESTDEV.bdf]], // root bus: itself
      ['dev_set(slot 0000:04:00)', [IGB0.bdf, IGB1.bdf]], // reset-capable hotplug slot
      ['dev_set(bus 0000:06)', [GRP_EDU.bdf, GRP_TESTDEV.bdf]], // no slot: the bus
      ['dev_set(0000:00:09.0)', ['0000:00:09.0']], // the IOAT, root bus: itself
    ],
  );
  // a slot without reset support keys by the bus (pci_probe_reset_slot fails)
  const h2 = boot(yamlHost(`  - { bdf: "0000:01:00.0", id: "8086:10c9", class: 0x020000, pcie: true, iommu_group: 2, driver: vfio-pci, reset: [flr] }
  - { bdf: "0000:01:00.1", id: "8086:10c9", class: 0x020000, pcie: true, iommu_group: 3, driver: vfio-pci, reset: [flr] }
`, '') + 'slots:\n  - { bus: 1, slot: 0, reset: false }\n');
  assert.deepEqual(h2.deviceSets().map((s) => [s.label, s.devices]), [['dev_set(bus 0000:01)', ['0000:01:00.0', '0000:01:00.1']]]);
});

test('devset: one lock per set — both igb functions open under the same dev_set lock, e1000e under its own', () => {
  const h = boot();
  const p = proc(h);
  const locks: string[] = [];
  (h.kernel.sched as RunScheduler).opObserver = (_t, op) => {
    const f = footprintOf(op);
    if (f.kind === 'mutex_lock' && f.label.startsWith('dev_set(')) locks.push(f.label);
  };
  openViaCdev(p, IGB0);
  openViaCdev(p, IGB1);
  openViaCdev(p, E1000E);
  assert.deepEqual([...new Set(locks)], ['dev_set(slot 0000:04:00)->lock', 'dev_set(bus 0000:01)->lock']);
  assert.equal(locks.filter((l) => l.includes('slot')).length, 2);
});

test('devset: the group path opens once — several fds give one open_device, the last close gives close_device', () => {
  const h = boot();
  const p = proc(h);
  const g = p.open(groupPath(TESTDEV));
  const c = p.open('/dev/vfio/vfio');
  setContainer(p, g, c);
  p.ioctl(c, U.VFIO_SET_IOMMU, U.VFIO_TYPE1v2_IOMMU);
  const first = call(p, () => getDeviceFd(p, g, TESTDEV.bdf));
  // vfio_df_device_first_open: the container use pins the group file, then open_device
  assert.deepEqual(first.events, ['registration_get', 'group_file_get', 'open_device', 'access_granted']);
  const more = [1, 2].map(() => call(p, () => getDeviceFd(p, g, TESTDEV.bdf)));
  for (const r of more) assert.deepEqual(r.events, ['registration_get', 'access_granted']);
  assert.deepEqual(argsOf(more[1]!.trace, 'access_granted'), [{ device: TESTDEV.bdf, via: 'group', open_count: 3 }]);
  assert.equal(setOf(h, TESTDEV.bdf).openCount, 3);
  assert.deepEqual(call(p, () => p.close(first.ret)).events, ['registration_put']);
  assert.deepEqual(call(p, () => p.close(more[0]!.ret)).events, ['registration_put']);
  // the last close: close_device (testdev has no reset at all: no reset event), container unuse
  assert.deepEqual(call(p, () => p.close(more[1]!.ret)).events, ['close_device', 'group_file_put', 'registration_put']);
  assert.equal(setOf(h, TESTDEV.bdf).openCount, 0);
});

test('devset: open_count spans the paths — a group+iommufd open survives the group fd; a re-opened group just increments', () => {
  const h = boot();
  const p = proc(h);
  const { g, i, dev } = openViaGroupIommufd(p, E1000E);
  assert.equal(setOf(h, E1000E.bdf).openCount, 1);
  // iommufd mode: the device fd does not hold the group file
  assert.deepEqual(call(p, () => p.close(g)).events, ['group_release']);
  const g2 = p.open(groupPath(E1000E));
  assert.ok(g2 >= 0);
  assert.equal(setContainer(p, g2, i), 0);
  const r = call(p, () => getDeviceFd(p, g2, E1000E.bdf));
  // no second bind, no second open_device (drivers/vfio/vfio_main.c: vfio_df_open)
  assert.deepEqual(r.events, ['registration_get', 'access_granted']);
  assert.equal(setOf(h, E1000E.bdf).openCount, 2);
  assert.deepEqual(call(p, () => p.close(dev)).events, ['registration_put']);
  const last = call(p, () => p.close(r.ret));
  // the last close: close_device, then the unbind detaches (the auto HWPT of the compat IOAS
  // dies with its last device) and destroys the DEVICE object
  assert.deepEqual(last.events, ['close_device', 'pci_reset_function', 'iommufd_destroy', 'iommufd_destroy', 'iommufd_unbind', 'registration_put']);
  assert.deepEqual(argsOf(last.trace, 'iommufd_destroy').map((a) => a.type), ['HWPT_PAGING', 'DEVICE']);
});

test('devset: two functions of one set — two open_device, and the bus reset only on the last close of the set', () => {
  const h = boot();
  const p = proc(h);
  const io = p.open('/dev/iommu');
  const a = p.open(cdevPath(GRP_EDU));
  const b = p.open(cdevPath(GRP_TESTDEV));
  const ra = call(p, () => p.ioctl(a, U.VFIO_DEVICE_BIND_IOMMUFD, bindArg(p, io)));
  const rb = call(p, () => p.ioctl(b, U.VFIO_DEVICE_BIND_IOMMUFD, bindArg(p, io)));
  // neither function can reset itself (grp-edu's "bus" method needs it alone on the bus)
  assert.deepEqual(ra.events, ['group_blocked', 'iommufd_bind', 'open_device', 'access_granted']);
  assert.deepEqual(rb.events, ['group_blocked', 'iommufd_bind', 'open_device', 'access_granted']);
  assert.equal(setOf(h, GRP_EDU.bdf).openCount, 2);
  // first close: the other member is open → no dev_set reset
  const c1 = call(p, () => p.close(a));
  assert.deepEqual(c1.events, ['close_device', 'iommufd_destroy', 'iommufd_unbind', 'group_unblocked', 'registration_put']);
  // last close of the set: vfio_pci_dev_set_try_reset → pci_reset_bus of bus 06 (both members)
  const c2 = call(p, () => p.close(b));
  assert.deepEqual(c2.events, [
    'close_device', 'pci_reset_bus', 'dev_set_reset', 'iommufd_destroy', 'iommufd_unbind', 'group_unblocked', 'registration_put',
  ]);
  assert.deepEqual(argsOf(c2.trace, 'pci_reset_bus'), [{ bus: '0000:06', devices: [GRP_EDU.bdf, GRP_TESTDEV.bdf] }]);
});

test('devset: the same through the group path (one group, both devices): the reset waits for the last device fd', () => {
  const h = boot();
  const p = proc(h);
  const { g } = openViaContainer(p, GRP_EDU); // device fd 5 for grp-edu
  const t = call(p, () => getDeviceFd(p, g, GRP_TESTDEV.bdf));
  assert.deepEqual(t.events, ['registration_get', 'group_file_get', 'open_device', 'access_granted']);
  const e1 = call(p, () => p.close(5));
  assert.deepEqual(e1.events, ['close_device', 'group_file_put', 'registration_put']);
  const e2 = call(p, () => p.close(t.ret));
  assert.deepEqual(e2.events, ['close_device', 'pci_reset_bus', 'dev_set_reset', 'group_file_put', 'registration_put']);
});

test('devset: igb0/igb1 (slot set, function resets work) — two open_device, no slot reset needed at the last close', () => {
  const h = boot();
  const p = proc(h);
  const x = openViaCdev(p, IGB0);
  const y = openViaCdev(p, IGB1);
  assert.equal(setOf(h, IGB0.bdf).openCount, 2);
  const c1 = call(p, () => p.close(x.dev));
  assert.deepEqual(c1.events.slice(0, 2), ['close_device', 'pci_reset_function']);
  const c2 = call(p, () => p.close(y.dev));
  // FLR cleared needs_reset on both: vfio_pci_dev_set_needs_reset is false, no pci_reset_slot
  assert.deepEqual(c2.events.slice(0, 2), ['close_device', 'pci_reset_function']);
  assert.ok(!c2.events.includes('pci_reset_slot'));
});

test('devset: a slot set whose functions cannot reset themselves gets a slot reset on the last close only', () => {
  const h = boot(yamlHost(`  - { bdf: "0000:01:00.0", name: f0, id: "8086:10c9", class: 0x020000, pcie: true, iommu_group: 2, driver: vfio-pci, reset: [] }
  - { bdf: "0000:01:00.1", name: f1, id: "8086:10c9", class: 0x020000, pcie: true, iommu_group: 3, driver: vfio-pci, reset: [] }
`) + 'slots:\n  - { bus: 1, slot: 0, reset: true }\n');
  const p = proc(h);
  const x = openViaCdev(p, { index: 0 });
  const y = openViaCdev(p, { index: 1 });
  assert.ok(!call(p, () => p.close(y.dev)).events.includes('pci_reset_slot'));
  const c = call(p, () => p.close(x.dev));
  assert.deepEqual(c.events.slice(0, 3), ['close_device', 'pci_reset_slot', 'dev_set_reset']);
  assert.deepEqual(argsOf(c.trace, 'pci_reset_slot'), [{ bus: '0000:01', devices: ['0000:01:00.0', '0000:01:00.1'] }]);
});
