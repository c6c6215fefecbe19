// Booting a recorded machine: what the host does with a function's `recorded:` section.
//
// The topology fields the recorder derived (IDs, BARs, capability lists, IOMMU group, reset
// methods, driver) build the function as for any host; then its configuration space takes the
// recorded bytes — the physical config space as sysfs showed it to root — as its contents and as
// its power-on values. The write masks (which bits software may change, which are write-1-to-clear)
// and the write side effects (FLR, PM transitions, bus reset) stay the model's, built from the
// capability lists; vfio-pci's virtualisation (vfio_pci_config.ts) works on top of these bytes as
// on any function's, so a config write through the device fd follows vfio-pci's rules over the
// recorded contents.
//
// What a recording cannot know, and the simulator does not invent: which config bits are
// writable on the real device beyond what its capabilities say (the model's masks apply), the
// contents and behaviour of its BARs (device registers with side effects: a recorded function
// gets the generic memory model unless its vendor:device has a model in src/drivers/pci/hw), its
// ROM image, and what its interrupts do.

import type { PciDev } from '../drivers/pci/pci.js';

/** Make the recorded physical config bytes the function's contents and power-on values. */
export function applyRecordedConfig(d: PciDev, bytes: Uint8Array): void {
  const cs = d.config;
  const n = Math.min(cs.size, bytes.length);
  cs.data.set(bytes.subarray(0, n));
  cs.init.set(bytes.subarray(0, n));
}
