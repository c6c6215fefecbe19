// drivers/vfio/pci/vfio_pci_intrs.c: vfio-pci's interrupts — INTx with its automask (PCI 2.3
// DisINTx or, without it, disabling the IRQ), the mask/unmask eventfds (drivers/vfio/virqfd.c),
// MSI and MSI-X vectors (with dynamic MSI-X allocation), the ERR and REQ eventfds, loopback
// triggers; plus VFIO_DEVICE_GET_IRQ_INFO and VFIO_DEVICE_SET_IRQS (vfio_pci_core.c:
// vfio_pci_ioctl_get_irq_info, vfio_pci_ioctl_set_irqs; vfio_main.c:
// vfio_set_irqs_validate_and_prepare).
//
// The physical side is the host's: vfio requests host IRQs (request_irq) whose handlers
// (vfio_intx_handler, vfio_msihandler) signal the user's eventfds, so an interrupt a device model
// raises (pciSetIntx, pciRaiseMsi, pciRaiseMsix) reaches the eventfd through the same path as on
// Linux and honours every mask on the way.

import { EBADF, EBUSY, EFAULT, EINVAL, ENODEV, ENOTTY } from '../kernel/errno.js';
import { currentMm, currentProcess } from '../kernel/current.js';
import {
  EPOLLHUP, EPOLLIN, EventfdCtx, EventfdWaiter, eventfdCtxDoRead, eventfdCtxFileget, eventfdSignalNow,
} from '../kernel/eventfd.js';
import { fput } from '../kernel/fs/file.js';
import { KGen } from '../kernel/sched.js';
import { mutexLock, mutexUnlock } from '../kernel/sync.js';
import { fdget } from '../kernel/syscalls.js';
import { copyFromUser, copyToUser } from '../kernel/uaccess.js';
import { StructBuf, offsetofend } from '../uapi/layout.js';
import * as U from '../uapi/vfio.js';
import { vfioSetIrqsValidateAndPrepare } from '../vfio/vfio_main.js';
import {
  PCI_INTERRUPT_PIN, PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_QSIZE, PCI_MSI_FLAGS, PCI_MSI_FLAGS_QMASK, pciReadConfigByte,
  pciReadConfigWord,
} from './pci/config_space.js';
import {
  IRQF_NO_AUTOEN, IRQF_SHARED, IRQ_HANDLED, IRQ_NONE, IRQ_NOTCONNECTED, IrqReturn, disableIrqNosync, enableIrq,
  freeIrq, irqBypassRegisterProducer, irqBypassUnregisterProducer, irqSetDisableUnlazy, localIrqRestore, localIrqSave,
  pciCheckAndMaskIntx, pciCheckAndUnmaskIntx, pciDevIrq, pciIntx, requestIrq, synchronizeIrq,
} from './pci/irq.js';
import {
  PCI_IRQ_MSI, PCI_IRQ_MSIX, getCachedMsiMsg, pciAllocIrqVectors, pciFreeIrqVectors, pciIrqVector,
  pciMsixAllocIrqAt, pciMsixCanAllocDyn, pciWriteMsiMsg,
} from './pci/msi.js';
import { VfioPciCoreDevice, vfioPciMemoryLockAndEnable, vfioPciMemoryUnlockAndRestore } from './vfio_pci_core.js';

const NUM_IRQS = U.VFIO_PCI_NUM_IRQS;
const INTX = U.VFIO_PCI_INTX_IRQ_INDEX;
const MSI = U.VFIO_PCI_MSI_IRQ_INDEX;
const MSIX = U.VFIO_PCI_MSIX_IRQ_INDEX;
const ERR = U.VFIO_PCI_ERR_IRQ_INDEX;
const REQ = U.VFIO_PCI_REQ_IRQ_INDEX;
const DATA_NONE = U.VFIO_IRQ_SET_DATA_NONE;
const DATA_BOOL = U.VFIO_IRQ_SET_DATA_BOOL;
const DATA_EVENTFD = U.VFIO_IRQ_SET_DATA_EVENTFD;

/** struct virqfd (drivers/vfio/virqfd.c) */
interface Virqfd {
  eventfd: EventfdCtx;
  wait: EventfdWaiter;
}

/** struct vfio_pci_irq_ctx */
export interface VfioPciIrqCtx {
  trigger: EventfdCtx | null;
  unmask: Virqfd | null;
  mask: Virqfd | null;
  name: string;
  masked: boolean;
  /** the irq bypass producer was registered (irq_bypass_register_producer succeeded) */
  producer: boolean;
}

/** The interrupt part of struct vfio_pci_core_device that is not shared with the config code. */
interface VfioIntrs {
  /** vdev->ctx: per vector (INTx: 0) */
  readonly ctx: Map<number, VfioPciIrqCtx>;
}

/** vdev->has_dyn_msix (vfio_pci_core_enable: pci_msix_can_alloc_dyn when there is an MSI-X cap) */
function hasDynMsix(vdev: VfioPciCoreDevice): boolean {
  return !!vdev.pdev.msixCap && pciMsixCanAllocDyn(vdev.pdev);
}

const intrsOf = new WeakMap<VfioPciCoreDevice, VfioIntrs>();

function intrs(vdev: VfioPciCoreDevice): VfioIntrs {
  let s = intrsOf.get(vdev);
  if (!s) {
    s = { ctx: new Map() };
    intrsOf.set(vdev, s);
  }
  return s;
}

/** The vectors with a context, in index order (xa_for_each), for tests and traces. */
export function vfioPciIrqCtxs(vdev: VfioPciCoreDevice): Map<number, VfioPciIrqCtx> {
  return new Map([...intrs(vdev).ctx.entries()].sort((a, b) => a[0] - b[0]));
}

const k = (vdev: VfioPciCoreDevice) => vdev.vdev.kernel;
const isIntx = (vdev: VfioPciCoreDevice) => vdev.irqType === INTX;
const isIrqNone = (vdev: VfioPciCoreDevice) => !(vdev.irqType === INTX || vdev.irqType === MSI || vdev.irqType === MSIX);
const irqIs = (vdev: VfioPciCoreDevice, type: number) => vdev.irqType === type;

function ctxGet(vdev: VfioPciCoreDevice, index: number): VfioPciIrqCtx | null {
  return intrs(vdev).ctx.get(index) ?? null;
}

function ctxAlloc(vdev: VfioPciCoreDevice, index: number): VfioPciIrqCtx {
  const c: VfioPciIrqCtx = { trigger: null, unmask: null, mask: null, name: '', masked: false, producer: false };
  intrs(vdev).ctx.set(index, c);
  return c;
}

function ctxFree(vdev: VfioPciCoreDevice, index: number): void {
  intrs(vdev).ctx.delete(index);
}

// ---- eventfds -------------------------------------------------------------------------------------

/** eventfd_ctx_fdget: -EBADF for a closed fd, -EINVAL for a file that is not an eventfd. */
function* eventfdCtxFdget(fd: number): KGen<EventfdCtx | number> {
  const proc = currentProcess();
  const f = fd >= 0 && proc ? yield* fdget(proc, fd) : null;
  if (!f) return -EBADF;
  const c = eventfdCtxFileget(f);
  yield* fput(f);
  return c;
}

/** vfio_virqfd_enable: -EBADF, -EINVAL (not an eventfd), -EBUSY (one is installed already). */
function* vfioVirqfdEnable(
  slot: { get(): Virqfd | null; set(v: Virqfd | null): void },
  handler: (() => number) | null,
  thread: (() => void) | null,
  fd: number,
): KGen<number> {
  const proc = currentProcess();
  const f = fd >= 0 && proc ? yield* fdget(proc, fd) : null;
  if (!f) return -EBADF;
  const c = eventfdCtxFileget(f);
  if (typeof c === 'number') {
    yield* fput(f);
    return c;
  }
  if (slot.get()) {
    yield* fput(f);
    return -EBUSY;
  }
  const virqfd: Virqfd = {
    eventfd: c,
    // virqfd_wakeup
    wait: (ev, events) => {
      if (events & EPOLLIN) {
        eventfdCtxDoRead(ev);
        if ((!handler || handler()) && thread) thread(); // schedule_work(&virqfd->inject)
      }
      if (events & EPOLLHUP && slot.get() === virqfd) {
        slot.set(null);
        ev.waiters.delete(virqfd.wait); // virqfd_deactivate -> virqfd_shutdown
      }
    },
  };
  slot.set(virqfd);
  c.waiters.add(virqfd.wait);
  // an event already pending on the eventfd is handled as if it had just arrived
  if (c.count > 0n && (!handler || handler()) && thread) thread();
  yield* fput(f);
  return 0;
}

/** vfio_virqfd_disable */
function vfioVirqfdDisable(slot: { get(): Virqfd | null; set(v: Virqfd | null): void }): void {
  const v = slot.get();
  if (v) {
    v.eventfd.waiters.delete(v.wait);
    slot.set(null);
  }
}

const unmaskSlot = (c: VfioPciIrqCtx) => ({ get: () => c.unmask, set: (v: Virqfd | null) => void (c.unmask = v) });
const maskSlot = (c: VfioPciIrqCtx) => ({ get: () => c.mask, set: (v: Virqfd | null) => void (c.mask = v) });

// ---- INTx -------------------------------------------------------------------------------------------

/** vfio_send_intx_eventfd */
function vfioSendIntxEventfd(vdev: VfioPciCoreDevice, c: VfioPciIrqCtx | null): void {
  if (isIntx(vdev) && !vdev.virqDisabled) {
    const trigger = c?.trigger;
    if (trigger) eventfdSignalNow(trigger);
  }
}

/** __vfio_pci_intx_mask (igate held): true if the mask state changed. */
function vfioPciIntxMaskLocked(vdev: VfioPciCoreDevice): boolean {
  const pdev = vdev.pdev;
  let changed = false;
  localIrqSave(k(vdev)); // spin_lock_irqsave(&vdev->irqlock)
  try {
    // masking can come from the interrupt, the ioctl, or config space (INTx disable), so also
    // when INTx is not in use: then the physical bit just follows the virtual one
    if (!isIntx(vdev)) {
      if (vdev.pci23) pciIntx(pdev, false);
      return false;
    }
    const c = ctxGet(vdev, 0);
    if (!c) {
      k(vdev).warn(`${pdev.name}: __vfio_pci_intx_mask without an INTx context`);
      return false;
    }
    if (!c.masked) {
      if (vdev.pci23) pciIntx(pdev, false);
      else disableIrqNosync(k(vdev), pciDevIrq(k(vdev), pdev));
      c.masked = true;
      changed = true;
    }
  } finally {
    localIrqRestore(k(vdev));
  }
  return changed;
}

/** vfio_pci_intx_mask (the config space's INTx-disable emulation reaches it through
 * vfio_pci_core.ts: vfioPciIntxMask, once vfio_pci.ts registered these ops) */
export function* vfioIntxMask(vdev: VfioPciCoreDevice): KGen<boolean> {
  yield* mutexLock(vdev.igate);
  const r = vfioPciIntxMaskLocked(vdev);
  yield* mutexUnlock(vdev.igate);
  return r;
}

/**
 * vfio_pci_intx_unmask_handler: > 0 when the function still has an interrupt pending, so the
 * caller re-sends it to the user instead of unmasking (it stays masked).
 */
function vfioPciIntxUnmaskHandler(vdev: VfioPciCoreDevice, c: VfioPciIrqCtx | null): number {
  const pdev = vdev.pdev;
  let ret = 0;
  localIrqSave(k(vdev));
  try {
    if (!isIntx(vdev)) {
      if (vdev.pci23) pciIntx(pdev, true);
      return 0;
    }
    if (c && c.masked && !vdev.virqDisabled) {
      if (vdev.pci23) {
        if (!pciCheckAndUnmaskIntx(k(vdev), pdev)) ret = 1;
      } else enableIrq(k(vdev), pciDevIrq(k(vdev), pdev));
      c.masked = ret > 0;
    }
  } finally {
    localIrqRestore(k(vdev));
  }
  return ret;
}

/** __vfio_pci_intx_unmask (igate held) */
function vfioPciIntxUnmaskLocked(vdev: VfioPciCoreDevice): void {
  const c = ctxGet(vdev, 0);
  if (vfioPciIntxUnmaskHandler(vdev, c) > 0) vfioSendIntxEventfd(vdev, c);
}

/** vfio_pci_intx_unmask */
export function* vfioIntxUnmask(vdev: VfioPciCoreDevice): KGen<void> {
  yield* mutexLock(vdev.igate);
  vfioPciIntxUnmaskLocked(vdev);
  yield* mutexUnlock(vdev.igate);
}

/** vfio_intx_handler: the host IRQ handler (hard irq context, may be shared). */
function vfioIntxHandler(vdev: VfioPciCoreDevice, c: VfioPciIrqCtx): IrqReturn {
  let ret: IrqReturn = IRQ_NONE;
  localIrqSave(k(vdev));
  try {
    if (!vdev.pci23) {
      disableIrqNosync(k(vdev), pciDevIrq(k(vdev), vdev.pdev));
      c.masked = true;
      ret = IRQ_HANDLED;
    } else if (!c.masked && pciCheckAndMaskIntx(k(vdev), vdev.pdev)) {
      c.masked = true;
      ret = IRQ_HANDLED;
    }
  } finally {
    localIrqRestore(k(vdev));
  }
  if (ret === IRQ_HANDLED) vfioSendIntxEventfd(vdev, c);
  return ret;
}

/** vfio_intx_enable */
function vfioIntxEnable(vdev: VfioPciCoreDevice, trigger: EventfdCtx | null): number {
  const kk = k(vdev);
  const pdev = vdev.pdev;
  if (!isIrqNone(vdev)) return -EINVAL;
  const irq = pciDevIrq(kk, pdev);
  if (!irq || irq === IRQ_NOTCONNECTED) return -ENODEV;
  const c = ctxAlloc(vdev, 0);
  c.name = `vfio-intx(${pdev.name})`;
  c.trigger = trigger;
  // the initial mask state follows virq_disabled; with DisINTx the physical bit reflects it
  c.masked = vdev.virqDisabled;
  let irqflags: number;
  if (vdev.pci23) {
    pciIntx(pdev, !c.masked);
    irqflags = IRQF_SHARED;
  } else irqflags = c.masked ? IRQF_NO_AUTOEN : 0;
  vdev.irqType = INTX;
  if (!vdev.pci23) irqSetDisableUnlazy(kk, irq, true);
  const ret = requestIrq(kk, irq, () => vfioIntxHandler(vdev, c), irqflags, c.name, c);
  if (ret) {
    if (!vdev.pci23) irqSetDisableUnlazy(kk, irq, false);
    vdev.irqType = NUM_IRQS;
    ctxFree(vdev, 0);
    return ret;
  }
  return 0;
}

/** vfio_intx_set_signal */
function vfioIntxSetSignal(vdev: VfioPciCoreDevice, trigger: EventfdCtx | null): number {
  const c = ctxGet(vdev, 0);
  if (!c) {
    k(vdev).warn(`${vdev.pdev.name}: vfio_intx_set_signal without an INTx context`);
    return -EINVAL;
  }
  const old = c.trigger;
  c.trigger = trigger;
  // releasing an old trigger synchronizes in-flight users (nothing is in flight here)
  if (old) synchronizeIrq(k(vdev), pciDevIrq(k(vdev), vdev.pdev));
  return 0;
}

/** vfio_intx_disable */
function vfioIntxDisable(vdev: VfioPciCoreDevice): void {
  const kk = k(vdev);
  const c = ctxGet(vdev, 0);
  if (!c) kk.warn(`${vdev.pdev.name}: vfio_intx_disable without an INTx context`);
  else {
    vfioVirqfdDisable(unmaskSlot(c));
    vfioVirqfdDisable(maskSlot(c));
    const irq = pciDevIrq(kk, vdev.pdev);
    freeIrq(kk, irq, c);
    if (!vdev.pci23) irqSetDisableUnlazy(kk, irq, false);
    ctxFree(vdev, 0);
  }
  vdev.irqType = NUM_IRQS;
}

// ---- MSI / MSI-X ----------------------------------------------------------------------------------------

/** vfio_msi_enable: 0, a negative errno, or (like the kernel) the positive number of vectors the
 * host could give when fewer than asked. */
function* vfioMsiEnable(vdev: VfioPciCoreDevice, nvec: number, msix: boolean): KGen<number> {
  if (!isIrqNone(vdev)) return -EINVAL;
  const cmd = yield* vfioPciMemoryLockAndEnable(vdev);
  const ret = pciAllocIrqVectors(k(vdev), vdev.pdev, 1, nvec, msix ? PCI_IRQ_MSIX : PCI_IRQ_MSI);
  if (ret < nvec) {
    if (ret > 0) pciFreeIrqVectors(k(vdev), vdev.pdev);
    yield* vfioPciMemoryUnlockAndRestore(vdev, cmd);
    return ret;
  }
  yield* vfioPciMemoryUnlockAndRestore(vdev, cmd);
  vdev.irqType = msix ? MSIX : MSI;
  // the virtual hardware's max MSI vectors field: log2 of the vectors enabled
  if (!msix) vdev.msiQmax = 31 - Math.clz32(nvec * 2 - 1);
  return 0;
}

/** vfio_msi_alloc_irq: the vector's IRQ, allocated dynamically (MSI-X) if it has none yet. */
function* vfioMsiAllocIrq(vdev: VfioPciCoreDevice, vector: number, msix: boolean): KGen<number> {
  const kk = k(vdev);
  const irq = pciIrqVector(kk, vdev.pdev, vector);
  if (irq === 0) {
    kk.warn(`${vdev.pdev.name}: vector ${vector} has IRQ 0`);
    return -EINVAL;
  }
  if (irq > 0 || !msix || !hasDynMsix(vdev)) return irq;
  const cmd = yield* vfioPciMemoryLockAndEnable(vdev);
  const r = pciMsixAllocIrqAt(kk, vdev.pdev, vector);
  yield* vfioPciMemoryUnlockAndRestore(vdev, cmd);
  return r;
}

/** vfio_msi_set_vector_signal: tear down the vector's trigger, then install the new one (fd >= 0). */
function* vfioMsiSetVectorSignal(vdev: VfioPciCoreDevice, vector: number, fd: number, msix: boolean): KGen<number> {
  const kk = k(vdev);
  const pdev = vdev.pdev;
  let c = ctxGet(vdev, vector);
  let irq = -EINVAL;
  if (c) {
    if (c.producer) irqBypassUnregisterProducer(kk, c.trigger);
    irq = pciIrqVector(kk, pdev, vector);
    const cmd = yield* vfioPciMemoryLockAndEnable(vdev);
    freeIrq(kk, irq, c.trigger);
    yield* vfioPciMemoryUnlockAndRestore(vdev, cmd);
    // the interrupt stays allocated; it is freed at MSI/MSI-X disable
    ctxFree(vdev, vector);
  }
  if (fd < 0) return 0;
  if (irq === -EINVAL) {
    irq = yield* vfioMsiAllocIrq(vdev, vector, msix);
    if (irq < 0) return irq;
  }
  c = ctxAlloc(vdev, vector);
  c.name = `vfio-msi${msix ? 'x' : ''}[${vector}](${pdev.name})`;
  const trigger = yield* eventfdCtxFdget(fd);
  if (typeof trigger === 'number') {
    ctxFree(vdev, vector);
    return trigger;
  }
  // refresh the message of a vector allocated before (it may have been cleared since)
  const cmd = yield* vfioPciMemoryLockAndEnable(vdev);
  if (msix) pciWriteMsiMsg(kk, irq, getCachedMsiMsg(kk, irq));
  const ret = requestIrq(kk, irq, () => (eventfdSignalNow(trigger), IRQ_HANDLED), 0, c.name, trigger);
  yield* vfioPciMemoryUnlockAndRestore(vdev, cmd);
  if (ret) {
    ctxFree(vdev, vector);
    return ret;
  }
  const r = irqBypassRegisterProducer(kk, trigger);
  if (r) kk.printk(`${pdev.name}: irq bypass producer (eventfd ${trigger.label}#${trigger.kid}) registration fails: ${r}`);
  c.producer = r === 0;
  c.trigger = trigger;
  return 0;
}

/** vfio_msi_set_block: on failure, every vector touched so far is left without a trigger. */
function* vfioMsiSetBlock(vdev: VfioPciCoreDevice, start: number, count: number, fds: Int32Array | null, msix: boolean): KGen<number> {
  let ret = 0;
  let i = 0;
  let j = start;
  for (; i < count && !ret; i++, j++) {
    const fd = fds ? fds[i]! : -1;
    ret = yield* vfioMsiSetVectorSignal(vdev, j, fd, msix);
  }
  if (ret) for (let v = start; v < j; v++) yield* vfioMsiSetVectorSignal(vdev, v, -1, msix);
  return ret;
}

/** vfio_msi_disable */
function* vfioMsiDisable(vdev: VfioPciCoreDevice, msix: boolean): KGen<void> {
  for (const [i, c] of vfioPciIrqCtxs(vdev)) {
    vfioVirqfdDisable(unmaskSlot(c));
    vfioVirqfdDisable(maskSlot(c));
    yield* vfioMsiSetVectorSignal(vdev, i, -1, msix);
  }
  const cmd = yield* vfioPciMemoryLockAndEnable(vdev);
  pciFreeIrqVectors(k(vdev), vdev.pdev);
  yield* vfioPciMemoryUnlockAndRestore(vdev, cmd);
  // both disable paths clear DisINTx (pci_intx_for_msi); NoINTx devices keep it set
  if (vdev.nointx) pciIntx(vdev.pdev, false);
  vdev.irqType = NUM_IRQS;
}

// ---- the SET_IRQS actions -----------------------------------------------------------------------------------

type SetFn = (vdev: VfioPciCoreDevice, index: number, start: number, count: number, flags: number, data: Uint8Array | null) => KGen<number>;

const s32 = (d: Uint8Array, i = 0) => new DataView(d.buffer, d.byteOffset, d.byteLength).getInt32(4 * i, true);

/** vfio_pci_set_intx_unmask */
function* vfioPciSetIntxUnmask(vdev: VfioPciCoreDevice, _i: number, start: number, count: number, flags: number, data: Uint8Array | null): KGen<number> {
  if (!isIntx(vdev) || start !== 0 || count !== 1) return -EINVAL;
  if (flags & DATA_NONE) vfioPciIntxUnmaskLocked(vdev);
  else if (flags & DATA_BOOL) {
    if (data![0]) vfioPciIntxUnmaskLocked(vdev);
  } else if (flags & DATA_EVENTFD) {
    const c = ctxGet(vdev, 0);
    const fd = s32(data!);
    if (!c) {
      k(vdev).warn(`${vdev.pdev.name}: INTx unmask eventfd without an INTx context`);
      return -EINVAL;
    }
    if (fd >= 0)
      return yield* vfioVirqfdEnable(unmaskSlot(c), () => vfioPciIntxUnmaskHandler(vdev, c), () => vfioSendIntxEventfd(vdev, c), fd);
    vfioVirqfdDisable(unmaskSlot(c));
  }
  return 0;
}

/** vfio_pci_set_intx_mask */
function* vfioPciSetIntxMask(vdev: VfioPciCoreDevice, _i: number, start: number, count: number, flags: number, data: Uint8Array | null): KGen<number> {
  if (!isIntx(vdev) || start !== 0 || count !== 1) return -EINVAL;
  if (flags & DATA_NONE) vfioPciIntxMaskLocked(vdev);
  else if (flags & DATA_BOOL) {
    if (data![0]) vfioPciIntxMaskLocked(vdev);
  } else if (flags & DATA_EVENTFD) return -ENOTTY; // vfio_pci_set_intx_mask: 7.2 has no eventfd-driven mask and answers ENOTTY
  return 0;
}

/** vfio_pci_set_intx_trigger */
function* vfioPciSetIntxTrigger(vdev: VfioPciCoreDevice, _i: number, start: number, count: number, flags: number, data: Uint8Array | null): KGen<number> {
  if (isIntx(vdev) && !count && flags & DATA_NONE) {
    vfioIntxDisable(vdev);
    return 0;
  }
  if (!(isIntx(vdev) || isIrqNone(vdev)) || start !== 0 || count !== 1) return -EINVAL;
  if (flags & DATA_EVENTFD) {
    const fd = s32(data!);
    let trigger: EventfdCtx | null = null;
    if (fd >= 0) {
      const t = yield* eventfdCtxFdget(fd);
      if (typeof t === 'number') return t;
      trigger = t;
    }
    return isIntx(vdev) ? vfioIntxSetSignal(vdev, trigger) : vfioIntxEnable(vdev, trigger);
  }
  if (!isIntx(vdev)) return -EINVAL;
  if (flags & DATA_NONE) vfioSendIntxEventfd(vdev, ctxGet(vdev, 0));
  else if (flags & DATA_BOOL) {
    if (data![0]) vfioSendIntxEventfd(vdev, ctxGet(vdev, 0));
  }
  return 0;
}

/** vfio_pci_set_msi_trigger */
function* vfioPciSetMsiTrigger(vdev: VfioPciCoreDevice, index: number, start: number, count: number, flags: number, data: Uint8Array | null): KGen<number> {
  const msix = index === MSIX;
  if (irqIs(vdev, index) && !count && flags & DATA_NONE) {
    yield* vfioMsiDisable(vdev, msix);
    return 0;
  }
  if (!(irqIs(vdev, index) || isIrqNone(vdev))) return -EINVAL;
  if (flags & DATA_EVENTFD) {
    const fds = data ? new Int32Array(data.slice().buffer, 0, count) : new Int32Array(0);
    if (vdev.irqType === index) return yield* vfioMsiSetBlock(vdev, start, count, fds, msix);
    let ret = yield* vfioMsiEnable(vdev, start + count, msix);
    if (ret) return ret;
    ret = yield* vfioMsiSetBlock(vdev, start, count, fds, msix);
    if (ret) yield* vfioMsiDisable(vdev, msix);
    return ret;
  }
  if (!irqIs(vdev, index)) return -EINVAL;
  for (let i = start; i < start + count; i++) {
    const c = ctxGet(vdev, i);
    if (!c) continue;
    if (flags & DATA_NONE) eventfdSignalNow(c.trigger!);
    else if (flags & DATA_BOOL) {
      if (data![i - start]) eventfdSignalNow(c.trigger!);
    }
  }
  return 0;
}

type TriggerSlot = 'errTrigger' | 'reqTrigger';

/** vfio_pci_set_ctx_trigger_single: the ERR / REQ eventfd (DATA_NONE/BOOL: loopback). */
function* vfioPciSetCtxTriggerSingle(vdev: VfioPciCoreDevice, slot: TriggerSlot, count: number, flags: number, data: Uint8Array | null): KGen<number> {
  if (flags & DATA_NONE) {
    const ev = vdev[slot];
    if (!ev) return -EINVAL;
    if (count) {
      eventfdSignalNow(ev);
      return 0;
    }
    vdev[slot] = null;
    return 0;
  } else if (flags & DATA_BOOL) {
    if (!count) return -EINVAL;
    if (data![0]) {
      const ev = vdev[slot];
      if (ev) eventfdSignalNow(ev);
    }
    return 0;
  } else if (flags & DATA_EVENTFD) {
    if (!count) return -EINVAL;
    const fd = s32(data!);
    if (fd === -1) {
      vdev[slot] = null;
      return 0;
    } else if (fd >= 0) {
      const ev = yield* eventfdCtxFdget(fd);
      if (typeof ev === 'number') return ev;
      vdev[slot] = ev;
      return 0;
    }
  }
  return -EINVAL;
}

/** vfio_pci_set_err_trigger */
function* vfioPciSetErrTrigger(vdev: VfioPciCoreDevice, index: number, start: number, count: number, flags: number, data: Uint8Array | null): KGen<number> {
  if (index !== ERR || start !== 0 || count > 1) return -EINVAL;
  return yield* vfioPciSetCtxTriggerSingle(vdev, 'errTrigger', count, flags, data);
}

/** vfio_pci_set_req_trigger */
function* vfioPciSetReqTrigger(vdev: VfioPciCoreDevice, index: number, start: number, count: number, flags: number, data: Uint8Array | null): KGen<number> {
  if (index !== REQ || start !== 0 || count > 1) return -EINVAL;
  return yield* vfioPciSetCtxTriggerSingle(vdev, 'reqTrigger', count, flags, data);
}

/** vfio_pci_set_irqs_ioctl (igate held, or the device closing): -ENOTTY for no such action. */
export function* vfioPciSetIrqsIoctl(vdev: VfioPciCoreDevice, flags: number, index: number, start: number, count: number, data: Uint8Array | null): KGen<number> {
  let func: SetFn | null = null;
  const action = flags & U.VFIO_IRQ_SET_ACTION_TYPE_MASK;
  switch (index) {
    case INTX:
      if (action === U.VFIO_IRQ_SET_ACTION_MASK) func = vfioPciSetIntxMask;
      else if (action === U.VFIO_IRQ_SET_ACTION_UNMASK) func = vfioPciSetIntxUnmask;
      else if (action === U.VFIO_IRQ_SET_ACTION_TRIGGER) func = vfioPciSetIntxTrigger;
      break;
    case MSI:
    case MSIX:
      // MASK/UNMASK of MSI/MSI-X: 7.2 has no handler for them (func stays NULL), so ENOTTY
      if (action === U.VFIO_IRQ_SET_ACTION_TRIGGER) func = vfioPciSetMsiTrigger;
      break;
    case ERR:
      if (action === U.VFIO_IRQ_SET_ACTION_TRIGGER && vfioPciIsPcie(vdev)) func = vfioPciSetErrTrigger;
      break;
    case REQ:
      if (action === U.VFIO_IRQ_SET_ACTION_TRIGGER) func = vfioPciSetReqTrigger;
      break;
  }
  if (!func) return -ENOTTY;
  return yield* func(vdev, index, start, count, flags, data);
}

// ---- the ioctls ---------------------------------------------------------------------------------------------

/** pci_is_pcie */
function vfioPciIsPcie(vdev: VfioPciCoreDevice): boolean {
  return vdev.pdev.isPcie;
}

/** The virtual PCI_INTERRUPT_PIN (vfio_config_init zeroes it for nointx, no IRQ, VFs). */
export function vfioPciVirtIntxPin(vdev: VfioPciCoreDevice): number {
  if (vdev.vconfig) return vdev.vconfig[PCI_INTERRUPT_PIN]!;
  const pdev = vdev.pdev;
  if (pdev.isVirtfn || vdev.nointx) return 0;
  const irq = pciDevIrq(k(vdev), pdev);
  if (!irq || irq === IRQ_NOTCONNECTED) return 0;
  return pciReadConfigByte(pdev, PCI_INTERRUPT_PIN);
}

/** vfio_pci_get_irq_count */
export function vfioPciGetIrqCount(vdev: VfioPciCoreDevice, irqType: number): number {
  const pdev = vdev.pdev;
  if (irqType === INTX) return vfioPciVirtIntxPin(vdev) ? 1 : 0;
  if (irqType === MSI) {
    const cap = pdev.msiCap;
    if (cap) return 1 << ((pciReadConfigWord(pdev, cap.at + PCI_MSI_FLAGS) & PCI_MSI_FLAGS_QMASK) >> 1);
  } else if (irqType === MSIX) {
    const cap = pdev.msixCap;
    if (cap) return (pciReadConfigWord(pdev, cap.at + PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_QSIZE) + 1;
  } else if (irqType === ERR) {
    if (vfioPciIsPcie(vdev)) return 1;
  } else if (irqType === REQ) return 1;
  return 0;
}

/** VFIO_DEVICE_GET_IRQ_INFO (vfio_pci_ioctl_get_irq_info) */
export function* vfioPciIoctlGetIrqInfo(vdev: VfioPciCoreDevice, arg: number): KGen<number> {
  const S = U.vfio_irq_info;
  const minsz = offsetofend(S, 'count');
  const mm = currentMm();
  const b = copyFromUser(mm, arg, minsz);
  if (typeof b === 'number') return -EFAULT;
  const info = new StructBuf(S, b);
  const index = info.get('index');
  if (info.get('argsz') < minsz || index >= NUM_IRQS) return -EINVAL;
  if (index === ERR && !vfioPciIsPcie(vdev)) return -EINVAL;
  let flags = U.VFIO_IRQ_INFO_EVENTFD;
  info.set('count', vfioPciGetIrqCount(vdev, index));
  if (index === INTX) flags |= U.VFIO_IRQ_INFO_MASKABLE | U.VFIO_IRQ_INFO_AUTOMASKED;
  else if (index !== MSIX || !hasDynMsix(vdev)) flags |= U.VFIO_IRQ_INFO_NORESIZE;
  info.set('flags', flags);
  return copyToUser(mm, arg, info.head(minsz)) < 0 ? -EFAULT : 0;
}

/** VFIO_DEVICE_SET_IRQS (vfio_pci_ioctl_set_irqs) */
export function* vfioPciIoctlSetIrqs(vdev: VfioPciCoreDevice, arg: number): KGen<number> {
  const S = U.vfio_irq_set;
  const minsz = offsetofend(S, 'count');
  const mm = currentMm();
  const b = copyFromUser(mm, arg, minsz);
  if (typeof b === 'number') return -EFAULT;
  const hdr = new StructBuf(S, b) as StructBuf<'argsz' | 'flags' | 'index' | 'start' | 'count'>;
  const max = vfioPciGetIrqCount(vdev, hdr.get('index'));
  const dataSize = vfioSetIrqsValidateAndPrepare(hdr, max, NUM_IRQS);
  if (dataSize < 0) return dataSize;
  let data: Uint8Array | null = null;
  if (dataSize) {
    const d = copyFromUser(mm, arg + minsz, dataSize);
    if (typeof d === 'number') return -EFAULT;
    data = d;
  }
  yield* mutexLock(vdev.igate);
  const ret = yield* vfioPciSetIrqsIoctl(vdev, hdr.get('flags'), hdr.get('index'), hdr.get('start'), hdr.get('count'), data);
  yield* mutexUnlock(vdev.igate);
  return ret;
}

// ---- open / close hooks (vfio_pci_core_enable / _disable) -----------------------------------------------

/**
 * The interrupt part of vfio_pci_core_disable: whatever is enabled is disabled as by SET_IRQS
 * {DATA_NONE|ACTION_TRIGGER, irq_type, 0, 0} (no index in use: ENOTTY, ignored), and the
 * virtual INTx-disable state is forgotten.
 */
export function* vfioPciIrqsDisable(vdev: VfioPciCoreDevice): KGen<void> {
  yield* vfioPciSetIrqsIoctl(vdev, DATA_NONE | U.VFIO_IRQ_SET_ACTION_TRIGGER, vdev.irqType, 0, 0, null);
  vdev.virqDisabled = false;
}

/**
 * vfio_pci_core_aer_err_detected: an AER error on the function signals the ERR eventfd. The
 * kernel reads err_trigger under RCU, not igate: the error is reported even while a SET_IRQS
 * holds igate (the pointer is replaced whole, so either eventfd is signalled, never half of one).
 */
export function* vfioPciCoreAerErrDetected(vdev: VfioPciCoreDevice): KGen<void> {
  const ev = vdev.errTrigger; // rcu_dereference
  if (ev) eventfdSignalNow(ev);
}
