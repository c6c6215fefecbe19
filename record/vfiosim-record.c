/*
 * vfiosim-record: capture what a Linux machine's VFIO stack shows, as a vfiosim host file.
 *
 * Runs as root on a machine whose PCI functions are bound to vfio-pci. It writes a host topology
 * (YAML, the format of vfiosim's src/host/topology.ts) describing every PCI function (IDs, BARs,
 * capabilities, IOMMU group, driver, reset methods) plus a `recorded:` section per function and
 * for the machine: the raw config space (sysfs) and the config space vfio-pci presents (through
 * the device fd), VFIO region/IRQ info, hot-reset info (the device set), type1 and iommufd IOVA
 * ranges, IOMMU_GET_HW_INFO, reserved regions, char-device majors, module parameters, and the
 * results of the probe sequences of record/probes.txt.
 *
 * Self-contained on purpose: no kernel uapi headers (the ABI numbers and struct layouts used are
 * written out below), libc only, so it builds with any cc (or statically, ../shared/oracle's
 * oracle-cc) and runs inside a busybox-only guest.
 *
 *   vfiosim-record [-o FILE] [-P PROBES] [-N NAME] [-D TEXT] [-n BDF=NAME]... [BDF...]
 *   vfiosim-record --parse-probes FILE     check a probe file and print its normalised steps
 *   vfiosim-record --constants             print the constant table (name value)
 *   vfiosim-record --errnos                print the errno-name table (number name)
 *
 * Exit status: 0 written, 1 the machine cannot be recorded (not root, no VFIO, ...), 2 bad usage
 * or a bad probe file.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <unistd.h>

#define RECORDER_VERSION 1
#define PROBE_FORMAT 1

/* ---- ABI: ioctl numbers (_IO(';', nr)) and constants, as Linux 7.2's uapi defines them ---- */

#define VIO(nr) ((unsigned long)((0x3b << 8) | (nr)))
#define V_GET_API_VERSION VIO(100)
#define V_CHECK_EXTENSION VIO(101)
#define V_SET_IOMMU VIO(102)
#define V_GROUP_GET_STATUS VIO(103)
#define V_GROUP_SET_CONTAINER VIO(104)
#define V_GROUP_GET_DEVICE_FD VIO(106)
#define V_DEVICE_GET_INFO VIO(107)
#define V_DEVICE_GET_REGION_INFO VIO(108)
#define V_DEVICE_GET_IRQ_INFO VIO(109)
#define V_DEVICE_GET_PCI_HOT_RESET_INFO VIO(112)
#define V_IOMMU_GET_INFO VIO(112)
#define V_DEVICE_BIND_IOMMUFD VIO(118)
#define V_DEVICE_ATTACH_IOMMUFD_PT VIO(119)
#define I_IOAS_ALLOC VIO(0x81)
#define I_IOAS_IOVA_RANGES VIO(0x84)
#define I_GET_HW_INFO VIO(0x8a)

struct constant {
	const char *name;
	long long value;
};

static const struct constant CONSTANTS[] = {
	/* container */
	{"VFIO_GET_API_VERSION", VIO(100)},
	{"VFIO_CHECK_EXTENSION", VIO(101)},
	{"VFIO_SET_IOMMU", VIO(102)},
	/* group */
	{"VFIO_GROUP_GET_STATUS", VIO(103)},
	{"VFIO_GROUP_SET_CONTAINER", VIO(104)},
	{"VFIO_GROUP_UNSET_CONTAINER", VIO(105)},
	{"VFIO_GROUP_GET_DEVICE_FD", VIO(106)},
	/* device */
	{"VFIO_DEVICE_GET_INFO", VIO(107)},
	{"VFIO_DEVICE_GET_REGION_INFO", VIO(108)},
	{"VFIO_DEVICE_GET_IRQ_INFO", VIO(109)},
	{"VFIO_DEVICE_SET_IRQS", VIO(110)},
	{"VFIO_DEVICE_RESET", VIO(111)},
	{"VFIO_DEVICE_GET_PCI_HOT_RESET_INFO", VIO(112)},
	{"VFIO_DEVICE_PCI_HOT_RESET", VIO(113)},
	{"VFIO_DEVICE_IOEVENTFD", VIO(116)},
	{"VFIO_DEVICE_FEATURE", VIO(117)},
	{"VFIO_DEVICE_BIND_IOMMUFD", VIO(118)},
	{"VFIO_DEVICE_ATTACH_IOMMUFD_PT", VIO(119)},
	{"VFIO_DEVICE_DETACH_IOMMUFD_PT", VIO(120)},
	/* type1 */
	{"VFIO_IOMMU_GET_INFO", VIO(112)},
	{"VFIO_IOMMU_MAP_DMA", VIO(113)},
	{"VFIO_IOMMU_UNMAP_DMA", VIO(114)},
	{"VFIO_IOMMU_DIRTY_PAGES", VIO(117)},
	/* iommufd */
	{"IOMMU_DESTROY", VIO(0x80)},
	{"IOMMU_IOAS_ALLOC", VIO(0x81)},
	{"IOMMU_IOAS_ALLOW_IOVAS", VIO(0x82)},
	{"IOMMU_IOAS_COPY", VIO(0x83)},
	{"IOMMU_IOAS_IOVA_RANGES", VIO(0x84)},
	{"IOMMU_IOAS_MAP", VIO(0x85)},
	{"IOMMU_IOAS_UNMAP", VIO(0x86)},
	{"IOMMU_OPTION", VIO(0x87)},
	{"IOMMU_VFIO_IOAS", VIO(0x88)},
	{"IOMMU_HWPT_ALLOC", VIO(0x89)},
	{"IOMMU_GET_HW_INFO", VIO(0x8a)},
	{"IOMMU_IOAS_MAP_FILE", VIO(0x8f)},
	/* values and flags */
	{"VFIO_API_VERSION", 0},
	{"VFIO_TYPE1_IOMMU", 1},
	{"VFIO_SPAPR_TCE_IOMMU", 2},
	{"VFIO_TYPE1v2_IOMMU", 3},
	{"VFIO_DMA_CC_IOMMU", 4},
	{"VFIO_EEH", 5},
	{"VFIO_SPAPR_TCE_v2_IOMMU", 7},
	{"VFIO_NOIOMMU_IOMMU", 8},
	{"VFIO_UNMAP_ALL", 9},
	{"VFIO_UPDATE_VADDR", 10},
	{"VFIO_GROUP_FLAGS_VIABLE", 1},
	{"VFIO_GROUP_FLAGS_CONTAINER_SET", 2},
	{"VFIO_DEVICE_FLAGS_RESET", 1},
	{"VFIO_DEVICE_FLAGS_PCI", 2},
	{"VFIO_DEVICE_FLAGS_CAPS", 0x80},
	{"VFIO_DEVICE_BIND_FLAG_TOKEN", 1},
	{"VFIO_DEVICE_ATTACH_PASID", 1},
	{"VFIO_DEVICE_DETACH_PASID", 1},
	{"VFIO_PCI_BAR0_REGION_INDEX", 0},
	{"VFIO_PCI_ROM_REGION_INDEX", 6},
	{"VFIO_PCI_CONFIG_REGION_INDEX", 7},
	{"VFIO_PCI_VGA_REGION_INDEX", 8},
	{"VFIO_PCI_INTX_IRQ_INDEX", 0},
	{"VFIO_PCI_MSI_IRQ_INDEX", 1},
	{"VFIO_PCI_MSIX_IRQ_INDEX", 2},
	{"VFIO_PCI_ERR_IRQ_INDEX", 3},
	{"VFIO_PCI_REQ_IRQ_INDEX", 4},
	{"VFIO_IRQ_SET_DATA_NONE", 1},
	{"VFIO_IRQ_SET_DATA_BOOL", 2},
	{"VFIO_IRQ_SET_DATA_EVENTFD", 4},
	{"VFIO_IRQ_SET_ACTION_MASK", 8},
	{"VFIO_IRQ_SET_ACTION_UNMASK", 0x10},
	{"VFIO_IRQ_SET_ACTION_TRIGGER", 0x20},
	{"VFIO_PCI_HOT_RESET_FLAG_DEV_ID", 1},
	{"VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED", 2},
	{"VFIO_DEVICE_FEATURE_GET", 0x10000},
	{"VFIO_DEVICE_FEATURE_SET", 0x20000},
	{"VFIO_DEVICE_FEATURE_PROBE", 0x40000},
	{"VFIO_DMA_MAP_FLAG_READ", 1},
	{"VFIO_DMA_MAP_FLAG_WRITE", 2},
	{"VFIO_DMA_MAP_FLAG_VADDR", 4},
	{"VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP", 1},
	{"VFIO_DMA_UNMAP_FLAG_ALL", 2},
	{"VFIO_DMA_UNMAP_FLAG_VADDR", 4},
	{"IOMMU_IOAS_MAP_FIXED_IOVA", 1},
	{"IOMMU_IOAS_MAP_WRITEABLE", 2},
	{"IOMMU_IOAS_MAP_READABLE", 4},
	{"IOMMU_OPTION_RLIMIT_MODE", 0},
	{"IOMMU_OPTION_HUGE_PAGES", 1},
	{"IOMMU_OPTION_OP_SET", 0},
	{"IOMMU_OPTION_OP_GET", 1},
	{"IOMMU_VFIO_IOAS_GET", 0},
	{"IOMMU_VFIO_IOAS_SET", 1},
	{"IOMMU_VFIO_IOAS_CLEAR", 2},
	{"IOMMU_HWPT_DATA_NONE", 0},
	{"IOMMU_HW_INFO_TYPE_NONE", 0},
	{"IOMMU_HW_INFO_TYPE_INTEL_VTD", 1},
	/* open(2) flags (x86-64) */
	{"O_RDONLY", 0},
	{"O_WRONLY", 1},
	{"O_RDWR", 2},
	{"O_NONBLOCK", 04000},
	{"O_CLOEXEC", 02000000},
};
#define NCONSTANTS (sizeof(CONSTANTS) / sizeof(CONSTANTS[0]))

static const struct {
	int e;
	const char *name;
} ERRNOS[] = {
	{1, "EPERM"},	{2, "ENOENT"},	 {3, "ESRCH"},	 {4, "EINTR"},	   {5, "EIO"},	       {6, "ENXIO"},
	{7, "E2BIG"},	{8, "ENOEXEC"},	 {9, "EBADF"},	 {10, "ECHILD"},   {11, "EAGAIN"},     {12, "ENOMEM"},
	{13, "EACCES"}, {14, "EFAULT"},	 {15, "ENOTBLK"}, {16, "EBUSY"},   {17, "EEXIST"},     {18, "EXDEV"},
	{19, "ENODEV"}, {20, "ENOTDIR"}, {21, "EISDIR"}, {22, "EINVAL"},   {23, "ENFILE"},     {24, "EMFILE"},
	{25, "ENOTTY"}, {26, "ETXTBSY"}, {27, "EFBIG"},	 {28, "ENOSPC"},   {29, "ESPIPE"},     {30, "EROFS"},
	{31, "EMLINK"}, {32, "EPIPE"},	 {33, "EDOM"},	 {34, "ERANGE"},   {35, "EDEADLK"},    {36, "ENAMETOOLONG"},
	{37, "ENOLCK"}, {38, "ENOSYS"},	 {39, "ENOTEMPTY"}, {40, "ELOOP"}, {61, "ENODATA"},    {71, "EPROTO"},
	{75, "EOVERFLOW"}, {77, "EBADFD"}, {90, "EMSGSIZE"}, {95, "EOPNOTSUPP"}, {98, "EADDRINUSE"}, {110, "ETIMEDOUT"},
};

static const char *errno_name(int e)
{
	static char buf[16];
	for (size_t i = 0; i < sizeof(ERRNOS) / sizeof(ERRNOS[0]); i++)
		if (ERRNOS[i].e == e)
			return ERRNOS[i].name;
	snprintf(buf, sizeof(buf), "E#%d", e);
	return buf;
}

/* ---- small helpers ---- */

static void die(int code, const char *fmt, ...)
{
	va_list ap;
	fputs("vfiosim-record: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

static void *xcalloc(size_t n, size_t s)
{
	void *p = calloc(n ? n : 1, s ? s : 1);
	if (!p)
		die(1, "out of memory");
	return p;
}

static char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		die(1, "out of memory");
	return p;
}

static void put8(uint8_t *b, size_t o, uint64_t v) { b[o] = (uint8_t)v; }
static void put16(uint8_t *b, size_t o, uint64_t v) { for (int i = 0; i < 2; i++) b[o + i] = (uint8_t)(v >> (8 * i)); }
static void put32(uint8_t *b, size_t o, uint64_t v) { for (int i = 0; i < 4; i++) b[o + i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *b, size_t o, uint64_t v) { for (int i = 0; i < 8; i++) b[o + i] = (uint8_t)(v >> (8 * i)); }
static uint64_t getn(const uint8_t *b, size_t o, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | b[o + i];
	return v;
}
static uint32_t get16(const uint8_t *b, size_t o) { return (uint32_t)getn(b, o, 2); }
static uint32_t get32(const uint8_t *b, size_t o) { return (uint32_t)getn(b, o, 4); }
static uint64_t get64(const uint8_t *b, size_t o) { return getn(b, o, 8); }

/* the output: a growing text buffer written at the end (so no file is open while probing) */
struct sb {
	char *p;
	size_t n, cap;
};
static struct sb out;

static void sbf(struct sb *b, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		size_t room = b->cap - b->n;
		va_start(ap, fmt);
		int k = vsnprintf(b->p ? b->p + b->n : NULL, room, fmt, ap);
		va_end(ap);
		if (k < 0)
			die(1, "formatting failed");
		if ((size_t)k < room) {
			b->n += (size_t)k;
			return;
		}
		b->cap = (b->cap + (size_t)k + 1) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			die(1, "out of memory");
	}
}
#define O(...) sbf(&out, __VA_ARGS__)

/* a JSON/YAML double-quoted string */
static void oq(const char *s)
{
	O("\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			O("\\%c", c);
		else if (c == '\n')
			O("\\n");
		else if (c == '\t')
			O("\\t");
		else if (c < 0x20 || c >= 0x7f)
			O("\\x%02x", c);
		else
			O("%c", c);
	}
	O("\"");
}

static void ohex(const uint8_t *b, size_t n)
{
	O("\"");
	for (size_t i = 0; i < n; i++)
		O("%02x", b[i]);
	O("\"");
}

/* read a whole (small) file; returns length or -1; NUL-terminated */
static ssize_t read_file(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t n = 0;
	while (n + 1 < cap) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = 0;
	return (ssize_t)n;
}

static int read_trim(const char *path, char *buf, size_t cap)
{
	ssize_t n = read_file(path, buf, cap);
	if (n < 0)
		return -1;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return (int)n;
}

static long long read_num(const char *path, long long dflt)
{
	char b[64];
	if (read_trim(path, b, sizeof(b)) <= 0)
		return dflt;
	return strtoll(b, NULL, 0);
}

static int link_base(const char *path, char *buf, size_t cap)
{
	char t[4096];
	ssize_t n = readlink(path, t, sizeof(t) - 1);
	if (n < 0)
		return -1;
	t[n] = 0;
	const char *b = strrchr(t, '/');
	b = b ? b + 1 : t;
	size_t l = strlen(b);
	if (l >= cap)
		return -1;
	memcpy(buf, b, l + 1);
	return 0;
}

static int exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static int cmpstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static int cmpnum(const void *a, const void *b)
{
	long x = atol(*(char *const *)a), y = atol(*(char *const *)b);
	return x < y ? -1 : x > y;
}

/* sorted directory listing (without . and ..); returns count, *names malloc'd */
static int list_dir(const char *path, char ***names)
{
	DIR *d = opendir(path);
	*names = NULL;
	if (!d)
		return -1;
	int n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			*names = realloc(*names, sizeof(char *) * (size_t)cap);
			if (!*names)
				die(1, "out of memory");
		}
		(*names)[n++] = xstrdup(e->d_name);
	}
	closedir(d);
	if (n)
		qsort(*names, (size_t)n, sizeof(char *), cmpstr);
	return n;
}

static void free_list(char **names, int n)
{
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* ioctl returning -errno */
static int xioctl(int fd, unsigned long req, void *arg)
{
	int r = ioctl(fd, req, arg);
	return r < 0 ? -errno : r;
}

/* ---- the machine's PCI functions ---- */

struct res {
	uint64_t start, end, flags;
};

struct region {
	int err;
	uint32_t flags, cap_offset;
	uint64_t size, offset;
	uint8_t *buf;
	uint32_t len;
};

struct irq {
	int err;
	uint32_t flags, count;
};

#define MAXREG 32
#define MAXIRQ 32

struct fn {
	char bdf[16];
	unsigned dom, bus, dev, fnn;
	char name[64];
	unsigned vendor, device, subv, subd, rev, cls;
	uint8_t raw[4096];
	int rawlen;
	struct res res[7];
	char driver[64];
	int group;
	int has_reset_method;
	char reset_method[256];
	int vfio_index;
	int hdr, secondary;
	int is_vfio, selected;
	/* captured through VFIO */
	int captured;
	const char *via;
	char errors[1024];
	uint8_t cfg[4096];
	int cfglen, cfg_errs;
	uint8_t *info;
	uint32_t info_len;
	int info_err;
	int nregions;
	struct region regions[MAXREG];
	int nirqs;
	struct irq irqs[MAXIRQ];
	int hr_err;
	uint8_t *hr;
	uint32_t hr_len;
	int hrg_err;
	uint8_t *hrg;
	uint32_t hrg_len;
	/* type1 */
	int t1_err;
	int t1_iommu, t1_cc;
	uint8_t *t1;
	uint32_t t1_len;
	/* iommufd */
	int ifd_err;
	uint8_t *rng0, *rng1;
	uint32_t nrng0, nrng1;
	uint64_t align1;
	int hw_err;
	uint32_t hw_type, hw_len, hw_pasid;
	uint64_t hw_caps;
	uint8_t hw_data[512];
};

static struct fn *fns;
static int nfns;

static void note(struct fn *f, const char *fmt, ...)
{
	char m[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	size_t l = strlen(f->errors);
	snprintf(f->errors + l, sizeof(f->errors) - l, "%s%s", l ? "\n" : "", m);
}

static int read_config(const char *bdf, uint8_t *buf)
{
	char p[256];
	snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/config", bdf);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	int n = 0;
	while (n < 4096) {
		ssize_t r = pread(fd, buf + n, (size_t)(4096 - n), n);
		if (r <= 0)
			break;
		n += (int)r;
	}
	close(fd);
	return n;
}

static void enumerate(void)
{
	char **names;
	int n = list_dir("/sys/bus/pci/devices", &names);
	if (n < 0)
		die(1, "no /sys/bus/pci/devices: is sysfs mounted, and is this a PCI machine?");
	fns = xcalloc((size_t)n, sizeof(struct fn));
	for (int i = 0; i < n; i++) {
		struct fn *f = &fns[nfns];
		unsigned d, b, s, fn;
		if (sscanf(names[i], "%x:%x:%x.%u", &d, &b, &s, &fn) != 4)
			continue;
		nfns++;
		snprintf(f->bdf, sizeof(f->bdf), "%s", names[i]);
		f->dom = d, f->bus = b, f->dev = s, f->fnn = fn;
		char p[512], t[4096];
#define SYS(attr) (snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/%s", f->bdf, attr), p)
		f->vendor = (unsigned)read_num(SYS("vendor"), 0);
		f->device = (unsigned)read_num(SYS("device"), 0);
		f->subv = (unsigned)read_num(SYS("subsystem_vendor"), 0);
		f->subd = (unsigned)read_num(SYS("subsystem_device"), 0);
		f->rev = (unsigned)read_num(SYS("revision"), 0);
		f->cls = (unsigned)read_num(SYS("class"), 0);
		f->rawlen = read_config(f->bdf, f->raw);
		f->hdr = f->rawlen > 0x0e ? (f->raw[0x0e] & 0x7f) : 0;
		f->secondary = f->hdr == 1 && f->rawlen > 0x19 ? f->raw[0x19] : -1;
		if (read_file(SYS("resource"), t, sizeof(t)) > 0) {
			char *line = t;
			for (int r = 0; r < 7 && line && *line; r++) {
				unsigned long long a, e, fl;
				if (sscanf(line, "%llx %llx %llx", &a, &e, &fl) == 3)
					f->res[r] = (struct res){a, e, fl};
				line = strchr(line, '\n');
				if (line)
					line++;
			}
		}
		if (link_base(SYS("driver"), f->driver, sizeof(f->driver)) < 0)
			f->driver[0] = 0;
		char g[32];
		f->group = link_base(SYS("iommu_group"), g, sizeof(g)) == 0 ? atoi(g) : -1;
		f->has_reset_method = read_trim(SYS("reset_method"), f->reset_method, sizeof(f->reset_method)) >= 0;
		f->vfio_index = -1;
		char **v;
		int nv = list_dir(SYS("vfio-dev"), &v);
		for (int j = 0; j < nv; j++)
			if (!strncmp(v[j], "vfio", 4) && isdigit((unsigned char)v[j][4]))
				f->vfio_index = atoi(v[j] + 4);
		if (nv > 0)
			free_list(v, nv);
		f->is_vfio = !strcmp(f->driver, "vfio-pci");
#undef SYS
	}
	free_list(names, n);
}

static struct fn *find_fn(const char *bdf)
{
	for (int i = 0; i < nfns; i++)
		if (!strcasecmp(fns[i].bdf, bdf))
			return &fns[i];
	return NULL;
}

static void cdev_path(const struct fn *f, char *buf, size_t cap)
{
	if (f->vfio_index >= 0)
		snprintf(buf, cap, "/dev/vfio/devices/vfio%d", f->vfio_index);
	else
		buf[0] = 0;
}

static void group_path(const struct fn *f, char *buf, size_t cap)
{
	buf[0] = 0;
	if (f->group < 0)
		return;
	snprintf(buf, cap, "/dev/vfio/%d", f->group);
	if (!exists(buf)) {
		snprintf(buf, cap, "/dev/vfio/noiommu-%d", f->group);
		if (!exists(buf))
			buf[0] = 0;
	}
}

/* ---- VFIO capture ---- */

/* an "argsz" info ioctl: call with minsz, grow to the size the kernel asks for */
static uint8_t *info_call(int fd, unsigned long req, uint32_t minsz, int index, uint32_t *len, int *err)
{
	uint32_t sz = minsz;
	for (int tries = 0; tries < 4; tries++) {
		uint8_t *b = xcalloc(1, sz);
		put32(b, 0, sz);
		if (index >= 0)
			put32(b, 8, (uint32_t)index);
		int r = xioctl(fd, req, b);
		if (r < 0) {
			*err = -r;
			free(b);
			return NULL;
		}
		uint32_t need = get32(b, 0);
		if (need > sz && need <= 1 << 20) {
			free(b);
			sz = need;
			continue;
		}
		*err = 0;
		*len = sz;
		return b;
	}
	*err = EOVERFLOW;
	return NULL;
}

static void capture_device_fd(struct fn *f, int dev)
{
	f->info = info_call(dev, V_DEVICE_GET_INFO, 24, -1, &f->info_len, &f->info_err);
	if (!f->info) {
		note(f, "VFIO_DEVICE_GET_INFO: %s", errno_name(f->info_err));
		return;
	}
	uint32_t nreg = get32(f->info, 8), nirq = get32(f->info, 12);
	/* one index past the end too: the kernel's answer there (EINVAL) is part of the record */
	f->nregions = (int)(nreg + 1 < MAXREG ? nreg + 1 : MAXREG);
	for (int i = 0; i < f->nregions; i++) {
		struct region *r = &f->regions[i];
		r->buf = info_call(dev, V_DEVICE_GET_REGION_INFO, 32, i, &r->len, &r->err);
		if (r->buf) {
			r->flags = get32(r->buf, 4);
			r->cap_offset = get32(r->buf, 12);
			r->size = get64(r->buf, 16);
			r->offset = get64(r->buf, 24);
		}
	}
	f->nirqs = (int)(nirq + 1 < MAXIRQ ? nirq + 1 : MAXIRQ);
	for (int i = 0; i < f->nirqs; i++) {
		struct irq *q = &f->irqs[i];
		uint32_t len;
		uint8_t *b = info_call(dev, V_DEVICE_GET_IRQ_INFO, 16, i, &len, &q->err);
		if (b) {
			q->flags = get32(b, 4);
			q->count = get32(b, 12);
			free(b);
		}
	}
	/* the config space through vfio-pci (index 7), a dword at a time */
	if (nreg > 7 && f->regions[7].buf) {
		uint64_t off = f->regions[7].offset, size = f->regions[7].size;
		if (size > 4096)
			size = 4096;
		for (uint64_t o = 0; o < size; o += 4) {
			if (pread(dev, f->cfg + o, 4, (off_t)(off + o)) != 4) {
				memset(f->cfg + o, 0xff, 4);
				f->cfg_errs++;
			}
		}
		f->cfglen = (int)size;
	}
	/* the raw config space now, while the device is open (in D0, after vfio-pci's enable) */
	f->rawlen = read_config(f->bdf, f->raw);
}

/* hot-reset info, growing to the count the kernel reports with ENOSPC */
static uint8_t *hot_reset_info(int dev, uint32_t *len, int *err)
{
	uint32_t sz = 12;
	for (int tries = 0; tries < 4; tries++) {
		uint8_t *b = xcalloc(1, sz);
		put32(b, 0, sz);
		int r = xioctl(dev, V_DEVICE_GET_PCI_HOT_RESET_INFO, b);
		if (r == -ENOSPC) {
			sz = 12 + 8 * get32(b, 8);
			free(b);
			continue;
		}
		if (r < 0) {
			*err = -r;
			free(b);
			return NULL;
		}
		*err = 0;
		*len = sz;
		return b;
	}
	*err = EOVERFLOW;
	return NULL;
}

static uint8_t *iova_ranges(int ifd, uint32_t ioas, uint32_t *n, uint64_t *align, int *err)
{
	uint8_t a[32] = {0};
	put32(a, 0, 32);
	put32(a, 4, ioas);
	int r = xioctl(ifd, I_IOAS_IOVA_RANGES, a);
	if (r < 0 && r != -EMSGSIZE) {
		*err = -r;
		return NULL;
	}
	uint32_t num = get32(a, 8);
	uint8_t *ranges = xcalloc(num ? num : 1, 16);
	put32(a, 8, num);
	put64(a, 16, (uint64_t)(uintptr_t)ranges);
	r = xioctl(ifd, I_IOAS_IOVA_RANGES, a);
	if (r < 0) {
		*err = -r;
		free(ranges);
		return NULL;
	}
	*n = get32(a, 8);
	*align = get64(a, 24);
	*err = 0;
	return ranges;
}

/* cdev path: bind to a fresh iommufd, IOVA ranges before and after attach, hw info, the device */
static int capture_cdev(struct fn *f)
{
	char path[64];
	cdev_path(f, path, sizeof(path));
	if (!path[0] || !exists(path) || !exists("/dev/iommu"))
		return -1;
	int dev = open(path, O_RDWR | O_CLOEXEC);
	if (dev < 0) {
		note(f, "open %s: %s", path, errno_name(errno));
		return -1;
	}
	int ifd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	if (ifd < 0) {
		note(f, "open /dev/iommu: %s", errno_name(errno));
		close(dev);
		return -1;
	}
	uint8_t bind[24] = {0};
	put32(bind, 0, 24);
	put32(bind, 8, (uint32_t)ifd);
	int r = xioctl(dev, V_DEVICE_BIND_IOMMUFD, bind);
	if (r < 0) {
		note(f, "VFIO_DEVICE_BIND_IOMMUFD: %s", errno_name(-r));
		close(dev);
		close(ifd);
		return -1;
	}
	uint32_t devid = get32(bind, 12);
	f->via = "cdev";
	f->captured = 1;
	uint8_t alloc[12] = {0};
	put32(alloc, 0, 12);
	r = xioctl(ifd, I_IOAS_ALLOC, alloc);
	if (r < 0) {
		f->ifd_err = -r;
	} else {
		uint32_t ioas = get32(alloc, 8);
		uint64_t a0;
		f->rng0 = iova_ranges(ifd, ioas, &f->nrng0, &a0, &f->ifd_err);
		uint8_t at[16] = {0};
		put32(at, 0, 16);
		put32(at, 8, ioas);
		r = xioctl(dev, V_DEVICE_ATTACH_IOMMUFD_PT, at);
		if (r < 0)
			f->ifd_err = -r;
		else
			f->rng1 = iova_ranges(ifd, ioas, &f->nrng1, &f->align1, &f->ifd_err);
	}
	uint8_t hw[40] = {0};
	put32(hw, 0, 40);
	put32(hw, 8, devid);
	put32(hw, 12, sizeof(f->hw_data));
	put64(hw, 16, (uint64_t)(uintptr_t)f->hw_data);
	r = xioctl(ifd, I_GET_HW_INFO, hw);
	if (r < 0) {
		f->hw_err = -r;
	} else {
		f->hw_len = get32(hw, 12);
		if (f->hw_len > sizeof(f->hw_data))
			f->hw_len = sizeof(f->hw_data);
		f->hw_type = get32(hw, 24);
		f->hw_pasid = hw[28];
		f->hw_caps = get64(hw, 32);
	}
	capture_device_fd(f, dev);
	f->hr = hot_reset_info(dev, &f->hr_len, &f->hr_err);
	close(dev);
	close(ifd);
	return 0;
}

/* group path: container + type1 (v2 if offered), GET_INFO, then the device for hot-reset info */
static int capture_group(struct fn *f, int want_device)
{
	char gpath[64];
	group_path(f, gpath, sizeof(gpath));
	if (!gpath[0] || !exists("/dev/vfio/vfio"))
		return -1;
	int g = open(gpath, O_RDWR | O_CLOEXEC);
	if (g < 0) {
		f->t1_err = f->hrg_err = errno;
		note(f, "open %s: %s", gpath, errno_name(errno));
		return -1;
	}
	int c = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (c < 0) {
		f->t1_err = f->hrg_err = errno;
		close(g);
		return -1;
	}
	int r = xioctl(g, V_GROUP_SET_CONTAINER, &c);
	int type = 0;
	if (r == 0) {
		type = ioctl(c, V_CHECK_EXTENSION, 3) > 0 ? 3 : ioctl(c, V_CHECK_EXTENSION, 1) > 0 ? 1 : ioctl(c, V_CHECK_EXTENSION, 8) > 0 ? 8 : 0;
		r = type ? xioctl(c, V_SET_IOMMU, (void *)(uintptr_t)type) : -ENODEV;
	}
	if (r < 0) {
		f->t1_err = f->hrg_err = -r;
		note(f, "group %s: SET_CONTAINER/SET_IOMMU: %s", gpath, errno_name(-r));
		close(g);
		close(c);
		return -1;
	}
	f->t1_iommu = type;
	f->t1_cc = ioctl(c, V_CHECK_EXTENSION, 4);
	if (type != 8)
		f->t1 = info_call(c, V_IOMMU_GET_INFO, 24, -1, &f->t1_len, &f->t1_err);
	int dev = ioctl(g, V_GROUP_GET_DEVICE_FD, f->bdf);
	if (dev < 0) {
		f->hrg_err = errno;
		note(f, "VFIO_GROUP_GET_DEVICE_FD %s: %s", f->bdf, errno_name(errno));
	} else {
		if (want_device) {
			f->via = "group";
			f->captured = 1;
			capture_device_fd(f, dev);
		}
		f->hrg = hot_reset_info(dev, &f->hrg_len, &f->hrg_err);
		close(dev);
	}
	close(g);
	close(c);
	return 0;
}

/* ---- probes: parser ---- */

enum { T_NUM, T_VAR, T_FIELD };
struct term {
	int kind;
	char op; /* '|' or '+' joining it to the previous term */
	long long num;
	char name[32];
	long long off;
};
#define MAXTERMS 8
struct expr {
	int n;
	struct term t[MAXTERMS];
};
struct item {
	int width, sign, off, ishex;
	struct expr e;
	uint8_t hex[64];
	int hexlen;
};
enum { OP_OPEN, OP_CLOSE, OP_DUP, OP_IOCTL, OP_PREAD, OP_PWRITE, OP_MEM, OP_PEEK, OP_EVENTFD };
static const char *OPNAMES[] = {"open", "close", "dup", "ioctl", "pread", "pwrite", "mem", "peek", "eventfd"};
enum { A_NONE, A_VAL, A_STR, A_BUF, A_FAULT };
static const char *ARGNAMES[] = {"none", "val", "str", "buf", "fault"};
#define MAXITEMS 24
struct step {
	int line, op, argkind;
	char label[32];
	char fd[32];
	char text[256];
	unsigned long req;
	struct expr e1, e2; /* open flags / val / offsets / lengths */
	uint32_t len;
	int nitems;
	struct item items[MAXITEMS];
};
#define NEED_CDEV 1
#define NEED_IOMMUFD 2
#define NEED_GROUP 4
#define NEED_CONTAINER 8
struct seq {
	char name[48];
	int each, needs, line, first, n;
};

static struct step *steps;
static int nsteps;
static struct seq *seqs;
static int nseqs;
static char **src_lines;
static int nsrc;
static const char *probe_file;

static void perr(int line, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "vfiosim-record: %s:%d: ", probe_file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static int is_ident(const char *s)
{
	if (!*s || !(isalpha((unsigned char)*s) || *s == '_'))
		return 0;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_' || *s == '-'))
			return 0;
	return 1;
}

static int lookup_const(const char *name, long long *v)
{
	for (size_t i = 0; i < NCONSTANTS; i++)
		if (!strcmp(CONSTANTS[i].name, name)) {
			*v = CONSTANTS[i].value;
			return 1;
		}
	return 0;
}

static int parse_number(const char *s, long long *v)
{
	char *end;
	errno = 0;
	if (*s == '-')
		*v = strtoll(s, &end, 0);
	else
		*v = (long long)strtoull(s, &end, 0);
	return *s && !*end && !errno;
}

static void parse_expr(int line, const char *s, struct expr *e)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", s);
	e->n = 0;
	char *p = buf;
	char op = 0;
	while (*p) {
		char *q = p;
		while (*q && *q != '|' && (*q != '+' || q == p))
			q++;
		char next = *q;
		*q = 0;
		if (e->n == MAXTERMS)
			perr(line, "expression \"%s\" has too many terms", s);
		struct term *t = &e->t[e->n++];
		t->op = op;
		if (!*p)
			perr(line, "empty term in \"%s\"", s);
		if (*p == '$') {
			char *at = strchr(p, '@');
			if (at) {
				*at = 0;
				if (!parse_number(at + 1, &t->off) || t->off < 0)
					perr(line, "bad field offset in \"%s\"", s);
				t->kind = T_FIELD;
			} else {
				t->kind = T_VAR;
			}
			if (!is_ident(p + 1) || strlen(p + 1) >= sizeof(t->name))
				perr(line, "bad variable \"%s\"", p);
			snprintf(t->name, sizeof(t->name), "%s", p + 1);
		} else if (parse_number(p, &t->num)) {
			t->kind = T_NUM;
		} else if (lookup_const(p, &t->num)) {
			t->kind = T_NUM;
		} else {
			perr(line, "unknown constant \"%s\"", p);
		}
		if (!next)
			break;
		op = next;
		p = q + 1;
		if (!*p)
			perr(line, "expression \"%s\" ends with \"%c\"", s, op);
	}
	if (!e->n)
		perr(line, "missing value");
}

static int parse_hexbytes(const char *s, uint8_t *b, int cap)
{
	int n = 0;
	size_t l = strlen(s);
	if (l % 2)
		return -1;
	for (size_t i = 0; i < l; i += 2) {
		if (!isxdigit((unsigned char)s[i]) || !isxdigit((unsigned char)s[i + 1]) || n == cap)
			return -1;
		char t[3] = {s[i], s[i + 1], 0};
		b[n++] = (uint8_t)strtoul(t, NULL, 16);
	}
	return n;
}

/* ITEM := TYPE:EXPR | hex:BYTES | @OFFSET */
static void parse_items(int line, struct step *st, char **tok, int ntok, uint32_t len)
{
	int cursor = 0;
	for (int i = 0; i < ntok; i++) {
		char *t = tok[i];
		if (t[0] == '@') {
			long long o;
			if (!parse_number(t + 1, &o) || o < 0 || o > (long long)len)
				perr(line, "bad offset \"%s\" (the buffer has %u bytes)", t, len);
			cursor = (int)o;
			continue;
		}
		char *colon = strchr(t, ':');
		if (!colon)
			perr(line, "\"%s\" is not an item (TYPE:VALUE, hex:BYTES or @OFFSET)", t);
		*colon = 0;
		if (st->nitems == MAXITEMS)
			perr(line, "too many items");
		struct item *it = &st->items[st->nitems++];
		it->off = cursor;
		static const struct {
			const char *n;
			int w, s;
		} TYPES[] = {{"u8", 1, 0}, {"u16", 2, 0}, {"u32", 4, 0}, {"u64", 8, 0}, {"s8", 1, 1}, {"s16", 2, 1}, {"s32", 4, 1}, {"s64", 8, 1}};
		if (!strcmp(t, "hex")) {
			it->ishex = 1;
			it->hexlen = parse_hexbytes(colon + 1, it->hex, sizeof(it->hex));
			if (it->hexlen < 0)
				perr(line, "bad hex bytes \"%s\"", colon + 1);
			it->width = it->hexlen;
		} else {
			size_t k;
			for (k = 0; k < sizeof(TYPES) / sizeof(TYPES[0]); k++)
				if (!strcmp(t, TYPES[k].n))
					break;
			if (k == sizeof(TYPES) / sizeof(TYPES[0]))
				perr(line, "unknown item type \"%s\" (u8 u16 u32 u64 s8 s16 s32 s64 hex)", t);
			it->width = TYPES[k].w;
			it->sign = TYPES[k].s;
			parse_expr(line, colon + 1, &it->e);
		}
		if (it->off + it->width > (int)len)
			perr(line, "item %s:%s at offset %d runs past the %u-byte buffer", t, colon + 1, it->off, len);
		cursor = it->off + it->width;
	}
}

static uint32_t parse_len(int line, const char *s)
{
	long long v;
	if (!parse_number(s, &v) || v < 0 || v > 1 << 20)
		perr(line, "bad length \"%s\" (0..1048576)", s);
	return (uint32_t)v;
}

static void parse_fd(int line, const char *s, char *dst)
{
	long long v;
	if (!is_ident(s) && !parse_number(s, &v))
		perr(line, "\"%s\" is not an fd (a label or a number)", s);
	snprintf(dst, 32, "%s", s);
}

static void parse_probes(const char *path)
{
	probe_file = path;
	static char text[1 << 20];
	ssize_t n = read_file(path, text, sizeof(text));
	if (n < 0)
		die(2, "cannot read the probe file %s: %s", path, strerror(errno));
	char *p = text;
	int in = 0;
	struct seq *cur = NULL;
	while (*p) {
		char *nl = strchr(p, '\n');
		if (nl)
			*nl = 0;
		src_lines = realloc(src_lines, sizeof(char *) * (size_t)(nsrc + 1));
		src_lines[nsrc++] = xstrdup(p);
		int line = nsrc;
		char buf[1024];
		size_t plen = strlen(p);
		if (plen >= sizeof(buf))
			perr(line, "line longer than %zu characters", sizeof(buf) - 1);
		memcpy(buf, p, plen + 1);
		p = nl ? nl + 1 : p + plen;
		char *hash = strchr(buf, '#');
		if (hash)
			*hash = 0;
		char *tok[64];
		int nt = 0;
		char *rest_after[64];
		for (char *s = strtok(buf, " \t\r"); s && nt < 64; s = strtok(NULL, " \t\r")) {
			tok[nt] = s;
			nt++;
		}
		if (!nt)
			continue;
		/* the raw text after each token, for "str" */
		{
			const char *raw = src_lines[nsrc - 1];
			const char *q = raw;
			for (int i = 0; i < nt; i++) {
				const char *w = strstr(q, tok[i]);
				q = w + strlen(tok[i]);
				rest_after[i] = (char *)q;
			}
		}
		if (!strcmp(tok[0], "seq")) {
			if (in)
				perr(line, "seq inside seq %s (missing end)", cur->name);
			if (nt < 3)
				perr(line, "seq needs a NAME and each|first");
			seqs = realloc(seqs, sizeof(struct seq) * (size_t)(nseqs + 1));
			cur = &seqs[nseqs++];
			memset(cur, 0, sizeof(*cur));
			if (!is_ident(tok[1]) || strlen(tok[1]) >= sizeof(cur->name))
				perr(line, "bad sequence name \"%s\"", tok[1]);
			for (int i = 0; i < nseqs - 1; i++)
				if (!strcmp(seqs[i].name, tok[1]))
					perr(line, "a second sequence named %s", tok[1]);
			snprintf(cur->name, sizeof(cur->name), "%s", tok[1]);
			if (!strcmp(tok[2], "each"))
				cur->each = 1;
			else if (strcmp(tok[2], "first"))
				perr(line, "seq %s: \"%s\" must be each or first", tok[1], tok[2]);
			int i = 3;
			if (i < nt) {
				if (strcmp(tok[i], "needs"))
					perr(line, "seq %s: expected \"needs\", got \"%s\"", tok[1], tok[i]);
				for (i++; i < nt; i++) {
					if (!strcmp(tok[i], "cdev"))
						cur->needs |= NEED_CDEV;
					else if (!strcmp(tok[i], "iommufd"))
						cur->needs |= NEED_IOMMUFD;
					else if (!strcmp(tok[i], "group"))
						cur->needs |= NEED_GROUP;
					else if (!strcmp(tok[i], "container"))
						cur->needs |= NEED_CONTAINER;
					else
						perr(line, "seq %s: unknown need \"%s\" (cdev iommufd group container)", tok[1], tok[i]);
				}
			}
			cur->line = line;
			cur->first = nsteps;
			in = 1;
			continue;
		}
		if (!strcmp(tok[0], "end")) {
			if (!in)
				perr(line, "end without seq");
			if (nt != 1)
				perr(line, "end takes nothing");
			if (!cur->n)
				perr(line, "sequence %s has no steps", cur->name);
			in = 0;
			continue;
		}
		if (!in)
			perr(line, "\"%s\" outside a sequence (seq NAME each|first ... end)", tok[0]);
		steps = realloc(steps, sizeof(struct step) * (size_t)(nsteps + 1));
		struct step *st = &steps[nsteps++];
		memset(st, 0, sizeof(*st));
		cur->n++;
		st->line = line;
		int k = 0;
		if (nt >= 2 && !strcmp(tok[1], "=")) {
			if (!is_ident(tok[0]) || strlen(tok[0]) >= sizeof(st->label))
				perr(line, "bad label \"%s\"", tok[0]);
			snprintf(st->label, sizeof(st->label), "%s", tok[0]);
			k = 2;
		}
		if (k >= nt)
			perr(line, "missing operation after \"%s =\"", st->label);
		const char *op = tok[k++];
		int argc = nt - k;
		char **av = tok + k;
		if (!strcmp(op, "open")) {
			st->op = OP_OPEN;
			if (argc < 1 || argc > 2)
				perr(line, "open PATH [FLAGS]");
			snprintf(st->text, sizeof(st->text), "%s", av[0]);
			parse_expr(line, argc == 2 ? av[1] : "O_RDWR", &st->e1);
		} else if (!strcmp(op, "close") || !strcmp(op, "dup")) {
			st->op = op[0] == 'c' ? OP_CLOSE : OP_DUP;
			if (argc != 1)
				perr(line, "%s FD", op);
			parse_fd(line, av[0], st->fd);
		} else if (!strcmp(op, "eventfd")) {
			st->op = OP_EVENTFD;
			if (argc)
				perr(line, "eventfd takes nothing");
		} else if (!strcmp(op, "mem")) {
			st->op = OP_MEM;
			if (argc != 1 || !st->label[0])
				perr(line, "LABEL = mem LENGTH");
			st->len = parse_len(line, av[0]);
			if (!st->len || st->len % 4096)
				perr(line, "mem length must be a non-zero multiple of 4096");
		} else if (!strcmp(op, "peek")) {
			st->op = OP_PEEK;
			if (argc != 3 || !is_ident(av[0]))
				perr(line, "peek MEMLABEL OFFSET LENGTH");
			snprintf(st->fd, sizeof(st->fd), "%s", av[0]);
			parse_expr(line, av[1], &st->e1);
			st->len = parse_len(line, av[2]);
		} else if (!strcmp(op, "pread")) {
			st->op = OP_PREAD;
			if (argc != 3)
				perr(line, "pread FD LENGTH OFFSET");
			parse_fd(line, av[0], st->fd);
			st->len = parse_len(line, av[1]);
			parse_expr(line, av[2], &st->e1);
		} else if (!strcmp(op, "pwrite")) {
			st->op = OP_PWRITE;
			if (argc < 3)
				perr(line, "pwrite FD OFFSET LENGTH ITEM...");
			parse_fd(line, av[0], st->fd);
			parse_expr(line, av[1], &st->e1);
			st->len = parse_len(line, av[2]);
			parse_items(line, st, av + 3, argc - 3, st->len);
		} else if (!strcmp(op, "ioctl")) {
			st->op = OP_IOCTL;
			if (argc < 2)
				perr(line, "ioctl FD REQUEST [val EXPR | str TEXT | buf LENGTH ITEM... | fault]");
			parse_fd(line, av[0], st->fd);
			long long v;
			if (!lookup_const(av[1], &v) && !parse_number(av[1], &v))
				perr(line, "unknown ioctl \"%s\"", av[1]);
			st->req = (unsigned long)v;
			if (argc == 2) {
				st->argkind = A_NONE;
			} else if (!strcmp(av[2], "val")) {
				st->argkind = A_VAL;
				if (argc != 4)
					perr(line, "val takes one value");
				parse_expr(line, av[3], &st->e1);
			} else if (!strcmp(av[2], "str")) {
				st->argkind = A_STR;
				if (argc < 4)
					perr(line, "str needs text");
				const char *t = rest_after[k + 2];
				while (*t == ' ' || *t == '\t')
					t++;
				snprintf(st->text, sizeof(st->text), "%s", t);
				char *h = strchr(st->text, '#');
				if (h)
					*h = 0;
				size_t l = strlen(st->text);
				while (l && (st->text[l - 1] == ' ' || st->text[l - 1] == '\t' || st->text[l - 1] == '\r'))
					st->text[--l] = 0;
			} else if (!strcmp(av[2], "buf")) {
				st->argkind = A_BUF;
				if (argc < 4)
					perr(line, "buf needs a LENGTH");
				st->len = parse_len(line, av[3]);
				if (!st->len)
					perr(line, "buf length must be at least 1");
				parse_items(line, st, av + 4, argc - 4, st->len);
			} else if (!strcmp(av[2], "fault")) {
				st->argkind = A_FAULT;
				if (argc != 3)
					perr(line, "fault takes nothing");
			} else {
				perr(line, "unknown ioctl argument \"%s\" (val, str, buf, fault)", av[2]);
			}
		} else {
			perr(line, "unknown operation \"%s\" (open close dup ioctl pread pwrite mem peek eventfd)", op);
		}
	}
	if (in)
		perr(nsrc, "sequence %s has no end", cur->name);
}

static void expr_str(const struct expr *e, char *buf, size_t cap)
{
	size_t l = 0;
	buf[0] = 0;
	for (int i = 0; i < e->n; i++) {
		const struct term *t = &e->t[i];
		if (i)
			l += (size_t)snprintf(buf + l, cap - l, "%c", t->op);
		if (t->kind == T_NUM)
			l += (size_t)snprintf(buf + l, cap - l, "%lld", t->num);
		else if (t->kind == T_VAR)
			l += (size_t)snprintf(buf + l, cap - l, "$%s", t->name);
		else
			l += (size_t)snprintf(buf + l, cap - l, "$%s@%lld", t->name, t->off);
	}
}

/* the normalised form, compared with the TypeScript parser's in the tests */
static void print_parsed(void)
{
	char a[256], b[256];
	for (int s = 0; s < nseqs; s++) {
		struct seq *q = &seqs[s];
		printf("seq %s %s needs=%d line=%d\n", q->name, q->each ? "each" : "first", q->needs, q->line);
		for (int i = q->first; i < q->first + q->n; i++) {
			struct step *st = &steps[i];
			printf("  %d %s", st->line, OPNAMES[st->op]);
			if (st->label[0])
				printf(" label=%s", st->label);
			switch (st->op) {
			case OP_OPEN:
				expr_str(&st->e1, a, sizeof(a));
				printf(" path=%s flags=%s", st->text, a);
				break;
			case OP_CLOSE:
			case OP_DUP:
				printf(" fd=%s", st->fd);
				break;
			case OP_MEM:
				printf(" len=%u", st->len);
				break;
			case OP_PEEK:
				expr_str(&st->e1, a, sizeof(a));
				printf(" mem=%s off=%s len=%u", st->fd, a, st->len);
				break;
			case OP_PREAD:
				expr_str(&st->e1, a, sizeof(a));
				printf(" fd=%s len=%u off=%s", st->fd, st->len, a);
				break;
			case OP_PWRITE:
				expr_str(&st->e1, a, sizeof(a));
				printf(" fd=%s off=%s len=%u", st->fd, a, st->len);
				break;
			case OP_IOCTL:
				printf(" fd=%s req=0x%lx arg=%s", st->fd, st->req, ARGNAMES[st->argkind]);
				if (st->argkind == A_VAL) {
					expr_str(&st->e1, a, sizeof(a));
					printf(" val=%s", a);
				} else if (st->argkind == A_STR) {
					printf(" str=%s", st->text);
				} else if (st->argkind == A_BUF) {
					printf(" len=%u", st->len);
				}
				break;
			}
			for (int j = 0; j < st->nitems; j++) {
				struct item *it = &st->items[j];
				if (it->ishex) {
					printf(" @%d=hex:", it->off);
					for (int x = 0; x < it->hexlen; x++)
						printf("%02x", it->hex[x]);
				} else {
					expr_str(&it->e, b, sizeof(b));
					printf(" @%d=%c%d:%s", it->off, it->sign ? 's' : 'u', it->width * 8, b);
				}
			}
			printf("\n");
		}
	}
}

/* ---- probes: interpreter ---- */

struct var {
	char name[32];
	long long val;
	uint8_t *out;
	uint32_t outlen;
	void *mem;
	size_t memlen, maplen;
	void *mapbase;
};
static struct var vars[256];
static int nvars;
static const struct fn *pdev; /* the function a run probes */

static struct var *getvar(const char *name)
{
	for (int i = nvars - 1; i >= 0; i--)
		if (!strcmp(vars[i].name, name))
			return &vars[i];
	return NULL;
}

static void reset_vars(void)
{
	for (int i = 0; i < nvars; i++) {
		free(vars[i].out);
		if (vars[i].mapbase)
			munmap(vars[i].mapbase, vars[i].maplen);
	}
	nvars = 0;
}

/* device variables as text (NULL if unknown) */
static const char *devvar(const char *name, char *buf, size_t cap)
{
	if (!strcmp(name, "bdf"))
		return snprintf(buf, cap, "%s", pdev->bdf), buf;
	if (!strcmp(name, "cdev"))
		return cdev_path(pdev, buf, cap), buf;
	if (!strcmp(name, "groupdev"))
		return group_path(pdev, buf, cap), buf;
	if (!strcmp(name, "group"))
		return snprintf(buf, cap, "%d", pdev->group), buf;
	return NULL;
}

struct rt_error {
	int line;
	char msg[200];
};
static struct rt_error rterr;

static int eval(int line, const struct expr *e, int width, long long *res)
{
	unsigned long long acc = 0;
	for (int i = 0; i < e->n; i++) {
		const struct term *t = &e->t[i];
		unsigned long long v = 0;
		if (t->kind == T_NUM) {
			v = (unsigned long long)t->num;
		} else {
			struct var *x = getvar(t->name);
			char b[64];
			if (t->kind == T_VAR && !x && devvar(t->name, b, sizeof(b)) && !strcmp(t->name, "group")) {
				v = (unsigned long long)pdev->group;
			} else if (!x) {
				rterr.line = line;
				snprintf(rterr.msg, sizeof(rterr.msg), "$%s is not set", t->name);
				return -1;
			} else if (t->kind == T_VAR) {
				v = (unsigned long long)x->val;
			} else {
				int w = width ? width : 4;
				if (!x->out || t->off + w > (long long)x->outlen) {
					rterr.line = line;
					snprintf(rterr.msg, sizeof(rterr.msg), "$%s@%lld: no %d bytes there", t->name, t->off, w);
					return -1;
				}
				v = getn(x->out, (size_t)t->off, w);
			}
		}
		acc = i == 0 ? v : t->op == '|' ? (acc | v) : (acc + v);
	}
	*res = (long long)acc;
	return 0;
}

/* substitute $name in a path or string */
static int subst(int line, const char *in, char *dst, size_t cap)
{
	size_t l = 0;
	for (const char *s = in; *s;) {
		if (*s == '$') {
			char name[32];
			int n = 0;
			s++;
			while ((isalnum((unsigned char)*s) || *s == '_') && n < 31)
				name[n++] = *s++;
			name[n] = 0;
			char b[128];
			struct var *x = getvar(name);
			const char *v = x ? (snprintf(b, sizeof(b), "%lld", x->val), b) : devvar(name, b, sizeof(b));
			if (!v) {
				rterr.line = line;
				snprintf(rterr.msg, sizeof(rterr.msg), "$%s is not set", name);
				return -1;
			}
			l += (size_t)snprintf(dst + l, l < cap ? cap - l : 0, "%s", v);
		} else {
			if (l + 1 < cap)
				dst[l] = *s;
			l++;
			s++;
		}
	}
	if (l >= cap)
		l = cap - 1;
	dst[l] = 0;
	return 0;
}

static int fd_of(int line, const char *s, int *fd)
{
	long long v;
	if (parse_number(s, &v)) {
		*fd = (int)v;
		return 0;
	}
	struct var *x = getvar(s);
	if (!x) {
		rterr.line = line;
		snprintf(rterr.msg, sizeof(rterr.msg), "fd %s is not set", s);
		return -1;
	}
	*fd = (int)x->val;
	return 0;
}

static int fill_items(const struct step *st, uint8_t *b)
{
	for (int j = 0; j < st->nitems; j++) {
		const struct item *it = &st->items[j];
		if (it->ishex) {
			memcpy(b + it->off, it->hex, (size_t)it->hexlen);
			continue;
		}
		long long v;
		if (eval(st->line, &it->e, it->width, &v) < 0)
			return -1;
		switch (it->width) {
		case 1: put8(b, (size_t)it->off, (uint64_t)v); break;
		case 2: put16(b, (size_t)it->off, (uint64_t)v); break;
		case 4: put32(b, (size_t)it->off, (uint64_t)v); break;
		default: put64(b, (size_t)it->off, (uint64_t)v); break;
		}
	}
	return 0;
}

static void *fault_page;

/* an item holding the address of a mem is the machine's own: recorded as zeros */
static void mask_addresses(const struct step *st, uint8_t *buf)
{
	if (!buf || st->op != OP_IOCTL)
		return;
	for (int j = 0; j < st->nitems; j++) {
		const struct item *it = &st->items[j];
		if (it->ishex)
			continue;
		for (int k = 0; k < it->e.n; k++) {
			const struct term *t = &it->e.t[k];
			struct var *x = t->kind == T_VAR ? getvar(t->name) : NULL;
			if (x && x->mem)
				memset(buf + it->off, 0, (size_t)it->width);
		}
	}
}

static void set_label(const struct step *st, long long val, uint8_t *outb, uint32_t outlen)
{
	if (!st->label[0])
		return;
	if (nvars == (int)(sizeof(vars) / sizeof(vars[0])))
		die(2, "%s:%d: too many labels in one sequence", probe_file, st->line);
	struct var *x = &vars[nvars++];
	memset(x, 0, sizeof(*x));
	snprintf(x->name, sizeof(x->name), "%s", st->label);
	x->val = val;
	if (outb) {
		x->out = xcalloc(1, outlen);
		memcpy(x->out, outb, outlen);
		x->outlen = outlen;
	}
}

/* a step's recorded bytes: a run of OUT_ZEROS_MIN or more zero bytes at the end is written as
 * out_zeros: N instead (a large argsz buffer with a zero tail stays small) */
#define OUT_ZEROS_MIN 32
static void oout(const uint8_t *b, uint32_t n)
{
	uint32_t keep = n;
	while (keep && !b[keep - 1])
		keep--;
	if (n - keep < OUT_ZEROS_MIN)
		keep = n;
	O(", out: ");
	ohex(b, keep);
	if (keep < n)
		O(", out_zeros: %u", n - keep);
}

/* run one step; the result goes to the output as { line, ret, errno, out[, out_zeros] } */
static void run_step(const struct step *st, const char *ind)
{
	long long ret = 0;
	int err = 0;
	uint8_t *buf = NULL;
	uint32_t blen = 0;
	char path[512];
	int fd;
	long long v;
	rterr.line = 0;
	switch (st->op) {
	case OP_OPEN:
		if (subst(st->line, st->text, path, sizeof(path)) < 0 || eval(st->line, &st->e1, 0, &v) < 0)
			break;
		ret = open(path, (int)v);
		err = ret < 0 ? errno : 0;
		break;
	case OP_CLOSE:
		if (fd_of(st->line, st->fd, &fd) < 0)
			break;
		ret = close(fd);
		err = ret < 0 ? errno : 0;
		break;
	case OP_DUP:
		if (fd_of(st->line, st->fd, &fd) < 0)
			break;
		ret = dup(fd);
		err = ret < 0 ? errno : 0;
		break;
	case OP_EVENTFD:
		ret = eventfd(0, 0);
		err = ret < 0 ? errno : 0;
		break;
	case OP_MEM: {
		/* aligned to the length rounded up to a power of two, so that an IOVA the kernel derives
		 * from the address's alignment is the same on every machine */
		size_t al = 4096;
		while (al < st->len)
			al <<= 1;
		size_t maplen = st->len + al;
		void *base = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (base == MAP_FAILED) {
			ret = -1;
			err = errno;
			break;
		}
		uintptr_t a = ((uintptr_t)base + al - 1) & ~(uintptr_t)(al - 1);
		memset((void *)a, 0, st->len);
		set_label(st, (long long)a, NULL, 0);
		struct var *x = &vars[nvars - 1];
		x->mem = (void *)a;
		x->memlen = st->len;
		x->mapbase = base;
		x->maplen = maplen;
		goto emit;
	}
	case OP_PEEK: {
		struct var *x = getvar(st->fd);
		if (!x || !x->mem) {
			rterr.line = st->line;
			snprintf(rterr.msg, sizeof(rterr.msg), "%s is not a mem label", st->fd);
			break;
		}
		if (eval(st->line, &st->e1, 0, &v) < 0)
			break;
		if (v < 0 || (size_t)v + st->len > x->memlen) {
			rterr.line = st->line;
			snprintf(rterr.msg, sizeof(rterr.msg), "peek past the end of %s", st->fd);
			break;
		}
		buf = xcalloc(1, st->len);
		blen = st->len;
		memcpy(buf, (uint8_t *)x->mem + v, st->len);
		break;
	}
	case OP_PREAD:
		if (fd_of(st->line, st->fd, &fd) < 0 || eval(st->line, &st->e1, 0, &v) < 0)
			break;
		buf = xcalloc(1, st->len);
		blen = st->len;
		ret = pread(fd, buf, st->len, (off_t)v);
		err = ret < 0 ? errno : 0;
		break;
	case OP_PWRITE:
		if (fd_of(st->line, st->fd, &fd) < 0 || eval(st->line, &st->e1, 0, &v) < 0)
			break;
		buf = xcalloc(1, st->len);
		if (fill_items(st, buf) < 0)
			break;
		ret = pwrite(fd, buf, st->len, (off_t)v);
		err = ret < 0 ? errno : 0;
		free(buf);
		buf = NULL;
		break;
	case OP_IOCTL: {
		if (fd_of(st->line, st->fd, &fd) < 0)
			break;
		unsigned long arg = 0;
		char sbuf[256];
		if (st->argkind == A_VAL) {
			if (eval(st->line, &st->e1, 0, &v) < 0)
				break;
			arg = (unsigned long)v;
		} else if (st->argkind == A_STR) {
			if (subst(st->line, st->text, sbuf, sizeof(sbuf)) < 0)
				break;
			arg = (unsigned long)(uintptr_t)sbuf;
		} else if (st->argkind == A_BUF) {
			buf = xcalloc(1, st->len);
			blen = st->len;
			if (fill_items(st, buf) < 0)
				break;
			arg = (unsigned long)(uintptr_t)buf;
		} else if (st->argkind == A_FAULT) {
			arg = (unsigned long)(uintptr_t)fault_page;
		}
		ret = ioctl(fd, st->req, arg);
		err = ret < 0 ? errno : 0;
		break;
	}
	}
	if (rterr.line) {
		O("%s- { line: %d, error: ", ind, st->line);
		oq(rterr.msg);
		O(" }\n");
		set_label(st, -1, NULL, 0);
		free(buf);
		return;
	}
	mask_addresses(st, buf);
	set_label(st, ret, buf, blen);
emit:
	O("%s- { line: %d, ret: %lld", ind, st->line, ret);
	if (ret < 0)
		O(", errno: %s", errno_name(err));
	if (buf)
		oout(buf, blen);
	O(" }\n");
	free(buf);
}

static void close_all_fds(void)
{
	for (int fd = 3; fd < 4096; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			close(fd);
}

static int lowest_free_fd(void)
{
	int fd = dup(0);
	if (fd >= 0)
		close(fd);
	return fd;
}

static int needs_met(const struct seq *q, const char **why)
{
	char b[64];
	if (q->needs & NEED_CDEV) {
		cdev_path(pdev, b, sizeof(b));
		if (!b[0] || !exists(b))
			return *why = "no vfio cdev", 0;
	}
	if ((q->needs & NEED_IOMMUFD) && !exists("/dev/iommu"))
		return *why = "no /dev/iommu", 0;
	if (q->needs & NEED_GROUP) {
		group_path(pdev, b, sizeof(b));
		if (!b[0])
			return *why = "no vfio group", 0;
	}
	if ((q->needs & NEED_CONTAINER) && !exists("/dev/vfio/vfio"))
		return *why = "no /dev/vfio/vfio", 0;
	return 1;
}

static int cmp_index(const void *a, const void *b)
{
	const struct fn *x = *(struct fn *const *)a, *y = *(struct fn *const *)b;
	if ((x->vfio_index < 0) != (y->vfio_index < 0))
		return x->vfio_index < 0 ? 1 : -1;
	if (x->vfio_index != y->vfio_index)
		return x->vfio_index - y->vfio_index;
	return strcmp(x->bdf, y->bdf);
}

static void run_probes(struct fn **sel, int nsel)
{
	fault_page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	O("  probes:\n");
	O("    format: %d\n", PROBE_FORMAT);
	O("    first_free_fd: %d\n", lowest_free_fd());
	O("    source:\n");
	for (int i = 0; i < nsrc; i++) {
		O("      - ");
		oq(src_lines[i]);
		O("\n");
	}
	O("    runs:\n");
	for (int s = 0; s < nseqs; s++) {
		const struct seq *q = &seqs[s];
		for (int d = 0; d < (q->each ? nsel : (nsel ? 1 : 0)); d++) {
			pdev = sel[d];
			char b[64];
			O("      - seq: %s\n", q->name);
			O("        bdf: \"%s\"\n", pdev->bdf);
			cdev_path(pdev, b, sizeof(b));
			O("        cdev: ");
			oq(b);
			O("\n        groupdev: ");
			group_path(pdev, b, sizeof(b));
			oq(b);
			O("\n");
			const char *why;
			if (!needs_met(q, &why)) {
				O("        skipped: ");
				oq(why);
				O("\n");
				continue;
			}
			O("        steps:\n");
			for (int i = q->first; i < q->first + q->n; i++)
				run_step(&steps[i], "          ");
			close_all_fds();
			reset_vars();
		}
	}
}

/* ---- the host file ---- */

static void oconfig(const char *key, const uint8_t *b, int len)
{
	O("      %s:\n        size: %d\n        rows:\n", key, len);
	for (int o = 0; o < len; o += 16) {
		int nz = 0;
		for (int i = 0; i < 16 && o + i < len; i++)
			nz |= b[o + i];
		if (!nz)
			continue;
		O("          \"%03x\": \"", o);
		for (int i = 0; i < 16 && o + i < len; i++)
			O("%s%02x", i ? " " : "", b[o + i]);
		O("\"\n");
	}
}

static void ou64(uint64_t v) { O("\"0x%llx\"", (unsigned long long)v); }

/* the capability lists from the raw config space, in the host format's vocabulary */
static void ocaps(const struct fn *f, int *pcie_out)
{
	const uint8_t *c = f->raw;
	int at[48], id[48], n = 0;
	int pcie = 0;
	if (f->rawlen >= 64 && (get16(c, 6) & 0x10)) {
		int p = c[f->hdr == 2 ? 0x14 : 0x34] & 0xfc;
		while (p >= 0x40 && p < 0x100 && n < 48 && p + 2 <= f->rawlen) {
			int dup = 0;
			for (int i = 0; i < n; i++)
				dup |= at[i] == p;
			if (dup)
				break;
			at[n] = p;
			id[n] = c[p];
			n++;
			p = c[p + 1] & 0xfc;
		}
	}
	for (int i = 0; i < n; i++)
		if (id[i] == 0x10)
			pcie = 1;
	*pcie_out = pcie;
	if (!n) {
		O("    caps: []\n");
		return;
	}
	O("    caps:\n");
	int seen[256] = {0};
	for (int i = 0; i < n; i++) {
		int p = at[i], cid = id[i];
		int next = 0x100; /* the next capability by address bounds a raw one's length */
		for (int j = 0; j < n; j++)
			if (at[j] > p && at[j] < next)
				next = at[j];
		int first = !seen[cid]++;
		O("      - { ");
		if (cid == 0x01 && first) {
			O("id: pm, at: 0x%02x, pmc: 0x%04x", p, get16(c, (size_t)p + 2));
			if (get16(c, (size_t)p + 4) & 0x8)
				O(", no_soft_reset: true");
		} else if (cid == 0x05 && first) {
			uint32_t ctl = get16(c, (size_t)p + 2);
			O("id: msi, at: 0x%02x, vectors: %u, addr64: %s, maskable: %s", p, 1u << ((ctl >> 1) & 7), ctl & 0x80 ? "true" : "false",
			  ctl & 0x100 ? "true" : "false");
		} else if (cid == 0x11 && first) {
			uint32_t ctl = get16(c, (size_t)p + 2), t = get32(c, (size_t)p + 4), pb = get32(c, (size_t)p + 8);
			O("id: msix, at: 0x%02x, vectors: %u, table: { bar: %u, offset: 0x%x }, pba: { bar: %u, offset: 0x%x }", p, (ctl & 0x7ff) + 1, t & 7,
			  t & ~7u, pb & 7, pb & ~7u);
		} else if (cid == 0x10 && first && ((get16(c, (size_t)p + 2) >> 4) & 0xf) != 8 && ((get16(c, (size_t)p + 2) >> 4) & 0xf) != 0xa) {
			static const char *TYPES[16] = {"endpoint", "legacy-endpoint", NULL, NULL, "root-port", "upstream-port", "downstream-port",
							"pcie-pci-bridge", NULL, "rc-endpoint"};
			uint32_t flags = get16(c, (size_t)p + 2);
			const char *t = TYPES[(flags >> 4) & 0xf];
			O("id: pcie, at: 0x%02x, type: %s, version: %u, flr: %s", p, t ? t : "endpoint", (flags & 0xf) >= 2 ? 2 : 1,
			  get32(c, (size_t)p + 4) & (1u << 28) ? "true" : "false");
		} else if (cid == 0x09 && first) {
			O("id: vendor, at: 0x%02x, length: %u", p, c[p + 2] < 3 ? 3 : c[p + 2]);
		} else {
			int len = next - p;
			if (len > 0xc0)
				len = 0xc0;
			if (len < 2)
				len = 2;
			O("id: raw, at: 0x%02x, cap: 0x%02x, length: 0x%x", p, cid, len);
		}
		O(" }\n");
	}
}

static void oextcaps(const struct fn *f)
{
	const uint8_t *c = f->raw;
	int at[64], id[64], n = 0;
	if (f->rawlen >= 0x104) {
		int p = 0x100;
		while (p >= 0x100 && p + 4 <= f->rawlen && n < 64) {
			uint32_t h = get32(c, (size_t)p);
			if (h == 0 || h == 0xffffffff)
				break;
			int dup = 0;
			for (int i = 0; i < n; i++)
				dup |= at[i] == p;
			if (dup)
				break;
			at[n] = p;
			id[n] = (int)(h & 0xffff);
			n++;
			p = (int)((h >> 20) & 0xffc);
		}
	}
	if (!n)
		return;
	O("    ext_caps:\n");
	int seen_aer = 0, seen_dsn = 0;
	for (int i = 0; i < n; i++) {
		int p = at[i];
		int next = 0x1000;
		for (int j = 0; j < n; j++)
			if (at[j] > p && at[j] < next)
				next = at[j];
		O("      - { ");
		if (id[i] == 1 && !seen_aer++ && next - p >= 0x2c)
			O("id: aer, at: 0x%03x", p);
		else if (id[i] == 3 && !seen_dsn++)
			O("id: dsn, at: 0x%03x, serial: \"0x%016llx\"", p, (unsigned long long)get64(c, (size_t)p + 4));
		else {
			int len = next - p;
			if (len > 0xf00)
				len = 0xf00;
			O("id: raw, at: 0x%03x, cap: 0x%04x, length: 0x%x", p, id[i], len);
		}
		O(" }\n");
	}
}

static const char *RESETS[] = {"device_specific", "acpi", "flr", "af_flr", "pm", "bus", "cxl_bus"};

static void oresets(const struct fn *f)
{
	O("    reset: [");
	int n = 0;
	if (f->has_reset_method) {
		char b[256];
		snprintf(b, sizeof(b), "%s", f->reset_method);
		for (char *s = strtok(b, " \n"); s; s = strtok(NULL, " \n")) {
			int known = 0;
			for (size_t i = 0; i < sizeof(RESETS) / sizeof(RESETS[0]); i++)
				known |= !strcmp(s, RESETS[i]);
			if (known)
				O("%s%s", n++ ? ", " : "", s);
		}
	}
	O("]\n");
}

static void obars(const struct fn *f)
{
	int nb = f->hdr == 0 ? 6 : f->hdr == 1 ? 2 : 1;
	int last = -1;
	for (int i = 0; i < nb; i++)
		if (f->res[i].end)
			last = i;
	if (last >= 0) {
		O("    bars:\n");
		for (int i = 0; i <= last; i++) {
			const struct res *r = &f->res[i];
			if (!r->end || !(r->flags & 0x300)) {
				O("      - null\n");
				continue;
			}
			uint64_t size = r->end - r->start + 1;
			O("      - { size: ");
			ou64(size);
			if (r->flags & 0x100)
				O(", type: io");
			if (r->flags & 0x100000)
				O(", mem64: true");
			if (r->flags & 0x2000)
				O(", prefetch: true");
			if (r->start && !(r->flags & 0x20000000)) {
				O(", addr: ");
				ou64(r->start);
			}
			O(" }\n");
		}
	}
	const struct res *rom = &f->res[6];
	if (rom->end && (rom->flags & 0x200)) {
		O("    rom: ");
		ou64(rom->end - rom->start + 1);
		O("\n");
		if (rom->start && !(rom->flags & 0x20000000)) {
			O("    rom_addr: ");
			ou64(rom->start);
			O("\n");
		}
	}
}

static void oranges_t1(const uint8_t *b, uint32_t len)
{
	/* the IOVA_RANGE capability of a type1 GET_INFO answer */
	uint32_t off = get32(b, 16);
	int guard = 0;
	O("[");
	int n = 0;
	while (off >= 24 && off + 8 <= len && guard++ < 16) {
		uint32_t id = get16(b, off), next = get32(b, off + 4);
		if (id == 1 && off + 16 <= len) {
			uint32_t nr = get32(b, off + 8);
			for (uint32_t i = 0; i < nr && off + 16 + 16 * (i + 1) <= len; i++) {
				O("%s{ start: ", n++ ? ", " : " ");
				ou64(get64(b, off + 16 + 16 * i));
				O(", end: ");
				ou64(get64(b, off + 24 + 16 * i));
				O(" }");
			}
		}
		if (!next || next <= off)
			break;
		off = next;
	}
	O("%s]", n ? " " : "");
}

static void oranges_ifd(const uint8_t *r, uint32_t n)
{
	O("[");
	for (uint32_t i = 0; i < n; i++) {
		O("%s{ start: ", i ? ", " : " ");
		ou64(get64(r, 16 * i));
		O(", last: ");
		ou64(get64(r, 16 * i + 8));
		O(" }");
	}
	O("%s]", n ? " " : "");
}

static void ohotreset(const char *key, const uint8_t *b, uint32_t len, int err, int group_form)
{
	if (!b) {
		if (err)
			O("      %s: { errno: %s }\n", key, errno_name(err));
		return;
	}
	uint32_t flags = get32(b, 4), count = get32(b, 8);
	O("      %s:\n        flags: 0x%x\n        devices:\n", key, flags);
	for (uint32_t i = 0; i < count && 12 + 8 * (i + 1) <= len; i++) {
		const uint8_t *d = b + 12 + 8 * i;
		uint32_t id = get32(d, 0);
		O("          - { bdf: \"%04x:%02x:%02x.%u\", %s: %d }\n", get16(d, 4), d[6], d[7] >> 3, d[7] & 7,
		  group_form ? "group" : (flags & 1) ? "devid" : "group", (int)id);
	}
}

static int cmp_res(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

struct resv {
	char line[128];
};

static void emit_host(const char *name, const char *desc, struct fn **sel, int nsel, int probes)
{
	struct utsname u;
	uname(&u);
	/* char majors and misc minors */
	char pd[16384];
	long vfio_major = -1, vfio_dev_major = -1;
	int nchr = 0;
	struct {
		int major;
		char name[64];
	} chr[256];
	if (read_file("/proc/devices", pd, sizeof(pd)) > 0) {
		int in_chr = 0;
		for (char *l = strtok(pd, "\n"); l; l = strtok(NULL, "\n")) {
			if (!strncmp(l, "Character", 9)) {
				in_chr = 1;
				continue;
			}
			if (!strncmp(l, "Block", 5))
				in_chr = 0;
			int m;
			char nm[64];
			if (in_chr && nchr < 256 && sscanf(l, "%d %63s", &m, nm) == 2) {
				chr[nchr].major = m;
				snprintf(chr[nchr].name, sizeof(chr[nchr].name), "%s", nm);
				nchr++;
				if (!strcmp(nm, "vfio"))
					vfio_major = m;
				if (!strcmp(nm, "vfio-dev"))
					vfio_dev_major = m;
			}
		}
	}
	char b[256];
	int iommu_minor = -1, vfio_minor = -1;
	if (read_trim("/sys/class/misc/iommu/dev", b, sizeof(b)) > 0)
		iommu_minor = atoi(strchr(b, ':') ? strchr(b, ':') + 1 : b);
	if (read_trim("/sys/class/misc/vfio/dev", b, sizeof(b)) > 0)
		vfio_minor = atoi(strchr(b, ':') ? strchr(b, ':') + 1 : b);
	char noiommu[16] = "N";
	read_trim("/sys/module/vfio/parameters/enable_unsafe_noiommu_mode", noiommu, sizeof(noiommu));
	char unsafe1[16] = "N", unsafe2[16] = "N";
	read_trim("/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts", unsafe1, sizeof(unsafe1));
	read_trim("/sys/module/iommufd/parameters/allow_unsafe_interrupts", unsafe2, sizeof(unsafe2));
	/* the IOMMU as the first captured function saw it */
	const struct fn *cap = NULL;
	for (int i = 0; i < nsel; i++)
		if (sel[i]->rng1 || sel[i]->t1) {
			cap = sel[i];
			break;
		}
	int aw = 0;
	uint64_t maxend = 0;
	if (cap && cap->rng1)
		for (uint32_t i = 0; i < cap->nrng1; i++)
			if (get64(cap->rng1, 16 * i + 8) > maxend)
				maxend = get64(cap->rng1, 16 * i + 8);
	while (aw < 64 && maxend >> aw)
		aw++;
	if (aw < 32 || aw > 64)
		aw = 0;
	/* interrupt remapping: a group attach / iommufd bind succeeded without allowing unsafe
	 * interrupts, or (VT-d) the IR bit of the extended capability register */
	const char *ir = "true";
	int ir_known = 0;
	for (int i = 0; i < nsel; i++)
		if (sel[i]->captured && unsafe1[0] == 'N' && unsafe2[0] == 'N')
			ir_known = 1;
	if (!ir_known && cap && cap->hw_type == 1 && cap->hw_len >= 24)
		ir = (get64(cap->hw_data, 16) & 8) ? "true" : "false";
	int enforce = 0;
	for (int i = 0; i < nsel; i++)
		if (sel[i]->t1_cc > 0)
			enforce = 1;

	O("# A vfiosim host recorded by vfiosim-record %d on Linux %s (%s).\n", RECORDER_VERSION, u.release, u.machine);
	O("# The usual fields (functions, bars, caps, iommu_group, reset, ...) are derived from the machine;\n");
	O("# each \"recorded:\" section holds what the model cannot derive (config bytes, VFIO info, probes).\n");
	O("name: ");
	oq(name);
	O("\ndescription: ");
	oq(desc);
	O("\nkernel: { ");
	if (vfio_major >= 0)
		O("vfio_major: %ld, ", vfio_major);
	else
		O("vfio_major: null, ");
	if (vfio_dev_major >= 0)
		O("vfio_dev_major: %ld, ", vfio_dev_major);
	else
		O("vfio_dev_major: null, ");
	if (iommu_minor >= 0)
		O("iommu_minor: %d, ", iommu_minor);
	O("noiommu: %s }\n", noiommu[0] == 'Y' || noiommu[0] == '1' ? "true" : "false");
	O("iommu:\n");
	if (aw)
		O("  address_width: %d\n", aw);
	O("  interrupt_remapping: %s\n  cache_coherency: true\n  enforce_cache_coherency: %s\n", ir, enforce ? "true" : "false");
	/* VT-d: the capability registers IOMMU_GET_HW_INFO reports (struct iommu_hw_info_vtd) */
	if (cap && !cap->hw_err && cap->hw_type == 1 && cap->hw_len >= 24) {
		O("  vtd_cap_reg: ");
		ou64(get64(cap->hw_data, 8));
		O("\n  vtd_ecap_reg: ");
		ou64(get64(cap->hw_data, 16));
		O("\n");
	}
	/* reserved regions: the union over the IOMMU groups */
	char **groups;
	int ng = list_dir("/sys/kernel/iommu_groups", &groups);
	if (ng > 1)
		qsort(groups, (size_t)ng, sizeof(char *), cmpnum);
	struct resv *rv = NULL;
	int nrv = 0;
	for (int i = 0; i < ng; i++) {
		char p[256], t[8192];
		snprintf(p, sizeof(p), "/sys/kernel/iommu_groups/%s/reserved_regions", groups[i]);
		if (read_file(p, t, sizeof(t)) <= 0)
			continue;
		for (char *l = strtok(t, "\n"); l; l = strtok(NULL, "\n")) {
			int dup = 0;
			for (int j = 0; j < nrv; j++)
				dup |= !strcmp(rv[j].line, l);
			if (dup)
				continue;
			rv = realloc(rv, sizeof(struct resv) * (size_t)(nrv + 1));
			snprintf(rv[nrv++].line, sizeof(rv[0].line), "%s", l);
		}
	}
	if (nrv)
		qsort(rv, (size_t)nrv, sizeof(struct resv), cmp_res);
	O("  reserved_regions:");
	if (!nrv)
		O(" []");
	O("\n");
	for (int j = 0; j < nrv; j++) {
		unsigned long long s, e;
		char t[32];
		if (sscanf(rv[j].line, "%llx %llx %31s", &s, &e, t) == 3)
			O("    - { start: \"0x%llx\", end: \"0x%llx\", type: %s }\n", s, e, t);
	}
	free(rv);

	/* functions: others by address, then vfio-pci ones by vfio index (the order vfiosim binds) */
	struct fn **order = xcalloc((size_t)nfns, sizeof(struct fn *));
	int no = 0;
	for (int i = 0; i < nfns; i++)
		if (!fns[i].is_vfio)
			order[no++] = &fns[i];
	int nv0 = no;
	for (int i = 0; i < nfns; i++)
		if (fns[i].is_vfio)
			order[no++] = &fns[i];
	qsort(order + nv0, (size_t)(no - nv0), sizeof(struct fn *), cmp_index);
	O("functions:\n");
	for (int k = 0; k < no; k++) {
		struct fn *f = order[k];
		O("  - bdf: \"%s\"\n", f->bdf);
		if (f->name[0]) {
			O("    name: ");
			oq(f->name);
			O("\n");
		}
		O("    id: \"%04x:%04x\"\n", f->vendor, f->device);
		if (f->hdr == 0)
			O("    subsystem: \"%04x:%04x\"\n", f->subv, f->subd);
		O("    revision: 0x%02x\n    class: 0x%06x\n", f->rev, f->cls);
		if (f->secondary >= 0)
			O("    bridge: { secondary: %d }\n", f->secondary);
		int pcie;
		ocaps(f, &pcie);
		O("    pcie: %s\n", pcie ? "true" : "false");
		if (pcie)
			oextcaps(f);
		if (f->group >= 0)
			O("    iommu_group: %d\n", f->group);
		else
			O("    iommu_group: null\n");
		if (f->driver[0])
			O("    driver: %s\n", f->driver);
		oresets(f);
		obars(f);
		if (f->rawlen > 0x3d)
			O("    interrupt_pin: %u\n    interrupt_line: %u\n", f->raw[0x3d] > 4 ? 0 : f->raw[0x3d], f->raw[0x3c]);
		O("    recorded:\n");
		if (f->vfio_index >= 0)
			O("      vfio_index: %d\n", f->vfio_index);
		if (f->has_reset_method) {
			O("      reset_method: ");
			oq(f->reset_method);
			O("\n");
		}
		oconfig("config_raw", f->raw, f->rawlen);
		if (!f->captured) {
			if (f->errors[0]) {
				O("      errors: ");
				oq(f->errors);
				O("\n");
			}
			continue;
		}
		O("      via: %s\n", f->via);
		if (f->cfglen)
			oconfig("config", f->cfg, f->cfglen);
		if (f->cfg_errs)
			O("      config_errors: %d\n", f->cfg_errs);
		if (f->info) {
			O("      device_info: { flags: 0x%x, num_regions: %u, num_irqs: %u, cap_offset: %u, caps: ", get32(f->info, 4), get32(f->info, 8),
			  get32(f->info, 12), get32(f->info, 16));
			ohex(f->info + 24, f->info_len > 24 ? f->info_len - 24 : 0);
			O(" }\n");
		}
		if (f->nregions) {
			O("      regions:\n");
			for (int i = 0; i < f->nregions; i++) {
				struct region *r = &f->regions[i];
				if (!r->buf) {
					O("        - { index: %d, errno: %s }\n", i, errno_name(r->err));
					continue;
				}
				O("        - { index: %d, flags: 0x%x, size: ", i, r->flags);
				ou64(r->size);
				O(", offset: ");
				ou64(r->offset);
				O(", cap_offset: %u, caps: ", (r->flags & 8) ? r->cap_offset : 0);
				ohex(r->buf + 32, r->len > 32 ? r->len - 32 : 0);
				O(" }\n");
			}
		}
		if (f->nirqs) {
			O("      irqs:\n");
			for (int i = 0; i < f->nirqs; i++) {
				struct irq *q = &f->irqs[i];
				if (q->err)
					O("        - { index: %d, errno: %s }\n", i, errno_name(q->err));
				else
					O("        - { index: %d, flags: 0x%x, count: %u }\n", i, q->flags, q->count);
			}
		}
		ohotreset("hot_reset", f->hr, f->hr_len, f->hr_err, 0);
		ohotreset("hot_reset_group", f->hrg, f->hrg_len, f->hrg_err, 1);
		if (f->t1) {
			O("      type1: { iommu: %d, dma_cc: %d, flags: 0x%x, iova_pgsizes: ", f->t1_iommu, f->t1_cc, get32(f->t1, 4));
			ou64(get64(f->t1, 8));
			O(", cap_offset: %u, caps: ", get32(f->t1, 16));
			ohex(f->t1 + 24, f->t1_len > 24 ? f->t1_len - 24 : 0);
			O(", iova_ranges: ");
			oranges_t1(f->t1, f->t1_len);
			O(" }\n");
		} else if (f->t1_err) {
			O("      type1: { errno: %s }\n", errno_name(f->t1_err));
		}
		if (f->rng0 || f->rng1 || f->ifd_err) {
			O("      iommufd:\n");
			if (f->rng0) {
				O("        iova_ranges_unattached: ");
				oranges_ifd(f->rng0, f->nrng0);
				O("\n");
			}
			if (f->rng1) {
				O("        iova_ranges: ");
				oranges_ifd(f->rng1, f->nrng1);
				O("\n        iova_alignment: ");
				ou64(f->align1);
				O("\n");
			}
			if (f->ifd_err)
				O("        errno: %s\n", errno_name(f->ifd_err));
			if (f->hw_err) {
				O("        hw_info: { errno: %s }\n", errno_name(f->hw_err));
			} else {
				O("        hw_info: { type: %u, capabilities: ", f->hw_type);
				ou64(f->hw_caps);
				O(", max_pasid_log2: %u, data: ", f->hw_pasid);
				ohex(f->hw_data, f->hw_len);
				O(" }\n");
			}
		}
		if (f->errors[0]) {
			O("      errors: ");
			oq(f->errors);
			O("\n");
		}
	}
	free(order);
	O("slots:");
	char **slots;
	int ns = list_dir("/sys/bus/pci/slots", &slots);
	int nslot = 0;
	for (int i = 0; i < ns; i++) {
		char p[256];
		unsigned d, bb, s;
		snprintf(p, sizeof(p), "/sys/bus/pci/slots/%s/address", slots[i]);
		if (read_trim(p, b, sizeof(b)) > 0 && sscanf(b, "%x:%x:%x", &d, &bb, &s) == 3 && bb > 0) {
			/* a slot keys a device set only if it can be reset: whether it can is not in sysfs; a
			 * hot-reset list limited to the slot's functions shows it (vfio-pci's rule) */
			int reset = 0;
			for (int k = 0; k < nsel && !reset; k++) {
				const struct fn *f = sel[k];
				if (!f->hr || f->dom != d || f->bus != bb || f->dev != s)
					continue;
				uint32_t count = get32(f->hr, 8);
				int others_on_bus = 0, all_in_slot = 1;
				for (int j = 0; j < nfns; j++)
					if (fns[j].dom == d && fns[j].bus == bb && fns[j].dev != s)
						others_on_bus = 1;
				for (uint32_t x = 0; x < count; x++)
					if ((f->hr[12 + 8 * x + 7] >> 3) != s)
						all_in_slot = 0;
				reset = others_on_bus && all_in_slot;
			}
			O("%s  - { domain: %u, bus: %u, slot: %u, reset: %s }\n", nslot++ ? "" : "\n", d, bb, s, reset ? "true" : "false");
		}
	}
	if (!nslot)
		O(" []\n");
	if (ns > 0)
		free_list(slots, ns);

	O("recorded:\n");
	O("  recorder: %d\n", RECORDER_VERSION);
	/* the functions recorded through VFIO, in the order they were captured and probed */
	O("  selected: [");
	for (int i = 0; i < nsel; i++)
		O("%s\"%s\"", i ? ", " : "", sel[i]->bdf);
	O("]\n");
	O("  uname: { release: ");
	oq(u.release);
	O(", version: ");
	oq(u.version);
	O(", machine: ");
	oq(u.machine);
	O(" }\n");
	O("  chrdevs:\n");
	for (int i = 0; i < nchr; i++) {
		O("    - { major: %d, name: ", chr[i].major);
		oq(chr[i].name);
		O(" }\n");
	}
	O("  misc: { vfio: %d, iommu: %d }\n", vfio_minor, iommu_minor);
	O("  module_params:\n");
	static const char *MODS[] = {"vfio", "vfio_pci", "vfio_pci_core", "vfio_iommu_type1", "iommufd"};
	int nparams = 0;
	for (size_t m = 0; m < sizeof(MODS) / sizeof(MODS[0]); m++) {
		char p[256];
		snprintf(p, sizeof(p), "/sys/module/%s/parameters", MODS[m]);
		char **ps;
		int np = list_dir(p, &ps);
		for (int i = 0; i < np; i++) {
			char fp[512], v[256];
			snprintf(fp, sizeof(fp), "%s/%s", p, ps[i]);
			if (read_trim(fp, v, sizeof(v)) < 0)
				continue;
			O("    %s.%s: ", MODS[m], ps[i]);
			oq(v);
			O("\n");
			nparams++;
		}
		if (np > 0)
			free_list(ps, np);
	}
	if (!nparams)
		out.n -= 1, O(" {}\n");
	O("  iommu_groups:\n");
	for (int i = 0; i < ng; i++) {
		char p[256], t[8192];
		O("    - id: %s\n", groups[i]);
		snprintf(p, sizeof(p), "/sys/kernel/iommu_groups/%s/type", groups[i]);
		if (read_trim(p, t, sizeof(t)) >= 0) {
			O("      type: ");
			oq(t);
			O("\n");
		}
		snprintf(p, sizeof(p), "/sys/kernel/iommu_groups/%s/devices", groups[i]);
		char **ds;
		int nd = list_dir(p, &ds);
		O("      devices: [");
		for (int j = 0; j < nd; j++) {
			O("%s\"%s\"", j ? ", " : "", ds[j]);
		}
		O("]\n");
		if (nd > 0)
			free_list(ds, nd);
		snprintf(p, sizeof(p), "/sys/kernel/iommu_groups/%s/reserved_regions", groups[i]);
		O("      reserved_regions: [");
		int nr = 0;
		if (read_file(p, t, sizeof(t)) > 0)
			for (char *l = strtok(t, "\n"); l; l = strtok(NULL, "\n")) {
				unsigned long long s, e;
				char ty[32];
				if (sscanf(l, "%llx %llx %31s", &s, &e, ty) == 3)
					O("%s{ start: \"0x%llx\", end: \"0x%llx\", type: %s }", nr++ ? ", " : " ", s, e, ty);
			}
		O("%s]\n", nr ? " " : "");
	}
	if (!ng)
		out.n -= 1, O(" []\n");
	if (ng > 0)
		free_list(groups, ng);
	if (probes)
		run_probes(sel, nsel);
}

/* ---- main ---- */

static void usage(void)
{
	fprintf(stderr, "usage: vfiosim-record [-o FILE] [-P PROBES] [-N NAME] [-D TEXT] [-n BDF=NAME]... [BDF...]\n"
			"       vfiosim-record --parse-probes FILE | --constants | --errnos\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *outfile = NULL, *probes = NULL, *name = "recorded", *desc = NULL;
	char **bdfs = xcalloc((size_t)argc, sizeof(char *));
	char **names = xcalloc((size_t)argc, sizeof(char *));
	int nb = 0, nn = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--constants")) {
			for (size_t k = 0; k < NCONSTANTS; k++)
				printf("%s %lld\n", CONSTANTS[k].name, CONSTANTS[k].value);
			return 0;
		}
		if (!strcmp(a, "--errnos")) {
			for (size_t k = 0; k < sizeof(ERRNOS) / sizeof(ERRNOS[0]); k++)
				printf("%d %s\n", ERRNOS[k].e, ERRNOS[k].name);
			return 0;
		}
		if (!strcmp(a, "--parse-probes")) {
			if (i + 1 >= argc)
				usage();
			parse_probes(argv[i + 1]);
			print_parsed();
			return 0;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			printf("usage: vfiosim-record [-o FILE] [-P PROBES] [-N NAME] [-D TEXT] [-n BDF=NAME]... [BDF...]\n");
			return 0;
		}
		if (a[0] == '-' && a[1] && !a[2] && strchr("oPNDn", a[1])) {
			if (i + 1 >= argc)
				usage();
			const char *v = argv[++i];
			switch (a[1]) {
			case 'o': outfile = v; break;
			case 'P': probes = v; break;
			case 'N': name = v; break;
			case 'D': desc = v; break;
			case 'n':
				if (!strchr(v, '='))
					die(2, "-n wants BDF=NAME, got \"%s\"", v);
				names[nn++] = (char *)v;
				break;
			}
			continue;
		}
		if (a[0] == '-')
			die(2, "unknown option %s", a);
		bdfs[nb++] = (char *)a;
	}
	if (probes)
		parse_probes(probes); /* a bad probe file fails before the machine is touched */
	if (geteuid() != 0)
		die(1, "must run as root: it reads the full config space (sysfs config) and opens VFIO devices");
	if (!exists("/sys/bus/pci/devices"))
		die(1, "no /sys/bus/pci: sysfs is not mounted or this machine has no PCI");
	if (!exists("/sys/bus/pci/drivers/vfio-pci"))
		die(1, "no VFIO: the vfio-pci driver is not loaded (modprobe vfio-pci)");
	if (!exists("/dev/vfio"))
		die(1, "no VFIO: /dev/vfio does not exist");
	enumerate();
	for (int i = 0; i < nn; i++) {
		char *eq = strchr(names[i], '=');
		*eq = 0;
		struct fn *f = find_fn(names[i]);
		if (!f)
			die(2, "-n %s: no such PCI function", names[i]);
		snprintf(f->name, sizeof(f->name), "%s", eq + 1);
	}
	struct fn **sel = xcalloc((size_t)nfns + 1, sizeof(struct fn *));
	int nsel = 0;
	if (nb) {
		for (int i = 0; i < nb; i++) {
			struct fn *f = find_fn(bdfs[i]);
			if (!f)
				die(1, "%s: no such PCI function", bdfs[i]);
			if (!f->is_vfio)
				die(1, "%s is bound to %s, not vfio-pci (echo vfio-pci > /sys/bus/pci/devices/%s/driver_override; echo %s > "
				       "/sys/bus/pci/drivers_probe)",
				    f->bdf, f->driver[0] ? f->driver : "no driver", f->bdf, f->bdf);
			if (!f->selected)
				sel[nsel++] = f;
			f->selected = 1;
		}
	} else {
		for (int i = 0; i < nfns; i++)
			if (fns[i].is_vfio) {
				fns[i].selected = 1;
				sel[nsel++] = &fns[i];
			}
		if (!nsel)
			die(1, "no PCI function is bound to vfio-pci (bind one: echo vfio-pci > /sys/bus/pci/devices/BDF/driver_override; "
			       "echo BDF > /sys/bus/pci/drivers_probe)");
	}
	qsort(sel, (size_t)nsel, sizeof(struct fn *), cmp_index);
	for (int i = 0; i < nsel; i++) {
		struct fn *f = sel[i];
		int cdev = capture_cdev(f) == 0;
		capture_group(f, !cdev);
		if (!f->captured)
			fprintf(stderr, "vfiosim-record: %s: could not open it through VFIO (%s)\n", f->bdf, f->errors[0] ? f->errors : "no cdev or group");
	}
	char d[256];
	if (!desc) {
		snprintf(d, sizeof(d), "recorded by vfiosim-record: %d PCI functions, %d bound to vfio-pci", nfns, nsel);
		desc = d;
	}
	close_all_fds();
	emit_host(name, desc, sel, nsel, probes != NULL);
	FILE *fo = outfile ? fopen(outfile, "w") : stdout;
	if (!fo)
		die(1, "cannot write %s: %s", outfile, strerror(errno));
	if (fwrite(out.p, 1, out.n, fo) != out.n || (outfile && fclose(fo) != 0))
		die(1, "writing %s failed: %s", outfile ? outfile : "stdout", strerror(errno));
	if (!outfile)
		fflush(stdout);
	return 0;
}
