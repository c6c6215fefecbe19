// The embedded default host. Its first part is the real-kernel oracle's "default" machine (same
// BDFs, IDs, groups, resets, vfio indices), so programs written against the oracle run unchanged;
// the rest adds a device set spanning two IOMMU groups behind a reset-capable hotplug slot, an
// IOMMU group of two functions (plus their bridge), a NIC owned by a kernel driver, and an Intel
// IOAT DMA engine (vfio index 8, group 16).

export const DEFAULT_HOST_YAML = `# vfiosim default host
name: default
description: >-
  q35-like machine with an Intel VT-d IOMMU: the oracle's default four vfio-pci devices
  (e1000e, nvme, edu, pci-testdev), a two-function igb in one device set (slot reset, two
  groups; each function an SR-IOV PF with 8 VFs), an IOMMU group with two vfio-pci functions behind a PCIe-to-PCI bridge, an
  e1000e NIC bound to its kernel driver, and an Intel IOAT DMA channel (CBDMA) for DMA tests.
kernel:
  vfio_major: 249        # dynamic majors as the oracle's kernel allocated them
  vfio_dev_major: 248
  iommu_minor: 257       # /dev/iommu misc minor
  noiommu: false         # vfio.enable_unsafe_noiommu_mode
iommu:
  address_width: 39
  interrupt_remapping: true
functions:
  - { bdf: "0000:00:00.0", name: host-bridge, id: "8086:29c0", subsystem: "1af4:1100", class: 0x060000, iommu_group: 0 }
  - { bdf: "0000:00:02.0", name: rp1, id: "1b36:000c", class: 0x060400, pcie: true, bridge: { secondary: 1 }, iommu_group: 1, driver: pcieport, bars: [ { size: 0x1000 } ] }
  - { bdf: "0000:00:03.0", name: rp2, id: "1b36:000c", class: 0x060400, pcie: true, bridge: { secondary: 2 }, iommu_group: 2, driver: pcieport, bars: [ { size: 0x1000 } ] }
  - { bdf: "0000:00:04.0", name: rp3, id: "1b36:000c", class: 0x060400, pcie: true, bridge: { secondary: 3 }, iommu_group: 3, driver: pcieport, bars: [ { size: 0x1000 } ] }
  - { bdf: "0000:00:1f.0", name: lpc, id: "8086:2918", subsystem: "1af4:1100", revision: 2, class: 0x060100, iommu_group: 5 }
  - { bdf: "0000:00:1f.2", name: ahci, id: "8086:2922", subsystem: "1af4:1100", revision: 2, class: 0x010601, iommu_group: 5, driver: ahci, bars: [ null, null, null, null, { size: 0x20, type: io }, { size: 0x1000 } ] }
  - { bdf: "0000:00:1f.3", name: smbus, id: "8086:2930", subsystem: "1af4:1100", revision: 2, class: 0x0c0500, iommu_group: 5, driver: i801_smbus, bars: [ null, null, null, null, { size: 0x40, type: io } ] }
  - bdf: "0000:01:00.0"
    name: e1000e
    id: "8086:10d3"
    subsystem: "8086:0000"
    class: 0x020000
    pcie: true
    iommu_group: 6
    driver: vfio-pci
    reset: [pm, bus]
    bars: [ { size: 0x20000, addr: 0xfe240000 }, { size: 0x20000, addr: 0xfe260000 }, { size: 0x20, type: io, addr: 0xc000 }, { size: 0x4000, addr: 0xfe280000 } ]
    rom: 0x40000
    rom_addr: 0xfe200000
    caps:   # as QEMU's e1000e presents them (the oracle's config space)
      - { id: pm, at: 0xc8, pmc: 0x22 }
      - { id: msi, at: 0xd0, vectors: 1, addr64: true }
      - { id: pcie, at: 0xe0, version: 1, flr: false }
      - { id: msix, at: 0xa0, vectors: 5, table: { bar: 3, offset: 0 }, pba: { bar: 3, offset: 0x2000 } }
    ext_caps: [ { id: aer, at: 0x100 }, { id: dsn, at: 0x140, serial: "0x525400ffff123456" } ]
  - bdf: "0000:02:00.0"
    name: nvme
    id: "1b36:0010"
    subsystem: "1af4:1100"
    revision: 2
    class: 0x010802
    pcie: true
    iommu_group: 7
    driver: vfio-pci
    reset: [flr, bus]
    bars: [ { size: 0x4000, mem64: true, addr: 0xfe000000 } ]
    caps:
      - { id: msix, at: 0x40, vectors: 65, table: { bar: 0, offset: 0x2000 }, pba: { bar: 0, offset: 0x3000 } }
      - { id: pcie, at: 0x80, flr: true }
      - { id: pm, at: 0x60, no_soft_reset: true }
  - bdf: "0000:03:00.0"
    name: edu
    id: "1234:11e8"
    subsystem: "1af4:1100"
    revision: 0x10
    class: 0x00ff00
    iommu_group: 8
    driver: vfio-pci
    reset: [bus]
    bars: [ { size: 0x100000, addr: 0xfde00000 } ]
    caps: [ { id: msi, at: 0x40, vectors: 1, addr64: true } ]
    interrupt_line: 10       # as the oracle's firmware routed it
  - bdf: "0000:00:05.0"
    name: testdev
    id: "1b36:0005"
    subsystem: "1af4:1100"
    class: 0x00ff00
    iommu_group: 4
    driver: vfio-pci
    reset: []
    bars: [ { size: 0x1000, addr: 0xfe403000 }, { size: 0x100, type: io, addr: 0xd000 } ]
    interrupt_pin: 0
  # a two-function igb in a hotplug slot with reset: one device set, two IOMMU groups
  - { bdf: "0000:00:06.0", name: rp4, id: "1b36:000c", class: 0x060400, pcie: true, bridge: { secondary: 4 }, iommu_group: 9, driver: pcieport, bars: [ { size: 0x1000 } ] }
  - bdf: "0000:04:00.0"
    name: igb0
    id: "8086:10c9"
    subsystem: "8086:0000"
    revision: 1
    class: 0x020000
    pcie: true
    iommu_group: 10
    driver: vfio-pci
    reset: [flr, pm, bus]
    bars: [ { size: 0x20000 }, { size: 0x20000 }, { size: 0x20, type: io }, { size: 0x4000 } ]
    caps:   # an 82576's list
      - { id: pm, at: 0x40 }
      - { id: msi, at: 0x50, vectors: 1, addr64: true, maskable: true }
      - { id: msix, at: 0x70, vectors: 10, table: { bar: 3, offset: 0 }, pba: { bar: 3, offset: 0x2000 } }
      - { id: pcie, at: 0xa0, flr: true }
    ext_caps: &igb-ext-caps   # AER, ARI, and SR-IOV as QEMU's igb lays them out (igb.c, igbvf.c)
      - { id: aer, at: 0x100 }
      - { id: raw, cap: 0x0e, at: 0x150, length: 8 }   # ARI
      - id: sriov
        at: 0x160
        total_vfs: 8
        vf_device: 0x10ca
        offset: 0x80
        stride: 2
        vf_bars: [ { size: 0x4000, mem64: true, prefetch: true }, null, null, { size: 0x4000, mem64: true, prefetch: true } ]
        vf:
          caps:
            - { id: msix, at: 0x70, vectors: 3, table: { bar: 3, offset: 0 }, pba: { bar: 3, offset: 0x2000 } }
            - { id: pcie, at: 0xa0, flr: true }
          ext_caps: [ { id: aer, at: 0x100 }, { id: raw, cap: 0x0e, at: 0x150, length: 8 } ]
  - bdf: "0000:04:00.1"
    name: igb1
    id: "8086:10c9"
    subsystem: "8086:0000"
    revision: 1
    class: 0x020000
    pcie: true
    iommu_group: 11
    driver: vfio-pci
    reset: [flr, pm]
    bars: [ { size: 0x20000 }, { size: 0x20000 }, { size: 0x20, type: io }, { size: 0x4000 } ]
    caps:   # an 82576's list
      - { id: pm, at: 0x40 }
      - { id: msi, at: 0x50, vectors: 1, addr64: true, maskable: true }
      - { id: msix, at: 0x70, vectors: 10, table: { bar: 3, offset: 0 }, pba: { bar: 3, offset: 0x2000 } }
      - { id: pcie, at: 0xa0, flr: true }
    ext_caps: *igb-ext-caps
  # one IOMMU group holding a PCIe-to-PCI bridge and two vfio-pci functions behind it
  - { bdf: "0000:00:07.0", name: rp5, id: "1b36:000c", class: 0x060400, pcie: true, bridge: { secondary: 5 }, iommu_group: 12, driver: pcieport, bars: [ { size: 0x1000 } ] }
  - { bdf: "0000:05:00.0", name: pcie-pci-bridge, id: "1b36:000e", class: 0x060400, pcie: true, bridge: { secondary: 6 }, iommu_group: 13, bars: [ { size: 0x100, mem64: true } ] }
  - bdf: "0000:06:01.0"
    name: grp-edu
    id: "1234:11e8"
    subsystem: "1af4:1100"
    revision: 0x10
    class: 0x00ff00
    iommu_group: 13
    driver: vfio-pci
    reset: [bus]
    bars: [ { size: 0x100000 } ]
    caps: [ { id: msi, at: 0x40, vectors: 1, addr64: true } ]
  - bdf: "0000:06:02.0"
    name: grp-testdev
    id: "1b36:0005"
    subsystem: "1af4:1100"
    class: 0x00ff00
    iommu_group: 13
    driver: vfio-pci
    reset: []
    bars: [ { size: 0x1000 }, { size: 0x100, type: io } ]
    interrupt_pin: 0
  # a NIC the host kernel uses (DMA API): its group is not viable
  - { bdf: "0000:00:08.0", name: rp6, id: "1b36:000c", class: 0x060400, pcie: true, bridge: { secondary: 7 }, iommu_group: 14, driver: pcieport, bars: [ { size: 0x1000 } ] }
  - bdf: "0000:07:00.0"
    name: nic
    id: "8086:10d3"
    subsystem: "8086:0000"
    class: 0x020000
    pcie: true
    iommu_group: 15
    driver: e1000e
    reset: [pm, bus]
    bars: [ { size: 0x20000 }, { size: 0x20000 }, { size: 0x20, type: io }, { size: 0x4000 } ]
    caps:
      - { id: pm, at: 0xc8, pmc: 0x22 }
      - { id: msi, at: 0xd0, vectors: 1, addr64: true }
      - { id: pcie, at: 0xe0, version: 1, flr: false }
      - { id: msix, at: 0xa0, vectors: 5, table: { bar: 3, offset: 0 }, pba: { bar: 3, offset: 0x2000 } }
    ext_caps: [ { id: aer, at: 0x100 }, { id: dsn, at: 0x140, serial: "0x525400ffff123457" } ]
  # beyond the oracle's machine (QEMU has no IOAT): an Intel Sky Lake-E CBDMA channel (I/OAT
  # v3.3, src/drivers/pci/hw/ioat.ts), a root-complex integrated endpoint in a group of its own,
  # the DMA engine the kernel selftests' ioat driver and DPDK's program
  - bdf: "0000:00:09.0"
    name: ioat
    id: "8086:2021"
    subsystem: "8086:0000"
    revision: 4
    class: 0x088000
    pcie: true
    iommu_group: 16
    driver: vfio-pci
    reset: [flr]
    bars: [ { size: 0x4000, mem64: true } ]
    caps:
      - { id: msix, at: 0x80, vectors: 1, table: { bar: 0, offset: 0x2000 }, pba: { bar: 0, offset: 0x3000 } }
      - { id: pcie, at: 0x90, type: rc-endpoint, flr: true }
      - { id: pm, at: 0xe0 }
slots:
  - { bus: 4, slot: 0, reset: true }
`;
