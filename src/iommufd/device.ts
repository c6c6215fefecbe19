// drivers/iommu/iommufd/device.c: binding a physical device to a context (DMA ownership, the
// DEVICE object), attaching it to an IOAS (auto domains) or a HWPT, replace and detach.

import { EBUSY, EFAULT, EINVAL, ENODEV, EOPNOTSUPP, EPERM } from '../kernel/errno.js';
import { currentMm } from '../kernel/current.js';
import { TASK_SIZE, copyToUser } from '../kernel/uaccess.js';
import { StructBuf } from '../uapi/layout.js';
import * as I from '../uapi/iommufd.js';
import { KGen, KObject } from '../kernel/sched.js';
import { Kref, Mutex, krefGet, krefPut, mutexLock, mutexUnlock, refcountDec, refcountInc } from '../kernel/sync.js';
import {
  IommuDevice, IommuGroup, iommuAttachGroup, iommuDetachGroup, iommuDeviceClaimDmaOwner, iommuDeviceReleaseDmaOwner,
  iommuReplaceGroup,
} from '../iommu/iommu.js';
import { ioptRemoveReservedIova, ioptTableEnforceDevResvRegions } from './io_pagetable.js';
import { IommufdHwPagetable, IommufdHwptPaging, iommufdHwPagetablePut, iommufdHwptPagingAlloc } from './hw_pagetable.js';
import { IommufdIoas } from './ioas.js';
import {
  IommufdCtx, IommufdObject, iommufdCtxGet, iommufdCtxPut, iommufdGetObject, iommufdLockObj, iommufdObjectAbortAndDestroy,
  iommufdObjectAlloc, iommufdObjectDestroyUser, iommufdObjectFinalize, iommufdPutObject,
} from './object.js';
import type { Ucmd } from './main.js';

export const IOMMU_NO_PASID = 0;

/** iommufd module parameter allow_unsafe_interrupts */
export const iommufdParams = { allowUnsafeInterrupts: false };

interface Attach {
  hwpt: IommufdHwPagetable | null;
  devices: Map<number, IommufdDevice>;
}

/** struct iommufd_group: per (context, IOMMU group) attachment state. */
export class IommufdGroup extends KObject {
  readonly ref: Kref;
  readonly lock: Mutex;
  readonly pasidAttach = new Map<number, Attach>();
  constructor(
    readonly ictx: IommufdCtx,
    readonly group: IommuGroup,
  ) {
    super(`iommufd_group(${ictx.label}, ${group.id})`);
    this.ref = new Kref(`${this.label}->ref`, 1);
    this.lock = new Mutex(`${this.label}->lock`);
  }
}

/** struct iommufd_device */
export class IommufdDevice extends IommufdObject {
  readonly type = 'DEVICE' as const;
  igroup!: IommufdGroup;
  enforceCacheCoherency = false;
  destroying = false;
  constructor(
    ictx: IommufdCtx,
    readonly dev: IommuDevice,
  ) {
    super(ictx, `device(${dev.name})`);
  }
  /** iommufd_device_destroy: release DMA ownership, drop the group and the context reference */
  *destroy(): KGen<void> {
    yield* iommuDeviceReleaseDmaOwner(this.dev, (m) => this.ictx.kernel.warn(m));
    yield* iommufdPutGroup(this.igroup);
    yield* iommufdCtxPut(this.ictx);
  }
}

function* iommufdPutGroup(igroup: IommufdGroup): KGen<void> {
  yield* krefPut(igroup.ref, function* () {
    if (igroup.pasidAttach.size) igroup.ictx.kernel.warn(`iommufd_group_release: ${igroup.label} still attached`);
    if (igroup.ictx.groups.get(igroup.group.id) === igroup) igroup.ictx.groups.delete(igroup.group.id);
  });
}

/** iommufd_get_group: the context's iommufd_group for the device's IOMMU group. */
function* iommufdGetGroup(ictx: IommufdCtx, dev: IommuDevice): KGen<IommufdGroup | number> {
  const g = dev.iommuGroup;
  if (!g) return -ENODEV;
  const cur = ictx.groups.get(g.id);
  if (cur && cur.ref.value > 0) {
    yield* krefGet(cur.ref);
    return cur;
  }
  const ig = new IommufdGroup(ictx, g);
  ictx.groups.set(g.id, ig);
  return ig;
}

/** iommufd_device_bind */
export function* iommufdDeviceBind(ictx: IommufdCtx, dev: IommuDevice, id: { v: number }): KGen<IommufdDevice | number> {
  const hw = dev.iommuGroup?.hw;
  // iommufd always sets IOMMU_CACHE
  if (hw && !hw.cacheCoherency) return -EINVAL;
  const igroup = yield* iommufdGetGroup(ictx, dev);
  if (typeof igroup === 'number') return igroup;
  if (!igroup.group.hw.isolatedMsi) {
    if (!iommufdParams.allowUnsafeInterrupts) {
      yield* iommufdPutGroup(igroup);
      return -EPERM;
    }
    ictx.kernel.printk(`${dev.name}: MSI interrupts are not secure, they cannot be isolated by the platform`);
  }
  let rc = yield* iommuDeviceClaimDmaOwner(dev, ictx);
  if (rc) {
    yield* iommufdPutGroup(igroup);
    return rc;
  }
  const idev = iommufdObjectAlloc(ictx, new IommufdDevice(ictx, dev));
  if (typeof idev === 'number') {
    yield* iommuDeviceReleaseDmaOwner(dev, (m) => ictx.kernel.warn(m));
    yield* iommufdPutGroup(igroup);
    return idev;
  }
  yield* iommufdCtxGet(ictx);
  idev.enforceCacheCoherency = igroup.group.hw.enforceCacheCoherency;
  // the calling driver is a user until iommufd_device_unbind()
  yield* refcountInc(idev.users);
  idev.igroup = igroup;
  yield* iommufdObjectFinalize(ictx, idev);
  id.v = idev.id;
  rc = 0;
  return idev;
}

/** iommufd_ctx_has_group: some device of the group is bound to ictx. */
export function iommufdCtxHasGroup(ictx: IommufdCtx, group: IommuGroup): boolean {
  for (const o of ictx.liveObjects()) if (o.type === 'DEVICE' && (o as IommufdDevice).igroup.group === group) return true;
  return false;
}

/** iommufd_device_unbind */
export function* iommufdDeviceUnbind(idev: IommufdDevice): KGen<void> {
  yield* iommufdObjectDestroyUser(idev.ictx, idev);
}

function isAttached(idev: IommufdDevice, pasid: number): boolean {
  return idev.igroup.pasidAttach.get(pasid)?.devices.has(idev.id) ?? false;
}

/** iommufd_hwpt_pasid_compat */
function hwptPasidCompat(hwpt: IommufdHwPagetable, idev: IommufdDevice, pasid: number): number {
  const ig = idev.igroup;
  if (pasid === IOMMU_NO_PASID) {
    if (!hwpt.pasidCompat && [...ig.pasidAttach.keys()].some((p) => p !== IOMMU_NO_PASID)) return -EINVAL;
  } else {
    if (!hwpt.pasidCompat) return -EINVAL;
    const a = ig.pasidAttach.get(IOMMU_NO_PASID);
    if (a && a.hwpt && !a.hwpt.pasidCompat) return -EINVAL;
  }
  return 0;
}

/** iommufd_hw_pagetable_attach */
export function* iommufdHwPagetableAttach(hwpt: IommufdHwPagetable, idev: IommufdDevice, pasid: number): KGen<number> {
  const ig = idev.igroup;
  const attachResv = pasid === IOMMU_NO_PASID;
  yield* mutexLock(ig.lock);
  let rc = 0;
  let attach = ig.pasidAttach.get(pasid);
  const first = !attach;
  out: {
    if (!attach) attach = { hwpt: null, devices: new Map() };
    const old = attach.hwpt;
    if (attach.devices.has(idev.id)) {
      rc = -EBUSY;
      break out;
    }
    if (old && old !== hwpt) {
      rc = -EINVAL;
      break out;
    }
    if (attachResv) {
      rc = yield* ioptTableEnforceDevResvRegions(hwpt.ioas.iopt, idev.dev);
      if (rc) break out;
    }
    if (first) {
      rc = hwptPasidCompat(hwpt, idev, pasid);
      if (!rc) rc = pasid === IOMMU_NO_PASID ? yield* iommuAttachGroup(hwpt.domain!, ig.group) : 0;
      if (rc) {
        if (attachResv) yield* ioptRemoveReservedIova(hwpt.ioas.iopt, idev.dev);
        break out;
      }
      if (pasid !== IOMMU_NO_PASID) ig.group.pasidArray.set(pasid, hwpt.domain!);
      attach.hwpt = hwpt;
      ig.pasidAttach.set(pasid, attach);
    }
    yield* refcountInc(hwpt.users);
    attach.devices.set(idev.id, idev);
  }
  yield* mutexUnlock(ig.lock);
  return rc;
}

/** iommufd_hw_pagetable_detach: returns the hwpt the caller must put. */
export function* iommufdHwPagetableDetach(idev: IommufdDevice, pasid: number): KGen<IommufdHwPagetable | null> {
  const ig = idev.igroup;
  yield* mutexLock(ig.lock);
  const attach = ig.pasidAttach.get(pasid);
  if (!attach) {
    yield* mutexUnlock(ig.lock);
    return null;
  }
  const hwpt = attach.hwpt!;
  attach.devices.delete(idev.id);
  if (attach.devices.size === 0) {
    if (pasid === IOMMU_NO_PASID) yield* iommuDetachGroup(hwpt.domain!, ig.group);
    else ig.group.pasidArray.delete(pasid);
    ig.pasidAttach.delete(pasid);
  }
  if (pasid === IOMMU_NO_PASID) yield* ioptRemoveReservedIova(hwpt.ioas.iopt, idev.dev);
  yield* mutexUnlock(ig.lock);
  yield* iommufdHwPagetablePut(idev.ictx, hwpt);
  return hwpt;
}

type DoAttach = (idev: IommufdDevice, pasid: number, hwpt: IommufdHwPagetable) => KGen<IommufdHwPagetable | null | number>;

/** iommufd_device_do_attach */
function* doAttach(idev: IommufdDevice, pasid: number, hwpt: IommufdHwPagetable): KGen<IommufdHwPagetable | null | number> {
  const rc = yield* iommufdHwPagetableAttach(hwpt, idev, pasid);
  return rc ? rc : null;
}

/** iommufd_device_do_replace */
function* doReplace(idev: IommufdDevice, pasid: number, hwpt: IommufdHwPagetable): KGen<IommufdHwPagetable | null | number> {
  const ig = idev.igroup;
  const attachResv = pasid === IOMMU_NO_PASID;
  yield* mutexLock(ig.lock);
  let rc = 0;
  out: {
    const attach = ig.pasidAttach.get(pasid);
    if (!attach) {
      rc = -EINVAL;
      break out;
    }
    const old = attach.hwpt!;
    if (!isAttached(idev, pasid)) {
      rc = -EINVAL;
      break out;
    }
    if (hwpt === old) {
      yield* mutexUnlock(ig.lock);
      return null;
    }
    if (attachResv && hwpt.ioas !== old.ioas) {
      for (const cur of attach.devices.values()) {
        rc = yield* ioptTableEnforceDevResvRegions(hwpt.ioas.iopt, cur.dev);
        if (rc) {
          for (const c of attach.devices.values()) yield* ioptRemoveReservedIova(hwpt.ioas.iopt, c.dev);
          break out;
        }
      }
    }
    rc = hwptPasidCompat(hwpt, idev, pasid);
    if (!rc) rc = pasid === IOMMU_NO_PASID ? yield* iommuReplaceGroup(hwpt.domain!, ig.group) : 0;
    if (rc) {
      if (attachResv && hwpt.ioas !== old.ioas)
        for (const c of attach.devices.values()) yield* ioptRemoveReservedIova(hwpt.ioas.iopt, c.dev);
      break out;
    }
    if (pasid !== IOMMU_NO_PASID) ig.group.pasidArray.set(pasid, hwpt.domain!);
    if (attachResv && hwpt.ioas !== old.ioas)
      for (const c of attach.devices.values()) yield* ioptRemoveReservedIova(old.ioas.iopt, c.dev);
    attach.hwpt = hwpt;
    // move the refcounts held by the device array to the new hwpt; keep one for the caller
    const n = attach.devices.size;
    for (let i = 0; i < n; i++) yield* refcountInc(hwpt.users);
    for (let i = 1; i < n; i++) yield* refcountDec(old.users);
    yield* mutexUnlock(ig.lock);
    return old;
  }
  yield* mutexUnlock(ig.lock);
  return rc;
}

/** iommufd_device_auto_get_domain: reuse a compatible auto domain of the IOAS, or make one. */
function* autoGetDomain(
  idev: IommufdDevice,
  pasid: number,
  ioas: IommufdIoas,
  ptId: { v: number },
  fn: DoAttach,
): KGen<IommufdHwPagetable | null | number> {
  const immediate = fn === doAttach;
  const ictx = idev.ictx;
  yield* mutexLock(ioas.mutex);
  let result: IommufdHwPagetable | null | number;
  out: {
    for (const hwpt of [...ioas.hwptList]) {
      if (!hwpt.autoDomain) continue;
      if (!(yield* iommufdLockObj(hwpt))) continue;
      const r = yield* fn(idev, pasid, hwpt);
      if (typeof r === 'number') {
        yield* iommufdPutObject(ictx, hwpt);
        // EINVAL: incompatible domain, try the next one; other errors propagate
        if (r === -EINVAL) continue;
        result = r;
        break out;
      }
      ptId.v = hwpt.id;
      yield* iommufdPutObject(ictx, hwpt);
      result = r;
      break out;
    }
    const hwpt = yield* iommufdHwptPagingAlloc(ictx, ioas, idev, pasid, 0, immediate, false);
    if (typeof hwpt === 'number') {
      result = hwpt;
      break out;
    }
    if (!immediate) {
      const r = yield* fn(idev, pasid, hwpt);
      if (typeof r === 'number') {
        yield* iommufdObjectAbortAndDestroy(ictx, hwpt);
        result = r;
        break out;
      }
      result = r;
    } else result = null;
    hwpt.autoDomain = true;
    ptId.v = hwpt.id;
    yield* iommufdObjectFinalize(ictx, hwpt);
    ictx.kernel.event('iommufd_auto_hwpt', { ctx: ictx.num, id: hwpt.id, ioas: ioas.id });
  }
  yield* mutexUnlock(ioas.mutex);
  return result;
}

/** iommufd_device_change_pt */
function* changePt(idev: IommufdDevice, pasid: number, ptId: { v: number }, fn: DoAttach): KGen<number> {
  const ictx = idev.ictx;
  const pt = yield* iommufdGetObject(ictx, ptId.v, 'ANY');
  if (typeof pt === 'number') return pt;
  let destroy: IommufdHwPagetable | null | number;
  switch (pt.type) {
    case 'HWPT_NESTED':
    case 'HWPT_PAGING':
      destroy = yield* fn(idev, pasid, pt as IommufdHwptPaging);
      break;
    case 'IOAS':
      destroy = yield* autoGetDomain(idev, pasid, pt as IommufdIoas, ptId, fn);
      break;
    default:
      destroy = -EINVAL;
  }
  yield* iommufdPutObject(ictx, pt);
  if (typeof destroy === 'number') return destroy;
  // this destruction has to be after everything is unlocked
  if (destroy) yield* iommufdHwPagetablePut(ictx, destroy);
  return 0;
}

/** iommufd_device_attach */
export function* iommufdDeviceAttach(idev: IommufdDevice, pasid: number, ptId: { v: number }): KGen<number> {
  const rc = yield* changePt(idev, pasid, ptId, doAttach);
  if (rc) return rc;
  // pairs with iommufd_device_detach()
  yield* refcountInc(idev.users);
  return 0;
}

/** iommufd_device_replace */
export function* iommufdDeviceReplace(idev: IommufdDevice, pasid: number, ptId: { v: number }): KGen<number> {
  return yield* changePt(idev, pasid, ptId, doReplace);
}

/** iommufd_device_detach */
export function* iommufdDeviceDetach(idev: IommufdDevice, pasid: number): KGen<void> {
  const hwpt = yield* iommufdHwPagetableDetach(idev, pasid);
  if (!hwpt) return;
  yield* refcountDec(idev.users);
}


// ---- IOMMU_GET_HW_INFO ------------------------------------------------------------------------------

/**
 * The VT-d capability and extended capability registers of the oracle's emulated IOMMU (QEMU
 * intel-iommu with intremap=on, caching-mode=on, aw-bits 39), read with IOMMU_GET_HW_INFO on the
 * real kernel.
 */
export const VTD_CAP_REG = 0x00d2008c22260286n;
export const VTD_ECAP_REG = 0x0000000000f00f4an;

/** cap_reg for another address width: MGAW (bits 21:16) = width - 1, SAGAW (bits 12:8) as QEMU sets it */
function vtdCapReg(apertureEnd: bigint): bigint {
  let aw = 0n;
  while (aw < 64n && apertureEnd >> aw) aw++;
  if (aw === 39n) return VTD_CAP_REG;
  const sagaw = aw >= 48n ? 0x6n : 0x2n;
  return (VTD_CAP_REG & ~(0x3fn << 16n) & ~(0x1fn << 8n)) | ((aw - 1n) << 16n) | (sagaw << 8n);
}

/** intel_iommu_hw_info: struct iommu_hw_info_vtd, or -EOPNOTSUPP for another requested type. */
function intelIommuHwInfo(dev: IommuDevice, type: { v: number }): Uint8Array | number {
  if (type.v !== I.IOMMU_HW_INFO_TYPE_DEFAULT && type.v !== I.IOMMU_HW_INFO_TYPE_INTEL_VTD) return -EOPNOTSUPP;
  const vtd = new StructBuf(I.iommu_hw_info_vtd);
  vtd.set('flags', I.IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17);
  const hw = dev.iommuGroup!.hw;
  vtd.set('cap_reg', hw.vtdRegs?.cap ?? vtdCapReg(hw.apertureEnd));
  vtd.set('ecap_reg', hw.vtdRegs?.ecap ?? VTD_ECAP_REG);
  type.v = I.IOMMU_HW_INFO_TYPE_INTEL_VTD;
  return vtd.buf;
}

/** IOMMU_GET_HW_INFO (iommufd_get_hw_info) */
export function* iommufdGetHwInfo(ucmd: Ucmd): KGen<number> {
  type F = 'size' | 'flags' | 'dev_id' | 'data_len' | 'data_uptr' | 'in_data_type' | 'out_data_type' | 'out_max_pasid_log2' | '__reserved' | 'out_capabilities';
  const cmd = ucmd.cmd as StructBuf<F>;
  const ictx = ucmd.ictx;
  if (cmd.get('flags') & ~I.IOMMU_HW_INFO_FLAG_INPUT_TYPE) return -EOPNOTSUPP;
  if (cmd.bytes('__reserved').some((b) => b !== 0)) return -EOPNOTSUPP;
  // drivers don't support a random input type
  if (!(cmd.get('flags') & I.IOMMU_HW_INFO_FLAG_INPUT_TYPE)) cmd.set('in_data_type', I.IOMMU_HW_INFO_TYPE_DEFAULT);
  const idev = (yield* iommufdGetObject(ictx, cmd.get('dev_id'), 'DEVICE')) as IommufdDevice | number;
  if (typeof idev === 'number') return idev;
  let rc = 0;
  out: {
    const type = { v: cmd.get('in_data_type') };
    const data = intelIommuHwInfo(idev.dev, type);
    if (typeof data === 'number') {
      rc = data;
      break out;
    }
    cmd.set('out_data_type', type.v);
    const mm = currentMm();
    const ulen = cmd.get('data_len');
    const uptr = uptr64(cmd.big('data_uptr'));
    const copyLen = Math.min(ulen, data.length);
    if (copyLen && copyToUser(mm, uptr, data.subarray(0, copyLen)) < 0) {
      rc = -EFAULT;
      break out;
    }
    // zero the rest of a bigger user buffer (clear_user)
    if (copyLen < ulen && copyToUser(mm, uptr + copyLen, new Uint8Array(ulen - copyLen)) < 0) {
      rc = -EFAULT;
      break out;
    }
    // the length the kernel has, which may exceed the user's buffer
    cmd.set('data_len', data.length);
    const hw = idev.dev.iommuGroup!.hw;
    let caps = 0;
    if (hw.dirtyTracking) caps |= I.IOMMU_HW_CAP_DIRTY_TRACKING;
    // no function of the modelled hosts supports ATS (IOMMU_CAP_PCI_ATS_SUPPORTED)
    caps |= I.IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED;
    cmd.set('out_capabilities', caps);
    // no PASID support is modelled (dev->iommu->max_pasids == 0)
    cmd.set('out_max_pasid_log2', 0);
    rc = ucmd.respond(I.iommu_hw_info.size);
  }
  yield* iommufdPutObject(ictx, idev);
  return rc;
}

/** u64_to_user_ptr for the simulated address space (-1: faults) */
function uptr64(v: bigint): number {
  return v >= 0n && v < BigInt(TASK_SIZE) ? Number(v) : -1;
}
