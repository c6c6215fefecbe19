// tools/oracle/irqs.c, call for call, through the in-process API: the same lines the C program
// printed on the real kernel (test/fixtures/oracle-irqs.out), so the model's output can be
// compared with the oracle's line by line. The C program waits 200 ms before reading an eventfd
// a real interrupt should have reached (cntw); here interrupts are delivered synchronously, so
// cntw is cnt. The lines of `grep vfio /proc/interrupts` are not reproduced.

import type { Host, Process } from '../src/api/index.js';
import { U } from './helpers.js';

const NONE = U.VFIO_IRQ_SET_DATA_NONE;
const BOOL = U.VFIO_IRQ_SET_DATA_BOOL;
const EFD = U.VFIO_IRQ_SET_DATA_EVENTFD;
const MASK = U.VFIO_IRQ_SET_ACTION_MASK;
const UNMASK = U.VFIO_IRQ_SET_ACTION_UNMASK;
const TRIG = U.VFIO_IRQ_SET_ACTION_TRIGGER;
const EFD_NONBLOCK = 0o4000;
const CFG_OFF = BigInt(U.VFIO_PCI_CONFIG_REGION_INDEX) << 40n;
const PROT_READ = 1;
const MAP_SHARED = 1;

const le32 = (...v: number[]) => {
  const b = new Uint8Array(4 * v.length);
  const dv = new DataView(b.buffer);
  v.forEach((x, i) => dv.setInt32(4 * i, x | 0, true));
  return b;
};
const hx = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
const h8 = (v: number) => (v >>> 0).toString(16).padStart(8, '0');

export class IrqReplay {
  readonly out: string[] = [];
  dev = -1;
  private readonly irqCount = [0, 0, 0, 0, 0, 0];
  private msixTab = 0;
  private msixPba = 0;
  private msixPos = 0;

  constructor(
    readonly h: Host,
    readonly p: Process,
    readonly bdf: string,
  ) {}

  private line(s: string): void {
    this.out.push(s);
  }

  res(what: string, ret: number): void {
    const w = what.padEnd(64);
    this.line(ret < 0 ? `${w} = ${ret} ${this.p.errnoName}` : `${w} = ${ret}`);
  }

  hex(tag: string, b: Uint8Array): void {
    this.line(`    ${tag}:${b.length ? ' ' + hx(b) : ''}`);
  }

  cnt(efd: number): bigint {
    const b = this.p.readBytes(efd, 8);
    if (!b || b.length !== 8) return 0n;
    return new DataView(b.buffer, b.byteOffset).getBigUint64(0, true);
  }

  setIrqs(argsz: number, flags: number, index: number, start: number, count: number, data?: Uint8Array): number {
    const p = this.p;
    const a = p.mem.alloc(4096);
    const b = new Uint8Array(4096);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, argsz >>> 0, true);
    dv.setUint32(4, flags >>> 0, true);
    dv.setUint32(8, index >>> 0, true);
    dv.setUint32(12, start >>> 0, true);
    dv.setUint32(16, count >>> 0, true);
    if (data) b.set(data, 20);
    p.mem.write(a, b);
    return p.ioctl(this.dev, U.VFIO_DEVICE_SET_IRQS, a);
  }

  fdsSet(index: number, start: number, count: number, fds: number[]): number {
    return this.setIrqs(20 + 4 * count, EFD | TRIG, index, start, count, le32(...fds));
  }

  noneTrig(index: number, start: number, count: number): number {
    return this.setIrqs(20, NONE | TRIG, index, start, count);
  }

  physCfg(tag: string, off: number, len: number): void {
    const p = this.p;
    const fd = p.open(`/sys/bus/pci/devices/${this.bdf}/config`, 0);
    const b = fd >= 0 ? p.readBytes(fd, len, off) : null;
    if (fd >= 0) p.close(fd);
    if (!b || b.length !== len) this.line(`    ${tag}: unreadable`);
    else this.hex(tag, b);
  }

  irqInfo(): void {
    const p = this.p;
    for (let i = 0; i <= 5; i++) {
      const a = p.mem.alloc(16);
      const b = new Uint8Array(16);
      const dv = new DataView(b.buffer);
      dv.setUint32(0, 16, true);
      dv.setUint32(4, 0xa5a5a5a5, true);
      dv.setUint32(8, i, true);
      dv.setUint32(12, 0x5a5a5a5a, true);
      p.mem.write(a, b);
      const r = p.ioctl(this.dev, U.VFIO_DEVICE_GET_IRQ_INFO, a);
      this.res(`GET_IRQ_INFO index ${i}`, r);
      if (!r) {
        const o = p.mem.read(a, 16);
        this.hex('bytes', o);
        this.irqCount[i] = new DataView(o.buffer, o.byteOffset).getUint32(12, true);
      }
    }
    const a = p.mem.alloc(32);
    const fill = (argsz: number, index: number) => {
      const b = new Uint8Array(32).fill(0xee);
      const dv = new DataView(b.buffer);
      dv.setUint32(0, argsz, true);
      dv.setUint32(8, index >>> 0, true);
      p.mem.write(a, b);
    };
    fill(15, 1);
    this.res('GET_IRQ_INFO argsz 15', p.ioctl(this.dev, U.VFIO_DEVICE_GET_IRQ_INFO, a));
    fill(32, 2);
    this.res('GET_IRQ_INFO argsz 32 (tail untouched?)', p.ioctl(this.dev, U.VFIO_DEVICE_GET_IRQ_INFO, a));
    this.hex('bytes', p.mem.read(a, 32));
    fill(16, 0xffffffff);
    this.res('GET_IRQ_INFO index 0xffffffff', p.ioctl(this.dev, U.VFIO_DEVICE_GET_IRQ_INFO, a));
    this.res('GET_IRQ_INFO arg NULL', p.ioctl(this.dev, U.VFIO_DEVICE_GET_IRQ_INFO, 0));
  }

  validation(): void {
    const p = this.p;
    const efd = p.eventfd(0, EFD_NONBLOCK);
    const one = new Uint8Array([1]);
    const dev = this.dev;
    const c = this.irqCount;
    const t: Array<[string, number, number, number, number, number, Uint8Array?]> = [
      ['argsz 19 MSIX NONE|TRIG 0/0', 19, NONE | TRIG, 2, 0, 0],
      ['index 5', 20, NONE | TRIG, 5, 0, 1],
      ['index 5 count 0', 20, NONE | TRIG, 5, 0, 0],
      ['flags bit 6', 20, NONE | TRIG | 0x40, 4, 0, 1],
      ['start 1 count 0xfffffffe', 20, NONE | TRIG, 4, 1, 0xfffffffe],
      ['start 0 count 0xffffffff', 20, NONE | TRIG, 4, 0, 0xffffffff],
      ['REQ start 1 count 0', 20, NONE | TRIG, 4, 1, 0],
      ['REQ start 0 count 2', 20, NONE | TRIG, 4, 0, 2],
      ['REQ NONE|BOOL', 21, NONE | BOOL | TRIG, 4, 0, 1, one],
      ['REQ no data type', 20, TRIG, 4, 0, 1],
      ['REQ BOOL argsz 20', 20, BOOL | TRIG, 4, 0, 1],
      ['REQ EFD argsz 23', 23, EFD | TRIG, 4, 0, 1, le32(-1).subarray(0, 3)],
      ['REQ NONE no action', 20, NONE, 4, 0, 1],
      ['REQ NONE MASK', 20, NONE | MASK, 4, 0, 1],
      ['REQ NONE UNMASK', 20, NONE | UNMASK, 4, 0, 1],
      ['REQ NONE MASK|TRIG', 20, NONE | MASK | TRIG, 4, 0, 1],
      ['REQ NONE TRIG count 1 (none registered)', 20, NONE | TRIG, 4, 0, 1],
      ['REQ NONE TRIG count 0 (none registered)', 20, NONE | TRIG, 4, 0, 0],
      ['REQ BOOL count 0', 20, BOOL | TRIG, 4, 0, 0],
      ['REQ BOOL count 1 (none registered)', 21, BOOL | TRIG, 4, 0, 1, one],
      ['REQ EFD count 0', 20, EFD | TRIG, 4, 0, 0],
      ['REQ EFD fd -2', 24, EFD | TRIG, 4, 0, 1, le32(-2)],
      ['REQ EFD fd 1000 (not open)', 24, EFD | TRIG, 4, 0, 1, le32(1000)],
      ['REQ EFD fd = device fd', 24, EFD | TRIG, 4, 0, 1, le32(dev)],
      ['REQ EFD fd -1 (none registered)', 24, EFD | TRIG, 4, 0, 1, le32(-1)],
      ['ERR NONE TRIG count 1', 20, NONE | TRIG, 3, 0, 1],
      ['ERR NONE TRIG count 0', 20, NONE | TRIG, 3, 0, 0],
      ['ERR NONE MASK', 20, NONE | MASK, 3, 0, 1],
      ['ERR EFD fd -2', 24, EFD | TRIG, 3, 0, 1, le32(-2)],
      ['INTX MASK NONE (not enabled)', 20, NONE | MASK, 0, 0, 1],
      ['INTX UNMASK NONE (not enabled)', 20, NONE | UNMASK, 0, 0, 1],
      ['INTX MASK EFD (not enabled)', 24, EFD | MASK, 0, 0, 1, le32(efd)],
      ['INTX TRIG NONE count 1 (not enabled)', 20, NONE | TRIG, 0, 0, 1],
      ['INTX TRIG NONE count 0 (not enabled)', 20, NONE | TRIG, 0, 0, 0],
      ['INTX TRIG BOOL count 1 (not enabled)', 21, BOOL | TRIG, 0, 0, 1, one],
      ['INTX TRIG EFD fd 1000', 24, EFD | TRIG, 0, 0, 1, le32(1000)],
      ['INTX TRIG EFD fd = device fd', 24, EFD | TRIG, 0, 0, 1, le32(dev)],
      ['INTX start 1 count 0', 20, NONE | TRIG, 0, 1, 0],
      ['MSI MASK NONE', 20, NONE | MASK, 1, 0, 1],
      ['MSI UNMASK NONE', 20, NONE | UNMASK, 1, 0, 1],
      ['MSI TRIG NONE count 1 (not enabled)', 20, NONE | TRIG, 1, 0, 1],
      ['MSI TRIG NONE count 0 (not enabled)', 20, NONE | TRIG, 1, 0, 0],
      ['MSI TRIG BOOL count 0 (not enabled)', 20, BOOL | TRIG, 1, 0, 0],
      ['MSI TRIG EFD count 0 (not enabled)', 20, EFD | TRIG, 1, 0, 0],
      ['MSI TRIG EFD fd -1 (not enabled)', 24, EFD | TRIG, 1, 0, 1, le32(-1)],
      ['MSI TRIG EFD fd 1000', 24, EFD | TRIG, 1, 0, 1, le32(1000)],
      ['MSIX MASK NONE', 20, NONE | MASK, 2, 0, 1],
      ['MSIX UNMASK EFD', 24, EFD | UNMASK, 2, 0, 1, le32(efd)],
      ['MSIX MASK|UNMASK', 20, NONE | MASK | UNMASK, 2, 0, 1],
      ['MSIX TRIG NONE count 1 (not enabled)', 20, NONE | TRIG, 2, 0, 1],
      ['MSIX TRIG NONE count 0 (not enabled)', 20, NONE | TRIG, 2, 0, 0],
      ['MSIX TRIG BOOL count 0 (not enabled)', 20, BOOL | TRIG, 2, 0, 0],
      ['MSIX TRIG EFD count 0 (not enabled)', 20, EFD | TRIG, 2, 0, 0],
      ['MSIX TRIG EFD fd -1 (not enabled)', 24, EFD | TRIG, 2, 0, 1, le32(-1)],
      ['MSIX TRIG EFD fd 1000', 24, EFD | TRIG, 2, 0, 1, le32(1000)],
      ['MSIX TRIG EFD fd = device fd', 24, EFD | TRIG, 2, 0, 1, le32(dev)],
      ['MSIX start = count', 20, NONE | TRIG, 2, c[2]!, 0],
      ['MSIX start 0 count = count+1', 20, NONE | TRIG, 2, 0, c[2]! + 1],
      ['MSIX start 0 count 0xffffffff', 20, NONE | TRIG, 2, 0, 0xffffffff],
      ['MSIX EFD count 2 argsz 27', 27, EFD | TRIG, 2, 0, 2],
      ['MSIX BOOL count 2 argsz 21', 21, BOOL | TRIG, 2, 0, 2],
    ];
    for (const [name, argsz, flags, index, start, count, data] of t)
      this.res(`SET_IRQS ${name}`, this.setIrqs(argsz, flags, index, start, count, data));
    this.res('SET_IRQS arg NULL', p.ioctl(dev, U.VFIO_DEVICE_SET_IRQS, 0));
    // the data array in an unreadable page
    const m = p.mem.alloc(8192);
    p.mem.protect(m + 4096, 4096, 0);
    const s = m + 4096 - 20;
    const hdr = (flags: number, index: number) => {
      const b = new Uint8Array(20);
      const dv = new DataView(b.buffer);
      dv.setUint32(0, 24, true);
      dv.setUint32(4, flags, true);
      dv.setUint32(8, index, true);
      dv.setUint32(12, 0, true);
      dv.setUint32(16, 1, true);
      p.mem.write(s, b);
    };
    hdr(EFD | TRIG, 4);
    this.res('SET_IRQS REQ EFD data unreadable', p.ioctl(dev, U.VFIO_DEVICE_SET_IRQS, s));
    hdr(NONE | TRIG, 4);
    this.res('SET_IRQS REQ NONE data unreadable (none read)', p.ioctl(dev, U.VFIO_DEVICE_SET_IRQS, s));
    hdr(EFD | TRIG, 9);
    this.res('SET_IRQS index 9 data unreadable', p.ioctl(dev, U.VFIO_DEVICE_SET_IRQS, s));
    p.close(efd);
  }

  reqErr(): void {
    const p = this.p;
    const e1 = p.eventfd(0, EFD_NONBLOCK);
    const e2 = p.eventfd(0, EFD_NONBLOCK);
    this.res('REQ EFD e1', this.fdsSet(4, 0, 1, [e1]));
    this.res('REQ NONE count 1', this.noneTrig(4, 0, 1));
    this.res('REQ BOOL 1', this.setIrqs(21, BOOL | TRIG, 4, 0, 1, new Uint8Array([1])));
    this.res('REQ BOOL 0', this.setIrqs(21, BOOL | TRIG, 4, 0, 1, new Uint8Array([0])));
    this.line(`    e1=${this.cnt(e1)}`);
    this.res('REQ EFD e2 (replace)', this.fdsSet(4, 0, 1, [e2]));
    this.res('REQ NONE count 1', this.noneTrig(4, 0, 1));
    this.line(`    e1=${this.cnt(e1)} e2=${this.cnt(e2)}`);
    this.res('REQ NONE count 0 (unregister)', this.noneTrig(4, 0, 0));
    this.res('REQ NONE count 1 (none now)', this.noneTrig(4, 0, 1));
    this.res('REQ EFD e1 again', this.fdsSet(4, 0, 1, [e1]));
    this.res('REQ EFD -1 (unregister)', this.fdsSet(4, 0, 1, [-1]));
    this.res('REQ BOOL 1 (none registered)', this.setIrqs(21, BOOL | TRIG, 4, 0, 1, new Uint8Array([1])));
    this.line(`    e1=${this.cnt(e1)}`);
    if (this.irqCount[3]) {
      this.res('ERR EFD e1', this.fdsSet(3, 0, 1, [e1]));
      this.res('ERR NONE count 1', this.noneTrig(3, 0, 1));
      this.line(`    e1=${this.cnt(e1)}`);
      this.res('ERR NONE count 0', this.noneTrig(3, 0, 0));
    }
    p.close(e1);
    p.close(e2);
  }

  findMsix(): void {
    const p = this.p;
    const rb = (off: number, n: number) => p.readBytes(this.dev, n, CFG_OFF + BigInt(off))!;
    let pos = rb(0x34, 1)[0]!;
    while (pos) {
      if (rb(pos, 1)[0] === 0x11) break;
      pos = rb(pos + 1, 1)[0]!;
    }
    if (!pos) return;
    this.msixPos = pos;
    const table = new DataView(rb(pos + 4, 4).buffer).getUint32(0, true);
    const pba = new DataView(rb(pos + 8, 4).buffer).getUint32(0, true);
    const ri = p.mem.struct(U.vfio_region_info, { argsz: U.vfio_region_info.size, index: table & 7 });
    if (p.ioctl(this.dev, U.VFIO_DEVICE_GET_REGION_INFO, ri)) return;
    const info = p.mem.readStruct(U.vfio_region_info, ri);
    const m = p.mmap(Number(info.size), PROT_READ, MAP_SHARED, this.dev, info.offset as bigint);
    if (m < 0) {
      this.line('    mmap of the MSI-X BAR failed');
      return;
    }
    this.msixTab = m + (table & ~7);
    if ((pba & 7) === (table & 7)) this.msixPba = m + (pba & ~7);
  }

  dumpMsix(tag: string, n: number): void {
    if (!this.msixTab) return;
    const p = this.p;
    this.line(`    ${tag}:`);
    this.physCfg('phys MSI-X flags', this.msixPos + 2, 2);
    this.physCfg('phys COMMAND/STATUS', 4, 4);
    for (let i = 0; i < n; i++) {
      const dv = new DataView(p.mem.read(this.msixTab + 16 * i, 16).buffer);
      const w = (o: number) => h8(dv.getUint32(o, true));
      this.line(`      entry ${i}: addr ${w(4)}:${w(0)} data ${w(8)} ctrl ${w(12)}`);
    }
    if (this.msixPba) this.line(`      pba ${h8(new DataView(p.mem.read(this.msixPba, 4).buffer).getUint32(0, true))}`);
  }

  msiFlows(index: number): void {
    const p = this.p;
    const n = index === 1 ? 'MSI' : 'MSIX';
    const nv = Math.min(this.irqCount[index]!, 8);
    if (!nv) return;
    this.line(`-- ${n} with ${nv} vectors`);
    this.res('EFD count 0 (nothing enabled)', this.setIrqs(20, EFD | TRIG, index, 0, 0));
    if (index === 1) this.physCfg('phys MSI cap before', 0, 0);
    if (index === 2) {
      this.findMsix();
      this.dumpMsix('before', nv);
    }
    const e: number[] = [];
    const f: number[] = [];
    for (let i = 0; i < nv; i++) {
      e.push(p.eventfd(0, EFD_NONBLOCK));
      f.push(p.eventfd(0, EFD_NONBLOCK));
    }
    const counters = () => this.line(`    counters: ${e.map((x) => this.cnt(x)).join(' ')}`);
    this.res(`${n} EFD 0..${nv}`, this.fdsSet(index, 0, nv, e));
    if (index === 2) this.dumpMsix('enabled', nv);
    counters();
    this.res('NONE trigger all', this.noneTrig(index, 0, nv));
    this.res('NONE trigger all again', this.noneTrig(index, 0, nv));
    counters();
    this.res('BOOL trigger 1,0,1,0..', this.setIrqs(20 + nv, BOOL | TRIG, index, 0, nv, new Uint8Array([1, 0, 1, 0, 1, 0, 1, 0]).subarray(0, nv)));
    counters();
    this.res('NONE trigger count 0 is disable', this.noneTrig(index, 0, 0));
    this.res('NONE trigger after disable', this.noneTrig(index, 0, 1));
    this.res('EFD start 0 count 1', this.fdsSet(index, 0, 1, [e[0]!]));
    this.res('EFD count 0 while enabled', this.setIrqs(20, EFD | TRIG, index, 0, 0));
    this.res('BOOL count 0 while enabled', this.setIrqs(20, BOOL | TRIG, index, 0, 0));
    if (nv > 1) {
      this.res(`EFD vector ${nv - 1} (past the enabled count)`, this.fdsSet(index, nv - 1, 1, [e[nv - 1]!]));
      this.res('NONE trigger all', this.noneTrig(index, 0, nv));
      counters();
    }
    this.res('change vector 0 to f0', this.fdsSet(index, 0, 1, [f[0]!]));
    this.res('NONE trigger 0', this.noneTrig(index, 0, 1));
    this.line(`    e0=${this.cnt(e[0]!)} f0=${this.cnt(f[0]!)}`);
    this.res('vector 0 fd -1', this.fdsSet(index, 0, 1, [-1]));
    if (index === 2) this.dumpMsix('vector 0 without trigger', nv);
    this.res('NONE trigger 0 (no trigger)', this.noneTrig(index, 0, 1));
    this.line(`    e0=${this.cnt(e[0]!)} f0=${this.cnt(f[0]!)}`);
    this.res('other index while enabled: INTX TRIG EFD', this.fdsSet(0, 0, 1, e.slice(0, 1)));
    this.res('other index while enabled: INTX MASK', this.setIrqs(20, NONE | MASK, 0, 0, 1));
    this.res('other index while enabled: INTX TRIG NONE count 0', this.noneTrig(0, 0, 0));
    this.res(index === 1 ? 'other index while enabled: MSIX EFD' : 'other index while enabled: MSI EFD', this.fdsSet(index === 1 ? 2 : 1, 0, 1, e.slice(0, 1)));
    this.res('disable', this.noneTrig(index, 0, 0));
    if (index === 2) this.dumpMsix('disabled', nv);
    this.res('disable again', this.noneTrig(index, 0, 0));
    if (nv > 2) {
      this.res('EFD [e0, devfd, e2] (not enabled)', this.fdsSet(index, 0, 3, [e[0]!, this.dev, e[2]!]));
      this.res('NONE trigger (enabled?)', this.noneTrig(index, 0, 1));
      this.res('EFD 0..3', this.fdsSet(index, 0, 3, e.slice(0, 3)));
      this.res('EFD [f0, devfd, f2] (enabled)', this.fdsSet(index, 0, 3, [f[0]!, this.dev, f[2]!]));
      this.res('NONE trigger 0..3', this.noneTrig(index, 0, 3));
      const a = [e[0], e[1], e[2], f[0], f[1], f[2]].map((x) => this.cnt(x!));
      this.line(`    e=${a[0]},${a[1]},${a[2]} f=${a[3]},${a[4]},${a[5]}`);
      this.res('disable', this.noneTrig(index, 0, 0));
      this.res('EFD start 2 count 1 (enable)', this.fdsSet(index, 2, 1, [e[2]!]));
      this.res('NONE trigger 0..3', this.noneTrig(index, 0, 3));
      const b = [e[0], e[1], e[2]].map((x) => this.cnt(x!));
      this.line(`    e=${b[0]},${b[1]},${b[2]}`);
      this.res('same eventfd on two vectors', this.fdsSet(index, 0, 2, [f[0]!, f[0]!]));
      this.res('NONE trigger 0..3', this.noneTrig(index, 0, 3));
      this.line(`    f0=${this.cnt(f[0]!)} e2=${this.cnt(e[2]!)}`);
      this.res('disable', this.noneTrig(index, 0, 0));
    }
    for (const x of [...e, ...f]) p.close(x);
  }

  intxFlows(): void {
    const p = this.p;
    if (!this.irqCount[0]) return;
    const e = p.eventfd(0, EFD_NONBLOCK);
    const u = p.eventfd(0, EFD_NONBLOCK);
    const u2 = p.eventfd(0, EFD_NONBLOCK);
    const b1 = new Uint8Array([1]);
    const b0 = new Uint8Array([0]);
    this.line('-- INTx');
    this.res('INTX EFD fd -1 (enable without trigger)', this.fdsSet(0, 0, 1, [-1]));
    this.res('INTX NONE trigger (no eventfd)', this.noneTrig(0, 0, 1));
    this.res('INTX EFD e (replace trigger)', this.fdsSet(0, 0, 1, [e]));
    this.res('INTX NONE trigger', this.noneTrig(0, 0, 1));
    this.res('INTX BOOL 1', this.setIrqs(21, BOOL | TRIG, 0, 0, 1, b1));
    this.res('INTX BOOL 0', this.setIrqs(21, BOOL | TRIG, 0, 0, 1, b0));
    this.line(`    e=${this.cnt(e)}`);
    this.res('INTX MASK NONE', this.setIrqs(20, NONE | MASK, 0, 0, 1));
    this.res('INTX NONE trigger while masked', this.noneTrig(0, 0, 1));
    this.line(`    e=${this.cnt(e)}`);
    this.res('INTX MASK BOOL 0', this.setIrqs(21, BOOL | MASK, 0, 0, 1, b0));
    this.res('INTX MASK EFD', this.setIrqs(24, EFD | MASK, 0, 0, 1, le32(u)));
    this.res('INTX MASK start 0 count 0', this.setIrqs(20, NONE | MASK, 0, 0, 0));
    this.res('INTX UNMASK NONE', this.setIrqs(20, NONE | UNMASK, 0, 0, 1));
    this.line(`    e=${this.cnt(e)}`);
    this.res('INTX UNMASK BOOL 1', this.setIrqs(21, BOOL | UNMASK, 0, 0, 1, b1));
    this.res('INTX UNMASK EFD u', this.setIrqs(24, EFD | UNMASK, 0, 0, 1, le32(u)));
    this.res('INTX UNMASK EFD u2 (second)', this.setIrqs(24, EFD | UNMASK, 0, 0, 1, le32(u2)));
    this.res('INTX UNMASK EFD -1', this.setIrqs(24, EFD | UNMASK, 0, 0, 1, le32(-1)));
    this.res('INTX UNMASK EFD u2', this.setIrqs(24, EFD | UNMASK, 0, 0, 1, le32(u2)));
    this.res('INTX UNMASK EFD -2', this.setIrqs(24, EFD | UNMASK, 0, 0, 1, le32(-2)));
    this.res('INTX TRIG EFD e again (enabled)', this.fdsSet(0, 0, 1, [e]));
    this.res('INTX TRIG EFD -1 (remove trigger)', this.fdsSet(0, 0, 1, [-1]));
    this.res('INTX NONE trigger (no eventfd)', this.noneTrig(0, 0, 1));
    this.line(`    e=${this.cnt(e)}`);
    this.res('INTX MSI EFD while INTx enabled', this.fdsSet(1, 0, 1, [e]));
    this.res('INTX MSIX EFD while INTx enabled', this.fdsSet(2, 0, 1, [e]));
    this.res('INTX disable', this.noneTrig(0, 0, 0));
    this.res('INTX disable again', this.noneTrig(0, 0, 0));
    this.res('INTX EFD e BOOL... (enable with BOOL)', this.setIrqs(21, BOOL | TRIG, 0, 0, 1, b1));
    this.res('INTX enable e', this.fdsSet(0, 0, 1, [e]));
    this.res('INTX disable via BOOL count 0', this.setIrqs(20, BOOL | TRIG, 0, 0, 0));
    this.res('INTX disable via EFD count 0', this.setIrqs(20, EFD | TRIG, 0, 0, 0));
    this.res('INTX disable', this.noneTrig(0, 0, 0));
    p.close(e);
    p.close(u);
    p.close(u2);
  }

  private cfgW16(v: number): number {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, v, true);
    return this.p.writeBytes(this.dev, b, CFG_OFF + 4n);
  }

  eduW(reg: number, v: number): number {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    return this.p.writeBytes(this.dev, b, BigInt(reg));
  }

  eduR(reg: number): number {
    const b = this.p.readBytes(this.dev, 4, BigInt(reg));
    return b && b.length === 4 ? new DataView(b.buffer, b.byteOffset).getUint32(0, true) : 0xdeadbeef;
  }

  edu(): void {
    const p = this.p;
    const e = p.eventfd(0, EFD_NONBLOCK);
    const u = p.eventfd(0, EFD_NONBLOCK);
    const one = new Uint8Array(8);
    one[0] = 1;
    const wu = () => {
      const a = p.mem.alloc(8);
      p.mem.write(a, one);
      return p.write(u, a, 8);
    };
    const cw = () => `    e=${this.cnt(e)}`;
    this.line('-- edu real interrupts');
    const cb = p.readBytes(this.dev, 2, CFG_OFF + 4n)!;
    let cmd = new DataView(cb.buffer, cb.byteOffset).getUint16(0, true);
    this.line(`    virtual COMMAND=0x${cmd.toString(16)}`);
    cmd |= 2;
    this.res('cfg write COMMAND |= MEMORY', this.cfgW16(cmd));
    this.line(`    ident=0x${this.eduR(0).toString(16)} status=${this.eduR(0x24) ? '0x' + this.eduR(0x24).toString(16) : '0'}`);
    this.physCfg('phys COMMAND/STATUS', 4, 4);
    this.res('INTX enable e', this.fdsSet(0, 0, 1, [e]));
    this.physCfg('phys COMMAND/STATUS', 4, 4);
    this.res('edu raise 0x1', this.eduW(0x60, 1));
    this.physCfg('phys COMMAND/STATUS', 4, 4);
    {
      const c = this.cnt(e);
      this.line(`    e=${c} irqstatus=0x${this.eduR(0x24).toString(16)}`);
    }
    this.res('edu raise 0x2 (automasked)', this.eduW(0x60, 2));
    this.line(cw());
    this.res('INTX UNMASK while still asserted', this.setIrqs(20, NONE | UNMASK, 0, 0, 1));
    this.line(cw());
    this.res('edu ack 0x3', this.eduW(0x64, 3));
    this.res('INTX UNMASK after ack', this.setIrqs(20, NONE | UNMASK, 0, 0, 1));
    this.line(cw());
    this.res('edu raise 0x4', this.eduW(0x60, 4));
    this.line(cw());
    this.res('edu ack 0x4', this.eduW(0x64, 4));
    this.res('INTX UNMASK EFD u', this.setIrqs(24, EFD | UNMASK, 0, 0, 1, le32(u)));
    this.line(cw());
    this.res('write 1 to u (unmask via eventfd)', wu());
    this.line(`    e=${this.cnt(e)} u=${this.cnt(u)}`);
    this.res('edu raise 0x8', this.eduW(0x60, 8));
    this.line(cw());
    this.res('write 1 to u while asserted', wu());
    this.line(`    e=${this.cnt(e)} u=${this.cnt(u)}`);
    this.res('edu ack 0x8', this.eduW(0x64, 8));
    this.res('write 1 to u', wu());
    this.line(cw());
    this.res('cfg COMMAND |= INTX_DISABLE', this.cfgW16(cmd | 0x400));
    this.res('INTX NONE trigger while virq disabled', this.noneTrig(0, 0, 1));
    this.res('edu raise 0x10 while virq disabled', this.eduW(0x60, 0x10));
    this.line(cw());
    this.res('cfg COMMAND &= ~INTX_DISABLE (asserted)', this.cfgW16(cmd));
    this.line(cw());
    this.res('edu ack 0x10', this.eduW(0x64, 0x10));
    this.res('INTX UNMASK', this.setIrqs(20, NONE | UNMASK, 0, 0, 1));
    this.line(cw());
    this.res('edu raise 0x20 then disable INTx', this.eduW(0x60, 0x20));
    this.line(cw());
    this.res('INTX disable', this.noneTrig(0, 0, 0));
    this.res('edu ack 0x20', this.eduW(0x64, 0x20));
    this.physCfg('phys COMMAND/STATUS', 4, 4);
    this.physCfg('phys MSI cap', 0x40, 16);
    this.res('MSI enable e (bus master off)', this.fdsSet(1, 0, 1, [e]));
    this.res('edu raise 0x1 (MSI, bus master off)', this.eduW(0x60, 1));
    this.line(cw());
    this.res('edu ack 0x1', this.eduW(0x64, 1));
    this.res('cfg COMMAND |= MASTER', this.cfgW16(cmd | 4));
    this.physCfg('phys COMMAND/STATUS', 4, 4);
    this.physCfg('phys MSI cap', 0x40, 16);
    this.res('edu raise 0x1 (MSI)', this.eduW(0x60, 1));
    this.line(cw());
    this.res('edu raise 0x1 again (MSI, status still set)', this.eduW(0x60, 1));
    this.res('edu raise 0x2 (MSI)', this.eduW(0x60, 2));
    this.line(cw());
    this.res('edu ack 0x3', this.eduW(0x64, 3));
    this.line(cw());
    this.res('MSI vector 0 fd -1', this.fdsSet(1, 0, 1, [-1]));
    this.res('edu raise 0x1 (no trigger)', this.eduW(0x60, 1));
    this.res('MSI vector 0 fd e', this.fdsSet(1, 0, 1, [e]));
    this.line(cw());
    this.res('edu ack 0x1', this.eduW(0x64, 1));
    this.res('MSI disable', this.noneTrig(1, 0, 0));
    this.physCfg('phys COMMAND/STATUS', 4, 4);
    this.physCfg('phys MSI cap', 0x40, 16);
    this.res('edu raise 0x1 (INTx, none enabled)', this.eduW(0x60, 1));
    this.physCfg('phys COMMAND/STATUS', 4, 4);
    this.res('INTX enable e (asserted)', this.fdsSet(0, 0, 1, [e]));
    this.physCfg('phys COMMAND/STATUS', 4, 4);
    this.line(cw());
    this.res('INTX UNMASK', this.setIrqs(20, NONE | UNMASK, 0, 0, 1));
    this.line(cw());
    this.physCfg('phys COMMAND/STATUS', 4, 4);
    this.res('edu ack', this.eduW(0x64, 1));
    this.res('edu raise 0x1 (after the missed one)', this.eduW(0x60, 1));
    this.line(cw());
    this.physCfg('phys COMMAND/STATUS', 4, 4);
    this.res('edu ack', this.eduW(0x64, 1));
    this.res('INTX UNMASK', this.setIrqs(20, NONE | UNMASK, 0, 0, 1));
    this.res('edu raise 0x1', this.eduW(0x60, 1));
    this.line(cw());
    this.res('INTX disable', this.noneTrig(0, 0, 0));
    this.eduW(0x64, 1);
    this.res('INTX enable e (not asserted: status still set? ack first)', this.fdsSet(0, 0, 1, [e]));
    this.res('edu raise 0x1', this.eduW(0x60, 1));
    this.line(cw());
    this.res('edu ack', this.eduW(0x64, 1));
    this.res('INTX disable', this.noneTrig(0, 0, 0));
    p.close(e);
    p.close(u);
  }

  /**
   * The e1000e device-raised MSI-X part. The generic e1000e model has no interrupt registers, so
   * where the C program programs IVAR/IMS and writes ICS (and clears ICR), the function's
   * interrupt output is driven directly (`raise(vector)`), and those register lines are left out.
   */
  e1000eMsix(raise: (vector: number) => void): void {
    const p = this.p;
    const e = [p.eventfd(0, EFD_NONBLOCK), p.eventfd(0, EFD_NONBLOCK), p.eventfd(0, EFD_NONBLOCK)];
    this.line('-- e1000e device-raised MSI-X');
    const cb = p.readBytes(this.dev, 2, CFG_OFF + 4n)!;
    let cmd = new DataView(cb.buffer, cb.byteOffset).getUint16(0, true) | 6;
    this.res('cfg COMMAND |= MEMORY|MASTER', this.cfgW16(cmd));
    this.res('MSIX enable vectors 0,1 (1 without trigger)', this.fdsSet(2, 0, 2, [e[0]!, -1]));
    this.dumpMsix('after enable', 3);
    raise(1);
    this.line(`    e0=${this.cnt(e[0]!)}`);
    this.dumpMsix('raised while masked', 3);
    this.res('vector 1 trigger e1 (request_irq unmasks)', this.fdsSet(2, 1, 1, [e[1]!]));
    this.line(`    e1=${this.cnt(e[1]!)}`);
    this.dumpMsix('after trigger', 3);
    raise(1);
    this.line(`    e1=${this.cnt(e[1]!)}`);
    this.res('vector 1 fd -1 (free_irq masks)', this.fdsSet(2, 1, 1, [-1]));
    raise(1);
    this.line(`    e1=${this.cnt(e[1]!)}`);
    this.dumpMsix('raised after fd -1', 3);
    this.res('vector 1 trigger e2', this.fdsSet(2, 1, 1, [e[2]!]));
    {
      const a = this.cnt(e[1]!);
      const b = this.cnt(e[2]!);
      this.line(`    e1=${a} e2=${b}`);
    }
    raise(2);
    this.dumpMsix('raised on unallocated vector 2', 3);
    this.res('vector 2 trigger e0 (dynamic allocation)', this.fdsSet(2, 2, 1, [e[0]!]));
    this.line(`    e0=${this.cnt(e[0]!)}`);
    this.dumpMsix('after', 3);
    this.res('MSIX disable', this.noneTrig(2, 0, 0));
    cmd &= ~4;
    this.res('cfg COMMAND &= ~MASTER', this.cfgW16(cmd));
    for (const x of e) p.close(x);
  }

  /** main(): everything but the e1000e device-raised MSI-X part (the generic e1000e model has no
   * interrupt registers). */
  run(name: string, cdev: string, extra?: 'edu' | ((vector: number) => void)): string[] {
    const p = this.p;
    this.line(`==== ${name}`);
    this.dev = p.open(cdev);
    const iommufd = p.open('/dev/iommu');
    const bind = p.mem.struct(U.vfio_device_bind_iommufd, { argsz: U.vfio_device_bind_iommufd.size, iommufd });
    this.res('BIND', p.ioctl(this.dev, U.VFIO_DEVICE_BIND_IOMMUFD, bind));
    const di = p.mem.struct(U.vfio_device_info, { argsz: U.vfio_device_info.size });
    this.res('GET_INFO', p.ioctl(this.dev, U.VFIO_DEVICE_GET_INFO, di));
    const info = p.mem.readStruct(U.vfio_device_info, di);
    this.line(`    flags=0x${(info.flags as number).toString(16)} num_irqs=${info.num_irqs}`);
    this.irqInfo();
    this.validation();
    this.reqErr();
    this.msiFlows(1);
    this.msiFlows(2);
    this.intxFlows();
    if (extra === 'edu') this.edu();
    else if (extra) {
      this.msixTab = 0;
      this.findMsix();
      this.e1000eMsix(extra);
    }
    p.close(this.dev);
    p.close(iommufd);
    return this.out;
  }
}

/** The oracle's lines for one device (tools/oracle/irqs.c output), without /proc/interrupts lines. */
export function oracleSection(text: string, name: string, stopAt?: string, drop?: RegExp): string[] {
  const lines = text.split('\n');
  const from = lines.indexOf(`==== ${name}`);
  let to = lines.findIndex((l, i) => i > from && l.startsWith('==== '));
  if (to < 0) to = lines.length;
  let sec = lines.slice(from, to).filter((l) => l !== '' && !/^ +\d+: /.test(l) && !(drop && drop.test(l)));
  if (stopAt) {
    const i = sec.indexOf(stopAt);
    if (i >= 0) sec = sec.slice(0, i);
  }
  return sec;
}
