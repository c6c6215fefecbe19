// The wire protocol between the LD_PRELOAD shim (shim/vfiosim_shim.c, shim/protocol.h) and the
// daemon. Keep the two in step: test/bridge_protocol.test.ts checks the C header against this file.
//
// Transport: SOCK_SEQPACKET UNIX sockets. Each client thread has its own *channel* to the daemon's
// listening socket; a request and its answer are one message each. The sender's pid, uid and gid
// come with every message (SCM_CREDENTIALS, filled in by the kernel), so the daemon acts for the
// process that really sent it, even on a channel inherited across fork.
//
// An emulated open file is a separate socket: the client end of a socketpair the daemon made
// (bound to an abstract name starting with FILE_SOCKET_PREFIX, which is how the shim tells an
// emulated fd from any other socket). Nothing is sent on it: it exists so that the real kernel
// counts the file's references (dup, fork, exec, SCM_RIGHTS, exit, SIGKILL); when the last one
// goes, the daemon sees the hang-up and releases the model's file. Requests name files by the
// caller's fd number, which the daemon resolves in the caller's own fd table (/proc/PID/fd/N).
//
// The shim never decodes ioctl structs: it forwards (request, argument) and the daemon reads and
// writes the caller's memory itself (process_vm_readv/writev).

export const REQ_HEADER = 48;
export const RESP_HEADER = 16;
/** largest message either side sends */
export const MAX_MSG = 131072;
/** abstract socket name prefix of emulated files (after the leading NUL) */
export const FILE_SOCKET_PREFIX = 'vfiosim-file:';

export const Op = {
  OPEN: 1, // fd = dirfd (AT_FDCWD or an emulated directory), flags = open flags, a0 = mode, path
  IOCTL: 2, // fd, a0 = request, a1 = argument
  READ: 3, // fd, a0 = buffer, a1 = count
  WRITE: 4, // fd, a0 = buffer, a1 = count
  PREAD: 5, // fd, a0 = buffer, a1 = count, a2 = offset
  PWRITE: 6, // fd, a0 = buffer, a1 = count, a2 = offset
  LSEEK: 7, // fd, a0 = offset (signed), a1 = whence
  FSTAT: 8, // fd -> stat payload
  STAT: 9, // fd = dirfd, flags = AT_SYMLINK_NOFOLLOW?, path -> stat payload
  READLINK: 10, // fd = dirfd, path -> the target
  ACCESS: 11, // fd = dirfd, a0 = mode, path
  GETDENTS: 12, // fd -> dirent payload
  REALPATH: 13, // path -> the canonical path
  // fd, flags = prot, a0 = length, a1 = mmap flags, a2 = offset, a3 = the address the shim maps it
  // at -> the memfd (SCM_RIGHTS) and {u64 offset in it, u32 mapping id, u32 trapped}
  MMAP: 14,
  FCNTL: 15, // fd, a0 = F_GETFL or F_SETFL, a1 = argument
  INFO: 16, // -> "daemon pid\nhost name\npath\npath..." (the emulated prefixes)
  ECHO: 17, // answered at once, without the model (the transport's floor, for benchmarks)
  // a load or store of a trapped region mapping: fd = the mapping's file, a0 = mapping id,
  // a1 = offset in the mapping, a2 = size (1, 2, 4, 8, 64), flags = 1 for a store, a3 = the value
  // stored (size <= 8) or the address of the 64 bytes (MOVDIR64B) -> a load's bytes; -EFAULT: SIGBUS
  MMIO: 18,
} as const;
export type OpCode = (typeof Op)[keyof typeof Op];

export const OP_NAMES: Record<number, string> = Object.fromEntries(Object.entries(Op).map(([k, v]) => [v, k.toLowerCase()]));

/** answer flags */
export const RESP_FD = 1; // an fd is attached (SCM_RIGHTS)
export const RESP_RET_IS_FD = 2; // the call returns that fd's number in the caller (open, GET_DEVICE_FD)

export const AT_FDCWD = -100;
export const AT_SYMLINK_NOFOLLOW = 0x100;

/** struct vsim_stat (88 bytes) */
export const STAT_WIRE = 88;

export interface Request {
  op: number;
  fd: number;
  tid: number;
  flags: number;
  a0: bigint;
  a1: bigint;
  a2: bigint;
  a3: bigint;
  path: string | null;
}

export function decodeRequest(buf: Buffer, len: number): Request | null {
  if (len < REQ_HEADER) return null;
  let path: string | null = null;
  if (len > REQ_HEADER) {
    let end = buf.indexOf(0, REQ_HEADER);
    if (end < 0 || end > len) end = len;
    path = buf.toString('utf8', REQ_HEADER, end);
  }
  return {
    op: buf.readUInt32LE(0),
    fd: buf.readInt32LE(4),
    tid: buf.readUInt32LE(8),
    flags: buf.readUInt32LE(12),
    a0: buf.readBigUInt64LE(16),
    a1: buf.readBigUInt64LE(24),
    a2: buf.readBigUInt64LE(32),
    a3: buf.readBigUInt64LE(40),
    path,
  };
}

export function encodeRequest(r: Partial<Request> & { op: number }): Buffer {
  const p = r.path != null ? Buffer.from(r.path + '\0', 'utf8') : Buffer.alloc(0);
  const b = Buffer.alloc(REQ_HEADER + p.length);
  b.writeUInt32LE(r.op, 0);
  b.writeInt32LE(r.fd ?? -1, 4);
  b.writeUInt32LE(r.tid ?? 0, 8);
  b.writeUInt32LE(r.flags ?? 0, 12);
  b.writeBigUInt64LE(BigInt.asUintN(64, r.a0 ?? 0n), 16);
  b.writeBigUInt64LE(BigInt.asUintN(64, r.a1 ?? 0n), 24);
  b.writeBigUInt64LE(BigInt.asUintN(64, r.a2 ?? 0n), 32);
  b.writeBigUInt64LE(BigInt.asUintN(64, r.a3 ?? 0n), 40);
  p.copy(b, REQ_HEADER);
  return b;
}

/** Write an answer header into `out`; returns the message length. */
export function encodeResponse(out: Buffer, ret: number | bigint, flags: number, payload?: Uint8Array): number {
  out.writeBigInt64LE(BigInt(ret), 0);
  const n = payload ? payload.length : 0;
  out.writeUInt32LE(n, 8);
  out.writeUInt32LE(flags, 12);
  if (payload) out.set(payload, RESP_HEADER);
  return RESP_HEADER + n;
}

export interface WireStat {
  dev: number;
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
  blksize: number;
  blocks: number;
  time: number;
  devMajor: number;
  devMinor: number;
  rdevMajor: number;
  rdevMinor: number;
}

export function encodeStat(s: WireStat): Buffer {
  const b = Buffer.alloc(STAT_WIRE);
  b.writeBigUInt64LE(BigInt(s.dev), 0);
  b.writeBigUInt64LE(BigInt(s.ino), 8);
  b.writeUInt32LE(s.mode >>> 0, 16);
  b.writeUInt32LE(s.nlink >>> 0, 20);
  b.writeUInt32LE(s.uid >>> 0, 24);
  b.writeUInt32LE(s.gid >>> 0, 28);
  b.writeBigUInt64LE(BigInt(s.rdev), 32);
  b.writeBigInt64LE(BigInt(s.size), 40);
  b.writeBigInt64LE(BigInt(s.blksize), 48);
  b.writeBigInt64LE(BigInt(s.blocks), 56);
  b.writeBigInt64LE(BigInt(s.time), 64);
  b.writeUInt32LE(s.devMajor, 72);
  b.writeUInt32LE(s.devMinor, 76);
  b.writeUInt32LE(s.rdevMajor, 80);
  b.writeUInt32LE(s.rdevMinor, 84);
  return b;
}

/** getdents payload: per entry u64 ino, u8 type, u8 0, u16 name length, the name (no NUL). */
export function encodeDirents(ents: Array<{ name: string; type: number; ino: number }>): Buffer {
  const parts: Buffer[] = [];
  for (const e of ents) {
    const name = Buffer.from(e.name, 'utf8');
    const h = Buffer.alloc(12);
    h.writeBigUInt64LE(BigInt(e.ino), 0);
    h.writeUInt8(e.type, 8);
    h.writeUInt16LE(name.length, 10);
    parts.push(h, name);
  }
  return Buffer.concat(parts);
}
