// drivers/vfio/iommufd.c: the glue between a vfio_device and iommufd — bind/unbind for the
// first open / last close, compat-IOAS attach on the group path, and the physical-device ops
// (vfio_iommufd_physical_*) that vfio-pci uses.

import { EINVAL, ENODEV, ENOENT } from '../kernel/errno.js';
import { KGen } from '../kernel/sched.js';
import { lockdepAssertHeld } from '../kernel/sync.js';
import {
  IommufdCtx, iommufdCtxHasGroup, iommufdDeviceAttach, iommufdDeviceBind, iommufdDeviceDetach,
  iommufdDeviceReplace, iommufdDeviceUnbind, iommufdVfioCompatIoasGetId, IOMMU_NO_PASID,
} from '../iommufd/iommufd.js';
import { vfioDeviceIsNoiommu } from './group.js';
import { VfioDevice, VfioDeviceFile } from './vfio.js';

/** vfio_iommufd_device_has_compat_ioas */
export function* vfioIommufdDeviceHasCompatIoas(_vdev: VfioDevice, ictx: IommufdCtx): KGen<boolean> {
  const r = yield* iommufdVfioCompatIoasGetId(ictx);
  return r >= 0;
}

/** vfio_df_iommufd_bind: noiommu devices open without a binding. */
export function* vfioDfIommufdBind(df: VfioDeviceFile): KGen<number> {
  const vdev = df.device;
  lockdepAssertHeld(vdev.devSet!.lock);
  if (vfioDeviceIsNoiommu(vdev)) return 0;
  const out = { v: 0 };
  const r = yield* vdev.ops.bindIommufd!(vdev, df.iommufd!, out);
  if (!r) df.devid = out.v;
  return r;
}

/** vfio_iommufd_compat_attach_ioas: the group path attaches the first open to the compat IOAS. */
export function* vfioIommufdCompatAttachIoas(vdev: VfioDevice, ictx: IommufdCtx): KGen<number> {
  lockdepAssertHeld(vdev.devSet!.lock);
  if (vfioDeviceIsNoiommu(vdev)) return 0;
  const id = yield* iommufdVfioCompatIoasGetId(ictx);
  if (id < 0) return id;
  // the legacy path has no way to return the selected pt_id
  return yield* vdev.ops.attachIoas!(vdev, { v: id });
}

/** vfio_df_iommufd_unbind */
export function* vfioDfIommufdUnbind(df: VfioDeviceFile): KGen<void> {
  const vdev = df.device;
  lockdepAssertHeld(vdev.devSet!.lock);
  if (vfioDeviceIsNoiommu(vdev)) return;
  if (vdev.ops.unbindIommufd) yield* vdev.ops.unbindIommufd(vdev);
}

/** vfio_iommufd_device_ictx */
export function vfioIommufdDeviceIctx(vdev: VfioDevice): IommufdCtx | null {
  return vdev.iommufdDevice ? vdev.iommufdDevice.ictx : null;
}

/**
 * vfio_iommufd_get_dev_id: a devid (> 0) if bound to ictx; -ENOENT if the device is not bound
 * there but its IOMMU group is owned by ictx; -ENODEV otherwise.
 */
export function vfioIommufdGetDevId(vdev: VfioDevice, ictx: IommufdCtx): number {
  if (vfioIommufdDeviceIctx(vdev) === ictx) return vdev.iommufdDevice ? vdev.iommufdDevice.id : -EINVAL;
  const g = vdev.dev.iommuGroup;
  if (!g) return -ENODEV;
  return iommufdCtxHasGroup(ictx, g) ? -ENOENT : -ENODEV;
}

// ---- the physical-device ops --------------------------------------------------------------------

/** vfio_iommufd_physical_bind */
export function* vfioIommufdPhysicalBind(vdev: VfioDevice, ictx: IommufdCtx, outDevid: { v: number }): KGen<number> {
  const idev = yield* iommufdDeviceBind(ictx, vdev.dev, outDevid);
  if (typeof idev === 'number') return idev;
  vdev.iommufdDevice = idev;
  vdev.pasids.clear();
  vdev.kernel.event('iommufd_bind', { device: vdev.dev.name, devid: outDevid.v });
  return 0;
}

/** vfio_iommufd_physical_unbind: detach PASIDs, detach, destroy the DEVICE object. */
export function* vfioIommufdPhysicalUnbind(vdev: VfioDevice): KGen<void> {
  lockdepAssertHeld(vdev.devSet!.lock);
  const idev = vdev.iommufdDevice!;
  for (const pasid of [...vdev.pasids].sort((a, b) => a - b)) {
    yield* iommufdDeviceDetach(idev, pasid);
    vdev.pasids.delete(pasid);
  }
  if (vdev.iommufdAttached) {
    yield* iommufdDeviceDetach(idev, IOMMU_NO_PASID);
    vdev.iommufdAttached = false;
  }
  const devid = idev.id;
  yield* iommufdDeviceUnbind(idev);
  vdev.iommufdDevice = null;
  vdev.kernel.event('iommufd_unbind', { device: vdev.dev.name, devid });
}

/** vfio_iommufd_physical_attach_ioas: attach, or replace when already attached. */
export function* vfioIommufdPhysicalAttachIoas(vdev: VfioDevice, ptId: { v: number }): KGen<number> {
  lockdepAssertHeld(vdev.devSet!.lock);
  if (!vdev.iommufdDevice) {
    vdev.kernel.warn('vfio_iommufd_physical_attach_ioas: not bound');
    return -EINVAL;
  }
  const rc = vdev.iommufdAttached
    ? yield* iommufdDeviceReplace(vdev.iommufdDevice, IOMMU_NO_PASID, ptId)
    : yield* iommufdDeviceAttach(vdev.iommufdDevice, IOMMU_NO_PASID, ptId);
  if (rc) return rc;
  vdev.iommufdAttached = true;
  return 0;
}

/** vfio_iommufd_physical_detach_ioas */
export function* vfioIommufdPhysicalDetachIoas(vdev: VfioDevice): KGen<void> {
  lockdepAssertHeld(vdev.devSet!.lock);
  if (!vdev.iommufdDevice || !vdev.iommufdAttached) return;
  yield* iommufdDeviceDetach(vdev.iommufdDevice, IOMMU_NO_PASID);
  vdev.iommufdAttached = false;
}

/** vfio_iommufd_physical_pasid_attach_ioas */
export function* vfioIommufdPhysicalPasidAttachIoas(vdev: VfioDevice, pasid: number, ptId: { v: number }): KGen<number> {
  lockdepAssertHeld(vdev.devSet!.lock);
  if (!vdev.iommufdDevice) return -EINVAL;
  if (vdev.pasids.has(pasid)) return yield* iommufdDeviceReplace(vdev.iommufdDevice, pasid, ptId);
  vdev.pasids.add(pasid);
  const rc = yield* iommufdDeviceAttach(vdev.iommufdDevice, pasid, ptId);
  if (rc) vdev.pasids.delete(pasid);
  return rc;
}

/** vfio_iommufd_physical_pasid_detach_ioas */
export function* vfioIommufdPhysicalPasidDetachIoas(vdev: VfioDevice, pasid: number): KGen<void> {
  lockdepAssertHeld(vdev.devSet!.lock);
  if (!vdev.iommufdDevice || !vdev.pasids.has(pasid)) return;
  yield* iommufdDeviceDetach(vdev.iommufdDevice, pasid);
  vdev.pasids.delete(pasid);
}
