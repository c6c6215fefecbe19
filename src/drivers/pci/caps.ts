// The PCI capabilities a simulated function implements, as the topology declares them: the
// standard list (from PCI_CAPABILITY_LIST at 0x34) and the PCIe extended list (from 0x100). The
// config-space builder lays these out byte for byte; drivers read them as the kernel reads the
// real registers (pdev->msi_cap, pdev->msix_cap, pdev->pm_cap, pcie_capability_read_*).
// Offsets and IDs: include/uapi/linux/pci_regs.h.

export const PCI_CAP_ID_PM = 0x01;
export const PCI_CAP_ID_MSI = 0x05;
export const PCI_CAP_ID_VNDR = 0x09;
export const PCI_CAP_ID_EXP = 0x10;
export const PCI_CAP_ID_MSIX = 0x11;

export const PCI_EXT_CAP_ID_ERR = 0x01;
export const PCI_EXT_CAP_ID_DSN = 0x03;
export const PCI_EXT_CAP_ID_SRIOV = 0x10;

/** PCIe device/port type (PCI_EXP_FLAGS_TYPE) */
export type PcieType = 'endpoint' | 'legacy-endpoint' | 'rc-endpoint' | 'root-port' | 'upstream-port' | 'downstream-port' | 'pcie-pci-bridge';
export const PCIE_TYPES: Record<PcieType, number> = {
  endpoint: 0x0,
  'legacy-endpoint': 0x1,
  'rc-endpoint': 0x9,
  'root-port': 0x4,
  'upstream-port': 0x5,
  'downstream-port': 0x6,
  'pcie-pci-bridge': 0x7,
};

export interface PciPmCap {
  id: 'pm';
  at: number;
  /** PCI_PM_CTRL_NO_SOFT_RESET: a D3hot->D0 transition does not reset, so no PM reset */
  noSoftReset: boolean;
  /** the PMC register (PCI_PM_PMC: version, D1/D2 support, PME support); default 0x0003 */
  pmc?: number;
}
export interface PciMsiCap {
  id: 'msi';
  at: number;
  /** Multiple Message Capable, as a vector count (1, 2, 4, 8, 16 or 32) */
  vectors: number;
  addr64: boolean;
  /** per-vector masking (mask and pending registers) */
  maskable: boolean;
}
export interface PciMsixCap {
  id: 'msix';
  at: number;
  /** table size (1..2048) */
  vectors: number;
  tableBar: number;
  tableOffset: number;
  pbaBar: number;
  pbaOffset: number;
}
export interface PciExpCap {
  id: 'pcie';
  at: number;
  type: PcieType;
  /** capability version (PCI_EXP_FLAGS_VERS): 1 or 2 */
  version: number;
  /** PCI_EXP_DEVCAP_FLR */
  flr: boolean;
}
export interface PciVendorCap {
  id: 'vendor';
  at: number;
  /** total length including the 3-byte header */
  length: number;
}
/** any other capability ID, with no registers beyond its header (e.g. to see vfio hide it) */
export interface PciRawCap {
  id: 'raw';
  at: number;
  /** the capability ID byte */
  capId: number;
  /** bytes it occupies (header included) */
  length: number;
}
export type PciCap = PciPmCap | PciMsiCap | PciMsixCap | PciExpCap | PciVendorCap | PciRawCap;

export interface PciAerCap {
  id: 'aer';
  at: number;
}
export interface PciDsnCap {
  id: 'dsn';
  at: number;
  serial: bigint;
}
/** A VF BAR of an SR-IOV capability (the size of one VF's BAR; a 64-bit one takes two slots). */
export interface PciVfBar {
  size: bigint;
  /** where the first VF's BAR starts (VF n is at addr + n * size); null: the host assigns it */
  addr: bigint | null;
  mem64: boolean;
  prefetch: boolean;
}
/**
 * The SR-IOV extended capability of a PF (PCI_EXT_CAP_ID_SRIOV, include/uapi/linux/pci_regs.h
 * PCI_SRIOV_*), and what its VFs present: their capability lists (a VF has no PM, INTx or BARs
 * of its own in config space; its BARs are the VF BARs here).
 */
export interface PciSriovCap {
  id: 'sriov';
  at: number;
  /** TotalVFs and InitialVFs (without VF Migration they must be equal) */
  totalVfs: number;
  initialVfs: number;
  /** VF Device ID */
  vfDevice: number;
  /** First VF Offset and VF Stride (routing IDs relative to the PF) */
  offset: number;
  stride: number;
  /** the six VF BARs (null: unimplemented; the slot after a 64-bit BAR is null) */
  vfBars: Array<PciVfBar | null>;
  /** the VFs' own capability lists, class, revision and subsystem IDs */
  vf: {
    caps: PciCap[];
    extCaps: PciExtCap[];
    classCode: number;
    revision: number;
    subsystemVendor: number;
    subsystemDevice: number;
    /** the Interrupt Pin a VF reports: 0 as SR-IOV requires (QEMU's nvme VFs say 1: a bogus pin) */
    interruptPin?: number;
  };
}
/** any other extended capability ID, with no registers beyond its header */
export interface PciRawExtCap {
  id: 'raw';
  at: number;
  capId: number;
  length: number;
}
export type PciExtCap = PciAerCap | PciDsnCap | PciSriovCap | PciRawExtCap;

/** bytes a capability occupies in config space (for layout and overlap checks) */
export function pciCapLength(c: PciCap): number {
  switch (c.id) {
    case 'pm':
      return 8;
    case 'msi':
      return 10 + (c.addr64 ? 4 : 0) + (c.maskable ? 10 : 0);
    case 'msix':
      return 12;
    case 'pcie': {
      // PCI_CAP_EXP_ENDPOINT_SIZEOF_V1 / _V2; ports carry slot and root registers too
      const port = c.type === 'root-port' || c.type === 'downstream-port';
      if (c.version === 1) return port ? 0x24 : 0x14;
      return port ? 0x3c : 0x34;
    }
    case 'vendor':
    case 'raw':
      return c.length;
  }
}

export function pciExtCapLength(c: PciExtCap): number {
  switch (c.id) {
    case 'aer':
      return 0x2c; // up to PCI_ERR_ROOT_COMMAND, as vfio_pci_config.c sizes it
    case 'dsn':
      return 12;
    case 'sriov':
      return 0x40; // PCI_EXT_CAP_SRIOV_SIZEOF
    case 'raw':
      return c.length;
  }
}

export function pciCapIdNumber(c: PciCap): number {
  if (c.id === 'raw') return c.capId;
  return { pm: PCI_CAP_ID_PM, msi: PCI_CAP_ID_MSI, msix: PCI_CAP_ID_MSIX, pcie: PCI_CAP_ID_EXP, vendor: PCI_CAP_ID_VNDR }[c.id];
}

export function pciExtCapIdNumber(c: PciExtCap): number {
  if (c.id === 'raw') return c.capId;
  return { aer: PCI_EXT_CAP_ID_ERR, dsn: PCI_EXT_CAP_ID_DSN, sriov: PCI_EXT_CAP_ID_SRIOV }[c.id];
}
