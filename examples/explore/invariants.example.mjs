// User invariants for `vfiosim explore`: a module exporting `invariants`, a list of
// { name, at: 'step' | 'end', check(ctx) }. check returns true (or nothing) when the invariant
// holds, false or a message when it does not. ctx has host, kernel, step, thread, events (the
// transition's trace events), devices, groups, sets (the host's views, as `vfiosim host --json`
// shows them), threads ({ name, finished, blocked }) and vfio(bdf) (the vfio_device object).
// Name the module in a scenario (invariants: { check: [ { module: ./invariants.example.mjs } ] })
// or pass it with --invariants FILE. TypeScript works too, compiled to JavaScript first.

export const invariants = [
  {
    // the kernel's own counters agree with group/cdev exclusion (the built-in invariant watches
    // the files instead)
    name: 'no group is open while one of its cdevs is bound (kernel counters)',
    check: ({ groups }) => {
      const g = groups.find((x) => x.open && x.cdevDeviceOpenCnt > 0);
      return !g || `group ${g.id} is open with cdev_device_open_cnt ${g.cdevDeviceOpenCnt}`;
    },
  },
  {
    name: 'every thread finishes',
    at: 'end',
    check: ({ threads }) => {
      const stuck = threads.filter((t) => !t.finished).map((t) => t.name);
      return stuck.length === 0 || `threads still blocked: ${stuck.join(', ')}`;
    },
  },
];
