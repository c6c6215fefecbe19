// Named kernel functions that a *variant* may override (the explorer re-creates designs the
// kernel moved away from by swapping a few of them). A function defined with kfn() looks up the
// current kernel's override table on every call; without an override it runs its own body.

import { currentOrNull } from './sched.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyFn = (...args: any[]) => any;

const registry = new Map<string, AnyFn>();

/** Define an overridable kernel function under its kernel name (e.g. 'vfio_df_open'). */
export function kfn<F extends AnyFn>(name: string, impl: F): F {
  if (registry.has(name)) throw new Error(`kernel function ${name} defined twice`);
  registry.set(name, impl);
  const wrapper = function (this: unknown, ...args: unknown[]) {
    const t = currentOrNull();
    const o = t ? (t.kernel.overrides.get(name) as F | undefined) : undefined;
    return (o ?? impl).apply(this, args);
  } as unknown as F;
  Object.defineProperty(wrapper, 'name', { value: name });
  return wrapper;
}

/** The original body of a kernel function (a variant may call it). */
export function kfnOriginal<F extends AnyFn>(name: string): F {
  const f = registry.get(name);
  if (!f) throw new Error(`no kernel function named ${name}`);
  return f as F;
}

export function kfnNames(): string[] {
  return [...registry.keys()].sort();
}
