// ../shared/oracle/examples/hot_reset.c, call for call, through the in-process API, and YAML hosts
// that reproduce the oracle's "devset" and "group" topologies (same BDFs, IOMMU groups, vfio
// indices), so its output can be compared line by line with the real kernel's.

import type { Host, Process } from '../src/api/index.js';
import { U } from './helpers.js';

const pad = (s: string) => s.padEnd(60);

/** Runs the program in `p`, which exits at the end (its files are released, as the C program's). */
export function hotResetReplay(p: Process, mode: 'cdev' | 'group', args: string[]): string[] {
  const out = hotResetMain(p, mode, args);
  p.exit(0);
  return out;
}

function hotResetMain(p: Process, mode: 'cdev' | 'group', args: string[]): string[] {
  const out: string[] = [];
  const report = (what: string, ret: number) => {
    out.push(ret < 0 ? `${pad(what)} = ${ret} ${p.errnoName}` : `${pad(what)} = ${ret}`);
    return ret;
  };
  const info = (devfd: number, name: string) => {
    const a = p.mem.alloc(12 + 32 * 8);
    p.mem.write(a, new Uint8Array(12 + 32 * 8));
    p.mem.write(a, new Uint8Array(new Uint32Array([12 + 32 * 8]).buffer));
    if (report(`ioctl(${name}, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO)`, p.ioctl(devfd, U.VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, a))) return;
    const b = p.mem.read(a, 12 + 32 * 8);
    const dv = new DataView(b.buffer, b.byteOffset);
    const flags = dv.getUint32(4, true);
    const count = dv.getUint32(8, true);
    const devId = flags & U.VFIO_PCI_HOT_RESET_FLAG_DEV_ID;
    out.push(
      `    flags=0x${flags.toString(16)}${devId ? ' DEV_ID' : ''}${flags & U.VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED ? ' DEV_ID_OWNED' : ''} count=${count}`,
    );
    for (let i = 0; i < count && i < 32; i++) {
      const o = 12 + 8 * i;
      const id = dv.getUint32(o, true);
      const seg = dv.getUint16(o + 4, true);
      const bus = dv.getUint8(o + 6);
      const devfn = dv.getUint8(o + 7);
      const where = `${seg.toString(16).padStart(4, '0')}:${bus.toString(16).padStart(2, '0')}:${(devfn >> 3).toString(16).padStart(2, '0')}.${devfn & 7}`;
      if (!devId) out.push(`    ${where} group_id=${id}`);
      else if (id === U.VFIO_PCI_DEVID_NOT_OWNED) out.push(`    ${where} devid=NOT_OWNED`);
      else if (id === U.VFIO_PCI_DEVID_OWNED) out.push(`    ${where} devid=OWNED`);
      else out.push(`    ${where} devid=${id}`);
    }
  };
  const hotReset = (devfd: number, name: string, fds: number[]) => {
    const a = p.mem.alloc(12 + 4 * 16);
    const b = new Uint8Array(12 + 4 * 16);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, 12 + 4 * fds.length, true);
    dv.setUint32(8, fds.length, true);
    fds.forEach((fd, i) => dv.setInt32(12 + 4 * i, fd, true));
    p.mem.write(a, b);
    report(`ioctl(${name}, VFIO_DEVICE_PCI_HOT_RESET, ${fds.length} group fds)`, p.ioctl(devfd, U.VFIO_DEVICE_PCI_HOT_RESET, a));
  };
  if (mode === 'cdev') {
    const iommufd = p.open('/dev/iommu');
    const fds: number[] = [];
    for (let i = 0; i < args.length; i++) {
      fds[i] = p.open(args[i]!);
      const bind = p.mem.struct(U.vfio_device_bind_iommufd, { argsz: U.vfio_device_bind_iommufd.size, iommufd });
      if (fds[i]! < 0 || report(`dev${i} = open(${args[i]}) + BIND_IOMMUFD`, p.ioctl(fds[i]!, U.VFIO_DEVICE_BIND_IOMMUFD, bind))) return out;
      out.push(`    devid=${p.mem.readStruct(U.vfio_device_bind_iommufd, bind).out_devid}`);
      if (i === 0 || i === args.length - 1) {
        out.push(`-- ${i + 1} of ${args.length} device(s) bound`);
        info(fds[0]!, 'dev0');
        hotReset(fds[0]!, 'dev0', []);
      }
    }
    return out;
  }
  const container = p.open('/dev/vfio/vfio');
  const gfds: number[] = [];
  let ngroups = 0;
  let devfd = -1;
  for (let i = 0; i < args.length; i++) {
    const at = args[i]!.lastIndexOf(':');
    const bdf = args[i]!.slice(0, at);
    const gpath = args[i]!.slice(at + 1);
    let gfd = -1;
    for (let j = 0; j < i; j++) if (args[j]!.slice(args[j]!.lastIndexOf(':') + 1) === gpath) gfd = gfds[j]!;
    if (gfd < 0) {
      gfd = p.open(gpath);
      if (gfd < 0 || report(`open(${gpath}) + SET_CONTAINER`, p.ioctl(gfd, U.VFIO_GROUP_SET_CONTAINER, p.mem.s32At(container)))) return out;
      if (ngroups++ === 0) report('ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)', p.ioctl(container, U.VFIO_SET_IOMMU, U.VFIO_TYPE1v2_IOMMU));
    }
    gfds[i] = gfd;
    if (i === 0) {
      devfd = report(`dev0 = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, ${bdf})`, p.ioctl(gfd, U.VFIO_GROUP_GET_DEVICE_FD, p.mem.cstring(bdf)));
      if (devfd < 0) return out;
      info(devfd, 'dev0');
    }
    if (i === 0 || i === args.length - 1) {
      const uniq = [...new Set(gfds.slice(0, i + 1))];
      out.push(`-- groups of ${i + 1} of ${args.length} device(s) opened`);
      hotReset(devfd, 'dev0', uniq);
    }
  }
  return out;
}

/** The oracle's "devset" topology: two e1000e functions of one slot (group 4) and an edu (group 5). */
export const ORACLE_DEVSET_HOST = `name: oracle-devset
functions:
  - { bdf: "0000:00:02.0", name: rp1, id: "1b36:000c", class: 0x060400, pcie: true, bridge: { secondary: 1 }, iommu_group: 1, driver: pcieport }
  - { bdf: "0000:00:03.0", name: rp2, id: "1b36:000c", class: 0x060400, pcie: true, bridge: { secondary: 2 }, iommu_group: 2, driver: pcieport }
  - { bdf: "0000:01:00.0", name: fn0, id: "8086:10d3", class: 0x020000, pcie: true, iommu_group: 4, driver: vfio-pci, reset: [pm, bus], bars: [ { size: 0x20000 } ] }
  - { bdf: "0000:01:00.1", name: fn1, id: "8086:10d3", class: 0x020000, pcie: true, iommu_group: 4, driver: vfio-pci, reset: [pm], bars: [ { size: 0x20000 } ] }
  - { bdf: "0000:02:00.0", name: other, id: "1234:11e8", class: 0x00ff00, iommu_group: 5, driver: vfio-pci, reset: [bus], bars: [ { size: 0x100000 } ] }
`;

/** The oracle's "group" topology: edu and pci-testdev behind a PCIe-to-PCI bridge (group 1), and
 * an e1000e (group 4). */
export const ORACLE_GROUP_HOST = `name: oracle-group
functions:
  - { bdf: "0000:00:02.0", name: pcie-pci-bridge, id: "1b36:000e", class: 0x060400, pcie: true, bridge: { secondary: 1 }, iommu_group: 1 }
  - { bdf: "0000:00:03.0", name: rp2, id: "1b36:000c", class: 0x060400, pcie: true, bridge: { secondary: 2 }, iommu_group: 3, driver: pcieport }
  - { bdf: "0000:01:01.0", name: edu, id: "1234:11e8", class: 0x00ff00, iommu_group: 1, driver: vfio-pci, reset: [bus], bars: [ { size: 0x100000 } ] }
  - { bdf: "0000:01:02.0", name: testdev, id: "1b36:0005", class: 0x00ff00, iommu_group: 1, driver: vfio-pci, reset: [], bars: [ { size: 0x1000 } ], interrupt_pin: 0 }
  - { bdf: "0000:02:00.0", name: other, id: "8086:10d3", class: 0x020000, pcie: true, iommu_group: 4, driver: vfio-pci, reset: [pm, bus], bars: [ { size: 0x20000 } ] }
`;

/**
 * tools/oracle/unplug_devset.c on the oracle's "devset" topology (ORACLE_DEVSET_HOST), call for
 * call: the set's other function unbound, rebound, then removed while open and bound; hot-reset
 * info and zero-length hot resets on fn0 at each step. The C program's child runs the removal
 * (sysfs remove) while the parent watches; here that is Host.hotUnplug, and its "waitpid" the
 * admin task's state. The program's loop waiting for the removal after the close prints "(1 s)"
 * on the oracle (it sleeps before checking); here the removal is over when close returns.
 */
export function unplugDevsetReplay(h: Host, p: Process, args: { cdev0: string; cdev1: string; bdf1: string; gdev1: string }): string[] {
  const out: string[] = [];
  const res = (what: string, ret: number) => out.push(ret < 0 ? `${pad(what)} = ${ret} ${p.errnoName}` : `${pad(what)} = ${ret}`);
  const exists = (tag: string, path: string) => out.push(`    ${tag} ${p.stat(path) ? 'exists' : p.errnoName}`);
  const hex = (n: number, w: number) => n.toString(16).padStart(w, '0');
  const info = (dev: number) => {
    const n = 12 + 8 * 8;
    const a = p.mem.alloc(n);
    const b = new Uint8Array(n);
    new DataView(b.buffer).setUint32(0, n, true);
    p.mem.write(a, b);
    res('GET_PCI_HOT_RESET_INFO', p.ioctl(dev, U.VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, a));
    const d = new DataView(p.mem.read(a, n).buffer);
    const count = d.getUint32(8, true);
    out.push(`    flags=${d.getUint32(4, true)} count=${count}`);
    for (let i = 0; i < count && i < 8; i++) {
      const o = 12 + 8 * i;
      const devfn = d.getUint8(o + 7);
      out.push(`    ${hex(d.getUint16(o + 4, true), 4)}:${hex(d.getUint8(o + 6), 2)}:${hex(devfn >> 3, 2)}.${devfn & 7} devid=0x${d.getUint32(o, true).toString(16)}`);
    }
  };
  const hotReset = (dev: number) => res('PCI_HOT_RESET (zero-length)', p.ioctl(dev, U.VFIO_DEVICE_PCI_HOT_RESET, p.mem.struct(U.vfio_pci_hot_reset, { argsz: 12 })));
  const echo = (path: string, s: string) => (p.writeFile(path, s) < 0 ? -1 : 0);
  const bind = (dev: number, iommufd: number) => {
    const a = p.mem.struct(U.vfio_device_bind_iommufd, { argsz: U.vfio_device_bind_iommufd.size, iommufd });
    const r = p.ioctl(dev, U.VFIO_DEVICE_BIND_IOMMUFD, a);
    return r < 0 ? r : (p.mem.readStruct(U.vfio_device_bind_iommufd, a).out_devid as number);
  };

  const iommufd = p.open('/dev/iommu');
  const fn0 = p.open(args.cdev0);
  res('BIND fn0', bind(fn0, iommufd));
  out.push('-- fn1 unbound from vfio-pci');
  res('unbind fn1', echo('/sys/bus/pci/drivers/vfio-pci/unbind', args.bdf1));
  exists('cdev1', args.cdev1);
  info(fn0);
  hotReset(fn0);
  out.push('-- fn1 bound again');
  res('driver_override vfio-pci', echo(`/sys/bus/pci/devices/${args.bdf1}/driver_override`, 'vfio-pci'));
  res('drivers_probe fn1', echo('/sys/bus/pci/drivers_probe', args.bdf1));
  exists('cdev1', args.cdev1);
  info(fn0);
  hotReset(fn0);
  const fn1 = p.open(args.cdev1);
  res('BIND fn1 (same iommufd)', bind(fn1, iommufd));
  info(fn0);
  hotReset(fn0);
  const efd = p.eventfd(0, 0o4000);
  const set = new Int32Array([24, U.VFIO_IRQ_SET_DATA_EVENTFD | U.VFIO_IRQ_SET_ACTION_TRIGGER, U.VFIO_PCI_REQ_IRQ_INDEX, 0, 1, efd]);
  const sa = p.mem.alloc(24);
  p.mem.write(sa, new Uint8Array(set.buffer));
  res('SET_IRQS REQ eventfd on fn1', p.ioctl(fn1, U.VFIO_DEVICE_SET_IRQS, sa));
  out.push('-- fn1 removed (sysfs remove) while open');
  const t = h.hotUnplug(args.bdf1);
  h.advanceTime(2_000);
  const r = p.readBytes(efd, 8);
  res('read REQ eventfd', r ? r.length : -1);
  exists('cdev1', args.cdev1);
  exists('group1', args.gdev1);
  res('waitpid WNOHANG (remove still blocked?)', t.done ? 1 : 0);
  info(fn0);
  hotReset(fn0);
  res('close(fn1)', p.close(fn1));
  out.push(`    remove finished after the close: ${t.done ? 'yes' : 'no'} (1 s)`);
  exists('group1', args.gdev1);
  exists('fn1 sysfs', `/sys/bus/pci/devices/${args.bdf1}`);
  info(fn0);
  hotReset(fn0);
  res('close(fn0)', p.close(fn0));
  return out;
}
