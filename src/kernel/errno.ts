// Linux x86-64 errno values (include/uapi/asm-generic/errno-base.h, errno.h)
// plus the kernel-internal ENOIOCTLCMD that the VFS turns into ENOTTY.

export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const EINTR = 4;
export const EIO = 5;
export const ENXIO = 6;
export const E2BIG = 7;
export const ENOEXEC = 8;
export const EBADF = 9;
export const ECHILD = 10;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const ENOTBLK = 15;
export const EBUSY = 16;
export const EEXIST = 17;
export const EXDEV = 18;
export const ENODEV = 19;
export const ENOTDIR = 20;
export const EISDIR = 21;
export const EINVAL = 22;
export const ENFILE = 23;
export const EMFILE = 24;
export const ENOTTY = 25;
export const ETXTBSY = 26;
export const EFBIG = 27;
export const ENOSPC = 28;
export const ESPIPE = 29;
export const EROFS = 30;
export const EMLINK = 31;
export const EPIPE = 32;
export const EDOM = 33;
export const ERANGE = 34;
export const EDEADLK = 35;
export const ENAMETOOLONG = 36;
export const ENOLCK = 37;
export const ENOSYS = 38;
export const ENOTEMPTY = 39;
export const ELOOP = 40;
export const ENODATA = 61;
export const EPROTO = 71;
export const EOVERFLOW = 75;
export const EBADFD = 77;
export const EMSGSIZE = 90;
export const EOPNOTSUPP = 95;
export const EADDRINUSE = 98;
export const ETIMEDOUT = 110;
/** Kernel-internal: "no such ioctl for this file"; the VFS reports it as ENOTTY. */
export const ENOIOCTLCMD = 515;

const NAMES: Record<number, string> = {
  [EPERM]: 'EPERM', [ENOENT]: 'ENOENT', [ESRCH]: 'ESRCH', [EINTR]: 'EINTR', [EIO]: 'EIO',
  [ENXIO]: 'ENXIO', [E2BIG]: 'E2BIG', [ENOEXEC]: 'ENOEXEC', [EBADF]: 'EBADF', [ECHILD]: 'ECHILD',
  [EAGAIN]: 'EAGAIN', [ENOMEM]: 'ENOMEM', [EACCES]: 'EACCES', [EFAULT]: 'EFAULT',
  [ENOTBLK]: 'ENOTBLK', [EBUSY]: 'EBUSY', [EEXIST]: 'EEXIST', [EXDEV]: 'EXDEV',
  [ENODEV]: 'ENODEV', [ENOTDIR]: 'ENOTDIR', [EISDIR]: 'EISDIR', [EINVAL]: 'EINVAL',
  [ENFILE]: 'ENFILE', [EMFILE]: 'EMFILE', [ENOTTY]: 'ENOTTY', [ETXTBSY]: 'ETXTBSY',
  [EFBIG]: 'EFBIG', [ENOSPC]: 'ENOSPC', [ESPIPE]: 'ESPIPE', [EROFS]: 'EROFS', [EMLINK]: 'EMLINK',
  [EPIPE]: 'EPIPE', [EDOM]: 'EDOM', [ERANGE]: 'ERANGE', [EDEADLK]: 'EDEADLK',
  [ENAMETOOLONG]: 'ENAMETOOLONG', [ENOLCK]: 'ENOLCK', [ENOSYS]: 'ENOSYS',
  [ENOTEMPTY]: 'ENOTEMPTY', [ELOOP]: 'ELOOP', [ENODATA]: 'ENODATA', [EPROTO]: 'EPROTO',
  [EOVERFLOW]: 'EOVERFLOW', [EBADFD]: 'EBADFD', [EMSGSIZE]: 'EMSGSIZE',
  [EOPNOTSUPP]: 'EOPNOTSUPP', [EADDRINUSE]: 'EADDRINUSE', [ETIMEDOUT]: 'ETIMEDOUT',
  [ENOIOCTLCMD]: 'ENOIOCTLCMD',
};

const BY_NAME: Record<string, number> = Object.fromEntries(
  Object.entries(NAMES).map(([n, s]) => [s, Number(n)]),
);

/** "EINVAL" for 22; "E#n" for numbers this table does not know. */
export function errnoName(e: number): string {
  return NAMES[Math.abs(e)] ?? `E#${Math.abs(e)}`;
}

/** 22 for "EINVAL"; undefined if unknown. */
export function errnoByName(name: string): number | undefined {
  return BY_NAME[name];
}

export function allErrnoNames(): string[] {
  return Object.keys(BY_NAME);
}

/** Kernel-side helpers in the style of include/linux/err.h. */
export function isErr(v: unknown): v is number {
  return typeof v === 'number' && v < 0 && v >= -4095;
}
