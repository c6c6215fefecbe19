// Human-readable narration of a scenario run: each syscall with its result, then the kernel events
// it caused, indented.

import { TraceEvent } from '../kernel/trace.js';
import { StepResult, fmtVal } from '../scenario/runner.js';

/** Kernel events shown by default (the rest with --verbose). */
const CONCISE = new Set([
  'open_device', 'open_device_failed', 'close_device', 'access_granted', 'group_blocked', 'group_unblocked',
  'registration_get', 'registration_put', 'request', 'vfio_unregister_start', 'vfio_unregister_done',
  'group_open', 'group_release', 'group_file_get', 'group_file_put', 'group_set_container', 'container_attach_group',
  'container_detach_group', 'container_set_iommu', 'container_backend_released', 'iommufd_bind', 'iommufd_unbind',
  'iommufd_attach', 'iommufd_detach', 'iommufd_auto_hwpt', 'iommufd_destroy', 'iommufd_ioas_alloc',
  'iommufd_compat_ioas', 'iommufd_release', 'pci_reset_bus', 'pci_reset_slot', 'pci_reset_function',
  'vfio_group_remove', 'vfio_register', 'driver_unbound', 'printk', 'WARN',
]);

export function describeEvent(e: TraceEvent): string {
  const a = (e.args ?? {}) as Record<string, unknown>;
  switch (e.name) {
    case 'open_device':
      return `open_device(${a.device})  [first open in ${String(a.dev_set).replace(/^dev_set\((.*)\)$/, '$1')}]`;
    case 'open_device_failed':
      return `open_device(${a.device}) failed (${a.ret})`;
    case 'close_device':
      return `close_device(${a.device})  [last close]`;
    case 'access_granted':
      return a.via === 'bind'
        ? `access granted on the cdev file of ${a.device} (devid ${a.devid})`
        : `access granted on a group-path file of ${a.device} (open_count ${a.open_count})`;
    case 'group_blocked':
      return `group ${a.group} blocked for group opens (cdev_device_open_cnt ${a.cdev_device_open_cnt})`;
    case 'group_unblocked':
      return `group ${a.group} unblocked (cdev_device_open_cnt ${a.cdev_device_open_cnt})`;
    case 'registration_get':
      return `registration get: ${a.device} refcount ${a.refcount}`;
    case 'registration_put':
      return `registration put: ${a.device} refcount ${a.refcount}`;
    case 'request':
      return `request(${a.count}) to the driver of ${a.device} (unregister is waiting)`;
    case 'vfio_unregister_start':
      return `unregister ${a.device} (vfio${a.index}) starts: cdev node and sysfs entry removed`;
    case 'vfio_unregister_done':
      return `unregister ${a.device} done after ${a.requests} request(s)`;
    case 'group_open':
      return `group ${a.group} opened`;
    case 'group_release':
      return `group ${a.group} file released`;
    case 'group_file_get':
      return `device open pins the group ${a.group} file (container_users ${a.container_users})`;
    case 'group_file_put':
      return `group ${a.group} file unpinned (container_users ${a.container_users})`;
    case 'group_set_container':
      return `group ${a.group} ${a.iommufd ? 'uses an iommufd as its container' : 'set container'}`;
    case 'container_attach_group':
      return `container ${a.container} attached group ${a.group}`;
    case 'container_detach_group':
      return `container ${a.container} detached group ${a.group}`;
    case 'container_set_iommu':
      return `container ${a.container} backend ${a.backend} (type ${a.type})`;
    case 'container_backend_released':
      return `container ${a.container} lost its last group: backend and mappings released`;
    case 'iommufd_bind':
      return `iommufd: ${a.device} bound as devid ${a.devid}`;
    case 'iommufd_unbind':
      return `iommufd: ${a.device} unbound (devid ${a.devid} destroyed)`;
    case 'iommufd_attach':
      return `iommufd: ${a.device} attached to pt ${a.pt_id}`;
    case 'iommufd_detach':
      return `iommufd: ${a.device} detached`;
    case 'iommufd_auto_hwpt':
      return `iommufd: auto HWPT ${a.id} created on IOAS ${a.ioas}`;
    case 'iommufd_destroy':
      return `iommufd: object ${a.id} (${a.type}) destroyed`;
    case 'iommufd_ioas_alloc':
      return `iommufd: IOAS ${a.id} allocated`;
    case 'iommufd_compat_ioas':
      return `iommufd: compat IOAS ${a.id} created`;
    case 'iommufd_release':
      return `iommufd context ${a.ctx} released`;
    case 'pci_reset_bus':
      return `secondary bus reset of bus ${a.bus}: ${(a.devices as string[]).join(', ')}`;
    case 'pci_reset_slot':
      return `slot reset of ${a.bus}: ${(a.devices as string[]).join(', ')}`;
    case 'pci_reset_function':
      return `function reset of ${a.device} (${a.method})`;
    case 'vfio_group_remove':
      return `group ${a.group} removed (/dev/vfio/${a.group} gone)`;
    case 'vfio_register':
      return `${a.device} registered as vfio${a.index} in group ${a.group}`;
    case 'driver_unbound':
      return `${a.device} unbound from ${a.driver}`;
    case 'printk':
      return `kernel: ${e.msg}`;
    case 'WARN':
      return `WARNING: ${e.msg}`;
    default:
      return `${e.name} ${Object.entries(a).map(([k, v]) => `${k}=${fmtVal(v)}`).join(' ')}`.trim();
  }
}

export interface NarrateOptions {
  verbose: boolean;
  color: boolean;
}

export function narrateStep(r: StepResult, o: NarrateOptions): string {
  const lines: string[] = [];
  const c = (code: string, s: string) => (o.color ? `\x1b[${code}m${s}\x1b[0m` : s);
  if (r.actor === 'say') {
    lines.push('');
    lines.push(c('1', r.call));
    return lines.join('\n');
  }
  const who = r.actor === 'admin' ? 'admin' : `${r.actor}[${r.pid}]`;
  let res = '';
  if (r.ret !== undefined) res = r.ret < 0 ? `= -1 ${r.errno}` : `= ${r.ret}`;
  if (r.text && r.actor === 'admin') res += ` (${r.text})`;
  const left = `  ${who.padEnd(14)} ${r.call}`;
  lines.push(`${left.padEnd(78)} ${r.ret !== undefined && r.ret < 0 ? c('33', res) : res}`);
  if (r.out && Object.keys(r.out).length && r.actor !== 'admin') {
    // the fields the kernel wrote: those that differ from what was passed in
    const shown = Object.entries(r.out)
      .filter(([k, v]) => (typeof v === 'number' || typeof v === 'bigint') && (!r.in || String(r.in[k]) !== String(v)))
      .map(([k, v]) => `${k}=${fmtVal(v)}`);
    if (shown.length) lines.push(c('2', `${' '.repeat(17)}# ${shown.join(' ')}`));
  }
  if (r.text && r.actor !== 'admin') {
    for (const t of r.text.replace(/\n$/, '').split('\n')) lines.push(c('2', `${' '.repeat(17)}# ${t}`));
  }
  for (const e of r.events) {
    if (!o.verbose && !CONCISE.has(e.name) && e.kind !== 'warn') continue;
    const d = describeEvent(e);
    lines.push(`${' '.repeat(19)}${e.kind === 'warn' ? c('31', '! ' + d) : c('36', '- ' + d)}`);
  }
  if (r.step.note) lines.push(c('2', `${' '.repeat(17)}(${r.step.note})`));
  if (r.failure) lines.push(c('31', `${' '.repeat(17)}FAILED: ${r.failure}`));
  return lines.join('\n');
}

/** JSON-safe copy of a step result (bigints as strings). */
export function stepJson(r: StepResult): unknown {
  return JSON.parse(
    JSON.stringify(
      {
        index: r.step.index,
        actor: r.actor,
        pid: r.pid,
        call: r.call,
        ret: r.ret,
        errno: r.errno,
        out: r.out,
        text: r.text,
        events: r.events,
        expect: r.step.expect.kind === 'any' ? undefined : r.step.expect,
        failure: r.failure,
      },
      (_k, v) => (typeof v === 'bigint' ? v.toString() : v),
    ),
  );
}
