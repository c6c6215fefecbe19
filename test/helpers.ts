// Shared setup for the per-rule conformance tests: boot a host with the trace recording, run a
// call and get back what libc returned plus the kernel events the call caused, and build the
// common ioctl argument structs in a process's memory.

import assert from 'node:assert/strict';
import { Host, Process, uapi } from '../src/api/index.js';
import type { TraceEvent } from '../src/kernel/trace.js';
import { offsetofend } from '../src/uapi/layout.js';

export const U = uapi;
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;

/** The default host's vfio-pci functions (BDF, vfio index, group). */
export const E1000E = { bdf: '0000:01:00.0', index: 0, group: 6 };
export const NVME = { bdf: '0000:02:00.0', index: 1, group: 7 };
export const EDU = { bdf: '0000:03:00.0', index: 2, group: 8 };
export const TESTDEV = { bdf: '0000:00:05.0', index: 3, group: 4 };
export const IGB0 = { bdf: '0000:04:00.0', index: 4, group: 10 };
export const IGB1 = { bdf: '0000:04:00.1', index: 5, group: 11 };
export const GRP_EDU = { bdf: '0000:06:01.0', index: 6, group: 13 };
export const GRP_TESTDEV = { bdf: '0000:06:02.0', index: 7, group: 13 };
export const NIC = { bdf: '0000:07:00.0', group: 15 };

export const cdevPath = (d: { index: number }) => `/dev/vfio/devices/vfio${d.index}`;
export const groupPath = (d: { group: number }) => `/dev/vfio/${d.group}`;

/** Boot a host (default or YAML) with every trace event recorded. */
export function boot(topology?: string): Host {
  const h = new Host(topology);
  h.kernel.trace.record();
  return h;
}

export function proc(h: Host, opts: ConstructorParameters<typeof Process>[1] = {}): Process {
  return new Process(h, { name: 'test', ...opts });
}

/** Events recorded since `seq` (exclusive). */
export function eventsSince(h: Host, seq: number): TraceEvent[] {
  return h.kernel.trace.events().filter((e) => e.seq > seq);
}

/** The sequence number of the last recorded event (a mark to take events after). */
export function mark(h: Host): number {
  const ev = h.kernel.trace.events();
  return ev.length ? ev[ev.length - 1]!.seq : 0;
}

/** Kernel-side events (kernel, warn, admin), optionally only those named. */
export function kernelEvents(evs: TraceEvent[], only?: string[]): TraceEvent[] {
  return evs.filter((e) => e.kind !== 'syscall' && e.kind !== 'op' && (!only || only.includes(e.name)));
}

/** Names of kernel-side events. */
export function names(evs: TraceEvent[], only?: string[]): string[] {
  return kernelEvents(evs, only).map((e) => e.name);
}

export interface CallResult {
  /** libc return value */
  ret: number;
  /** errno name when ret is -1, else undefined */
  errno: string | undefined;
  /** names of the kernel events the call caused, in order */
  events: string[];
  /** the full events (syscall enter/exit included) */
  trace: TraceEvent[];
}

/**
 * Run one libc-style call and return what it returned plus the kernel events it caused. The
 * syscall's trace exit event is checked against the return value (the trace is structured:
 * every syscall has an enter and an exit event carrying ret/errno).
 */
export function call(p: Process, f: () => number): CallResult {
  const h = p.host;
  const m = mark(h);
  p.errno = 0;
  const ret = f();
  const trace = eventsSince(h, m);
  const errno = ret === -1 ? p.errnoName : undefined;
  const exits = trace.filter((e) => e.kind === 'syscall' && e.phase === 'exit');
  const last = exits.length === 1 ? exits[0] : undefined;
  if (last) {
    if (ret === -1) assert.equal(last.errno, errno, `trace exit errno of ${last.name}`);
    else assert.equal(last.ret, ret, `trace exit ret of ${last.name}`);
  }
  return { ret, errno, events: names(trace), trace };
}

/** ret/errno only (for compact assertions). */
export function rc(p: Process, r: number): string | number {
  return r === -1 ? p.errnoName : r;
}

/** Kernel events with their arguments, e.g. for checking a count sequence. */
export function argsOf(evs: TraceEvent[], name: string): Array<Record<string, unknown>> {
  return evs.filter((e) => e.name === name && e.kind !== 'syscall').map((e) => e.args ?? {});
}

// ---- argument builders -------------------------------------------------------------------------

export function bindArg(p: Process, iommufd: number, opts: { flags?: number; token?: bigint; argsz?: number } = {}): number {
  const S = U.vfio_device_bind_iommufd;
  const size = Math.max(opts.argsz ?? S.size, S.size);
  return p.mem.struct(
    S,
    { argsz: opts.argsz ?? S.size, flags: opts.flags ?? 0, iommufd, token_uuid_ptr: opts.token ?? 0n },
    size,
  );
}

export function attachArg(p: Process, ptId: number, opts: { flags?: number; pasid?: number; argsz?: number } = {}): number {
  const S = U.vfio_device_attach_iommufd_pt;
  return p.mem.struct(S, {
    argsz: opts.argsz ?? offsetofend(S, 'pt_id'),
    flags: opts.flags ?? 0,
    pt_id: ptId,
    pasid: opts.pasid ?? 0,
  });
}

export function detachArg(p: Process, opts: { flags?: number; argsz?: number } = {}): number {
  const S = U.vfio_device_detach_iommufd_pt;
  return p.mem.struct(S, { argsz: opts.argsz ?? offsetofend(S, 'flags'), flags: opts.flags ?? 0 });
}

/** ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD) with a fresh argument; devid or -1. */
export function bind(p: Process, dev: number, iommufd: number): number {
  const a = bindArg(p, iommufd);
  const r = p.ioctl(dev, U.VFIO_DEVICE_BIND_IOMMUFD, a);
  return r < 0 ? r : (p.mem.readStruct(U.vfio_device_bind_iommufd, a).out_devid as number);
}

/** ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, pt); the resulting pt_id or -1. */
export function attach(p: Process, dev: number, ptId: number): number {
  const a = attachArg(p, ptId);
  const r = p.ioctl(dev, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, a);
  return r < 0 ? r : (p.mem.readStruct(U.vfio_device_attach_iommufd_pt, a).pt_id as number);
}

export function detach(p: Process, dev: number): number {
  return p.ioctl(dev, U.VFIO_DEVICE_DETACH_IOMMUFD_PT, detachArg(p));
}

export function ioasAlloc(p: Process, iommufd: number): number {
  const a = p.mem.struct(U.iommu_ioas_alloc, { size: U.iommu_ioas_alloc.size });
  const r = p.ioctl(iommufd, U.IOMMU_IOAS_ALLOC, a);
  return r < 0 ? r : (p.mem.readStruct(U.iommu_ioas_alloc, a).out_ioas_id as number);
}

export function destroy(p: Process, iommufd: number, id: number): number {
  return p.ioctl(iommufd, U.IOMMU_DESTROY, p.mem.struct(U.iommu_destroy, { size: U.iommu_destroy.size, id }));
}

/** VFIO_GROUP_GET_STATUS flags or -1 */
export function groupStatus(p: Process, g: number): number {
  const a = p.mem.struct(U.vfio_group_status, { argsz: U.vfio_group_status.size });
  const r = p.ioctl(g, U.VFIO_GROUP_GET_STATUS, a);
  return r < 0 ? r : (p.mem.readStruct(U.vfio_group_status, a).flags as number);
}

export function setContainer(p: Process, g: number, fd: number): number {
  return p.ioctl(g, U.VFIO_GROUP_SET_CONTAINER, p.mem.s32At(fd));
}

export function getDeviceFd(p: Process, g: number, name: string): number {
  return p.ioctl(g, U.VFIO_GROUP_GET_DEVICE_FD, p.mem.cstring(name));
}

export function getInfo(p: Process, dev: number, argsz: number = U.vfio_device_info.size): { ret: number; info: Record<string, unknown> } {
  const a = p.mem.struct(U.vfio_device_info, { argsz });
  const r = p.ioctl(dev, U.VFIO_DEVICE_GET_INFO, a);
  return { ret: r < 0 ? -1 : r, info: p.mem.readStruct(U.vfio_device_info, a) as Record<string, unknown> };
}

/**
 * The group/container path to an open device: group fd, container fd with type1v2, device fd.
 */
export function openViaContainer(p: Process, d: { bdf: string; group: number }): { g: number; c: number; dev: number } {
  const g = p.open(groupPath(d));
  assert.ok(g >= 0, `open group ${d.group}: ${p.errnoName}`);
  const c = p.open('/dev/vfio/vfio');
  assert.equal(setContainer(p, g, c), 0, `SET_CONTAINER: ${p.errnoName}`);
  assert.equal(p.ioctl(c, U.VFIO_SET_IOMMU, U.VFIO_TYPE1v2_IOMMU), 0, `SET_IOMMU: ${p.errnoName}`);
  const dev = getDeviceFd(p, g, d.bdf);
  assert.ok(dev >= 0, `GET_DEVICE_FD ${d.bdf}: ${p.errnoName}`);
  return { g, c, dev };
}

/** The group path with an iommufd as the "container". */
export function openViaGroupIommufd(p: Process, d: { bdf: string; group: number }): { g: number; i: number; dev: number } {
  const g = p.open(groupPath(d));
  assert.ok(g >= 0, `open group ${d.group}: ${p.errnoName}`);
  const i = p.open('/dev/iommu');
  assert.equal(setContainer(p, g, i), 0, `SET_CONTAINER(iommufd): ${p.errnoName}`);
  const dev = getDeviceFd(p, g, d.bdf);
  assert.ok(dev >= 0, `GET_DEVICE_FD ${d.bdf}: ${p.errnoName}`);
  return { g, i, dev };
}

/** The cdev path: open the cdev and /dev/iommu, bind. */
export function openViaCdev(p: Process, d: { index: number }, iommufd?: number): { dev: number; i: number; devid: number } {
  const dev = p.open(cdevPath(d));
  assert.ok(dev >= 0, `open cdev vfio${d.index}: ${p.errnoName}`);
  const i = iommufd ?? p.open('/dev/iommu');
  const devid = bind(p, dev, i);
  assert.ok(devid > 0, `BIND: ${p.errnoName}`);
  return { dev, i, devid };
}

/** A YAML topology with one root port and the functions given below it (bus 1). */
export function yamlHost(body: string, extra = ''): string {
  return `name: t
${extra}functions:
  - { bdf: "0000:00:02.0", name: rp1, id: "1b36:000c", class: 0x060400, pcie: true, bridge: { secondary: 1 }, iommu_group: 1, driver: pcieport }
${body}`;
}
