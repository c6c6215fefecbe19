// IDA / xarray-style ID allocation: the lowest free ID in a range (lib/idr.c: ida_alloc_range).

import { ENOSPC } from './errno.js';

export class Ida {
  private readonly used = new Set<number>();
  constructor(
    private readonly min = 0,
    private readonly max = 0xfffff,
  ) {}
  /** The lowest free id >= start, or -ENOSPC. */
  alloc(start = this.min): number {
    for (let i = Math.max(start, this.min); i <= this.max; i++) {
      if (!this.used.has(i)) {
        this.used.add(i);
        return i;
      }
    }
    return -ENOSPC;
  }
  /** Allocate exactly `id` (ida_alloc_range(id, id)); -ENOSPC if taken. */
  allocExact(id: number): number {
    if (this.used.has(id) || id < this.min || id > this.max) return -ENOSPC;
    this.used.add(id);
    return id;
  }
  free(id: number): void {
    this.used.delete(id);
  }
  has(id: number): boolean {
    return this.used.has(id);
  }
  size(): number {
    return this.used.size;
  }
}
