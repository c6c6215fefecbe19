// The one timing loop every benchmark uses: a quarter of the time to warm up, then as many calls
// of `body` as fit in `ms`; `body` returns how many operations it did.

export function opsPerSecond(ms: number, body: () => number): number {
  let n = 0;
  const w0 = performance.now();
  while (performance.now() - w0 < ms / 4) n += body();
  n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    n += body();
    t = performance.now();
  }
  return n / ((t - t0) / 1000);
}
