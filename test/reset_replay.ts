// tools/oracle/resets.c, call for call, through the in-process API: the lines the C program printed
// on the real kernel (test/fixtures/oracle-resets.out), for a line-by-line comparison.

import type { Process } from '../src/api/index.js';
import { U } from './helpers.js';

const hx = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');

export class ResetReplay {
  readonly out: string[] = [];
  dev = -1;
  constructor(readonly p: Process) {}

  private res(what: string, ret: number): void {
    const w = what.padEnd(64);
    this.out.push(ret < 0 ? `${w} = ${ret} ${this.p.errnoName}` : `${w} = ${ret}`);
  }

  private info(argsz: number, show: number): void {
    const p = this.p;
    const a = p.mem.alloc(128);
    const b = new Uint8Array(128).fill(0xee);
    new DataView(b.buffer).setUint32(0, argsz, true);
    p.mem.write(a, b);
    this.res(`GET_PCI_HOT_RESET_INFO argsz ${argsz}`, p.ioctl(this.dev, U.VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, a));
    this.out.push(`    bytes: ${hx(p.mem.read(a, show))}`);
  }

  private hotReset(argsz: number, flags: number, count: number, fds: number[] = []): number {
    const p = this.p;
    const a = p.mem.alloc(128);
    const b = new Uint8Array(128);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, argsz, true);
    dv.setUint32(4, flags, true);
    dv.setUint32(8, count, true);
    fds.forEach((fd, i) => dv.setInt32(12 + 4 * i, fd, true));
    p.mem.write(a, b);
    return p.ioctl(this.dev, U.VFIO_DEVICE_PCI_HOT_RESET, a);
  }

  private common(): void {
    const p = this.p;
    this.info(11, 16);
    this.info(12, 24);
    this.info(20, 24);
    this.info(28, 32);
    this.info(64, 40);
    this.res('GET_PCI_HOT_RESET_INFO arg NULL', p.ioctl(this.dev, U.VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, 0));
    this.res('PCI_HOT_RESET argsz 11', this.hotReset(11, 0, 0));
    this.res('PCI_HOT_RESET flags 1', this.hotReset(12, 1, 0));
    this.res('PCI_HOT_RESET arg NULL', p.ioctl(this.dev, U.VFIO_DEVICE_PCI_HOT_RESET, 0));
    this.res('VFIO_DEVICE_RESET', p.ioctl(this.dev, U.VFIO_DEVICE_RESET, 0));
    this.res('VFIO_DEVICE_RESET (arg garbage)', p.ioctl(this.dev, U.VFIO_DEVICE_RESET, 8));
  }

  private msixAcrossReset(): void {
    const p = this.p;
    const ii = p.mem.struct(U.vfio_irq_info, { argsz: 16, index: U.VFIO_PCI_MSIX_IRQ_INDEX });
    if (p.ioctl(this.dev, U.VFIO_DEVICE_GET_IRQ_INFO, ii) || (p.mem.readStruct(U.vfio_irq_info, ii).count as number) < 2) return;
    const e = [p.eventfd(0, 0o4000), p.eventfd(0, 0o4000)];
    const set = (argsz: number, flags: number, count: number) => {
      const a = p.mem.alloc(64);
      const b = new Uint8Array(64);
      const dv = new DataView(b.buffer);
      dv.setUint32(0, argsz, true);
      dv.setUint32(4, flags, true);
      dv.setUint32(8, U.VFIO_PCI_MSIX_IRQ_INDEX, true);
      dv.setUint32(16, count, true);
      dv.setInt32(20, e[0]!, true);
      dv.setInt32(24, e[1]!, true);
      p.mem.write(a, b);
      return p.ioctl(this.dev, U.VFIO_DEVICE_SET_IRQS, a);
    };
    this.res('MSIX enable 2 vectors', set(28, U.VFIO_IRQ_SET_DATA_EVENTFD | U.VFIO_IRQ_SET_ACTION_TRIGGER, 2));
    this.res('VFIO_DEVICE_RESET (MSI-X enabled)', p.ioctl(this.dev, U.VFIO_DEVICE_RESET, 0));
    this.res('NONE trigger 0..2 after reset', set(20, U.VFIO_IRQ_SET_DATA_NONE | U.VFIO_IRQ_SET_ACTION_TRIGGER, 2));
    e.forEach((fd, i) => {
      const b = p.readBytes(fd, 8);
      this.out.push(`    e${i}=${b && b.length === 8 ? new DataView(b.buffer, b.byteOffset).getBigUint64(0, true) : 0n}`);
    });
    this.res('MSIX disable', set(20, U.VFIO_IRQ_SET_DATA_NONE | U.VFIO_IRQ_SET_ACTION_TRIGGER, 0));
    p.close(e[0]!);
    p.close(e[1]!);
  }

  run(name: string, cdev: string, gdev: string, bdf: string): string[] {
    const p = this.p;
    const efd = p.eventfd(0, 0);
    this.out.push(`==== ${name} cdev`);
    this.dev = p.open(cdev);
    const iommufd = p.open('/dev/iommu');
    const bind = p.mem.struct(U.vfio_device_bind_iommufd, { argsz: U.vfio_device_bind_iommufd.size, iommufd });
    this.res('BIND', p.ioctl(this.dev, U.VFIO_DEVICE_BIND_IOMMUFD, bind));
    this.common();
    this.res('PCI_HOT_RESET count 1 (cdev)', this.hotReset(16, 0, 1, [efd]));
    this.res('PCI_HOT_RESET count 0', this.hotReset(12, 0, 0));
    this.res('PCI_HOT_RESET count 0 argsz 100', this.hotReset(100, 0, 0));
    this.msixAcrossReset();
    p.close(this.dev);
    p.close(iommufd);

    this.out.push(`==== ${name} group`);
    const group = p.open(gdev);
    const container = p.open('/dev/vfio/vfio');
    this.res('SET_CONTAINER', p.ioctl(group, U.VFIO_GROUP_SET_CONTAINER, p.mem.s32At(container)));
    this.res('SET_IOMMU', p.ioctl(container, U.VFIO_SET_IOMMU, U.VFIO_TYPE1v2_IOMMU));
    this.dev = p.ioctl(group, U.VFIO_GROUP_GET_DEVICE_FD, p.mem.cstring(bdf));
    this.res('GET_DEVICE_FD', this.dev >= 0 ? 0 : -1);
    this.common();
    this.res('PCI_HOT_RESET count 0 (group)', this.hotReset(12, 0, 0));
    this.res('PCI_HOT_RESET count 2', this.hotReset(20, 0, 2, [group, group]));
    this.res('PCI_HOT_RESET count 1 fd 1000', this.hotReset(16, 0, 1, [1000]));
    this.res('PCI_HOT_RESET count 1 fd -1', this.hotReset(16, 0, 1, [-1]));
    this.res('PCI_HOT_RESET count 1 device fd', this.hotReset(16, 0, 1, [this.dev]));
    this.res('PCI_HOT_RESET count 1 container fd', this.hotReset(16, 0, 1, [container]));
    this.res('PCI_HOT_RESET count 1 eventfd', this.hotReset(16, 0, 1, [efd]));
    this.res('PCI_HOT_RESET count 1 group fd', this.hotReset(16, 0, 1, [group]));
    this.res('PCI_HOT_RESET count 1 group fd argsz 12', this.hotReset(12, 0, 1, [group]));
    {
      const m = p.mem.alloc(8192);
      p.mem.protect(m + 4096, 4096, 0);
      const r = m + 4096 - 12;
      const b = new Uint8Array(12);
      const dv = new DataView(b.buffer);
      dv.setUint32(0, 16, true);
      dv.setUint32(8, 1, true);
      p.mem.write(r, b);
      this.res('PCI_HOT_RESET count 1 fds unreadable', p.ioctl(this.dev, U.VFIO_DEVICE_PCI_HOT_RESET, r));
    }
    this.msixAcrossReset();
    p.close(this.dev);
    p.close(group);
    p.close(container);
    p.close(efd);
    return this.out;
  }
}

/** The oracle's lines for one device, both paths. */
export function oracleResetSection(text: string, name: string): string[] {
  const lines = text.split('\n');
  const from = lines.indexOf(`==== ${name} cdev`);
  let to = lines.findIndex((l, i) => i > from && l.startsWith('==== ') && !l.startsWith(`==== ${name} `));
  if (to < 0) to = lines.length;
  return lines.slice(from, to).filter((l) => l !== '');
}
