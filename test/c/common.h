/* Helpers of the bridge's C clients (test/bridge_clients.test.ts builds and runs them under the
 * shim). The VFIO/iommufd numbers and structs are spelled out here (Linux 7.2 uapi) so that the
 * clients build against any libc headers. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define T_VFIO_GET_API_VERSION 0x3b64
#define T_VFIO_GROUP_GET_STATUS 0x3b67
#define T_VFIO_DEVICE_GET_INFO 0x3b6b
#define T_VFIO_DEVICE_BIND_IOMMUFD 0x3b76
#define T_VFIO_DEVICE_ATTACH_IOMMUFD_PT 0x3b77
#define T_VFIO_DEVICE_DETACH_IOMMUFD_PT 0x3b78
#define T_IOMMU_IOAS_ALLOC 0x3b81

struct t_bind { uint32_t argsz, flags; int32_t iommufd; uint32_t out_devid; uint64_t token_uuid_ptr; };
struct t_attach { uint32_t argsz, flags, pt_id, pasid; };
struct t_ioas_alloc { uint32_t size, flags, out_ioas_id; };
struct t_device_info { uint32_t argsz, flags, num_regions, num_irqs, cap_offset, pad; };
struct t_group_status { uint32_t argsz, flags; };

/* the default host's e1000e: 0000:01:00.0, IOMMU group 6, cdev vfio0 */
static const char *const CDEV = "/dev/vfio/devices/vfio0";
static const char *const GROUP = "/dev/vfio/6";
static const char *const BDF = "0000:01:00.0";

#define CHECK(cond)                                                                                  \
	do {                                                                                             \
		if (!(cond)) {                                                                               \
			fprintf(stderr, "%s:%d: check failed: %s (errno %d: %s)\n", __FILE__, __LINE__, #cond,  \
			        errno, strerror(errno));                                                         \
			exit(1);                                                                                 \
		}                                                                                            \
	} while (0)

static inline int bind_iommufd(int dev, int iommufd) {
	struct t_bind b = {.argsz = sizeof b, .iommufd = iommufd};
	return ioctl(dev, T_VFIO_DEVICE_BIND_IOMMUFD, &b);
}

static inline int get_info(int dev) {
	struct t_device_info i = {.argsz = sizeof i};
	int r = ioctl(dev, T_VFIO_DEVICE_GET_INFO, &i);
	if (r == 0 && (i.num_regions != 9 || i.num_irqs != 5)) {
		fprintf(stderr, "GET_INFO: num_regions=%u num_irqs=%u\n", i.num_regions, i.num_irqs);
		exit(1);
	}
	return r;
}

static inline int ioas_alloc(int iommufd) {
	struct t_ioas_alloc a = {.size = sizeof a};
	return ioctl(iommufd, T_IOMMU_IOAS_ALLOC, &a) < 0 ? -1 : (int)a.out_ioas_id;
}

static inline int attach_pt(int dev, uint32_t pt) {
	struct t_attach a = {.argsz = sizeof a, .pt_id = pt};
	return ioctl(dev, T_VFIO_DEVICE_ATTACH_IOMMUFD_PT, &a);
}

/* 1 if the group is held elsewhere (EBUSY), 0 if it could be opened (and was closed again). */
static inline int group_busy(void) {
	int fd = open(GROUP, O_RDWR);
	if (fd >= 0) {
		CHECK(close(fd) == 0);
		return 0;
	}
	CHECK(errno == EBUSY);
	return 1;
}

/* open the cdev and bind it to a fresh iommufd; *iommufd gets the iommufd */
static inline int open_bound(int *iommufd) {
	int dev = open(CDEV, O_RDWR);
	CHECK(dev >= 0);
	int ifd = open("/dev/iommu", O_RDWR);
	CHECK(ifd >= 0);
	CHECK(bind_iommufd(dev, ifd) == 0);
	if (iommufd) *iommufd = ifd;
	else close(ifd);
	return dev;
}

static inline void send_fd(int sock, int fd) {
	char c = 'F';
	struct iovec io = {&c, 1};
	union { char b[CMSG_SPACE(sizeof(int))]; struct cmsghdr a; } cb;
	struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = cb.b, .msg_controllen = sizeof cb.b};
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);
	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &fd, sizeof fd);
	CHECK(sendmsg(sock, &m, 0) == 1);
}

static inline int recv_fd(int sock) {
	char c;
	struct iovec io = {&c, 1};
	union { char b[CMSG_SPACE(sizeof(int))]; struct cmsghdr a; } cb;
	struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = cb.b, .msg_controllen = sizeof cb.b};
	CHECK(recvmsg(sock, &m, 0) == 1);
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);
	CHECK(h && h->cmsg_type == SCM_RIGHTS);
	int fd;
	memcpy(&fd, CMSG_DATA(h), sizeof fd);
	return fd;
}

static inline void wait_ok(pid_t pid) {
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "child %d failed (status 0x%x)\n", pid, st);
		exit(1);
	}
}
