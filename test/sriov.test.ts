// SR-IOV (issue 4, item 6): the PF's sriov_* attributes and sriov_numvfs_store's checks in the
// kernel's order (drivers/pci/iov.c), VFs created and removed within the write (each in an IOMMU
// group of its own, with its cdev and group node, virtfnN/physfn links, captured for vfio-pci),
// vfio-pci's sriov_configure (enable_sriov, the sriov_pfs list, no low power while active), and
// the VF-token rules of vfio_pci_core_match_token_uuid / vfio_pci_core_feature_token through
// GET_DEVICE_FD's " vf_token=", BIND_IOMMUFD's TOKEN flag and VFIO_DEVICE_FEATURE_PCI_VF_TOKEN.
// "oracle" marks behaviour tools/oracle/sriov_probe.c showed on the real kernel (CONFIG_PCI_IOV,
// vfio_pci.enable_sriov=1, an nvme PF: the oracle's QEMU has no igb; test/sriov_oracle.test.ts
// replays the whole program on that machine). The igb's own values (TotalVFs 8, offset 0x80,
// stride 2, VF device 10ca, the VF's capabilities and 16 KiB VF BARs) are QEMU's hw/net/igb.c and
// igbvf.c.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Host, Process } from '../src/api/index.js';
import { parseTopology } from '../src/host/topology.js';
import { pciGetDevice } from '../src/drivers/pci/pci.js';
import { kstrtobool, kstrtoint, kstrtou16 } from '../src/kernel/kstrtox.js';
import {
  E1000E, EDU, IGB0, IGB1, U, argsOf, bindArg, boot, cdevPath, eventsSince, getDeviceFd, groupPath, mark, proc, setContainer,
  yamlHost,
} from './helpers.js';

const PF = IGB0.bdf;
const SYS = (bdf: string) => `/sys/bus/pci/devices/${bdf}`;
/** igb0's first VFs (offset 0x80, stride 2): the next free group ids and vfio indices (the default
 * host's last are ioat's, group 16 and vfio8) */
const VF0 = { bdf: '0000:04:10.0', index: 9, group: 17 };
const VF1 = { bdf: '0000:04:10.2', index: 10, group: 18 };

const UUID1 = '52ac9bff-3a88-4fbd-901a-0d767c3b6c97';
const UUID2 = '88594674-90a0-47a9-aea8-9d9b352ac08a';
const bytes = (u: string) => Uint8Array.from(u.replace(/-/g, '').match(/../g)!.map((x) => parseInt(x, 16)));

function rd(p: Process, path: string): string {
  const fd = p.open(path, 0);
  if (fd < 0) return p.errnoName;
  const b = p.readBytes(fd, 4096);
  p.close(fd);
  return b === null ? p.errnoName : Buffer.from(b).toString();
}

function wr(p: Process, path: string, s: string): number | string {
  const fd = p.open(path, 1);
  if (fd < 0) return `open ${p.errnoName}`;
  const r = p.writeBytes(fd, s);
  p.close(fd);
  return r < 0 ? p.errnoName : r;
}

const numvfs = (p: Process, s: string, bdf = PF) => wr(p, `${SYS(bdf)}/sriov_numvfs`, s);

/** The default host with vfio_pci.enable_sriov=1 (as the oracle's --append). */
function sriovHost(): { h: Host; p: Process } {
  const h = boot();
  const p = proc(h);
  assert.equal(wr(p, '/sys/module/vfio_pci/parameters/enable_sriov', '1'), 1);
  return { h, p };
}

function feature(p: Process, fd: number, flags: number, uuid: Uint8Array | null, argsz = 24): number | string {
  const a = p.mem.alloc(24);
  const hdr = new DataView(new ArrayBuffer(8));
  hdr.setUint32(0, argsz, true);
  hdr.setUint32(4, (flags | U.VFIO_DEVICE_FEATURE_PCI_VF_TOKEN) >>> 0, true);
  p.mem.write(a, new Uint8Array(hdr.buffer));
  if (uuid) p.mem.write(a + 8, uuid);
  const r = p.ioctl(fd, U.VFIO_DEVICE_FEATURE, a);
  return r < 0 ? p.errnoName : r;
}

function devFd(p: Process, g: number, arg: string): number | string {
  const r = getDeviceFd(p, g, arg);
  return r < 0 ? p.errnoName : r;
}

/** A group of `bdf` in a fresh type1v2 container (or `container`). */
function group(p: Process, d: { group: number }, container?: number): { g: number; c: number } {
  const g = p.open(groupPath(d));
  assert.ok(g >= 0, `open group ${d.group}: ${p.errnoName}`);
  const c = container ?? p.open('/dev/vfio/vfio');
  assert.equal(setContainer(p, g, c), 0);
  if (container === undefined) assert.equal(p.ioctl(c, U.VFIO_SET_IOMMU, U.VFIO_TYPE1v2_IOMMU), 0);
  return { g, c };
}

function bindTok(p: Process, dev: number, iommufd: number, flags: number, uuid: Uint8Array | bigint | null): number | string {
  let ptr = 0n;
  if (typeof uuid === 'bigint') ptr = uuid;
  else if (uuid) {
    const a = p.mem.alloc(16);
    p.mem.write(a, uuid);
    ptr = BigInt(a);
  }
  const r = p.ioctl(dev, U.VFIO_DEVICE_BIND_IOMMUFD, bindArg(p, iommufd, { flags, token: ptr }));
  return r < 0 ? p.errnoName : r;
}

// ---- the PF's attributes and sriov_numvfs ------------------------------------------------------

test('sriov: the PF\'s attributes: totalvfs 8, offset 128, stride 2, vf_device 10ca (QEMU\'s igb); none on a function without SR-IOV (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const attrs = ['sriov_totalvfs', 'sriov_numvfs', 'sriov_offset', 'sriov_stride', 'sriov_vf_device', 'sriov_drivers_autoprobe', 'sriov_vf_total_msix'];
  assert.deepEqual(
    attrs.map((a) => rd(p, `${SYS(PF)}/${a}`)),
    ['8\n', '0\n', '128\n', '2\n', '10ca\n', '1\n', '0\n'],
  );
  // igb1's VFs start at its routing ID + 0x80 (0x81): the offset register is the same
  assert.deepEqual(attrs.map((a) => rd(p, `${SYS(IGB1.bdf)}/${a}`)), ['8\n', '0\n', '128\n', '2\n', '10ca\n', '1\n', '0\n']);
  assert.equal(rd(p, `${SYS(E1000E.bdf)}/sriov_totalvfs`), 'ENOENT');
  assert.equal(rd(p, `${SYS(EDU.bdf)}/sriov_numvfs`), 'ENOENT');
  // modes: numvfs and drivers_autoprobe are writable, the rest read-only
  const mode = (a: string) => (p.stat(`${SYS(PF)}/${a}`)!.mode & 0o777).toString(8);
  assert.deepEqual(attrs.map(mode), ['444', '644', '444', '444', '444', '644', '444']);
});

test('sriov: the PF\'s SR-IOV capability bytes (igb: at 0x160) before, during and after enabling; ARI Capable Hierarchy in the bus\'s first PF (oracle: 0x10, then 0x19)', () => {
  const { h, p } = sriovHost();
  const pdev = pciGetDevice(h.kernel, PF)!;
  const cap = () => Array.from(pdev.config.data.subarray(0x160, 0x184));
  // header (SR-IOV, version 1, next 0), caps 0, ctrl: ARI Capable Hierarchy (the root port
  // forwards ARI: igb0 has an ARI capability), status 0, InitialVFs 8, TotalVFs 8, NumVFs 0,
  // link 0, offset 0x80, stride 2, VF DID 10ca, supported page sizes 0x553, system page size 1
  const before = [0x10, 0, 0x01, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 8, 0, 8, 0, 0, 0, 0, 0, 0x80, 0, 2, 0, 0, 0, 0xca, 0x10, 0x53, 0x05, 0, 0, 1, 0, 0, 0];
  assert.deepEqual(cap(), before);
  // the bus's second PF never gets the ARI bit (sriov_init); the port has ARI forwarding on
  assert.equal(pciGetDevice(h.kernel, IGB1.bdf)!.config.read(0x168, 2), 0);
  const rp = pciGetDevice(h.kernel, '0000:00:06.0')!;
  assert.equal(rp.config.read(rp.config.expAt + 0x28, 2) & 0x20, 0x20);
  assert.equal(numvfs(p, '2'), 1);
  const during = [...before];
  during[8] = 0x19; // VF Enable | VF MSE | ARI (oracle: 0x19 on an nvme PF)
  during[16] = 2; // NumVFs
  assert.deepEqual(cap(), during);
  assert.equal(numvfs(p, '0'), 1);
  assert.deepEqual(cap(), before);
  // the VF BARs: 64-bit prefetchable memory (0xc), BAR0 and BAR3
  const bar = (i: number) => pdev.config.read(0x184 + 4 * i, 4) & 0xf;
  assert.deepEqual([0, 1, 2, 3, 4, 5].map(bar), [0xc, 0, 0, 0xc, 0, 0]);
});

test('sriov: sriov_numvfs_store checks in order (oracle) — EINVAL to parse, ERANGE above totalvfs, the current count is a no-op, ENOENT without enable_sriov, EBUSY to change a non-zero count', () => {
  const h = boot();
  const p = proc(h);
  assert.equal(numvfs(p, 'x'), 'EINVAL');
  assert.equal(numvfs(p, '65536'), 'EINVAL'); // kstrtou16 overflow, reported as EINVAL
  assert.equal(numvfs(p, ' 1'), 'EINVAL');
  assert.equal(numvfs(p, '-1'), 'EINVAL');
  assert.equal(numvfs(p, '9'), 'ERANGE'); // checked before the driver: even without enable_sriov
  assert.equal(numvfs(p, '0'), 1); // the current count: nothing to do, no driver asked
  assert.equal(numvfs(p, '0x0\n'), 4);
  // vfio-pci without enable_sriov: -ENOENT from vfio_pci_sriov_configure
  const m = mark(h);
  assert.equal(numvfs(p, '1'), 'ENOENT');
  assert.deepEqual(argsOf(eventsSince(h, m), 'sriov_enable'), []);
  assert.equal(wr(p, '/sys/module/vfio_pci/parameters/enable_sriov', '1'), 1);
  assert.equal(rd(p, '/sys/module/vfio_pci/parameters/enable_sriov'), 'Y\n');
  assert.equal(numvfs(p, '+1\n'), 3);
  assert.equal(rd(p, `${SYS(PF)}/sriov_numvfs`), '1\n');
  assert.equal(numvfs(p, '2'), 'EBUSY');
  assert.equal(numvfs(p, '1'), 1);
  assert.equal(numvfs(p, '0'), 1);
  assert.equal(rd(p, `${SYS(PF)}/sriov_numvfs`), '0\n');
  assert.deepEqual(h.kernel.warnings, []);
});

test('sriov: ENOENT without a PF driver, and with a driver that has no sriov_configure', () => {
  const h = boot(
    yamlHost(`  - { bdf: "0000:01:00.0", id: "8086:10c9", class: 0x020000, pcie: true, iommu_group: 2, driver: igb, ext_caps: [ { id: sriov, total_vfs: 2, vf_device: 0x10ca, offset: 0x80, stride: 2 } ] }
  - { bdf: "0000:00:03.0", id: "8086:10c9", class: 0x020000, pcie: true, iommu_group: 3, ext_caps: [ { id: sriov, total_vfs: 2, vf_device: 0x10ca, offset: 0x80, stride: 2 } ] }
`),
  );
  const p = proc(h);
  const m = mark(h);
  assert.equal(numvfs(p, '1', '0000:01:00.0'), 'ENOENT');
  assert.equal(numvfs(p, '1', '0000:00:03.0'), 'ENOENT');
  assert.deepEqual(
    eventsSince(h, m).filter((e) => e.name === 'printk').map((e) => e.msg),
    ['0000:01:00.0: driver does not support SR-IOV configuration via sysfs', '0000:00:03.0: no driver bound to device; cannot configure SR-IOV'],
  );
  // a root-bus PF: its VFs at 00:10.x
  assert.equal(rd(p, `${SYS('0000:00:03.0')}/sriov_offset`), '128\n');
});

test('sriov: enabling creates the VFs within the write — own IOMMU group, group node and cdev, virtfnN/physfn links, captured for vfio-pci and bound', () => {
  const { h, p } = sriovHost();
  const m = mark(h);
  assert.equal(numvfs(p, '2'), 1);
  const evs = eventsSince(h, m);
  assert.deepEqual(
    evs.filter((e) => e.kind === 'kernel' && ['sriov_enable', 'sriov_vf_added', 'driver_probe', 'printk'].includes(e.name)).map((e) => `${e.name} ${e.msg ?? JSON.stringify(e.args)}`),
    [
      'sriov_enable {"device":"0000:04:00.0","num_vfs":2}',
      'printk 0000:04:00.0: Captured SR-IOV VF 0000:04:10.0 driver_override',
      'sriov_vf_added {"pf":"0000:04:00.0","vf":"0000:04:10.0","id":0,"iommu_group":17}',
      'driver_probe {"device":"0000:04:10.0","driver":"vfio-pci"}',
      'printk 0000:04:00.0: Captured SR-IOV VF 0000:04:10.2 driver_override',
      'sriov_vf_added {"pf":"0000:04:00.0","vf":"0000:04:10.2","id":1,"iommu_group":18}',
      'driver_probe {"device":"0000:04:10.2","driver":"vfio-pci"}',
    ],
  );
  assert.equal(p.readlink(`${SYS(PF)}/virtfn0`), '../0000:04:10.0');
  assert.equal(p.readlink(`${SYS(PF)}/virtfn1`), '../0000:04:10.2');
  assert.equal(p.readlink(`${SYS(PF)}/virtfn2`), null);
  assert.equal(p.readlink(`${SYS(VF0.bdf)}/physfn`), '../0000:04:00.0');
  assert.equal(p.realpath(`${SYS(VF0.bdf)}/driver`), '/sys/bus/pci/drivers/vfio-pci');
  assert.equal(p.realpath(`${SYS(VF1.bdf)}/iommu_group`), `/sys/kernel/iommu_groups/${VF1.group}`);
  assert.equal(rd(p, `${SYS(VF0.bdf)}/driver_override`), 'vfio-pci\n');
  for (const vf of [VF0, VF1]) {
    assert.ok(p.stat(groupPath(vf)), `group node ${vf.group}`);
    assert.ok(p.stat(cdevPath(vf)), `cdev vfio${vf.index}`);
    assert.deepEqual(p.readdir(`${SYS(vf.bdf)}/vfio-dev`)!.filter((n) => !n.startsWith('.')), [`vfio${vf.index}`]);
  }
  const vfs = h.devices().filter((d) => d.bdf.startsWith('0000:04:'));
  assert.deepEqual(
    vfs.map((d) => [d.bdf, d.name, d.vendorDevice, d.driver, d.iommuGroup, d.vfio?.index, d.vfio?.devSet]),
    [
      [PF, 'igb0', '8086:10c9', 'vfio-pci', 10, 4, 'dev_set(slot 0000:04:00)'],
      [VF0.bdf, 'igb0-vf0', '8086:10ca', 'vfio-pci', 17, 9, 'dev_set(0000:04:10.0)'],
      [VF1.bdf, 'igb0-vf1', '8086:10ca', 'vfio-pci', 18, 10, 'dev_set(0000:04:10.2)'],
      [IGB1.bdf, 'igb1', '8086:10c9', 'vfio-pci', 11, 5, 'dev_set(slot 0000:04:00)'],
    ],
  );
  // igb1's VFs interleave (routing ID 0x81 + 2n) and take the next ids
  assert.equal(numvfs(p, '1', IGB1.bdf), 1);
  assert.equal(p.readlink(`${SYS(IGB1.bdf)}/virtfn0`), '../0000:04:10.1');
  assert.equal(p.realpath(`${SYS('0000:04:10.1')}/iommu_group`), '/sys/kernel/iommu_groups/19');
  assert.ok(p.stat('/dev/vfio/devices/vfio11'));
  assert.deepEqual(h.kernel.warnings, []);
});

test('sriov: a VF\'s identity — sysfs IDs from the PF\'s capability (oracle), config space reads 0xffff for both IDs, no BARs or INTx pin, FLR only', () => {
  const { h, p } = sriovHost();
  assert.equal(numvfs(p, '1'), 1);
  const s = SYS(VF0.bdf);
  assert.deepEqual(
    ['vendor', 'device', 'class', 'subsystem_vendor', 'subsystem_device', 'revision', 'reset_method'].map((a) => rd(p, `${s}/${a}`)),
    ['0x8086\n', '0x10ca\n', '0x020000\n', '0x8086\n', '0x0000\n', '0x01\n', 'flr\n'],
  );
  assert.equal(rd(p, `${s}/sriov_numvfs`), 'ENOENT');
  assert.equal(wr(p, `${s}/sriov_vf_msix_count`, '-1'), 'EINVAL');
  assert.equal(wr(p, `${s}/sriov_vf_msix_count`, '1'), 'EOPNOTSUPP');
  const vf = pciGetDevice(h.kernel, VF0.bdf)!;
  const hexRow = (at: number) => Array.from(vf.config.data.subarray(at, at + 16));
  // header: IDs ffff, command 0, status: capability list, class/revision, no BARs, subsystem, cap at 0x70
  assert.deepEqual(hexRow(0x00), [0xff, 0xff, 0xff, 0xff, 0, 0, 0x10, 0, 0x01, 0, 0, 0x02, 0, 0, 0, 0]);
  assert.deepEqual(hexRow(0x10), new Array(16).fill(0));
  assert.deepEqual(hexRow(0x20), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x86, 0x80, 0, 0]);
  assert.deepEqual(hexRow(0x30), [0, 0, 0, 0, 0x70, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  // MSI-X (3 vectors, BAR3) then PCIe with FLR; AER, ARI
  assert.deepEqual(hexRow(0x70).slice(0, 12), [0x11, 0xa0, 0x02, 0x00, 0x03, 0, 0, 0, 0x03, 0x20, 0, 0]);
  assert.deepEqual(hexRow(0x150).slice(0, 4), [0x0e, 0x00, 0x01, 0x00]);
  // its BARs are carved from the PF's VF BARs: VF n at base + n * 16 KiB
  const pf = pciGetDevice(h.kernel, PF)!;
  const vfBar = (i: number) => (BigInt(pf.config.read(0x184 + 4 * i + 4, 4)) << 32n) | BigInt((pf.config.read(0x184 + 4 * i, 4) & ~0xf) >>> 0);
  assert.deepEqual(
    vf.resources.slice(0, 6).map((r) => (r ? [r.start, r.size, r.mem64, r.prefetch] : null)),
    [[vfBar(0), 0x4000n, true, true], null, null, [vfBar(3), 0x4000n, true, true], null, null],
  );
  assert.equal(numvfs(p, '0'), 1);
  assert.equal(numvfs(p, '2'), 1);
  assert.equal(pciGetDevice(h.kernel, VF1.bdf)!.resources[3]!.start, vfBar(3) + 0x4000n);
});

test('sriov: through vfio a VF shows its IDs (vfio_config_init), no INTx (oracle: count 0) and its VF BARs', () => {
  const { p } = sriovHost();
  assert.equal(numvfs(p, '1'), 1);
  const { g: pfg, c } = group(p, IGB0);
  const pfd = devFd(p, pfg, `${PF} vf_token=${UUID1}`) as number;
  assert.ok(pfd > 0);
  const { g } = group(p, VF0, c);
  const dev = devFd(p, g, `${VF0.bdf} vf_token=${UUID1}`) as number;
  assert.ok(dev > 0);
  const cfg = 7n << 40n;
  assert.deepEqual(
    Array.from(p.readBytes(dev, 64, cfg)!),
    [
      0x86, 0x80, 0xca, 0x10, 0, 0, 0x10, 0, 0x01, 0, 0, 0x02, 0, 0, 0, 0,
      0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0c, 0, 0, 0,
      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x86, 0x80, 0, 0,
      0, 0, 0, 0, 0x70, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ],
  );
  assert.equal(p.writeBytes(dev, new Uint8Array([0xff, 0xff, 0xff, 0xff]), cfg + 0x10n), 4);
  assert.deepEqual(Array.from(p.readBytes(dev, 4, cfg + 0x10n)!), [0x0c, 0xc0, 0xff, 0xff]);
  const irqCount = (index: number) => {
    const a = p.mem.struct(U.vfio_irq_info, { argsz: U.vfio_irq_info.size, index });
    assert.equal(p.ioctl(dev, U.VFIO_DEVICE_GET_IRQ_INFO, a), 0);
    const r = p.mem.readStruct(U.vfio_irq_info, a);
    return [r.count, r.flags];
  };
  assert.deepEqual([0, 1, 2, 3, 4].map(irqCount), [[0, 7], [0, 9], [3, 1], [1, 9], [1, 9]]);
  const region = (index: number) => {
    const a = p.mem.struct(U.vfio_region_info, { argsz: U.vfio_region_info.size, index });
    assert.equal(p.ioctl(dev, U.VFIO_DEVICE_GET_REGION_INFO, a), 0);
    const r = p.mem.readStruct(U.vfio_region_info, a);
    return [Number(r.size), r.flags];
  };
  assert.deepEqual([0, 1, 2, 3, 4, 5].map(region), [[0x4000, 7], [0, 0], [0, 0], [0x4000, 15], [0, 0], [0, 0]]);
});

test('sriov: disabling removes the VFs (links, groups, nodes) and frees their ids; drivers_autoprobe 0 stops only VFs without a driver_override (oracle)', () => {
  const { h, p } = sriovHost();
  assert.equal(numvfs(p, '2'), 1);
  const m = mark(h);
  assert.equal(numvfs(p, '0'), 1);
  assert.deepEqual(
    eventsSince(h, m).filter((e) => ['sriov_vf_removed', 'driver_unbound', 'pci_device_removed', 'sriov_disable'].includes(e.name)).map((e) => `${e.name} ${JSON.stringify(e.args)}`),
    [
      'driver_unbound {"device":"0000:04:10.0","driver":"vfio-pci"}',
      'pci_device_removed {"device":"0000:04:10.0"}',
      'sriov_vf_removed {"pf":"0000:04:00.0","vf":"0000:04:10.0","id":0}',
      'driver_unbound {"device":"0000:04:10.2","driver":"vfio-pci"}',
      'pci_device_removed {"device":"0000:04:10.2"}',
      'sriov_vf_removed {"pf":"0000:04:00.0","vf":"0000:04:10.2","id":1}',
      'sriov_disable {"device":"0000:04:00.0"}',
    ],
  );
  for (const vf of [VF0, VF1]) {
    assert.equal(p.stat(groupPath(vf)), null);
    assert.equal(p.stat(cdevPath(vf)), null);
    assert.equal(p.stat(SYS(vf.bdf)), null);
    assert.equal(p.stat(`/sys/kernel/iommu_groups/${vf.group}`), null);
  }
  assert.equal(p.readlink(`${SYS(PF)}/virtfn0`), null);
  assert.equal(wr(p, `${SYS(PF)}/sriov_drivers_autoprobe`, 'maybe'), 'EINVAL');
  assert.equal(wr(p, `${SYS(PF)}/sriov_drivers_autoprobe`, '0'), 1);
  // autoprobe off gates only VFs without a driver_override: vfio-pci's capture gave them one (oracle)
  assert.equal(numvfs(p, '1'), 1);
  assert.equal(p.realpath(`${SYS(VF0.bdf)}/driver`), '/sys/bus/pci/drivers/vfio-pci');
  assert.equal(rd(p, `${SYS(VF0.bdf)}/driver_override`), 'vfio-pci\n');
  assert.equal(p.realpath(`${SYS(VF0.bdf)}/iommu_group`), `/sys/kernel/iommu_groups/${VF0.group}`);
  // without the override, pci_device_can_probe refuses a VF (here: a host driver)
  assert.equal(wr(p, '/sys/bus/pci/drivers/vfio-pci/unbind', VF0.bdf), 12);
  assert.equal(p.stat(groupPath(VF0)), null);
  assert.equal(wr(p, `${SYS(VF0.bdf)}/driver_override`, '\n'), 1);
  assert.equal(h.bind(VF0.bdf, 'e1000e'), -19);
  assert.equal(wr(p, `${SYS(PF)}/sriov_drivers_autoprobe`, '1'), 1);
  const m2 = mark(h);
  assert.equal(h.bind(VF0.bdf, 'e1000e'), 0);
  assert.deepEqual(
    eventsSince(h, m2).filter((e) => e.name === 'printk').map((e) => e.msg),
    ['0000:04:00.0: VF 0000:04:10.0 bound to driver e1000e while PF bound to driver vfio-pci'],
  );
  assert.deepEqual(h.kernel.warnings, []);
});

test('sriov: EIO when InitialVFs differs from TotalVFs without VF Migration (sriov_enable)', () => {
  const h = boot(
    yamlHost(
      `  - { bdf: "0000:01:00.0", id: "8086:10c9", class: 0x020000, pcie: true, iommu_group: 2, driver: vfio-pci, ext_caps: [ { id: sriov, total_vfs: 4, initial_vfs: 2, vf_device: 0x10ca, offset: 0x80, stride: 2, vf_bars: [ { size: 0x4000 } ] } ] }
`,
      'kernel: { cmdline: "vfio_pci.enable_sriov=1" }\n',
    ),
  );
  const p = proc(h);
  assert.equal(numvfs(p, '1', '0000:01:00.0'), 'EIO');
  assert.equal(rd(p, `${SYS('0000:01:00.0')}/sriov_numvfs`), '0\n');
  // the failed enable took the PF off vfio-pci's sriov_pfs list: a later enable gets as far again
  assert.equal(numvfs(p, '1', '0000:01:00.0'), 'EIO');
});

// ---- VF tokens -----------------------------------------------------------------------------------

test('sriov: VF token, group path (oracle) — malformed names, a PF opening sets the token, VFs need it, a PF opened while VFs are in use needs it too', () => {
  const { p } = sriovHost();
  assert.equal(numvfs(p, '1'), 1);
  const { g: pfg, c } = group(p, IGB0);
  // vfio_pci_core_match: no match, unknown option, short or bad uuid, a second vf_token
  assert.equal(devFd(p, pfg, `${PF}x`), 'ENODEV');
  assert.equal(devFd(p, pfg, `${PF} foo`), 'EINVAL');
  assert.equal(devFd(p, pfg, `${PF} vf_token=52ac9bff-3a88-4fbd-901a`), 'EINVAL');
  assert.equal(devFd(p, pfg, `${PF} vf_token=52ac9bff-3a88-4fbd-901a-0d767c3b6c9z`), 'EINVAL');
  assert.equal(devFd(p, pfg, `${PF} vf_token=${UUID1} vf_token=${UUID1}`), 'EINVAL');
  assert.equal(devFd(p, pfg, `${PF} vf_token=${UUID1}x`), 'EINVAL');
  const plain = devFd(p, pfg, `${PF}   `) as number;
  assert.equal(plain, 5);
  p.close(plain);
  const pfd = devFd(p, pfg, `${PF} vf_token=${UUID1}`) as number;
  assert.equal(pfd, 5);
  // VFIO_DEVICE_FEATURE_PCI_VF_TOKEN: SET only (no GET), the uuid is the whole payload
  assert.equal(feature(p, pfd, U.VFIO_DEVICE_FEATURE_GET, bytes(UUID2)), 'EINVAL');
  assert.equal(feature(p, pfd, U.VFIO_DEVICE_FEATURE_PROBE | U.VFIO_DEVICE_FEATURE_GET, bytes(UUID2)), 'EINVAL');
  assert.equal(feature(p, pfd, U.VFIO_DEVICE_FEATURE_PROBE | U.VFIO_DEVICE_FEATURE_SET, bytes(UUID2)), 0);
  assert.equal(feature(p, pfd, U.VFIO_DEVICE_FEATURE_SET, bytes(UUID2), 23), 'EINVAL');
  assert.equal(feature(p, pfd, U.VFIO_DEVICE_FEATURE_SET, null, 8), 'EINVAL');
  // the PROBE did not set it: the token is still UUID1
  const { g: vfg } = group(p, VF0, c);
  assert.equal(devFd(p, vfg, `${VF0.bdf} vf_token=${UUID2}`), 'EACCES');
  assert.equal(feature(p, pfd, U.VFIO_DEVICE_FEATURE_SET, bytes(UUID2)), 0);
  assert.equal(devFd(p, vfg, VF0.bdf), 'EACCES');
  assert.equal(devFd(p, vfg, `${VF0.bdf} vf_token=${UUID1}`), 'EACCES');
  const vfd = devFd(p, vfg, `${VF0.bdf} vf_token=${UUID2}`) as number;
  assert.equal(vfd, 7);
  // a VF has no token of its own
  assert.equal(feature(p, vfd, U.VFIO_DEVICE_FEATURE_SET, bytes(UUID1)), 'ENOTTY');
  // the VF is in use: the PF needs the current token
  assert.equal(devFd(p, pfg, PF), 'EACCES');
  assert.equal(devFd(p, pfg, `${PF} vf_token=${UUID1}`), 'EACCES');
  const pfd2 = devFd(p, pfg, `${PF} vf_token=${UUID2}`) as number;
  assert.equal(pfd2, 8);
  p.close(pfd2);
  // the PF's user may change the token while VFs are in use; VF opens follow it
  assert.equal(feature(p, pfd, U.VFIO_DEVICE_FEATURE_SET, bytes(UUID1)), 0);
  const vfd2 = devFd(p, vfg, `${VF0.bdf} vf_token=${UUID1}`) as number;
  assert.equal(vfd2, 8);
  p.close(vfd2);
  assert.equal(devFd(p, pfg, `${PF} vf_token=${UUID2}`), 'EACCES');
  // not a PF or VF: a token is an error, the feature is not there
  const { g: og } = group(p, EDU, c);
  assert.equal(devFd(p, og, `${EDU.bdf} vf_token=${UUID1}`), 'EINVAL');
  const ofd = devFd(p, og, EDU.bdf) as number;
  assert.equal(feature(p, ofd, U.VFIO_DEVICE_FEATURE_SET, bytes(UUID1)), 'ENOTTY');
  assert.equal(feature(p, ofd, U.VFIO_DEVICE_FEATURE_PROBE | U.VFIO_DEVICE_FEATURE_SET, bytes(UUID1)), 'ENOTTY');
});

test('sriov: VF token, cdev path (oracle) — BIND without the TOKEN flag or with a wrong token is EACCES, a bad pointer EFAULT, an unknown flag EINVAL', () => {
  const { p } = sriovHost();
  assert.equal(numvfs(p, '2'), 1);
  const { g: pfg } = group(p, IGB0);
  const pfd = devFd(p, pfg, PF) as number;
  assert.ok(pfd > 0);
  assert.equal(feature(p, pfd, U.VFIO_DEVICE_FEATURE_SET, bytes(UUID1)), 0);
  const iommufd = p.open('/dev/iommu');
  const dev = p.open(cdevPath(VF1));
  assert.equal(bindTok(p, dev, iommufd, 0, null), 'EACCES');
  assert.equal(bindTok(p, dev, iommufd, U.VFIO_DEVICE_BIND_FLAG_TOKEN, bytes(UUID2)), 'EACCES');
  assert.equal(bindTok(p, dev, iommufd, U.VFIO_DEVICE_BIND_FLAG_TOKEN, 8n), 'EFAULT');
  assert.equal(bindTok(p, dev, iommufd, 2, bytes(UUID1)), 'EINVAL');
  assert.equal(bindTok(p, dev, iommufd, U.VFIO_DEVICE_BIND_FLAG_TOKEN, bytes(UUID1)), 0);
  // a token where none applies: EINVAL (e1000e is neither PF nor VF)
  const e = p.open(cdevPath(E1000E));
  assert.equal(bindTok(p, e, iommufd, U.VFIO_DEVICE_BIND_FLAG_TOKEN, bytes(UUID1)), 'EINVAL');
  assert.equal(bindTok(p, e, iommufd, 0, null), 0);
  // the PF through its cdev: VF1 is in use, so the token is required
  p.close(pfd);
  p.close(pfg);
  const pfc = p.open(cdevPath(IGB0));
  assert.equal(bindTok(p, pfc, iommufd, 0, null), 'EACCES');
  assert.equal(bindTok(p, pfc, iommufd, U.VFIO_DEVICE_BIND_FLAG_TOKEN, bytes(UUID1)), 0);
});

test('sriov: the PF\'s initial token is random (uuid_gen): before any PF user sets it, no token opens a VF (oracle: EACCES)', () => {
  const { p } = sriovHost();
  assert.equal(numvfs(p, '1'), 1);
  const { g } = group(p, VF0);
  assert.equal(devFd(p, g, VF0.bdf), 'EACCES');
  assert.equal(devFd(p, g, `${VF0.bdf} vf_token=00000000-0000-0000-0000-000000000000`), 'EACCES');
  assert.equal(devFd(p, g, `${VF0.bdf} vf_token=${UUID1}`), 'EACCES');
  // a PF opened with a token while no VF is in use sets it
  const { g: pfg } = group(p, IGB0);
  const pfd = devFd(p, pfg, `${PF} vf_token=${UUID1}`) as number;
  p.close(pfd);
  assert.ok((devFd(p, g, `${VF0.bdf} vf_token=${UUID1}`) as number) > 0);
});

test('sriov: vfio-pci refuses low power for a PF with VFs enabled (vfio_pci_set_power_state: EBUSY)', () => {
  const { h, p } = sriovHost();
  assert.equal(numvfs(p, '1'), 1);
  const { g } = group(p, IGB0);
  const pfd = devFd(p, g, `${PF} vf_token=${UUID1}`) as number;
  const cfg = 7n << 40n;
  assert.equal(p.writeBytes(pfd, new Uint8Array([3, 0]), cfg + 0x44n), 2);
  const pdev = pciGetDevice(h.kernel, PF)!;
  assert.equal(pdev.currentState, 0);
  assert.equal(pdev.config.read(0x44, 2) & 3, 0);
  // without VFs it goes to D3hot
  p.close(pfd);
  assert.equal(numvfs(p, '0'), 1);
  const pfd2 = devFd(p, g, PF) as number;
  assert.equal(p.writeBytes(pfd2, new Uint8Array([3, 0]), cfg + 0x44n), 2);
  assert.equal(pdev.currentState, 3);
});

// ---- removal waits for VF users ------------------------------------------------------------------

test('sriov: sriov_numvfs 0 waits while a VF is open (the VF\'s unregister asks its user every 10 s), then completes', () => {
  const { h, p } = sriovHost();
  assert.equal(numvfs(p, '1'), 1);
  const { g: pfg } = group(p, IGB0);
  const pfd = devFd(p, pfg, `${PF} vf_token=${UUID1}`) as number;
  const user = proc(h, { name: 'vf-user' });
  const { g } = group(user, VF0);
  const vfd = devFd(user, g, `${VF0.bdf} vf_token=${UUID1}`) as number;
  assert.ok(vfd > 0);
  const m = mark(h);
  const t = h.sriovNumVfs(PF, 0);
  assert.equal(t.done, false);
  assert.equal(rd(p, `${SYS(PF)}/sriov_numvfs`), '1\n');
  // the write holds the PF's device lock: an unbind of the PF waits behind it
  const unbind = h.unbind(PF);
  assert.equal(unbind.done, false);
  h.advanceTime(10_000);
  h.advanceTime(10_000);
  assert.deepEqual(argsOf(eventsSince(h, m), 'request').map((a) => [a.device, a.count]), [[VF0.bdf, 0], [VF0.bdf, 1], [VF0.bdf, 2]]);
  user.close(vfd);
  assert.equal(t.done, true);
  assert.equal(t.result, 0);
  assert.equal(rd(p, `${SYS(PF)}/sriov_numvfs`), '0\n');
  // then the unbind runs: it waits for the PF's own user
  assert.equal(unbind.done, false);
  p.close(pfd);
  assert.equal(unbind.done, true);
  assert.deepEqual(h.kernel.warnings, []);
});

test('sriov: unbinding the PF disables its VFs first (vfio_pci_core_unregister_device), waiting for a VF user; rebinding starts at 0 VFs', () => {
  const { h, p } = sriovHost();
  assert.equal(numvfs(p, '2'), 1);
  const { g } = group(p, VF1);
  const pf = group(p, IGB0);
  p.close(devFd(p, pf.g, `${PF} vf_token=${UUID2}`) as number);
  const vfd = devFd(p, g, `${VF1.bdf} vf_token=${UUID2}`) as number;
  assert.ok(vfd > 0);
  const t = h.unbind(PF);
  assert.equal(t.done, false);
  // VF0 (not in use) is already gone, VF1 is waiting for its user
  assert.equal(p.stat(SYS(VF0.bdf)), null);
  assert.ok(p.stat(SYS(VF1.bdf)));
  p.close(vfd);
  assert.equal(t.done, true);
  assert.equal(p.stat(SYS(VF1.bdf)), null);
  assert.equal(rd(p, `${SYS(PF)}/sriov_numvfs`), '0\n');
  assert.equal(numvfs(p, '1'), 'ENOENT'); // no driver
  assert.equal(wr(p, '/sys/bus/pci/drivers_probe', PF), 12);
  assert.equal(p.realpath(`${SYS(PF)}/driver`), '/sys/bus/pci/drivers/vfio-pci');
  assert.equal(numvfs(p, '1'), 1);
  assert.deepEqual(h.kernel.warnings, []);
});

test('sriov: hot-unplug of the slot\'s bridge with VFs enabled removes VFs and PFs, no warnings', () => {
  const { h, p } = sriovHost();
  assert.equal(numvfs(p, '2'), 1);
  assert.equal(numvfs(p, '1', IGB1.bdf), 1);
  const t = h.hotUnplug('0000:00:06.0');
  assert.equal(t.done, true);
  for (const b of [PF, IGB1.bdf, VF0.bdf, VF1.bdf, '0000:04:10.1']) assert.equal(p.stat(SYS(b)), null, b);
  assert.deepEqual(h.kernel.warnings, []);
});

// ---- topology -------------------------------------------------------------------------------------

test('sriov: topology validation names the field and the problem', () => {
  const problems = (body: string, extra = '') => {
    try {
      parseTopology(yamlHost(body, extra));
      return [];
    } catch (e) {
      return (e as { problems: string[] }).problems;
    }
  };
  const pf = (sriov: string, more = '') =>
    `  - { bdf: "0000:01:00.0", id: "8086:10c9", class: 0x020000, pcie: true, iommu_group: 2${more}, ext_caps: [ { id: sriov, ${sriov} } ] }\n`;
  assert.deepEqual(problems(pf('total_vfs: 2, vf_device: 0x10ca, offset: 0, stride: 2')), [
    'functions[1].ext_caps[0].offset: must be at least 1 (the kernel rejects a First VF Offset of 0)',
  ]);
  assert.deepEqual(problems(pf('total_vfs: 2, vf_device: 0x10ca, offset: 1, stride: 0')), [
    'functions[1].ext_caps[0].stride: must be at least 1 with more than one VF (the kernel rejects a VF Stride of 0)',
  ]);
  assert.deepEqual(problems(pf('total_vfs: 200, vf_device: 0x10ca, offset: 0x80, stride: 1')), [
    'functions[1].ext_caps[0]: VF 128 would be at routing ID 0x100, past bus 01 (VFs on another bus are not modelled): lower total_vfs, offset or stride',
  ]);
  assert.deepEqual(problems(pf('total_vfs: 2, vf_device: 0x10ca, offset: 1, stride: 1') + '  - { bdf: "0000:01:00.2", id: "8086:10c9", class: 0x020000, iommu_group: 3 }\n'), [
    'functions[1].ext_caps[0]: VF 1 would be 0000:01:00.2, which is 0000:01:00.2',
  ]);
  assert.deepEqual(
    problems(pf('total_vfs: 2, vf_device: 0x10ca, offset: 0x80, stride: 2') + pf('total_vfs: 2, vf_device: 0x10ca, offset: 0x7e, stride: 2').replace('01:00.0', '01:00.2').replace('iommu_group: 2', 'iommu_group: 3')),
    ['functions[2].ext_caps[0]: VF 0 would be 0000:01:10.0, which is VF 0 of 0000:01:00.0'],
  );
  assert.deepEqual(problems(pf('total_vfs: 2, initial_vfs: 3, vf_device: 0x10ca, offset: 0x80, stride: 2, vf_bars: [ { size: 0x800 }, { size: 0x4000, mem64: true }, { size: 0x1000 } ]')), [
    'functions[1].ext_caps[0].initial_vfs: 3 is above total_vfs (2)',
    'functions[1].ext_caps[0].vf_bars[0].size: 0x800 is not a power of two of at least 0x1000 (VF BARs are multiples of the 4 KiB system page size)',
    'functions[1].ext_caps[0].vf_bars[2]: must be null: VF BAR1 is 64-bit and uses it',
  ]);
  assert.deepEqual(problems(pf('total_vfs: 2, vf_device: 0x10ca, offset: 0x80, colour: red')), [
    'functions[1].ext_caps[0].colour: unknown field (known: id, at, total_vfs, initial_vfs, vf_device, offset, stride, vf_bars, vf)',
  ]);
  assert.deepEqual(problems(pf('total_vfs: 2, offset: 0x80, vf: { ext_caps: [ { id: sriov } ], colour: 1 }')), [
    'functions[1].ext_caps[0].vf_device: is required',
    'functions[1].ext_caps[0].vf.colour: unknown field (known: class, revision, subsystem, interrupt_pin, caps, ext_caps)',
    'functions[1].ext_caps[0].vf.ext_caps[0].id: a VF has no SR-IOV capability of its own (known: aer, dsn, raw)',
  ]);
  assert.deepEqual(problems(pf('total_vfs: 1, vf_device: 1, offset: 1, vf: { caps: [ { id: msix, vectors: 3, table: { bar: 0 } } ] }')), [
    'functions[1].ext_caps[0].vf.caps[0].table.bar: BAR0 is not defined',
    'functions[1].ext_caps[0].vf.caps[0].pba.bar: BAR0 is not defined',
    'functions[1].ext_caps[0].vf.caps: a PCIe function (pcie: true) needs a pcie capability',
  ]);
  assert.deepEqual(problems('', 'kernel: { cmdline: "vfio_pci.enable_sriov=maybe vfio-pci.nointxmask vfio_pci.colour=1 vfio_iommu_type1.dma_entry_limit=-1" }\n'), [
    'kernel.cmdline: "vfio_pci.enable_sriov=maybe": expected a boolean (1/0, y/n, on/off)',
    'kernel.cmdline: unknown parameter "vfio_pci.colour" (known: vfio.enable_unsafe_noiommu_mode, vfio_pci.nointxmask, vfio_pci.disable_idle_d3, vfio_pci.enable_sriov, vfio_pci.disable_denylist, vfio_iommu_type1.allow_unsafe_interrupts, vfio_iommu_type1.disable_hugepages, vfio_iommu_type1.dma_entry_limit, iommufd.allow_unsafe_interrupts)',
    'kernel.cmdline: "vfio_iommu_type1.dma_entry_limit=-1": expected an unsigned 32-bit integer',
  ]);
  // the extended list starts at 0x100: a PF whose capability sits elsewhere would be invisible
  assert.deepEqual(problems(pf('at: 0x160, total_vfs: 1, vf_device: 1, offset: 1')), [
    'functions[1].ext_caps[0].at: 0x160: the extended list starts at 0x100 (the first capability must be there, or the kernel finds none)',
  ]);
  // a bridge cannot be a PF
  assert.deepEqual(
    problems('  - { bdf: "0000:01:00.0", id: "1b36:000c", class: 0x060400, pcie: true, bridge: { secondary: 2 }, iommu_group: 2, ext_caps: [ { id: sriov, total_vfs: 1, vf_device: 1, offset: 1 } ] }\n'),
    ['functions[1].ext_caps[0].id: an SR-IOV capability belongs to an endpoint, not a bridge'],
  );
});

test('sriov: kernel.cmdline sets module parameters at boot (a bare boolean is true; dashes are underscores)', () => {
  const h = boot(yamlHost('', 'kernel: { cmdline: "vfio-pci.enable_sriov vfio_pci.nointxmask=1 vfio_iommu_type1.dma_entry_limit=0x10" }\n'));
  const p = proc(h);
  assert.equal(rd(p, '/sys/module/vfio_pci/parameters/enable_sriov'), 'Y\n');
  assert.equal(rd(p, '/sys/module/vfio_pci/parameters/nointxmask'), 'Y\n');
  assert.equal(rd(p, '/sys/module/vfio_iommu_type1/parameters/dma_entry_limit'), '16\n');
  assert.equal(rd(p, '/sys/module/vfio_pci/parameters/disable_idle_d3'), 'N\n');
});

test('sriov: lib/kstrtox — kstrtou16 (base 0, one trailing newline, ERANGE), kstrtoint, kstrtobool', () => {
  assert.deepEqual(['1', '+1\n', '0x10', '010', '0', '65535', '65536', '', '\n', '1\n\n', '0x', '08', '-1', ' 1'].map((s) => kstrtou16(s, 0)), [
    [0, 1], [0, 1], [0, 16], [0, 8], [0, 0], [0, 65535], [-34, 0], [-22, 0], [-22, 0], [-22, 0], [-22, 0], [-22, 0], [-22, 0], [-22, 0],
  ]);
  assert.deepEqual(['-1', '-2147483648', '-2147483649', '2147483648', '7'].map((s) => kstrtoint(s, 0)), [[0, -1], [0, -2147483648], [-34, 0], [-34, 0], [0, 7]]);
  assert.deepEqual(['y', 'Yes', 't', '1', 'on', 'n', 'f', '0', 'off', 'o', '', 'x'].map((s) => kstrtobool(s)[0] === 0 ? kstrtobool(s)[1] : 'EINVAL'), [
    true, true, true, true, true, false, false, false, false, 'EINVAL', 'EINVAL', 'EINVAL',
  ]);
});
