// vfiosim in process: boot a simulated host and drive it through simulated processes.

export { Host, AdminTask } from '../host/host.js';
export type { DeviceView, GroupView, DeviceSetView } from '../host/host.js';
export { parseTopology, validateTopology, HostConfigError } from '../host/topology.js';
export type { Topology, FunctionSpec } from '../host/topology.js';
export { DEFAULT_HOST_YAML } from '../host/default_host.js';
export { Process, PendingCall, UserMem, fileKind } from './process.js';
export { SyscallBlocked } from '../kernel/kernel.js';
export type { TraceEvent } from '../kernel/trace.js';
export * as errno from '../kernel/errno.js';
export { errnoName, errnoByName } from '../kernel/errno.js';
export * as uapi from '../uapi/index.js';
export { O_RDONLY, O_WRONLY, O_RDWR, O_CLOEXEC, O_NONBLOCK, S_IFCHR, S_IFMT } from '../kernel/fs/file.js';
export * as vfio from './vfio.js';
export * as explorer from '../explore/index.js';
