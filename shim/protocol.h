/* The wire protocol between the shim and the vfiosim daemon; src/bridge/protocol.ts is the other
 * half (test/bridge_protocol.test.ts checks that the two agree). Little-endian, x86-64. */
#ifndef VFIOSIM_PROTOCOL_H
#define VFIOSIM_PROTOCOL_H

#include <stdint.h>

#define VSIM_REQ_HEADER 48
#define VSIM_RESP_HEADER 16
#define VSIM_MAX_MSG 131072
#define VSIM_FILE_SOCKET_PREFIX "vfiosim-file:"

enum vsim_op {
	VSIM_OP_OPEN = 1,
	VSIM_OP_IOCTL = 2,
	VSIM_OP_READ = 3,
	VSIM_OP_WRITE = 4,
	VSIM_OP_PREAD = 5,
	VSIM_OP_PWRITE = 6,
	VSIM_OP_LSEEK = 7,
	VSIM_OP_FSTAT = 8,
	VSIM_OP_STAT = 9,
	VSIM_OP_READLINK = 10,
	VSIM_OP_ACCESS = 11,
	VSIM_OP_GETDENTS = 12,
	VSIM_OP_REALPATH = 13,
	VSIM_OP_MMAP = 14,
	VSIM_OP_FCNTL = 15,
	VSIM_OP_INFO = 16,
	VSIM_OP_ECHO = 17,
	VSIM_OP_MMIO = 18,
};

/* MMAP: flags = prot, a = {length, mmap flags, offset, address the shim maps at}; the answer
 * carries the memfd (SCM_RIGHTS) and struct vsim_mmap_ans.
 * MMIO: fd = the mapping's file, a = {mapping id, offset in the mapping, size, value or source
 * address}, flags = VSIM_MMIO_WRITE for a store; a load's answer carries its bytes; -EFAULT: the
 * access faults (SIGBUS). */
struct vsim_mmap_ans {
	uint64_t offset; /* of the mapping in the memfd */
	uint32_t id;     /* the daemon's mapping id */
	uint32_t trapped;
};
#define VSIM_MMIO_WRITE 1

/* answer flags */
#define VSIM_RESP_FD 1        /* an fd is attached (SCM_RIGHTS) */
#define VSIM_RESP_RET_IS_FD 2 /* the call returns that fd's number (open, GET_DEVICE_FD) */
#define VSIM_RESP_CLOEXEC 4   /* install it close-on-exec */

struct vsim_req {
	uint32_t op;
	int32_t fd; /* the fd argument, or the dirfd of a path request (AT_FDCWD: absolute path) */
	uint32_t tid;
	uint32_t flags;
	uint64_t a[4];
	/* then, for path requests, the path and its NUL */
};

struct vsim_resp {
	int64_t ret; /* >= 0, or -errno */
	uint32_t len; /* payload bytes that follow */
	uint32_t flags;
};

struct vsim_stat {
	uint64_t dev;
	uint64_t ino;
	uint32_t mode;
	uint32_t nlink;
	uint32_t uid;
	uint32_t gid;
	uint64_t rdev;
	int64_t size;
	int64_t blksize;
	int64_t blocks;
	int64_t time;
	uint32_t dev_major, dev_minor, rdev_major, rdev_minor;
};

/* getdents payload entry: u64 ino, u8 type, u8 0, u16 name length, then the name (no NUL) */
#define VSIM_DIRENT_HEADER 12

_Static_assert(sizeof(struct vsim_req) == VSIM_REQ_HEADER, "vsim_req");
_Static_assert(sizeof(struct vsim_resp) == VSIM_RESP_HEADER, "vsim_resp");
_Static_assert(sizeof(struct vsim_stat) == 88, "vsim_stat");

#endif
