// Rule 2 — the host: topology validation, the default host's shape, the administrator's
// bind/unbind/hot-unplug, and the sysfs attributes userspace (QEMU) checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Host, HostConfigError, parseTopology } from '../src/api/index.js';
import { sysWrite } from '../src/kernel/syscalls.js';
import {
  E1000E, EDU, GRP_EDU, GRP_TESTDEV, IGB0, IGB1, NIC, NVME, TESTDEV, U, boot, call, cdevPath, eventsSince,
  groupPath, groupStatus, mark, names, proc, setContainer, yamlHost,
} from './helpers.js';

function problems(yaml: string): string[] {
  try {
    parseTopology(yaml, 'bad.yaml');
  } catch (e) {
    assert.ok(e instanceof HostConfigError);
    assert.equal(e.source, 'bad.yaml');
    assert.match(e.message, /^bad\.yaml: invalid host topology:\n/);
    return e.problems;
  }
  assert.fail('topology accepted');
}

const fn = (extra: string, bdf = '0000:00:01.0') => `functions:\n  - { bdf: "${bdf}", id: "8086:10d3", class: 0x020000, iommu_group: 3${extra} }\n`;

test('host: validation names the field and the problem (bad BDF, unknown field, duplicate BDF)', () => {
  assert.deepEqual(problems(fn('', '0000:01:00')), [
    'functions[0].bdf: "0000:01:00" is not a PCI address (expected DDDD:BB:DD.F, e.g. 0000:01:00.0)',
  ]);
  assert.deepEqual(problems(fn('', '0000:00:20.0')), ['functions[0].bdf: device number 20 is above 1f']);
  assert.deepEqual(problems(fn(', colour: red')), [
    'functions[0].colour: unknown field (known: bdf, name, id, vendor, device, subsystem, revision, class, bridge, pcie, iommu_group, driver, reset, no_bus_reset, bars, rom, rom_addr, msix_bar, caps, ext_caps, interrupt_pin, interrupt_line, model, recorded)',
  ]);
  assert.deepEqual(problems(`foo: 1\n${fn('')}`), [
    '(top level).foo: unknown field (known: name, description, kernel, iommu, functions, slots, recorded)',
  ]);
  assert.deepEqual(problems(`${fn('')}  - { bdf: "0000:00:01.0", id: "8086:10d3", class: 0x020000, iommu_group: 4 }\n`), [
    'functions[1].bdf: 0000:00:01.0 is already used by functions[0]',
  ]);
});

test('host: validation names the field and the problem (bus without bridge, reset method, BAR size, bridge, majors, YAML)', () => {
  assert.deepEqual(problems(fn('', '0000:03:00.0')), [
    'functions[0].bdf: bus 03 has no bridge leading to it (add a function with bridge.secondary: 3)',
  ]);
  assert.deepEqual(problems(fn(', pcie: true, reset: [flr, warm]')), [
    'functions[0].reset[1]: unknown reset method string "warm" (known: device_specific, acpi, flr, af_flr, pm, bus, cxl_bus)',
  ]);
  assert.deepEqual(problems(fn(', bars: [ { size: 0x3000 } ]')), ['functions[0].bars[0].size: 0x3000 is not a power of two']);
  assert.deepEqual(problems(fn(', msix_bar: 2, bars: [ { size: 0x1000 } ]')), ['functions[0].msix_bar: BAR2 is not defined']);
  assert.deepEqual(problems(fn(', reset: [flr]')), ['functions[0].reset: an flr reset needs a pcie capability with flr: true']);
  assert.deepEqual(problems(fn(', bars: [ { size: 0x1000, mem64: true }, { size: 0x1000 } ]')), [
    'functions[0].bars[1]: must be null: BAR0 is 64-bit and uses it',
  ]);
  assert.deepEqual(problems(`functions:\n  - { bdf: "0000:00:01.0", id: "1b36:000c", class: 0x060400, iommu_group: 1 }\n`), [
    'functions[0].bridge: a PCI bridge (class 0x0604xx) needs bridge.secondary (its secondary bus number)',
  ]);
  assert.deepEqual(problems(`kernel: { vfio_major: 249, vfio_dev_major: 249 }\n${fn('')}`), [
    'kernel.vfio_dev_major: must differ from kernel.vfio_major (249)',
  ]);
  assert.deepEqual(problems(fn('').replace('iommu_group: 3', 'iommu_group: 3, id: "zz"').replace('id: "8086:10d3", ', '')), [
    'functions[0].id: must be "vvvv:dddd" (hex vendor:device), got string "zz"',
  ]);
  assert.deepEqual(problems('functions: []'), ['functions: must be a non-empty list of PCI functions']);
  assert.equal(problems('functions: [').length, 1);
  assert.match(problems('functions: [')[0]!, /^not valid YAML: /);
  // every problem is reported, not only the first
  assert.equal(problems(`foo: 1\n${fn(', reset: [warm], bars: [ { size: 3 } ]', '0000:03:00.0')}`).length, 4);
  // and the Host constructor refuses the topology
  assert.throws(() => new Host(fn('', '0000:01:00')), HostConfigError);
});

test('host: capabilities are checked (ids, vector counts, MSI-X placement, offsets, overlaps, reset needs)', () => {
  const caps = (c: string, more = '') => problems(fn(`, pcie: true, bars: [ { size: 0x4000 } ], caps: ${c}${more}`));
  assert.deepEqual(caps('[ { id: pcie }, { id: agp } ]'), ['functions[0].caps[1].id: unknown capability string "agp" (known: pm, msi, msix, pcie, vendor, raw)']);
  assert.deepEqual(caps('[ { id: pcie }, { id: msi, vectors: 3 } ]'), ['functions[0].caps[1].vectors: 3 is not a power of two (1, 2, 4, 8, 16 or 32)']);
  assert.deepEqual(caps('[ { id: pcie }, { id: msix, vectors: 1025, table: { bar: 0 } } ]'), [
    'functions[0].caps[1].table: 0x4010 bytes at 0x0 do not fit in BAR0 (0x4000 bytes)',
    'functions[0].caps[1].pba: 0x88 bytes at 0x5000 do not fit in BAR0 (0x4000 bytes)',
  ]);
  assert.deepEqual(caps('[ { id: pcie }, { id: msix, vectors: 4, table: { bar: 1 }, pba: { bar: 0, offset: 0x4 } } ]'), [
    'functions[0].caps[1].pba.offset: 0x4 is not 8-byte aligned',
    'functions[0].caps[1].table.bar: BAR1 is not defined',
  ]);
  assert.deepEqual(caps('[ { id: pcie }, { id: msix, vectors: 4, table: { bar: 0 }, pba: { bar: 0, offset: 0x20 } } ]'), ['functions[0].caps[1].pba: overlaps the MSI-X table']);
  assert.deepEqual(caps('[ { id: pcie, at: 0x40 }, { id: pm, at: 0x50 } ]'), ['functions[0].caps: pcie at 0x40 overlaps pm at 0x50']);
  assert.deepEqual(caps('[ { id: pcie, at: 0x42 } ]'), ['functions[0].caps[0].at: 0x42 is not dword aligned']);
  assert.deepEqual(caps('[ { id: pm } ]'), ['functions[0].caps: a PCIe function (pcie: true) needs a pcie capability']);
  assert.deepEqual(caps('[ { id: pcie }, { id: pm, no_soft_reset: true } ]', ', reset: [pm]'), [
    'functions[0].reset: a pm reset needs a pm capability without no_soft_reset',
  ]);
  assert.deepEqual(caps('[ { id: pcie } ]', ', ext_caps: [ { id: dsn, at: 0x100 }, { id: aer, at: 0x108 } ]'), [
    'functions[0].ext_caps: dsn at 0x100 overlaps aer at 0x108',
  ]);
  assert.deepEqual(problems(fn(', ext_caps: [ { id: aer } ]')), ['functions[0].ext_caps: extended capabilities need a PCIe function (pcie: true)']);
  // offsets left out are laid out from 0x40 in list order; the MSI-X BAR follows the capability
  const t = parseTopology(fn(', pcie: true, bars: [ { size: 0x4000 } ], caps: [ { id: pm }, { id: msi, vectors: 4, maskable: true }, { id: pcie }, { id: msix, vectors: 8, table: { bar: 0, offset: 0x1000 } } ], ext_caps: [ { id: aer }, { id: dsn, serial: 7 } ]'));
  const f = t.functions[0]!;
  assert.deepEqual(f.caps.map((c) => [c.id, c.at]), [['pm', 0x40], ['msi', 0x48], ['pcie', 0x60], ['msix', 0x94]]);
  assert.deepEqual(f.caps[3], { id: 'msix', at: 0x94, vectors: 8, tableBar: 0, tableOffset: 0x1000, pbaBar: 0, pbaOffset: 0x2000 });
  assert.deepEqual(f.extCaps, [{ id: 'aer', at: 0x100 }, { id: 'dsn', at: 0x12c, serial: 7n }]);
  assert.equal(f.msixBar, 0);
  assert.equal(f.interruptPin, 1);
});

test('host: the default host has single-function groups, a two-function group, a two-group device set and a kernel-owned NIC', () => {
  const h = new Host();
  const groups = h.groups();
  const single = groups.filter((g) => g.devices.length === 1);
  assert.ok(single.length >= 3);
  assert.deepEqual(
    groups.map((g) => [g.id, g.devices]),
    [
      [4, [TESTDEV.bdf]], [6, [E1000E.bdf]], [7, [NVME.bdf]], [8, [EDU.bdf]], [10, [IGB0.bdf]], [11, [IGB1.bdf]],
      [13, [GRP_EDU.bdf, GRP_TESTDEV.bdf]], [16, ['0000:00:09.0']],
    ],
  );
  assert.ok(groups.every((g) => g.viable && g.alive && !g.open));
  // igb0 and igb1: one device set keyed by the reset-capable slot 0000:04:00, two IOMMU groups
  const sets = h.deviceSets();
  assert.deepEqual(sets.find((s) => s.devices.includes(IGB0.bdf)), {
    label: 'dev_set(slot 0000:04:00)', devices: [IGB0.bdf, IGB1.bdf], openCount: 0,
  });
  assert.equal(h.slotReset(IGB0.bdf), true);
  // the NIC is bound to its kernel driver; its IOMMU group is not a VFIO group
  const nic = h.devices().find((d) => d.bdf === NIC.bdf)!;
  assert.deepEqual([nic.name, nic.driver, nic.iommuGroup, nic.vfio], ['nic', 'e1000e', 15, null]);
  const p = proc(h);
  assert.equal(p.readlink(`/sys/bus/pci/devices/${NIC.bdf}/driver`), '../../../../bus/pci/drivers/e1000e');
  assert.deepEqual([p.open('/dev/vfio/15'), p.errnoName], [-1, 'ENOENT']);
  // vfio indices follow the binding order (the oracle's first four, then the rest)
  assert.deepEqual(
    h.devices().filter((d) => d.vfio).map((d) => [d.name, d.vfio!.index]),
    [['e1000e', 0], ['nvme', 1], ['edu', 2], ['testdev', 3], ['igb0', 4], ['igb1', 5], ['grp-edu', 6], ['grp-testdev', 7], ['ioat', 8]],
  );
});

test('host: group 15 is not viable while the NIC is in the kernel\'s hands; viable once it is handed to vfio-pci', () => {
  const h = boot();
  const p = proc(h);
  // the NIC's DMA-API driver holds the group: unbind it, give the NIC to vfio-pci
  const m = mark(h);
  const t = h.unbind(NIC.bdf);
  assert.deepEqual([t.done, t.result], [true, 0]);
  assert.equal(h.bind(NIC.bdf), 0);
  assert.deepEqual(names(eventsSince(h, m)), ['unbind', 'driver_unbound', 'bind', 'driver_probe', 'vfio_group_create', 'vfio_register']);
  const g = p.open('/dev/vfio/15');
  assert.equal(groupStatus(p, g), U.VFIO_GROUP_FLAGS_VIABLE);
  p.close(g);
  // and back to e1000e: the group node goes with its last vfio device
  assert.equal(h.unbind(NIC.bdf).result, 0);
  assert.equal(h.bind(NIC.bdf, 'e1000e'), 0);
  assert.deepEqual([p.open('/dev/vfio/15'), p.errnoName], [-1, 'ENOENT']);
});

test('host: a group shared with a function bound to a DMA-API driver is not viable (GET_STATUS 0, attach EPERM)', () => {
  // group 15 holds the kernel-owned NIC and a vfio-pci function
  const h = boot(yamlHost(`  - { bdf: "0000:01:00.0", name: nic, id: "8086:10d3", class: 0x020000, pcie: true, iommu_group: 15, driver: e1000e }
  - { bdf: "0000:01:00.1", name: fn1, id: "8086:10d3", class: 0x020000, pcie: true, iommu_group: 15, driver: vfio-pci, reset: [pm] }
`));
  const p = proc(h);
  const g = p.open('/dev/vfio/15');
  assert.equal(groupStatus(p, g), 0); // drivers/vfio/group.c: vfio_group_ioctl_get_status
  const c = p.open('/dev/vfio/vfio');
  // drivers/iommu/iommu.c: iommu_group_claim_dma_owner → EPERM while owner_cnt != 0
  const r = call(p, () => setContainer(p, g, c));
  assert.deepEqual([r.ret, r.errno, r.events], [-1, 'EPERM', []]);
  // the iommufd path claims per device at BIND and fails the same way
  p.close(g);
  const dev = p.open('/dev/vfio/devices/vfio0');
  const io = p.open('/dev/iommu');
  const b = call(p, () => p.ioctl(dev, U.VFIO_DEVICE_BIND_IOMMUFD, p.mem.struct(U.vfio_device_bind_iommufd, { argsz: 24, iommufd: io })));
  assert.deepEqual([b.ret, b.errno, b.events], [-1, 'EPERM', ['group_blocked', 'group_unblocked']]);
  // the NIC handed back: the group becomes viable and the device binds ...
  assert.equal(h.unbind('nic').result, 0);
  assert.equal(p.ioctl(dev, U.VFIO_DEVICE_BIND_IOMMUFD, p.mem.struct(U.vfio_device_bind_iommufd, { argsz: 24, iommufd: io })), 0);
  // ... and now the DMA-API driver cannot take the NIC back while userspace owns the group
  // (drivers/iommu/iommu.c: iommu_device_use_default_domain → EBUSY)
  const m = mark(h);
  assert.equal(h.bind('nic', 'e1000e'), -16);
  assert.deepEqual(names(eventsSince(h, m)), ['bind']);
  p.close(dev);
  assert.equal(h.bind('nic', 'e1000e'), 0);
  // a bound function cannot be bound again (device_driver_attach → EBUSY)
  assert.equal(h.bind('nic'), -16);
});

test('host: unbind of an unused device completes at once; rebind reuses the vfio index and the group minor', () => {
  const h = boot();
  const p = proc(h);
  const m = mark(h);
  const t = h.unbind(E1000E.bdf);
  assert.deepEqual([t.done, t.result], [true, 0]);
  assert.deepEqual(names(eventsSince(h, m)), [
    'unbind', 'vfio_unregister_start', 'group_device_unregister', 'vfio_device_del', 'registration_put',
    'vfio_group_remove', 'vfio_group_free',
    'vfio_unregister_done', 'vfio_device_release', 'driver_unbound',
  ]);
  assert.deepEqual([p.open(cdevPath(E1000E)), p.errnoName], [-1, 'ENOENT']);
  assert.deepEqual([p.open(groupPath(E1000E)), p.errnoName], [-1, 'ENOENT']);
  assert.equal(p.readlink(`/sys/bus/pci/devices/${E1000E.bdf}/driver`), null);
  assert.equal(h.devices().find((d) => d.bdf === E1000E.bdf)!.driver, null);
  assert.equal(h.bind(E1000E.bdf), 0);
  assert.equal(p.readFile(`/sys/bus/pci/devices/${E1000E.bdf}/vfio-dev/vfio0/dev`), '248:0\n');
  assert.equal(p.readFile('/sys/class/vfio/6/dev'), '249:0\n');
  // binding a bound device: EBUSY (drivers/base/dd.c: device_driver_attach)
  assert.equal(h.bind(E1000E.bdf), -16);
});

test('host: the sysfs unbind / driver_override / drivers_probe files do what the admin operations do', () => {
  const h = boot();
  const p = proc(h);
  const u = call(p, () => p.writeFile('/sys/bus/pci/drivers/vfio-pci/unbind', `${EDU.bdf}\n`));
  assert.equal(u.ret, EDU.bdf.length + 1);
  assert.ok(u.events.includes('vfio_unregister_done') && u.events.includes('driver_unbound'));
  assert.equal(p.readFile(`/sys/bus/pci/devices/${EDU.bdf}/driver_override`), 'vfio-pci\n');
  assert.equal(p.writeFile(`/sys/bus/pci/devices/${EDU.bdf}/driver_override`, '\n'), 1);
  assert.equal(p.readFile(`/sys/bus/pci/devices/${EDU.bdf}/driver_override`), '(null)\n');
  // without the override vfio-pci does not match (its ID entry is override-only)
  assert.deepEqual([p.writeFile('/sys/bus/pci/drivers/vfio-pci/bind', EDU.bdf), p.errnoName], [-1, 'ENODEV']);
  assert.equal(p.writeFile(`/sys/bus/pci/devices/${EDU.bdf}/driver_override`, 'vfio-pci'), 8);
  const r = call(p, () => p.writeFile('/sys/bus/pci/drivers_probe', EDU.bdf));
  assert.deepEqual([r.ret, r.events], [EDU.bdf.length, ['driver_probe', 'vfio_group_create', 'vfio_register']]);
  assert.equal(p.readlink(`/sys/bus/pci/devices/${EDU.bdf}/driver`), '../../../../bus/pci/drivers/vfio-pci');
  // unbind of a device the driver does not own
  assert.deepEqual([p.writeFile('/sys/bus/pci/drivers/vfio-pci/unbind', NIC.bdf), p.errnoName], [-1, 'ENODEV']);
});

test('host: hot-unplug waits for the device\'s users, then the function is gone', () => {
  const h = boot();
  const p = proc(h);
  const fd = p.open(cdevPath(NVME));
  const m = mark(h);
  const t = h.hotUnplug(NVME.bdf);
  assert.equal(t.done, false);
  assert.deepEqual(names(eventsSince(h, m)), [
    'hot_unplug', 'vfio_unregister_start', 'group_device_unregister', 'vfio_device_del', 'registration_put', 'request', 'printk',
  ]);
  const m2 = mark(h);
  assert.equal(p.close(fd), 0);
  assert.deepEqual([t.done, t.result], [true, 0]);
  assert.deepEqual(names(eventsSince(h, m2)), [
    'registration_put', 'vfio_group_remove', 'vfio_group_free', 'vfio_unregister_done', 'vfio_device_release',
    'driver_unbound', 'pci_device_removed',
  ]);
  assert.equal(p.stat(`/sys/bus/pci/devices/${NVME.bdf}`), null);
  assert.equal(p.readlink(`/sys/kernel/iommu_groups/7/devices/${NVME.bdf}`), null);
  assert.throws(() => h.bind(NVME.bdf), /no PCI function 0000:02:00.0/);
});

test('host: sysfs vfio-dev/vfioX/dev reads "major:minor\\n" equal to fstat st_rdev of /dev/vfio/devices/vfioX (QEMU\'s check)', () => {
  const h = boot();
  const p = proc(h);
  for (const d of h.devices().filter((x) => x.vfio)) {
    const x = d.vfio!.index;
    const attr = p.readFile(`/sys/bus/pci/devices/${d.bdf}/vfio-dev/vfio${x}/dev`);
    const fd = p.open(`/dev/vfio/devices/vfio${x}`);
    const st = p.fstat(fd)!;
    assert.equal(attr, `${st.rdevMajor}:${st.rdevMinor}\n`, d.bdf);
    assert.equal(st.rdevMinor, x); // minor = vfio index
    assert.equal(p.readFile(`/sys/class/vfio-dev/vfio${x}/dev`), attr);
    // QEMU finds vfioX by listing <device>/vfio-dev/
    assert.deepEqual(p.readdir(`/sys/bus/pci/devices/${d.bdf}/vfio-dev`), ['.', '..', `vfio${x}`]);
    p.close(fd);
  }
});

test('host: the group class dev attribute and the device\'s iommu_group link agree with /dev/vfio/N', () => {
  const h = boot();
  const p = proc(h);
  for (const g of h.groups()) {
    const fd = p.open(`/dev/vfio/${g.id}`);
    const st = p.fstat(fd)!;
    assert.equal(p.readFile(`/sys/class/vfio/${g.id}/dev`), `${st.rdevMajor}:${st.rdevMinor}\n`);
    assert.equal(st.rdevMajor, 249);
    p.close(fd);
    for (const bdf of g.devices) {
      assert.match(p.readlink(`/sys/bus/pci/devices/${bdf}/iommu_group`)!, new RegExp(`^(\\.\\./)+kernel/iommu_groups/${g.id}$`));
      assert.equal(p.realpath(`/sys/bus/pci/devices/${bdf}/iommu_group`), `/sys/kernel/iommu_groups/${g.id}`);
    }
  }
  assert.equal(p.readlink(`/sys/bus/pci/devices/${E1000E.bdf}/iommu_group`), '../../../../kernel/iommu_groups/6'); // oracle
  assert.equal(p.readlink(`/sys/bus/pci/devices/${TESTDEV.bdf}/iommu_group`), '../../../kernel/iommu_groups/4');
  // group minors: lowest free, in registration order (oracle: 6 → 249:0, 7 → 1, 8 → 2, 4 → 3)
  assert.deepEqual(
    [6, 7, 8, 4, 10, 11, 13].map((id) => p.readFile(`/sys/class/vfio/${id}/dev`)),
    ['249:0\n', '249:1\n', '249:2\n', '249:3\n', '249:4\n', '249:5\n', '249:6\n'],
  );
  assert.equal(p.readFile(`/sys/kernel/iommu_groups/6/type`), 'DMA\n');
  assert.equal(p.readFile(`/sys/kernel/iommu_groups/6/reserved_regions`), '0x00000000fee00000 0x00000000feefffff msi\n');
});

test('host: a write to the driver\'s unbind file sleeps until the device\'s last file is released', () => {
  const h = boot();
  const user = proc(h);
  const admin = proc(h, { name: 'admin' });
  const fd = user.open(cdevPath(EDU));
  const un = admin.open('/sys/bus/pci/drivers/vfio-pci/unbind', 1 /* O_WRONLY */);
  const buf = admin.mem.alloc(16);
  admin.mem.write(buf, new TextEncoder().encode(EDU.bdf));
  const m = mark(h);
  const pending = admin.spawn('write', { fd: un }, sysWrite(admin.kproc, un, buf, EDU.bdf.length));
  assert.equal(pending.done, false);
  assert.ok(names(eventsSince(h, m)).includes('request'));
  h.advanceTime(10_000);
  assert.equal(pending.done, false);
  assert.equal(user.close(fd), 0);
  assert.deepEqual([pending.done, pending.result], [true, EDU.bdf.length]);
  assert.equal(h.devices().find((d) => d.bdf === EDU.bdf)!.driver, null);
});
