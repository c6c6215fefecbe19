/* What real clients do with paths, besides ioctls:
 *  qemu     QEMU's cdev lookup: opendir(<sysfs dev>/vfio-dev), read vfio-dev/vfioX/dev ("M:m"),
 *           open /dev/vfio/devices/vfioX and check fstat's S_ISCHR and st_rdev against it; the
 *           iommu_group link; realpath of the sysfs device; the stat family and statx.
 *  stdio    fopen + fgets of sysfs values (DPDK), scandir, access, readlink, lseek + read.
 *  passthru paths and fds outside the emulated trees behave as without the shim.
 *  efault   bad pointers in ioctl arguments give EFAULT, as in the kernel.
 *  libvirt  libvirt's pattern: open /dev/iommu and the cdev, hand both to another program by
 *           inheritance across exec (QEMU's fd=), and to another process over SCM_RIGHTS.
 *  entry    the other entry points glibc exports and fortified or 64-bit builds call: open64,
 *           openat64, __open*_2, __read_chk, readv/writev, pread64, preadv*, pwrite64,
 *           pwritev*, __pread*_chk, lseek64, the stat64 family, __readlink_chk, __realpath_chk,
 *           canonicalize_file_name, euidaccess/eaccess, readdir64/readdir_r/telldir/seekdir/
 *           rewinddir, fdopendir, scandirat, fopen64, fdopen, getxattr, fcntl F_SETFL. */
#include "common.h"
#pragma GCC diagnostic ignored "-Wdeprecated-declarations" /* readdir_r is an entry point to cover */
#include <dirent.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/xattr.h>

static const char *SYSDEV = "/sys/bus/pci/devices/0000:01:00.0";

static void t_qemu(void) {
	char path[PATH_MAX], name[256] = "";
	snprintf(path, sizeof path, "%s/vfio-dev", SYSDEV);
	DIR *d = opendir(path);
	CHECK(d != NULL);
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d))) {
		if (!strncmp(e->d_name, "vfio", 4)) snprintf(name, sizeof name, "%s", e->d_name);
		n++;
	}
	CHECK(n == 3); /* ".", "..", "vfio0" */
	CHECK(dirfd(d) >= 0);
	CHECK(closedir(d) == 0);
	CHECK(!strcmp(name, "vfio0"));
	/* rust-vmm: the entry must be a directory (stat follows the link) */
	snprintf(path, sizeof path, "%s/vfio-dev/%s", SYSDEV, name);
	struct stat st;
	CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode));
	/* g_file_get_contents: open + fstat + read */
	snprintf(path, sizeof path, "%s/vfio-dev/%s/dev", SYSDEV, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK(fstat(fd, &st) == 0 && S_ISREG(st.st_mode));
	char buf[64] = {0};
	CHECK(read(fd, buf, sizeof buf - 1) > 0);
	CHECK(close(fd) == 0);
	unsigned maj, min;
	CHECK(sscanf(buf, "%u:%u", &maj, &min) == 2);
	snprintf(path, sizeof path, "/dev/vfio/devices/%s", name);
	int dev = open(path, O_RDWR | O_CLOEXEC);
	CHECK(dev >= 0);
	CHECK(fstat(dev, &st) == 0);
	CHECK(S_ISCHR(st.st_mode) && st.st_rdev == makedev(maj, min));
	CHECK(fcntl(dev, F_GETFD) == FD_CLOEXEC);
	CHECK((fcntl(dev, F_GETFL) & O_ACCMODE) == O_RDWR);
	struct stat st2;
	CHECK(stat(path, &st2) == 0 && S_ISCHR(st2.st_mode) && st2.st_rdev == st.st_rdev && st2.st_ino == st.st_ino);
	CHECK(fstatat(AT_FDCWD, path, &st2, AT_SYMLINK_NOFOLLOW) == 0 && st2.st_rdev == st.st_rdev);
	CHECK(fstatat(dev, "", &st2, AT_EMPTY_PATH) == 0 && st2.st_rdev == st.st_rdev);
	struct statx sx;
	CHECK(statx(AT_FDCWD, path, 0, STATX_BASIC_STATS, &sx) == 0);
	CHECK(S_ISCHR(sx.stx_mode) && sx.stx_rdev_major == maj && sx.stx_rdev_minor == min);
	CHECK(statx(dev, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &sx) == 0 && sx.stx_rdev_major == maj);
	/* iommu_group: readlink, basename = group number */
	snprintf(path, sizeof path, "%s/iommu_group", SYSDEV);
	char link[PATH_MAX];
	ssize_t l = readlink(path, link, sizeof link - 1);
	CHECK(l > 0);
	link[l] = 0;
	CHECK(!strcmp(link, "../../../../kernel/iommu_groups/6"));
	CHECK(readlinkat(AT_FDCWD, path, link, 4) == 4 && !memcmp(link, "../.", 4));
	CHECK(lstat(path, &st2) == 0 && S_ISLNK(st2.st_mode));
	/* the device is not an mdev: realpath(<dev>/subsystem) is /sys/bus/pci */
	snprintf(path, sizeof path, "%s/subsystem", SYSDEV);
	char *rp = realpath(path, NULL);
	CHECK(rp && !strcmp(rp, "/sys/bus/pci"));
	free(rp);
	char rbuf[PATH_MAX];
	CHECK(realpath(SYSDEV, rbuf) && !strcmp(rbuf, "/sys/devices/pci0000:00/0000:00:02.0/0000:01:00.0"));
	/* bind through the cdev found that way */
	int ifd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	CHECK(ifd > 0);
	CHECK(bind_iommufd(dev, ifd) == 0 && get_info(dev) == 0);
	CHECK(close(dev) == 0 && close(ifd) == 0);
}

static int only_vfio(const struct dirent *e) {
	return !strncmp(e->d_name, "vfio", 4);
}

static void t_stdio(void) {
	char path[PATH_MAX], line[64];
	snprintf(path, sizeof path, "%s/vendor", SYSDEV);
	FILE *f = fopen(path, "r");
	CHECK(f != NULL);
	CHECK(fgets(line, sizeof line, f) && !strcmp(line, "0x8086\n"));
	CHECK(fgets(line, sizeof line, f) == NULL && feof(f));
	CHECK(fclose(f) == 0);
	snprintf(path, sizeof path, "%s/device", SYSDEV);
	f = fopen(path, "re");
	CHECK(f != NULL);
	unsigned long v = 0;
	CHECK(fscanf(f, "%lx", &v) == 1 && v == 0x10d3);
	rewind(f);
	CHECK(fgets(line, sizeof line, f) && !strcmp(line, "0x10d3\n"));
	CHECK(fclose(f) == 0);
	/* lseek + read (libvirt reads sysfs this way) */
	int fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK(lseek(fd, 2, SEEK_SET) == 2);
	char b[8] = {0};
	CHECK(read(fd, b, 4) == 4 && !memcmp(b, "10d3", 4));
	CHECK(pread(fd, b, 2, 0) == 2 && !memcmp(b, "0x", 2));
	CHECK(close(fd) == 0);
	/* scandir with a filter and alphasort */
	struct dirent **list;
	int n = scandir("/sys/class/vfio-dev", &list, only_vfio, versionsort);
	CHECK(n >= 8); /* the default host's vfio-pci functions: vfio0, vfio1, ... */
	for (int i = 0; i < n; i++) {
		char want[16];
		snprintf(want, sizeof want, "vfio%d", i);
		CHECK(!strcmp(list[i]->d_name, want));
	}
	for (int i = 0; i < n; i++) free(list[i]);
	free(list);
	/* access */
	CHECK(access("/dev/vfio/vfio", R_OK | W_OK) == 0);
	CHECK(access("/dev/vfio/99", F_OK) == -1 && errno == ENOENT);
	CHECK(faccessat(AT_FDCWD, "/dev/iommu", F_OK, 0) == 0);
	/* the Intel IOMMU debugfs is hidden: vfio_dma_mapping_test must not find it */
	CHECK(access("/sys/kernel/debug/iommu/intel", F_OK) == -1 && errno == ENOENT);
	/* openat relative to an emulated directory, and a relative path from a cwd in /dev */
	int dir = open("/sys/bus/pci/devices", O_RDONLY | O_DIRECTORY);
	CHECK(dir >= 0);
	fd = openat(dir, "0000:01:00.0/vendor", O_RDONLY);
	CHECK(fd >= 0 && read(fd, b, 6) == 6 && !memcmp(b, "0x8086", 6));
	close(fd);
	close(dir);
	CHECK(chdir("/dev") == 0);
	fd = open("vfio/vfio", O_RDWR);
	CHECK(fd >= 0);
	CHECK(ioctl(fd, T_VFIO_GET_API_VERSION) == 0);
	close(fd);
	/* writes to sysfs: driver_override round trip */
	snprintf(path, sizeof path, "%s/driver_override", SYSDEV);
	fd = open(path, O_WRONLY);
	CHECK(fd > 0);
	CHECK(write(fd, "vfio-pci", 8) == 8);
	close(fd);
	f = fopen(path, "r");
	CHECK(f && fgets(line, sizeof line, f) && !strcmp(line, "vfio-pci\n"));
	fclose(f);
}

static void t_passthru(void) {
	/* nothing outside the trees changes */
	struct stat st;
	CHECK(stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3));
	int fd = open("/proc/self/status", O_RDONLY);
	CHECK(fd >= 0);
	char b[16];
	CHECK(read(fd, b, 5) == 5 && !memcmp(b, "Name:", 5));
	close(fd);
	FILE *f = fopen("/proc/self/cmdline", "r");
	CHECK(f != NULL);
	fclose(f);
	DIR *d = opendir("/proc/self/fd");
	CHECK(d != NULL);
	CHECK(readdir(d) != NULL);
	closedir(d);
	char *rp = realpath("/proc/self", NULL);
	CHECK(rp && rp[0] == '/');
	free(rp);
	errno = 0;
	CHECK(open("/nonexistent/file", O_RDONLY) == -1 && errno == ENOENT);
	CHECK(access("/dev/vfio-not-emulated", F_OK) == -1 && errno == ENOENT);
	/* a pipe and a plain socket are not emulated files */
	int p[2];
	CHECK(pipe(p) == 0 && write(p[1], "ab", 2) == 2 && read(p[0], b, 2) == 2);
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
	CHECK(fstat(sv[0], &st) == 0 && S_ISSOCK(st.st_mode));
	CHECK(write(sv[0], "x", 1) == 1 && read(sv[1], b, 1) == 1);
	/* an emulated fd is not a socket to the program */
	int dev = open(CDEV, O_RDWR);
	CHECK(dev >= 0);
	CHECK(shutdown(dev, SHUT_RDWR) == -1 && errno == ENOTSOCK);
	CHECK(ioctl(dev, FIOCLEX) == 0 && fcntl(dev, F_GETFD) == FD_CLOEXEC);
	/* an anonymous mmap is not affected; a file mmap of a cdev is the model's answer */
	void *m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(m != MAP_FAILED);
	munmap(m, 4096);
	close(dev);
}

static void t_efault(void) {
	int ifd;
	int dev = open_bound(&ifd);
	CHECK(ioctl(dev, T_VFIO_DEVICE_GET_INFO, (void *)8) == -1 && errno == EFAULT);
	/* a read-only argument: the kernel's copy_to_user faults */
	struct t_device_info *ro = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(ro != MAP_FAILED);
	ro->argsz = sizeof *ro;
	CHECK(mprotect(ro, 4096, PROT_READ) == 0);
	CHECK(ioctl(dev, T_VFIO_DEVICE_GET_INFO, ro) == -1 && errno == EFAULT);
	/* a struct that straddles into an unmapped page */
	char *two = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(two != MAP_FAILED && munmap(two + 4096, 4096) == 0);
	struct t_device_info *edge = (void *)(two + 4096 - 8);
	edge->argsz = sizeof *edge;
	CHECK(ioctl(dev, T_VFIO_DEVICE_GET_INFO, edge) == -1 && errno == EFAULT);
	int vfd = open("/sys/bus/pci/devices/0000:01:00.0/vendor", O_RDONLY);
	void *volatile bad = (void *)16;
	CHECK(vfd >= 0 && read(vfd, bad, 4) == -1 && errno == EFAULT);
	close(vfd);
	/* the daemon is fine afterwards */
	CHECK(get_info(dev) == 0);
	close(dev);
	close(ifd);
}

static void t_libvirt(const char *self) {
	/* libvirt opens /dev/iommu and the cdev and passes both to QEMU by inheritance (fd=N) */
	int ifd = open("/dev/iommu", O_RDWR);
	int dev = open(CDEV, O_RDWR);
	CHECK(ifd >= 0 && dev >= 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		char a[16], b[16];
		snprintf(a, sizeof a, "%d", ifd);
		snprintf(b, sizeof b, "%d", dev);
		execl(self, "qemu-system-x86_64", "libvirt-qemu", a, b, (char *)NULL);
		_exit(127);
	}
	CHECK(close(ifd) == 0 && close(dev) == 0);
	wait_ok(pid);
	CHECK(!group_busy());
	/* KubeVirt's pattern: a pre-configured iommufd handed over SCM_RIGHTS */
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	ifd = open("/dev/iommu", O_RDWR);
	dev = open(CDEV, O_RDWR);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		int i2 = recv_fd(sv[1]), d2 = recv_fd(sv[1]);
		CHECK(bind_iommufd(d2, i2) == 0);
		int ioas = ioas_alloc(i2);
		CHECK(ioas > 0 && attach_pt(d2, (uint32_t)ioas) == 0);
		CHECK(get_info(d2) == 0);
		_exit(0);
	}
	close(sv[1]);
	send_fd(sv[0], ifd);
	send_fd(sv[0], dev);
	CHECK(close(ifd) == 0 && close(dev) == 0);
	wait_ok(pid);
	close(sv[0]);
	CHECK(!group_busy());
}

static void t_libvirt_qemu(int ifd, int dev) {
	/* "QEMU" with -object iommufd,fd=N -device vfio-pci,fd=M: no sysfs, just the fds */
	CHECK(bind_iommufd(dev, ifd) == 0);
	int ioas = ioas_alloc(ifd);
	CHECK(ioas > 0);
	CHECK(attach_pt(dev, (uint32_t)ioas) == 0);
	CHECK(get_info(dev) == 0);
	CHECK(group_busy());
}

extern int __open_2(const char *, int);
extern int __open64_2(const char *, int);
extern int __openat_2(int, const char *, int);
extern int __openat64_2(int, const char *, int);
extern ssize_t __read_chk(int, void *, size_t, size_t);
extern ssize_t __pread_chk(int, void *, size_t, off_t, size_t);
extern ssize_t __pread64_chk(int, void *, size_t, off64_t, size_t);
extern ssize_t __readlink_chk(const char *, char *, size_t, size_t);
extern char *__realpath_chk(const char *, char *, size_t);

#define CFG (7ULL << 40) /* VFIO_PCI_CONFIG_REGION_INDEX */

static void t_entry(void) {
	const char *vendor = "/sys/bus/pci/devices/0000:01:00.0/vendor";
	char b[64];
	int opened[6] = {open64(vendor, O_RDONLY), openat64(AT_FDCWD, vendor, O_RDONLY), __open_2(vendor, O_RDONLY),
	                 __open64_2(vendor, O_RDONLY), __openat_2(AT_FDCWD, vendor, O_RDONLY), __openat64_2(AT_FDCWD, vendor, O_RDONLY)};
	for (int i = 0; i < 6; i++) {
		CHECK(opened[i] >= 0);
		memset(b, 0, sizeof b);
		CHECK(__read_chk(opened[i], b, 16, sizeof b) == 7 && !strcmp(b, "0x8086\n"));
		CHECK(close(opened[i]) == 0);
	}
	/* vectored and positioned reads of a sysfs attribute */
	int fd = open(vendor, O_RDONLY);
	CHECK(fd >= 0);
	memset(b, 0, sizeof b);
	struct iovec iov[2] = {{b, 2}, {b + 2, 5}};
	CHECK(readv(fd, iov, 2) == 7 && !memcmp(b, "0x8086\n", 7));
	CHECK(lseek64(fd, 0, SEEK_CUR) == 7);
	memset(b, 0, sizeof b);
	CHECK(preadv(fd, iov, 2, 0) == 7 && !memcmp(b, "0x8086\n", 7));
	CHECK(preadv64(fd, iov, 1, 2) == 2 && !memcmp(b, "80", 2));
	CHECK(lseek(fd, 2, SEEK_SET) == 2);
	CHECK(preadv2(fd, iov, 1, -1, 0) == 2 && !memcmp(b, "80", 2)); /* -1: at the file position */
	CHECK(lseek(fd, 0, SEEK_CUR) == 4);
	CHECK(preadv64v2(fd, iov, 1, 0, 0) == 2 && !memcmp(b, "0x", 2));
	CHECK(pread64(fd, b, 4, 2) == 4 && !memcmp(b, "8086", 4));
	CHECK(__pread_chk(fd, b, 2, 4, sizeof b) == 2 && !memcmp(b, "86", 2));
	CHECK(__pread64_chk(fd, b, 2, 0, sizeof b) == 2 && !memcmp(b, "0x", 2));
	CHECK(close(fd) == 0);
	/* positioned and vectored writes through the device: config space and BAR0 */
	int dev = open_bound(NULL);
	uint16_t w = 0;
	CHECK(pread64(dev, &w, 2, CFG) == 2 && w == 0x8086);
	uint8_t line, got;
	struct iovec wv = {&line, 1};
	line = 0x5a;
	CHECK(pwrite64(dev, &line, 1, CFG + 0x3c) == 1 && pread(dev, &got, 1, CFG + 0x3c) == 1 && got == 0x5a);
	line = 0x33;
	CHECK(pwritev(dev, &wv, 1, CFG + 0x3c) == 1 && pread(dev, &got, 1, CFG + 0x3c) == 1 && got == 0x33);
	line = 0x44;
	CHECK(pwritev64(dev, &wv, 1, CFG + 0x3c) == 1 && pread(dev, &got, 1, CFG + 0x3c) == 1 && got == 0x44);
	line = 0x55;
	CHECK(pwritev2(dev, &wv, 1, CFG + 0x3c, 0) == 1 && pread(dev, &got, 1, CFG + 0x3c) == 1 && got == 0x55);
	line = 0x66;
	CHECK(pwritev64v2(dev, &wv, 1, CFG + 0x3c, 0) == 1 && pread(dev, &got, 1, CFG + 0x3c) == 1 && got == 0x66);
	/* write/writev at the file position (BAR0 from 0; a device file has no llseek: ESPIPE) */
	uint32_t x = 0x11223344, y = 0;
	CHECK(lseek(dev, 0x200, SEEK_SET) == -1 && errno == ESPIPE);
	CHECK(lseek64(dev, 0, SEEK_CUR) == -1 && errno == ESPIPE);
	CHECK(write(dev, &x, 4) == 4);
	struct iovec xv = {&x, 4};
	x = 0x55667788;
	CHECK(writev(dev, &xv, 1) == 4);
	CHECK(pread(dev, &y, 4, 0) == 4 && y == 0x11223344);
	CHECK(pread(dev, &y, 4, 4) == 4 && y == 0x55667788);
	/* the stat family's 64-bit forms */
	struct stat64 s64;
	CHECK(stat64(CDEV, &s64) == 0 && S_ISCHR(s64.st_mode));
	dev_t rdev = s64.st_rdev;
	CHECK(fstat64(dev, &s64) == 0 && S_ISCHR(s64.st_mode) && s64.st_rdev == rdev);
	CHECK(lstat64("/sys/bus/pci/devices/0000:01:00.0", &s64) == 0 && S_ISLNK(s64.st_mode));
	CHECK(fstatat64(AT_FDCWD, "/sys/bus/pci/devices/0000:01:00.0", &s64, 0) == 0 && S_ISDIR(s64.st_mode));
	CHECK(fcntl(dev, F_SETFL, O_NONBLOCK) == 0 && (fcntl(dev, F_GETFL) & O_NONBLOCK));
	CHECK(getxattr(CDEV, "security.selinux", b, sizeof b) == -1 && errno == ENODATA);
	CHECK(close(dev) == 0);
	/* links and canonical paths */
	char link[PATH_MAX];
	ssize_t l = __readlink_chk("/sys/bus/pci/devices/0000:01:00.0/driver", link, sizeof link - 1, sizeof link);
	CHECK(l > 0);
	link[l] = 0;
	CHECK(!strcmp(link, "../../../../bus/pci/drivers/vfio-pci"));
	char *c = canonicalize_file_name("/sys/bus/pci/devices/0000:01:00.0/driver");
	CHECK(c && !strcmp(c, "/sys/bus/pci/drivers/vfio-pci"));
	free(c);
	CHECK(__realpath_chk("/dev/vfio/../vfio/6", link, sizeof link) && !strcmp(link, "/dev/vfio/6"));
	CHECK(euidaccess("/dev/iommu", R_OK | W_OK) == 0 && eaccess(GROUP, F_OK) == 0);
	CHECK(eaccess("/dev/vfio/5", F_OK) == -1 && errno == ENOENT);
	/* directories */
	DIR *d = opendir("/dev/vfio/devices");
	CHECK(d != NULL);
	int n = 0;
	long pos = 0;
	char third[256] = "";
	struct dirent64 *e;
	while ((e = readdir64(d))) {
		if (++n == 2) pos = telldir(d);
		if (n == 3) snprintf(third, sizeof third, "%s", e->d_name);
	}
	CHECK(n >= 10); /* ".", "..", vfio0..vfioN */
	int ndevs = n - 2;
	seekdir(d, pos);
	CHECK((e = readdir64(d)) && !strcmp(e->d_name, third));
	rewinddir(d);
	struct dirent ent, *res;
	CHECK(readdir_r(d, &ent, &res) == 0 && res == &ent && !strcmp(ent.d_name, "."));
	CHECK(closedir(d) == 0);
	int dfd = open("/sys/class/vfio-dev", O_RDONLY | O_DIRECTORY);
	CHECK(dfd >= 0);
	d = fdopendir(dfd);
	CHECK(d && dirfd(d) == dfd);
	n = 0;
	while (readdir(d)) n++;
	CHECK(n == ndevs + 2 && closedir(d) == 0);
	struct dirent **list;
	CHECK(scandirat(AT_FDCWD, "/dev/vfio/devices", &list, only_vfio, alphasort) == ndevs);
	for (int i = 0; i < ndevs; i++) free(list[i]);
	free(list);
	int sysdir = open("/sys/bus/pci/devices", O_RDONLY | O_DIRECTORY);
	CHECK(sysdir >= 0);
	CHECK(scandirat(sysdir, "0000:01:00.0/vfio-dev", &list, only_vfio, NULL) == 1 && !strcmp(list[0]->d_name, "vfio0"));
	free(list[0]);
	free(list);
	close(sysdir);
	/* stdio */
	FILE *f = fopen64(vendor, "r");
	CHECK(f && fgets(b, sizeof b, f) && !strcmp(b, "0x8086\n") && fclose(f) == 0);
	fd = open(vendor, O_RDONLY);
	f = fdopen(fd, "r");
	CHECK(f && fgets(b, sizeof b, f) && !strcmp(b, "0x8086\n") && fclose(f) == 0);
	CHECK(fcntl(fd, F_GETFD) == -1 && errno == EBADF); /* fclose closed it */
}

int main(int argc, char **argv) {
	const char *mode = argc > 1 ? argv[1] : "";
	if (!strcmp(mode, "qemu")) t_qemu();
	else if (!strcmp(mode, "stdio")) t_stdio();
	else if (!strcmp(mode, "passthru")) t_passthru();
	else if (!strcmp(mode, "efault")) t_efault();
	else if (!strcmp(mode, "libvirt")) t_libvirt(argv[0]);
	else if (!strcmp(mode, "entry")) t_entry();
	else if (!strcmp(mode, "libvirt-qemu") && argc > 3) t_libvirt_qemu(atoi(argv[2]), atoi(argv[3]));
	else {
		fprintf(stderr, "usage: clients qemu|stdio|passthru|efault|libvirt|entry\n");
		return 2;
	}
	printf("ok %s\n", mode);
	return 0;
}
