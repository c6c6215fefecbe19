// Rule 9 — vfio-pci (drivers/vfio/pci/vfio_pci.c, vfio_pci_core.c). "oracle" marks values observed
// on the real kernel (shared/oracle; default topology, and the "group" topology for the two
// functions behind a PCIe-to-PCI bridge, which the default host's bus 06 reproduces).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Process } from '../src/api/index.js';
import {
  E1000E, EDU, GRP_EDU, GRP_TESTDEV, IGB0, NVME, TESTDEV, U, argsOf, bindArg, boot, call, cdevPath, eventsSince,
  getInfo, mark, names, openViaCdev, openViaContainer, proc,
} from './helpers.js';

function badPtr(p: Process): number {
  const a = p.mem.alloc(4096);
  p.mem.protect(a, 4096, 0);
  return a;
}

test('vfio-pci: GET_INFO flags PCI|RESET where a function reset works, PCI alone otherwise; 9 regions, 5 irqs (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const flags: Record<string, number> = {};
  const io = p.open('/dev/iommu'); // one context: grp-edu and grp-testdev share IOMMU group 13
  for (const d of [E1000E, NVME, EDU, TESTDEV, IGB0, GRP_EDU, GRP_TESTDEV]) {
    const { dev } = openViaCdev(p, d, io);
    const { ret, info } = getInfo(p, dev);
    assert.equal(ret, 0);
    assert.deepEqual([info.num_regions, info.num_irqs, info.argsz, info.cap_offset], [9, 5, 24, 0]);
    flags[d.bdf] = info.flags as number;
  }
  assert.deepEqual(flags, {
    [E1000E.bdf]: 0x3, // oracle: pm
    [NVME.bdf]: 0x3, // oracle: flr
    [EDU.bdf]: 0x3, // oracle: bus, alone on its bus
    [TESTDEV.bdf]: 0x2, // oracle: no reset method at all
    [IGB0.bdf]: 0x3,
    [GRP_EDU.bdf]: 0x2, // oracle ("group" topology): the bus method needs the function alone on its bus
    [GRP_TESTDEV.bdf]: 0x2, // oracle ("group" topology)
  });
});

test('vfio-pci: GET_INFO argsz < 16 is EINVAL; the copy-out is min(argsz, 24) bytes; EFAULT on a bad pointer (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const { dev } = openViaCdev(p, TESTDEV);
  const gi = (argsz: number) => {
    const a = p.mem.alloc(32);
    p.mem.write(a, new Uint8Array(32).fill(0xaa));
    p.mem.write(a, new Uint8Array(new Uint32Array([argsz]).buffer));
    const r = call(p, () => p.ioctl(dev, U.VFIO_DEVICE_GET_INFO, a));
    return { r: r.ret === -1 ? r.errno : r.ret, events: r.events, bytes: [...p.mem.read(a, 32)] };
  };
  const u32 = (b: number[], o: number) => b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | ((b[o + 3]! << 24) >>> 0);
  const e12 = gi(12);
  assert.deepEqual([e12.r, e12.events], ['EINVAL', ['device_access']]); // oracle
  const g16 = gi(16);
  assert.equal(g16.r, 0);
  assert.deepEqual([u32(g16.bytes, 0), u32(g16.bytes, 4), u32(g16.bytes, 8), u32(g16.bytes, 12)], [16, 2, 9, 5]);
  assert.deepEqual(g16.bytes.slice(16), new Array(16).fill(0xaa)); // oracle: cap=aaaaaaaa pad=aaaaaaaa
  const g20 = gi(20);
  assert.deepEqual([u32(g20.bytes, 16), g20.bytes.slice(20)], [0, new Array(12).fill(0xaa)]); // oracle: cap=0 pad=aaaaaaaa
  const g32 = gi(32);
  assert.deepEqual([u32(g32.bytes, 0), u32(g32.bytes, 16), u32(g32.bytes, 20), g32.bytes[24]], [32, 0, 0, 0xaa]); // oracle
  assert.deepEqual([p.ioctl(dev, U.VFIO_DEVICE_GET_INFO, badPtr(p)), p.errnoName], [-1, 'EFAULT']); // oracle
});

test('vfio-pci: GET_REGION_INFO for config, BARs, ROM; VGA and index 9 EINVAL; cap_offset echoed without caps (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const { dev } = openViaCdev(p, E1000E);
  const ri = (index: number, argsz = 32) => {
    const a = p.mem.struct(U.vfio_region_info, { argsz, index, cap_offset: 0x1234 }, 96);
    const r = p.ioctl(dev, U.VFIO_DEVICE_GET_REGION_INFO, a);
    if (r < 0) return p.errnoName;
    const v = p.mem.readStruct(U.vfio_region_info, a);
    return [v.argsz, v.flags, v.cap_offset, Number(v.size), Number((v.offset as bigint) >> 40n)];
  };
  // [argsz, flags, cap_offset, size, offset >> 40]
  assert.deepEqual(ri(0), [32, 0x7, 0x1234, 0x20000, 0]); // oracle: R|W|MMAP
  assert.deepEqual(ri(1), [32, 0x7, 0x1234, 0x20000, 1]);
  assert.deepEqual(ri(2), [32, 0x3, 0x1234, 0x20, 2]); // oracle: an I/O BAR is not mmap-able
  // the MSI-X BAR has the MSIX_MAPPABLE capability: it does not fit in 32 bytes → argsz 40, cap_offset 0
  assert.deepEqual(ri(3), [40, 0xf, 0, 0x4000, 3]); // oracle
  assert.deepEqual(ri(4), [32, 0, 0x1234, 0, 4]); // oracle: unimplemented BAR
  assert.deepEqual(ri(6), [32, 0x1, 0x1234, 0x40000, 6]); // oracle: ROM, read-only
  assert.deepEqual(ri(7), [32, 0x3, 0x1234, 0x1000, 7]); // oracle: PCIe config space
  assert.equal(ri(8), 'EINVAL'); // oracle: no VGA
  assert.equal(ri(9), 'EINVAL'); // oracle
  // with room for the chain: cap_offset 32, one MSIX_MAPPABLE (id 3, v1) header, no next
  const a = p.mem.struct(U.vfio_region_info, { argsz: 96, index: 3 }, 96);
  assert.equal(p.ioctl(dev, U.VFIO_DEVICE_GET_REGION_INFO, a), 0);
  const v = p.mem.readStruct(U.vfio_region_info, a);
  assert.deepEqual([v.argsz, v.cap_offset], [96, 32]); // oracle: full argsz=96 cap=32
  assert.deepEqual(p.mem.readStruct(U.vfio_info_cap_header, a + 32), { id: 3, version: 1, next: 0 }); // oracle
  assert.deepEqual([p.ioctl(dev, U.VFIO_DEVICE_GET_REGION_INFO, p.mem.struct(U.vfio_region_info, { argsz: 31, index: 7 })), p.errnoName], [-1, 'EINVAL']); // oracle
  assert.deepEqual([p.ioctl(dev, U.VFIO_DEVICE_GET_REGION_INFO, badPtr(p)), p.errnoName], [-1, 'EFAULT']); // oracle
  // nvme: a 64-bit BAR0, its upper half (BAR1) is size 0; the MSI-X table is in BAR0 (oracle)
  const n = openViaCdev(p, NVME).dev;
  const a0 = p.mem.struct(U.vfio_region_info, { argsz: 32, index: 0 });
  p.ioctl(n, U.VFIO_DEVICE_GET_REGION_INFO, a0);
  assert.deepEqual(p.mem.readStruct(U.vfio_region_info, a0), { argsz: 40, flags: 0xf, index: 0, cap_offset: 0, size: 0x4000n, offset: 0n });
  const a1 = p.mem.struct(U.vfio_region_info, { argsz: 32, index: 1 });
  p.ioctl(n, U.VFIO_DEVICE_GET_REGION_INFO, a1);
  assert.deepEqual([p.mem.readStruct(U.vfio_region_info, a1).size, p.mem.readStruct(U.vfio_region_info, a1).flags], [0n, 0]);
});

test('vfio-pci: open_device at the first open (after the function reset) and close_device at the last close', () => {
  const h = boot();
  const p = proc(h);
  const d = p.open(cdevPath(E1000E));
  const io = p.open('/dev/iommu');
  const b = call(p, () => p.ioctl(d, U.VFIO_DEVICE_BIND_IOMMUFD, bindArg(p, io)));
  assert.deepEqual(b.events, ['group_blocked', 'iommufd_bind', 'pci_reset_function', 'open_device', 'access_granted']);
  // vfio_pci_core_enable: pci_try_reset_function with the first working method (pm for e1000e)
  assert.deepEqual(argsOf(b.trace, 'pci_reset_function'), [{ device: E1000E.bdf, method: 'pm' }]);
  assert.deepEqual(argsOf(b.trace, 'open_device'), [{ device: E1000E.bdf, dev_set: 'dev_set(bus 0000:01)' }]);
  const c = call(p, () => p.close(d));
  // vfio_pci_core_disable: close_device, then the function reset clears needs_reset: no bus reset
  assert.deepEqual(c.events.slice(0, 2), ['close_device', 'pci_reset_function']);
  assert.ok(!c.events.includes('pci_reset_bus'));
  // nvme resets with FLR, edu with the bus method (alone on its bus), testdev cannot reset
  const m = mark(h);
  openViaCdev(p, NVME);
  openViaCdev(p, EDU);
  openViaCdev(p, TESTDEV);
  assert.deepEqual(argsOf(eventsSince(h, m), 'pci_reset_function').map((a) => a.method), ['flr', 'bus']);
});

test('vfio-pci: the dev_set reset on the last close (pci_reset_bus), and none while another member is open', () => {
  const h = boot();
  const p = proc(h);
  const { g, dev } = openViaContainer(p, GRP_EDU);
  const other = p.ioctl(g, U.VFIO_GROUP_GET_DEVICE_FD, p.mem.cstring(GRP_TESTDEV.bdf));
  assert.ok(other >= 0);
  // grp-edu closes while grp-testdev is open: vfio_pci_dev_set_needs_reset sees open_count 2
  const c1 = call(p, () => p.close(dev));
  assert.deepEqual(c1.events, ['close_device', 'group_file_put', 'registration_put']);
  const c2 = call(p, () => p.close(other));
  assert.deepEqual(c2.events, ['close_device', 'pci_reset_bus', 'dev_set_reset', 'group_file_put', 'registration_put']);
  assert.deepEqual(argsOf(c2.trace, 'pci_reset_bus'), [{ bus: '0000:06', devices: [GRP_EDU.bdf, GRP_TESTDEV.bdf] }]);
  // the reset cleared needs_reset: a new open/close cycle of one member alone resets again
  const v = h.devices().filter((d) => d.bdf === GRP_EDU.bdf || d.bdf === GRP_TESTDEV.bdf).map((d) => d.vfio!.needsReset);
  assert.deepEqual(v, [false, false]);
  // the root-bus testdev has no slot or bus reset: nothing at its last close
  const t = openViaCdev(p, TESTDEV);
  const c3 = call(p, () => p.close(t.dev));
  assert.deepEqual(c3.events, ['close_device', 'iommufd_destroy', 'iommufd_unbind', 'group_unblocked', 'registration_put']);
  assert.equal(h.devices().find((d) => d.bdf === TESTDEV.bdf)!.vfio!.needsReset, true);
});

test('vfio-pci: the request callback is called with an increasing count while unregister waits', () => {
  const h = boot();
  const p = proc(h);
  const { dev } = openViaCdev(p, EDU);
  const m = mark(h);
  const t = h.unbind(EDU.bdf);
  for (let i = 0; i < 4; i++) h.advanceTime(10_000);
  assert.equal(t.done, false);
  const ev = eventsSince(h, m);
  assert.deepEqual(argsOf(ev, 'request').map((a) => a.count), [0, 1, 2, 3, 4]);
  assert.deepEqual(ev.filter((e) => e.name === 'request').map((e) => e.time), [0, 10_000, 20_000, 30_000, 40_000]);
  // no REQ eventfd registered: one notice, at count 0 (vfio_pci_core_request)
  assert.equal(names(ev).filter((n) => n === 'printk').length, 1);
  p.close(dev);
  assert.equal(t.done, true);
});
