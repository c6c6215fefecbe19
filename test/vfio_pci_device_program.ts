// tools/oracle/vfio_pci_device.c, step for step, against the in-process model: the same syscalls
// in the same order, printing the same lines, so its output can be compared line by line with what
// the program printed on the real 7.2 kernel (test/fixtures/oracle-vfio-pci-device.txt).

import { Host, Process } from '../src/api/index.js';
import { U } from './helpers.js';

const OFF = (idx: number) => BigInt(idx) << 40n;
const CFG = 7;
const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
const h = (n: number | bigint) => '0x' + BigInt.asUintN(64, BigInt(n)).toString(16);
const u32 = (b: Uint8Array) => (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
const le = (v: number | bigint, n: number) => {
  const out = new Uint8Array(n);
  let x = BigInt.asUintN(64, BigInt(v));
  for (let i = 0; i < n; i++) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return out;
};
const PROT_READ = 1,
  PROT_WRITE = 2,
  MAP_SHARED = 1,
  MAP_PRIVATE = 2;

export interface DeviceSpec {
  name: string;
  cdev: string;
  bdf: string;
}

/** Run the program on `host` for each device; the lines it prints. */
export function runVfioPciDeviceProgram(host: Host, specs: DeviceSpec[]): string[] {
  const out: string[] = [];
  const p = new Process(host, { name: 'vfio_pci_device' });
  for (const s of specs) new DeviceRun(host, p, s, out).run();
  return out;
}

class DeviceRun {
  private dev = -1;
  private cfgsize = 0;
  private readonly N: string;
  private readonly scratch: number;

  constructor(
    private readonly host: Host,
    private readonly p: Process,
    private readonly s: DeviceSpec,
    private readonly out: string[],
  ) {
    this.N = s.name;
    this.scratch = p.mem.alloc(8192);
  }

  private print(line: string): void {
    this.out.push(line);
  }

  private rd(idx: number, off: number | bigint, n: number): number {
    const p = this.p;
    p.mem.write(this.scratch, new Uint8Array(64).fill(0xee));
    const r = p.pread(this.dev, this.scratch, n, OFF(idx) + BigInt(off));
    let line = `rd ${this.N} ${idx} ${h(off)} ${n} = `;
    if (r < 0) line += `-1 ${p.errnoName}`;
    else line += `${r} ${hex(p.mem.read(this.scratch, Math.min(r, 64)))}`;
    this.print(line);
    return r;
  }

  private wr(idx: number, off: number | bigint, n: number, v: number | bigint): number {
    const p = this.p;
    p.mem.write(this.scratch, le(v, 8));
    const r = p.pwrite(this.dev, this.scratch, n, OFF(idx) + BigInt(off));
    this.print(`wr ${this.N} ${idx} ${h(off)} ${n} ${h(v)} = ${r < 0 ? `-1 ${p.errnoName}` : r}`);
    return r;
  }

  private cfg(off: number, n: number): number {
    const r = this.p.pread(this.dev, this.scratch, n, OFF(CFG) + BigInt(off));
    if (r !== n) this.print(`ERR cfg${n * 8} ${this.N} ${h(off)} ${this.p.errnoName}`);
    return u32(this.p.mem.read(this.scratch, 4)) & (n === 4 ? 0xffffffff : n === 2 ? 0xffff : 0xff);
  }
  private cfg32 = (off: number) => this.cfg(off, 4) >>> 0;
  private cfg16 = (off: number) => this.cfg(off, 2);

  private cfgw(off: number, n: number, v: number): void {
    this.p.mem.write(this.scratch, le(v, 4));
    if (this.p.pwrite(this.dev, this.scratch, n, OFF(CFG) + BigInt(off)) !== n) this.print(`ERR cfgw ${this.N} ${h(off)} ${this.p.errnoName}`);
  }

  private cw(off: number, n: number, v: number): void {
    const p = this.p;
    p.mem.write(this.scratch, le(v, 8));
    const r = p.pwrite(this.dev, this.scratch, n, OFF(CFG) + BigInt(off));
    const e = p.errnoName;
    p.mem.write(this.scratch + 8, new Uint8Array(4));
    const r2 = p.pread(this.dev, this.scratch + 8, n, OFF(CFG) + BigInt(off));
    const rb = u32(p.mem.read(this.scratch + 8, 4));
    this.print(`cw ${this.N} ${h(off)} ${n} ${h(v >>> 0)} = ${r}${r < 0 ? ` ${e}` : ''} -> ${r2} ${h(rb)}`);
  }

  private dump(tag: string): void {
    const p = this.p;
    const buf = p.mem.alloc(4096);
    p.mem.write(buf, new Uint8Array(4096).fill(0xee));
    const r = p.pread(this.dev, buf, this.cfgsize, OFF(CFG));
    const b = p.mem.read(buf, 4096);
    this.print(`dump ${this.N} ${tag} = ${r}`);
    for (let o = 0; o < this.cfgsize; o += 16) {
      const row = b.subarray(o, o + 16);
      if (o >= 0x40 && row.every((x) => x === 0)) continue;
      this.print(`  ${o.toString(16).padStart(3, '0')}: ${[...row].map((x) => x.toString(16).padStart(2, '0')).join(' ')}`);
    }
    p.mem.free(buf, 4096);
  }

  private regionInfo(idx: number, argsz: number): void {
    const p = this.p;
    const a = p.mem.struct(U.vfio_region_info, { argsz, index: idx, cap_offset: 0x1234 }, 128);
    const r = p.ioctl(this.dev, U.VFIO_DEVICE_GET_REGION_INFO, a);
    let line = `rinfo ${this.N} ${idx} argsz=${argsz} = ${r}`;
    if (r < 0) {
      this.print(`${line} ${p.errnoName}`);
      return;
    }
    const ri = p.mem.readStruct(U.vfio_region_info, a);
    line += ` argsz=${ri.argsz} flags=${h(ri.flags as number)} index=${ri.index} cap_offset=${h(ri.cap_offset as number)} size=${h(ri.size as bigint)} offset=${h(ri.offset as bigint)}`;
    const flags = ri.flags as number;
    let o = ri.cap_offset as number;
    if (flags & U.VFIO_REGION_INFO_FLAG_CAPS && o && o < argsz) {
      while (o && o + 8 <= argsz) {
        const c = p.mem.readStruct(U.vfio_info_cap_header, a + o);
        line += ` cap@${o}{id=${c.id} v=${c.version} next=${c.next}}`;
        o = c.next as number;
      }
    }
    this.print(line);
  }

  private touch(what: string, addr: number): void {
    try {
      const v = u32(this.p.mem.read(addr, 4));
      this.print(`touch ${this.N} ${what} = ${h(v)}`);
    } catch (e) {
      const sig = /SIGBUS/.test(String(e)) ? 'SIGBUS' : /SIGSEGV/.test(String(e)) ? 'SIGSEGV' : 'SIG?';
      this.print(`touch ${this.N} ${what} = ${sig}`);
    }
  }

  private tryMmap(what: string, len: number, prot: number, flags: number, off: bigint): void {
    const a = this.p.mmap(len, prot, flags, this.dev, off);
    this.print(`mmap ${this.N} ${what} len=${h(len)} off=${h(off)} = ${a < 0 ? `-1 ${this.p.errnoName}` : 'ok'}`);
    if (a >= 0) this.p.munmap(a, len);
  }

  private sysfs(bdf: string): void {
    const p = this.p;
    for (const attr of ['vendor', 'device', 'class', 'subsystem_vendor', 'subsystem_device', 'revision', 'irq']) {
      const path = `/sys/bus/pci/devices/${bdf}/${attr}`;
      const fd = p.open(path, 0);
      const buf = p.mem.alloc(128);
      const r = fd < 0 ? -1 : p.read(fd, buf, 127);
      if (fd >= 0) p.close(fd);
      const text = r > 0 ? new TextDecoder().decode(p.mem.read(buf, r)).replace(/\n/g, '\\n') : '';
      this.print(`sysfs ${this.N} ${attr} = ${r} ${text}`);
    }
    const path = `/sys/bus/pci/devices/${bdf}/config`;
    const st = p.stat(path)!;
    this.print(`sysfs ${this.N} config st_size=${st.size} mode=0${(st.mode & 0o7777).toString(8)}`);
    const buf = p.mem.alloc(8192);
    const fd = p.open(path, 0);
    const r = p.read(fd, buf, 8192);
    const head = hex(p.mem.read(buf, 64));
    const r2 = p.pread(fd, buf + 4096, 16, st.size - 4);
    const r3 = p.pread(fd, buf + 4096, 16, st.size);
    this.print(`sysfs ${this.N} config read=${r} tail=${r2} past=${r3} head=${head}`);
    p.close(fd);
    // the child that drops to uid 65534
    const u = new Process(this.host, { name: 'nobody', uid: 65534, gid: 65534, caps: [] });
    const ub = u.mem.alloc(8192);
    const fd2 = u.open(path, 0);
    const a = u.read(fd2, ub, 8192);
    const b = u.pread(fd2, ub, 16, 60);
    const c = u.pread(fd2, ub, 16, 64);
    this.print(`sysfs ${this.N} config unprivileged open=${fd2} read=${a} at60=${b} at64=${c}`);
    u.exit(0);
  }

  private findCap(id: number): number {
    if (!(this.cfg16(6) & 0x10)) return 0;
    let pos = this.cfg32(0x34) & 0xff;
    for (let ttl = 48; pos && ttl; ttl--) {
      const ent = this.cfg16(pos);
      if ((ent & 0xff) === id) return pos;
      pos = ent >> 8;
    }
    return 0;
  }

  private findEcap(id: number): number {
    if (this.cfgsize <= 256) return 0;
    let pos = 0x100;
    for (let ttl = 480; pos && ttl; ttl--) {
      const hd = this.cfg32(pos);
      if (!hd) return 0;
      if ((hd & 0xffff) === id) return pos;
      pos = hd >>> 20;
      if (pos < 0x100) return 0;
    }
    return 0;
  }

  private eduWait(): void {
    for (let i = 0; i < 100000; i++) {
      this.p.pread(this.dev, this.scratch, 4, 0x20);
      if (!(u32(this.p.mem.read(this.scratch, 4)) & 1)) return;
    }
    this.print(`ERR edu ${this.N} factorial still computing`);
  }

  private eduDma(iommufd: number): void {
    const p = this.p;
    const a = p.mem.struct(U.iommu_ioas_alloc, { size: U.iommu_ioas_alloc.size });
    if (p.ioctl(iommufd, U.IOMMU_IOAS_ALLOC, a)) {
      this.print(`ERR ioas ${p.errnoName}`);
      return;
    }
    const ioas = p.mem.readStruct(U.iommu_ioas_alloc, a).out_ioas_id as number;
    const at = p.mem.struct(U.vfio_device_attach_iommufd_pt, { argsz: U.vfio_device_attach_iommufd_pt.size, pt_id: ioas });
    if (p.ioctl(this.dev, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, at)) {
      this.print(`ERR attach ${p.errnoName}`);
      return;
    }
    const buf = p.mem.alloc(8192);
    p.mem.write(buf, Uint8Array.from({ length: 64 }, (_, i) => 0x40 + i));
    const m = p.mem.struct(U.iommu_ioas_map, {
      size: U.iommu_ioas_map.size,
      flags: U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE,
      ioas_id: ioas,
      user_va: BigInt(buf),
      length: 8192n,
      iova: 0x100000n,
    });
    if (p.ioctl(iommufd, U.IOMMU_IOAS_MAP, m)) {
      this.print(`ERR map ${p.errnoName}`);
      return;
    }
    const cmd0 = this.cfg16(4);
    this.cfgw(4, 2, cmd0 & ~4);
    this.wr(0, 0x80, 8, 0x100000);
    this.wr(0, 0x88, 8, 0x40000);
    this.wr(0, 0x90, 8, 16);
    this.wr(0, 0x98, 8, 1);
    this.rd(0, 0x98, 8);
    this.wr(0, 0x80, 8, 0x40000);
    this.wr(0, 0x88, 8, 0x101000);
    this.wr(0, 0x90, 8, 16);
    this.wr(0, 0x98, 8, 3);
    this.print(`dma ${this.N} no-master ${hex(p.mem.read(buf + 0x1000, 16))}`);
    this.cfgw(4, 2, cmd0 | 4);
    this.wr(0, 0x80, 8, 0x100000);
    this.wr(0, 0x88, 8, 0x40000);
    this.wr(0, 0x90, 8, 16);
    this.wr(0, 0x98, 8, 1);
    this.rd(0, 0x98, 8);
    this.wr(0, 0x80, 8, 0x40004);
    this.wr(0, 0x88, 8, 0x101000);
    this.wr(0, 0x90, 8, 8);
    this.wr(0, 0x98, 8, 3);
    this.rd(0, 0x98, 8);
    this.rd(0, 0x24, 4);
    this.print(`dma ${this.N} master ${hex(p.mem.read(buf + 0x1000, 16))}`);
    this.cfgw(4, 2, cmd0);
  }

  run(): void {
    const p = this.p;
    const { name, cdev, bdf } = this.s;
    this.print(`== ${name} ${cdev} ${bdf}`);
    this.sysfs(bdf);
    this.dev = p.open(cdev);
    const iommufd = p.open('/dev/iommu');
    const bind = p.mem.struct(U.vfio_device_bind_iommufd, { argsz: U.vfio_device_bind_iommufd.size, iommufd });
    if (p.ioctl(this.dev, U.VFIO_DEVICE_BIND_IOMMUFD, bind)) {
      this.print(`ERR bind ${p.errnoName}`);
      return;
    }
    const cri = p.mem.struct(U.vfio_region_info, { argsz: U.vfio_region_info.size, index: CFG });
    p.ioctl(this.dev, U.VFIO_DEVICE_GET_REGION_INFO, cri);
    this.cfgsize = Number(p.mem.readStruct(U.vfio_region_info, cri).size);
    this.dump('open');
    for (let i = 0; i <= 9; i++) {
      this.regionInfo(i, 32);
      this.regionInfo(i, 96);
    }
    const bi = [0, 1, 2, 3, 4, 5, 6].map((i) => {
      const a = p.mem.struct(U.vfio_region_info, { argsz: U.vfio_region_info.size, index: i });
      p.ioctl(this.dev, U.VFIO_DEVICE_GET_REGION_INFO, a);
      const r = p.mem.readStruct(U.vfio_region_info, a);
      return { size: Number(r.size), flags: r.flags as number };
    });
    const cs = this.cfgsize;
    // config reads: sizes, alignment, past the end
    for (const [o, n] of [[0, 1], [0, 2], [0, 3], [0, 4], [0, 8], [1, 4], [2, 8], [3, 3], [0x3e, 4], [cs - 4, 4], [cs - 2, 4], [cs - 1, 1], [cs, 1], [cs + 100, 4], [0, 0]] as const)
      this.rd(CFG, o, n);
    this.rd(9, 0, 4);
    this.rd(20, 0, 0);
    this.rd(20, 0, 4);
    this.wr(CFG, cs - 2, 4, 0);
    this.wr(CFG, cs, 1, 0);
    // header registers
    const cmd0 = this.cfg16(4);
    for (const [o, n, v] of [[0x00, 4, 0xffffffff], [0x04, 2, 0xffff], [0x04, 2, 0], [0x04, 2, 0x400]] as const) this.cw(o, n, v);
    this.cfgw(0x04, 2, cmd0);
    for (const [o, n, v] of [
      [0x06, 2, 0xffff], [0x08, 4, 0xffffffff], [0x0c, 1, 0xff], [0x0d, 1, 0xff], [0x0e, 1, 0xff], [0x0f, 1, 0xff],
      [0x28, 4, 0xffffffff], [0x2c, 4, 0xffffffff], [0x34, 1, 0x00], [0x38, 4, 0xffffffff], [0x3c, 1, 0x5a],
      [0x3d, 1, 0x03], [0x3e, 2, 0xffff],
    ] as const)
      this.cw(o, n, v);
    for (let off = 0x10; off <= 0x30; off += 4) {
      if (off === 0x28 || off === 0x2c) continue;
      const orig = this.cfg32(off);
      this.cw(off, 4, 0xffffffff);
      this.cw(off, 4, 0x12345678);
      this.cw(off, 4, orig);
    }
    this.cw(0x10, 2, 0xffff);
    this.cw(0x12, 2, 0xffff);
    this.cw(0x13, 1, 0xab);
    this.cfgw(0x10, 4, this.cfg32(0x10));
    this.dump('after-header-writes');
    // capabilities
    const pm = this.findCap(0x01),
      msi = this.findCap(0x05),
      exp = this.findCap(0x10),
      msix = this.findCap(0x11);
    const aer = this.findEcap(0x01),
      dsn = this.findEcap(0x03);
    this.print(`caps ${this.N} pm=${h(pm)} msi=${h(msi)} exp=${h(exp)} msix=${h(msix)} aer=${h(aer)} dsn=${h(dsn)}`);
    if (pm) {
      this.cw(pm, 2, 0xffff);
      this.cw(pm + 2, 2, 0xffff);
      this.cw(pm + 4, 2, 0x8100);
      this.cw(pm + 4, 2, 0x0003);
      this.rd(0, 0, 4);
      if (bi[0]!.size) {
        const m = p.mmap(4096, PROT_READ, MAP_SHARED, this.dev, 0);
        this.print(`mmap ${this.N} bar0-d3 = ${m < 0 ? p.errnoName : 'ok'}`);
        if (m >= 0) {
          this.touch('bar0-d3', m);
          p.munmap(m, 4096);
        }
      }
      this.cw(pm + 4, 2, 0x0000);
      this.rd(0, 0, 4);
      this.cw(pm + 6, 2, 0xffff);
    }
    if (msi) {
      const f = this.cfg16(msi + 2);
      this.cw(msi, 2, 0xffff);
      this.cw(msi + 2, 2, 0xffff);
      this.cw(msi + 2, 2, 0x0070);
      this.cw(msi + 2, 2, f);
      for (const o of [4, 8, 12, 16, 20]) this.cw(msi + o, 4, 0xffffffff);
    }
    if (msix) {
      this.cw(msix, 2, 0xffff);
      this.cw(msix + 2, 2, 0xffff);
      this.cw(msix + 4, 4, 0xffffffff);
      this.cw(msix + 8, 4, 0xffffffff);
    }
    if (exp) {
      this.cw(exp, 2, 0xffff);
      this.cw(exp + 2, 2, 0xffff);
      this.cw(exp + 4, 4, 0xffffffff);
      const ctl = this.cfg16(exp + 8);
      this.cw(exp + 8, 2, 0x7fff);
      this.cw(exp + 8, 2, ctl);
      this.cw(exp + 10, 2, 0xffff);
      this.cw(exp + 16, 2, 0xffff);
      this.cw(exp + 0x28, 2, 0xffff);
      this.cw(exp + 0x30, 2, 0xffff);
    }
    if (aer) for (let o = 0; o < 0x2c; o += 4) this.cw(aer + o, 4, 0xffffffff);
    if (dsn) for (let o = 0; o < 12; o += 4) this.cw(dsn + o, 4, 0xffffffff);
    this.cw(0x40, 4, 0xffffffff);
    this.cw(0x5c, 4, 0xffffffff);
    this.cw(0xfc, 4, 0xffffffff);
    if (cs > 256) for (const o of [0x100, 0x104, 0x200, 0xffc]) this.cw(o, 4, 0xffffffff);
    this.dump('after-cap-writes');
    // BARs
    for (let i = 0; i < 6; i++) {
      const sz = bi[i]!.size;
      if (!sz) {
        this.rd(i, 0, 4);
        continue;
      }
      for (const [o, n] of [[0, 1], [0, 2], [0, 4], [0, 8], [1, 4], [0, 3], [0, 16], [sz - 2, 8], [sz, 4], [sz + 0x1000, 4]] as const) this.rd(i, o, n);
    }
    if (msix) {
      const t = this.cfg32(msix + 4),
        pb = this.cfg32(msix + 8);
      const tb = t & 7;
      const to = (t & ~7) >>> 0;
      this.rd(tb, BigInt.asUintN(64, BigInt(to) - 4n) & 0xffffffffn, 8);
      this.rd(tb, to, 16);
      this.wr(tb, to, 4, 0x12345678);
      this.rd(tb, to, 4);
      this.rd(pb & 7, (pb & ~7) >>> 0, 8);
      const qs = (this.cfg16(msix + 2) & 0x7ff) + 1;
      this.rd(tb, to + qs * 16 - 4, 8);
    }
    // memory decode off
    this.cfgw(4, 2, cmd0 & ~2);
    this.print(`cmd ${this.N} mem-off ${h(this.cfg16(4))}`);
    for (let i = 0; i < 6; i++)
      if (bi[i]!.size) {
        this.rd(i, 0, 4);
        this.wr(i, 0x4, 4, 0);
      }
    if (bi[0]!.size && bi[0]!.flags & U.VFIO_REGION_INFO_FLAG_MMAP) {
      const m = p.mmap(4096, PROT_READ, MAP_SHARED, this.dev, 0);
      this.print(`mmap ${this.N} bar0-memoff = ${m < 0 ? p.errnoName : 'ok'}`);
      if (m >= 0) {
        this.touch('bar0-memoff', m);
        this.cfgw(4, 2, cmd0);
        this.touch('bar0-memon', m);
        this.cfgw(4, 2, cmd0 & ~2);
        this.touch('bar0-memoff-again', m);
        p.munmap(m, 4096);
      }
    }
    this.rd(6, 0, 4);
    this.regionInfo(6, 32);
    this.cfgw(4, 2, cmd0 & ~1);
    for (let i = 0; i < 6; i++) if (bi[i]!.size) this.rd(i, 0, 4);
    this.cfgw(4, 2, cmd0);
    if (msix) {
      const t = this.cfg32(msix + 4);
      const tb = t & 7;
      const to = (t & ~7) >>> 0;
      const m = p.mmap(4096, PROT_READ, MAP_SHARED, this.dev, OFF(tb) + BigInt(to & ~4095));
      this.print(`mmap ${this.N} msix-table = ${m < 0 ? p.errnoName : 'ok'}`);
      if (m >= 0) {
        this.touch('msix-vector0-ctrl', m + (to & 4095) + 12);
        p.munmap(m, 4096);
      }
    }
    // ROM
    this.rd(6, 0, 4);
    this.rd(6, 0, 8);
    this.rd(6, 0, 32);
    this.wr(6, 0, 4, 0);
    if (bi[6]!.size) {
      const sz = bi[6]!.size;
      const rom = p.mem.alloc(sz);
      const r = p.pread(this.dev, rom, sz, OFF(6));
      const b = p.mem.read(rom, Math.max(r, 0));
      let last = -1;
      for (let i = 0; i < b.length; i++) if (b[i] !== 0xff) last = i;
      this.print(`rom ${this.N} read=${r} last_non_ff=${h(last < 0 ? 0xffffffffffffffffn : last)}`);
      this.rd(6, sz - 4, 8);
      this.rd(6, sz, 4);
    }
    this.rd(8, 0, 4);
    this.rd(8, 0xa0000, 4);
    this.rd(8, 0x3c0, 1);
    // mmap rules
    this.tryMmap('cfg', 4096, PROT_READ, MAP_SHARED, OFF(CFG));
    this.tryMmap('rom', 4096, PROT_READ, MAP_SHARED, OFF(6));
    this.tryMmap('vga', 4096, PROT_READ, MAP_SHARED, OFF(8));
    this.tryMmap('idx9', 4096, PROT_READ, MAP_SHARED, OFF(9));
    this.tryMmap('idx20', 4096, PROT_READ, MAP_SHARED, OFF(20));
    for (let i = 0; i < 6; i++) {
      this.tryMmap(`bar${i}`, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, OFF(i));
      if (bi[i]!.flags & U.VFIO_REGION_INFO_FLAG_MMAP) {
        const sz = bi[i]!.size;
        const full = sz < 4096 ? 4096 : sz;
        this.tryMmap(`bar${i}-private`, 4096, PROT_READ, MAP_PRIVATE, OFF(i));
        this.tryMmap(`bar${i}-full`, full, PROT_READ, MAP_SHARED, OFF(i));
        this.tryMmap(`bar${i}-over`, full + 4096, PROT_READ, MAP_SHARED, OFF(i));
        this.tryMmap(`bar${i}-lastpage`, 4096, PROT_READ, MAP_SHARED, OFF(i) + BigInt(sz > 4096 ? sz - 4096 : 0));
        this.tryMmap(`bar${i}-pastend`, 4096, PROT_READ, MAP_SHARED, OFF(i) + BigInt(full));
        this.tryMmap(`bar${i}-unaligned`, 4096, PROT_READ, MAP_SHARED, OFF(i) + 8n);
        this.tryMmap(`bar${i}-len0`, 0, PROT_READ, MAP_SHARED, OFF(i));
      }
    }
    // resets
    this.cfgw(4, 2, cmd0 | 4);
    const di = p.mem.struct(U.vfio_device_info, { argsz: U.vfio_device_info.size });
    p.ioctl(this.dev, U.VFIO_DEVICE_GET_INFO, di);
    this.print(`info ${this.N} flags=${h(p.mem.readStruct(U.vfio_device_info, di).flags as number)}`);
    let m0 = -1;
    if (bi[0]!.flags & U.VFIO_REGION_INFO_FLAG_MMAP) m0 = p.mmap(4096, PROT_READ, MAP_SHARED, this.dev, 0);
    if (m0 >= 0) this.touch('bar0-before-reset', m0);
    const r = p.ioctl(this.dev, U.VFIO_DEVICE_RESET, 0);
    this.print(`reset ${this.N} = ${r} ${r ? p.errnoName : ''} cmd=${h(this.cfg16(4))}`);
    if (m0 >= 0) {
      this.touch('bar0-after-reset', m0);
      p.munmap(m0, 4096);
    }
    this.dump('after-reset');
    if (exp) {
      this.cfgw(4, 2, cmd0 | 4);
      const ctl = this.cfg16(exp + 8);
      this.cw(exp + 8, 2, ctl | 0x8000);
      this.print(`flr ${this.N} cmd=${h(this.cfg16(4))}`);
      this.dump('after-devctl-flr');
    }
    if (name === 'edu') {
      this.rd(0, 0x00, 4);
      this.rd(0, 0x04, 4);
      this.wr(0, 0x04, 4, 0x12345678);
      this.rd(0, 0x04, 4);
      this.rd(0, 0x04, 8);
      this.rd(0, 0x04, 2);
      this.wr(0, 0x04, 2, 0x1111);
      this.rd(0, 0x04, 4);
      this.wr(0, 0x00, 8, 0x2222222233333333n);
      this.rd(0, 0x04, 4);
      this.wr(0, 0x04, 8, 0x0000000533333333n);
      this.eduWait();
      this.rd(0, 0x04, 4);
      this.rd(0, 0x20, 4);
      this.rd(0, 0x08, 4);
      this.wr(0, 0x08, 4, 12);
      this.eduWait();
      this.rd(0, 0x08, 4);
      this.wr(0, 0x08, 4, 34);
      this.eduWait();
      this.rd(0, 0x08, 4);
      this.rd(0, 0x24, 4);
      this.wr(0, 0x20, 4, 0x80);
      this.rd(0, 0x20, 4);
      this.wr(0, 0x20, 4, 0);
      this.rd(0, 0x20, 4);
      this.wr(0, 0x80, 8, 0x1000);
      this.rd(0, 0x80, 8);
      this.rd(0, 0x80, 4);
      this.rd(0, 0x84, 4);
      this.wr(0, 0x88, 4, 0x40000);
      this.rd(0, 0x88, 8);
      this.wr(0, 0x90, 4, 0x100);
      this.rd(0, 0x90, 4);
      this.rd(0, 0x98, 8);
      this.rd(0, 0x0c, 4);
      this.rd(0, 0x40000, 4);
      this.rd(0, 0x7c, 8);
      this.rd(0, 0x100, 4);
      this.eduDma(iommufd);
    }
    p.close(this.dev);
    // reopen: what open does to the state the user left
    this.dev = p.open(cdev);
    if (p.ioctl(this.dev, U.VFIO_DEVICE_BIND_IOMMUFD, bind)) this.print(`ERR rebind ${p.errnoName}`);
    this.dump('reopen');
    if (name === 'edu') {
      this.rd(0, 0x04, 4);
      this.rd(0, 0x08, 4);
      this.rd(0, 0x20, 4);
      this.rd(0, 0x80, 8);
    }
    p.close(this.dev);
    p.close(iommufd);
  }
}
