// A balanced tree of non-overlapping intervals keyed by their start (the role lib/interval_tree.c
// and the vfio_dma rb-tree play for mappings): insert, delete, point and range lookups in
// O(log n). A treap with deterministic priorities keeps runs reproducible.

export interface Interval {
  start: bigint;
  /** inclusive */
  last: bigint;
}

interface Node<T> {
  v: T;
  prio: number;
  left: Node<T> | null;
  right: Node<T> | null;
}

let seed = 0x2545f491;
function nextPrio(): number {
  // xorshift32: deterministic, cheap
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return seed >>> 0;
}

export class IntervalTree<T extends Interval> {
  private root: Node<T> | null = null;
  private n = 0;

  get size(): number {
    return this.n;
  }

  clear(): void {
    this.root = null;
    this.n = 0;
  }

  /** Insert an interval that overlaps none already present (the caller checked). */
  insert(v: T): void {
    const node: Node<T> = { v, prio: nextPrio(), left: null, right: null };
    const [l, r] = this.split(this.root, v.start);
    this.root = this.merge(this.merge(l, node), r);
    this.n++;
  }

  /** Remove the interval starting at v.start (identity checked); true if it was there. */
  delete(v: T): boolean {
    let found = false;
    const del = (t: Node<T> | null): Node<T> | null => {
      if (!t) return null;
      if (v.start < t.v.start) {
        t.left = del(t.left);
        return t;
      }
      if (v.start > t.v.start) {
        t.right = del(t.right);
        return t;
      }
      if (t.v !== v) return t;
      found = true;
      return this.merge(t.left, t.right);
    };
    this.root = del(this.root);
    if (found) this.n--;
    return found;
  }

  /** The interval with the largest start <= x. */
  floor(x: bigint): T | undefined {
    let t = this.root;
    let best: T | undefined;
    while (t) {
      if (t.v.start <= x) {
        best = t.v;
        t = t.right;
      } else t = t.left;
    }
    return best;
  }

  /** The interval with the smallest start >= x. */
  ceil(x: bigint): T | undefined {
    let t = this.root;
    let best: T | undefined;
    while (t) {
      if (t.v.start >= x) {
        best = t.v;
        t = t.left;
      } else t = t.right;
    }
    return best;
  }

  /** The interval with the smallest start > x (in-order successor of a start). */
  after(x: bigint): T | undefined {
    let t = this.root;
    let best: T | undefined;
    while (t) {
      if (t.v.start > x) {
        best = t.v;
        t = t.left;
      } else t = t.right;
    }
    return best;
  }

  /** The interval containing point x. */
  find(x: bigint): T | undefined {
    const f = this.floor(x);
    return f && f.last >= x ? f : undefined;
  }

  /** The lowest interval intersecting [start, last]. */
  first(start: bigint, last: bigint): T | undefined {
    const f = this.floor(start);
    if (f && f.last >= start) return f;
    const c = this.ceil(start);
    return c && c.start <= last ? c : undefined;
  }

  /** Every interval intersecting [start, last], in order. */
  range(start: bigint, last: bigint): T[] {
    const out: T[] = [];
    let cur = this.first(start, last);
    while (cur && cur.start <= last) {
      out.push(cur);
      cur = this.after(cur.start);
    }
    return out;
  }

  /** All intervals in order. */
  all(): T[] {
    const out: T[] = [];
    const walk = (t: Node<T> | null) => {
      if (!t) return;
      walk(t.left);
      out.push(t.v);
      walk(t.right);
    };
    walk(this.root);
    return out;
  }

  private split(t: Node<T> | null, key: bigint): [Node<T> | null, Node<T> | null] {
    // left: start < key, right: start >= key
    if (!t) return [null, null];
    if (t.v.start < key) {
      const [l, r] = this.split(t.right, key);
      t.right = l;
      return [t, r];
    }
    const [l, r] = this.split(t.left, key);
    t.left = r;
    return [l, t];
  }

  private merge(a: Node<T> | null, b: Node<T> | null): Node<T> | null {
    if (!a) return b;
    if (!b) return a;
    if (a.prio > b.prio) {
      a.right = this.merge(a.right, b);
      return a;
    }
    b.left = this.merge(a, b.left);
    return b;
  }
}
