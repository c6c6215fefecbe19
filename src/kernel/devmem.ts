// Device memory that user space may mmap (BARs a device model backs with RAM-like memory). In
// process it is plain memory; the bridge installs an allocator whose memory real client
// processes can map too (a memfd the daemon also maps), so a driver's ->mmap that hands out
// `vma.backing` from this memory works for real programs.

import { Kernel } from './kernel.js';

export interface DevMemAllocator {
  alloc(size: number, name: string): Uint8Array;
}

const plain: DevMemAllocator = { alloc: (size) => new Uint8Array(size) };

/** Memory for a device region that may be mmapped (size: a multiple of the page size). */
export function allocDeviceMemory(k: Kernel, size: number, name: string): Uint8Array {
  return k.state<{ a: DevMemAllocator }>('devmem', () => ({ a: plain })).a.alloc(size, name);
}

/** Replace the allocator (the bridge daemon does, at start). */
export function setDeviceMemoryAllocator(k: Kernel, a: DevMemAllocator): void {
  k.state<{ a: DevMemAllocator }>('devmem', () => ({ a })).a = a;
}
