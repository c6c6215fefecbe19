// A thin typed layer over the raw calls: each helper builds the argument struct in the process's
// memory, calls ioctl(), decodes what the kernel wrote back, and throws SysError on failure.

import { errnoName } from '../kernel/errno.js';
import { Decoded, StructDef, encode, offsetofend } from '../uapi/layout.js';
import * as I from '../uapi/iommufd.js';
import * as U from '../uapi/vfio.js';
import type { Process } from './process.js';

export class SysError extends Error {
  constructor(
    readonly call: string,
    readonly errno: number,
  ) {
    super(`${call}: ${errnoName(errno)}`);
    this.name = 'SysError';
  }
  get code(): string {
    return errnoName(this.errno);
  }
}

function ok(p: Process, call: string, r: number): number {
  if (r < 0) throw new SysError(call, p.errno);
  return r;
}

/** Run `f` with temporary user memory that is freed afterwards (helpers do not leak mappings). */
function scoped<T>(p: Process, f: (alloc: (size: number) => number) => T): T {
  const maps: Array<[number, number]> = [];
  const alloc = (size: number) => {
    const a = p.mem.alloc(size);
    maps.push([a, size]);
    return a;
  };
  try {
    return f(alloc);
  } finally {
    for (const [a, size] of maps) p.mem.free(a, size);
  }
}

function put(p: Process, alloc: (n: number) => number, def: StructDef<string>, v: Partial<Decoded>, size = def.size): number {
  const a = alloc(size);
  p.mem.write(a, encode(def, v, size));
  return a;
}

export function open(p: Process, path: string, flags = 2): number {
  return ok(p, `open(${path})`, p.open(path, flags));
}

/** VFIO_GROUP_GET_STATUS: the flags */
export function groupGetStatus(p: Process, group: number): number {
  return scoped(p, (alloc) => {
    const a = put(p, alloc, U.vfio_group_status, { argsz: U.vfio_group_status.size });
    ok(p, 'VFIO_GROUP_GET_STATUS', p.ioctl(group, U.VFIO_GROUP_GET_STATUS, a));
    return p.mem.readStruct(U.vfio_group_status, a).flags as number;
  });
}

/** VFIO_GROUP_SET_CONTAINER with a container fd or an iommufd */
export function groupSetContainer(p: Process, group: number, container: number): void {
  scoped(p, (alloc) => {
    const a = alloc(4);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, container, true);
    p.mem.write(a, b);
    ok(p, 'VFIO_GROUP_SET_CONTAINER', p.ioctl(group, U.VFIO_GROUP_SET_CONTAINER, a));
  });
}

export function groupUnsetContainer(p: Process, group: number): void {
  ok(p, 'VFIO_GROUP_UNSET_CONTAINER', p.ioctl(group, U.VFIO_GROUP_UNSET_CONTAINER));
}

/** VFIO_GROUP_GET_DEVICE_FD: the new device fd */
export function groupGetDeviceFd(p: Process, group: number, name: string): number {
  return scoped(p, (alloc) => {
    const b = new TextEncoder().encode(name + '\0');
    const a = alloc(b.length);
    p.mem.write(a, b);
    return ok(p, 'VFIO_GROUP_GET_DEVICE_FD', p.ioctl(group, U.VFIO_GROUP_GET_DEVICE_FD, a));
  });
}

export function checkExtension(p: Process, fd: number, ext: number): number {
  return ok(p, 'VFIO_CHECK_EXTENSION', p.ioctl(fd, U.VFIO_CHECK_EXTENSION, ext));
}

export function setIommu(p: Process, container: number, type: number): void {
  ok(p, 'VFIO_SET_IOMMU', p.ioctl(container, U.VFIO_SET_IOMMU, type));
}

/** VFIO_DEVICE_GET_INFO: flags, num_regions, num_irqs, ... */
export function deviceGetInfo(p: Process, device: number): Decoded {
  return scoped(p, (alloc) => {
    const a = put(p, alloc, U.vfio_device_info, { argsz: U.vfio_device_info.size });
    ok(p, 'VFIO_DEVICE_GET_INFO', p.ioctl(device, U.VFIO_DEVICE_GET_INFO, a));
    return p.mem.readStruct(U.vfio_device_info, a);
  });
}

/** VFIO_DEVICE_BIND_IOMMUFD: the devid */
export function bindIommufd(p: Process, device: number, iommufd: number, opts: { token?: Uint8Array } = {}): number {
  return scoped(p, (alloc) => {
    let tokenPtr = 0;
    if (opts.token) {
      tokenPtr = alloc(16);
      p.mem.write(tokenPtr, opts.token);
    }
    const a = put(p, alloc, U.vfio_device_bind_iommufd, {
      argsz: U.vfio_device_bind_iommufd.size,
      flags: opts.token ? U.VFIO_DEVICE_BIND_FLAG_TOKEN : 0,
      iommufd,
      token_uuid_ptr: BigInt(tokenPtr),
    });
    ok(p, 'VFIO_DEVICE_BIND_IOMMUFD', p.ioctl(device, U.VFIO_DEVICE_BIND_IOMMUFD, a));
    return p.mem.readStruct(U.vfio_device_bind_iommufd, a).out_devid as number;
  });
}

/** VFIO_DEVICE_ATTACH_IOMMUFD_PT: the resulting HWPT id */
export function attachIommufdPt(p: Process, device: number, ptId: number): number {
  return scoped(p, (alloc) => {
    const a = put(p, alloc, U.vfio_device_attach_iommufd_pt, {
      argsz: offsetofend(U.vfio_device_attach_iommufd_pt, 'pt_id'),
      pt_id: ptId,
    });
    ok(p, 'VFIO_DEVICE_ATTACH_IOMMUFD_PT', p.ioctl(device, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, a));
    return p.mem.readStruct(U.vfio_device_attach_iommufd_pt, a).pt_id as number;
  });
}

export function detachIommufdPt(p: Process, device: number): void {
  scoped(p, (alloc) => {
    const a = put(p, alloc, U.vfio_device_detach_iommufd_pt, { argsz: offsetofend(U.vfio_device_detach_iommufd_pt, 'flags') });
    ok(p, 'VFIO_DEVICE_DETACH_IOMMUFD_PT', p.ioctl(device, U.VFIO_DEVICE_DETACH_IOMMUFD_PT, a));
  });
}

/** IOMMU_IOAS_ALLOC: the IOAS id */
export function ioasAlloc(p: Process, iommufd: number): number {
  return scoped(p, (alloc) => {
    const a = put(p, alloc, I.iommu_ioas_alloc, { size: I.iommu_ioas_alloc.size });
    ok(p, 'IOMMU_IOAS_ALLOC', p.ioctl(iommufd, I.IOMMU_IOAS_ALLOC, a));
    return p.mem.readStruct(I.iommu_ioas_alloc, a).out_ioas_id as number;
  });
}

/** IOMMU_DESTROY */
export function destroy(p: Process, iommufd: number, id: number): void {
  scoped(p, (alloc) => {
    const a = put(p, alloc, I.iommu_destroy, { size: I.iommu_destroy.size, id });
    ok(p, 'IOMMU_DESTROY', p.ioctl(iommufd, I.IOMMU_DESTROY, a));
  });
}

/** IOMMU_VFIO_IOAS GET: the compat IOAS id */
export function vfioIoasGet(p: Process, iommufd: number): number {
  return scoped(p, (alloc) => {
    const a = put(p, alloc, I.iommu_vfio_ioas, { size: I.iommu_vfio_ioas.size, op: I.IOMMU_VFIO_IOAS_GET });
    ok(p, 'IOMMU_VFIO_IOAS', p.ioctl(iommufd, I.IOMMU_VFIO_IOAS, a));
    return p.mem.readStruct(I.iommu_vfio_ioas, a).ioas_id as number;
  });
}
