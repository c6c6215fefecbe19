// DMA by a device through its IOMMU: the device model's view (what a bus-mastering function
// reads and writes). A transfer goes through the domain its IOMMU group (or PASID) is attached
// to: a paging domain translates each IOVA to pinned memory with the mapping's permissions;
// blocked and default domains give no access to user memory. A miss is a DMA fault.

import { IOMMU_READ, IOMMU_WRITE, IommuDevice, iommuTranslate } from './iommu.js';

export type DmaFault = { ok: false; fault: 'no-domain' | 'blocked' | 'unmapped' | 'permission'; iova: bigint };

/** The domain a device's transactions (with an optional PASID) are translated by. */
function domainOf(dev: IommuDevice, pasid?: number) {
  const g = dev.iommuGroup;
  if (!g) return null;
  return pasid === undefined ? g.domain : (g.pasidArray.get(pasid) ?? null);
}

function walk(
  dev: IommuDevice,
  iova: bigint,
  len: number,
  write: boolean,
  pasid: number | undefined,
  f: (pages: { read(o: number, n: number): Uint8Array; write(o: number, d: Uint8Array): void }, off: number, n: number, at: number) => void,
): DmaFault | null {
  const d = domainOf(dev, pasid);
  if (!d) return { ok: false, fault: 'no-domain', iova };
  if (d.type !== 'paging') return { ok: false, fault: 'blocked', iova };
  let at = 0;
  let cur = iova;
  // check the whole range first: a faulting transfer has no effect in this model
  const parts: Array<[ReturnType<typeof iommuTranslate> & object, number]> = [];
  while (at < len) {
    const t = iommuTranslate(d, cur);
    if (!t) return { ok: false, fault: 'unmapped', iova: cur };
    if (!(t.prot & (write ? IOMMU_WRITE : IOMMU_READ))) return { ok: false, fault: 'permission', iova: cur };
    const n = Math.min(len - at, Number(t.last - cur + 1n));
    parts.push([t, n]);
    at += n;
    cur += BigInt(n);
  }
  at = 0;
  for (const [t, n] of parts) {
    f(t.pages, t.off, n, at);
    at += n;
  }
  return null;
}

/** A device reads `len` bytes at `iova` (a DMA read of host memory). */
export function dmaRead(dev: IommuDevice, iova: bigint, len: number, pasid?: number): { ok: true; data: Uint8Array } | DmaFault {
  const out = new Uint8Array(len);
  const fault = walk(dev, iova, len, false, pasid, (p, off, n, at) => out.set(p.read(off, n), at));
  return fault ?? { ok: true, data: out };
}

/** A device writes `data` at `iova` (a DMA write to host memory). */
export function dmaWrite(dev: IommuDevice, iova: bigint, data: Uint8Array, pasid?: number): { ok: true } | DmaFault {
  const fault = walk(dev, iova, data.length, true, pasid, (p, off, n, at) => p.write(off, data.subarray(at, at + n)));
  return fault ?? { ok: true };
}
