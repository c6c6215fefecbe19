// vfiosim bridge addon: the few system calls the daemon needs and Node does not offer.
//
//   * SOCK_SEQPACKET UNIX sockets: listen, accept, socketpair, recvmsg with the sender's
//     credentials (SCM_CREDENTIALS, taken per message), sendmsg with one fd (SCM_RIGHTS);
//   * an epoll set watched through one libuv poll handle: the daemon learns about requests,
//     file-socket hang-ups (the last reference of an emulated file going away) and process exits
//     (pidfds) from it, and can drain pending events synchronously;
//   * process_vm_readv / process_vm_writev (the client's memory, with its page protections);
//   * pidfd_open / pidfd_getfd (a client's eventfd, fetched from its own fd table).
//
// Every function returns a non-negative result or a negative errno; none throws for a failed
// system call. Written for vfiosim; built with the machine's cc against Node's headers.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

#define CHECK(call)                                                                                \
  do {                                                                                             \
    if ((call) != napi_ok) {                                                                       \
      napi_throw_error(env, NULL, "vfiosim addon: " #call " failed");                           \
      return NULL;                                                                                 \
    }                                                                                              \
  } while (0)

static napi_value num(napi_env env, double v) {
  napi_value r;
  napi_create_double(env, v, &r);
  return r;
}

static int arg_i32(napi_env env, napi_value v, int32_t *out) { return napi_get_value_int32(env, v, out) == napi_ok; }

static int arg_i64(napi_env env, napi_value v, int64_t *out) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t == napi_bigint) {
    bool lossless;
    return napi_get_value_bigint_int64(env, v, out, &lossless) == napi_ok;
  }
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return 0;
  *out = (int64_t)d;
  return 1;
}

static int arg_buf(napi_env env, napi_value v, void **data, size_t *len) {
  bool is;
  napi_is_typedarray(env, v, &is);
  if (is) {
    napi_typedarray_type type;
    size_t n, off;
    napi_value ab;
    if (napi_get_typedarray_info(env, v, &type, &n, data, &ab, &off) != napi_ok) return 0;
    size_t el = (type == napi_int32_array || type == napi_uint32_array || type == napi_float32_array) ? 4
              : (type == napi_float64_array || type == napi_bigint64_array || type == napi_biguint64_array) ? 8
              : (type == napi_int16_array || type == napi_uint16_array) ? 2 : 1;
    *len = n * el;
    return 1;
  }
  napi_is_buffer(env, v, &is);
  if (is) return napi_get_buffer_info(env, v, data, len) == napi_ok;
  return 0;
}

#define ARGS(n)                                                                                    \
  size_t argc = n;                                                                                 \
  napi_value argv[n];                                                                              \
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL))

// listen(path) -> fd: a SOCK_SEQPACKET listener at a filesystem path, mode 0600, SO_PASSCRED.
static napi_value Listen(napi_env env, napi_callback_info info) {
  ARGS(1);
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  size_t n;
  if (napi_get_value_string_utf8(env, argv[0], path, sizeof path, &n) != napi_ok || n >= sizeof path - 1)
    return num(env, -ENAMETOOLONG);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return num(env, -errno);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  memcpy(a.sun_path, path, n);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
  mode_t old = umask(0177);
  int r = bind(fd, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path) + n + 1);
  umask(old);
  if (r < 0 || listen(fd, 256) < 0) {
    int e = errno;
    close(fd);
    return num(env, -e);
  }
  return num(env, fd);
}

// accept(listenFd) -> fd (non-blocking, close-on-exec, SO_PASSCRED) or -EAGAIN.
static napi_value Accept(napi_env env, napi_callback_info info) {
  ARGS(1);
  int32_t lfd;
  if (!arg_i32(env, argv[0], &lfd)) return num(env, -EINVAL);
  int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0) return num(env, -errno);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
  return num(env, fd);
}

// connect(path) -> fd (blocking SOCK_SEQPACKET client; used by tests and `vfiosim exec` probes).
static napi_value Connect(napi_env env, napi_callback_info info) {
  ARGS(1);
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  size_t n;
  if (napi_get_value_string_utf8(env, argv[0], path, sizeof path, &n) != napi_ok || n >= sizeof path - 1)
    return num(env, -ENAMETOOLONG);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return num(env, -errno);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  memcpy(a.sun_path, path, n);
  if (connect(fd, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path) + n + 1) < 0) {
    int e = errno;
    close(fd);
    return num(env, -e);
  }
  return num(env, fd);
}

// socketpair(abstractName) -> [daemonEnd, clientEnd] or -errno. The client end is bound to the
// abstract name, which is how the shim recognises an emulated file (getsockname).
static napi_value SocketPair(napi_env env, napi_callback_info info) {
  ARGS(1);
  char name[100];
  size_t n;
  if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &n) != napi_ok) return num(env, -EINVAL);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return num(env, -errno);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  a.sun_path[0] = 0;
  memcpy(a.sun_path + 1, name, n);
  if (bind(sv[1], (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path) + 1 + n) < 0) {
    int e = errno;
    close(sv[0]);
    close(sv[1]);
    return num(env, -e);
  }
  fcntl(sv[0], F_SETFL, O_NONBLOCK);
  napi_value arr;
  CHECK(napi_create_array_with_length(env, 2, &arr));
  napi_set_element(env, arr, 0, num(env, sv[0]));
  napi_set_element(env, arr, 1, num(env, sv[1]));
  return arr;
}

// recv(fd, buf, creds: Int32Array(3)) -> length (0 = peer gone) or -errno. creds = pid, uid, gid
// of the sending process at the time it sent (-1 when absent).
static napi_value Recv(napi_env env, napi_callback_info info) {
  ARGS(3);
  int32_t fd;
  void *buf, *cr;
  size_t len, crlen;
  if (!arg_i32(env, argv[0], &fd) || !arg_buf(env, argv[1], &buf, &len) || !arg_buf(env, argv[2], &cr, &crlen) ||
      crlen < 12)
    return num(env, -EINVAL);
  union {
    char b[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * 4)];
    struct cmsghdr align;
  } cb;
  struct iovec io = {buf, len};
  struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = cb.b, .msg_controllen = sizeof cb.b};
  ssize_t r = recvmsg(fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (r < 0) return num(env, -errno);
  int32_t *c = cr;
  c[0] = c[1] = c[2] = -1;
  for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
    if (h->cmsg_level != SOL_SOCKET) continue;
    if (h->cmsg_type == SCM_CREDENTIALS) {
      struct ucred u;
      memcpy(&u, CMSG_DATA(h), sizeof u);
      c[0] = u.pid;
      c[1] = (int32_t)u.uid;
      c[2] = (int32_t)u.gid;
    } else if (h->cmsg_type == SCM_RIGHTS) {
      // clients never send fds on a channel: drop any
      int nfd = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (int i = 0; i < nfd; i++) {
        int x;
        memcpy(&x, CMSG_DATA(h) + i * sizeof(int), sizeof x);
        close(x);
      }
    }
  }
  if (m.msg_flags & MSG_TRUNC) return num(env, -EMSGSIZE);
  return num(env, (double)r);
}

// send(fd, buf, len, passFd) -> bytes or -errno. passFd < 0: none.
static napi_value Send(napi_env env, napi_callback_info info) {
  ARGS(4);
  int32_t fd, n, pass;
  void *buf;
  size_t len;
  if (!arg_i32(env, argv[0], &fd) || !arg_buf(env, argv[1], &buf, &len) || !arg_i32(env, argv[2], &n) ||
      !arg_i32(env, argv[3], &pass) || n < 0 || (size_t)n > len)
    return num(env, -EINVAL);
  union {
    char b[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } cb;
  struct iovec io = {buf, (size_t)n};
  struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1};
  if (pass >= 0) {
    m.msg_control = cb.b;
    m.msg_controllen = sizeof cb.b;
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(h), &pass, sizeof pass);
  }
  ssize_t r;
  do r = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (r < 0 && errno == EINTR);
  return num(env, r < 0 ? -errno : (double)r);
}

// call(fd, buf, len, out) -> answer length or -errno: a blocking request/answer on a client socket
// (used to probe a daemon running in another process; never against this process's own daemon).
static napi_value Call(napi_env env, napi_callback_info info) {
  ARGS(4);
  int32_t fd, n;
  void *buf, *out;
  size_t len, outlen;
  if (!arg_i32(env, argv[0], &fd) || !arg_buf(env, argv[1], &buf, &len) || !arg_i32(env, argv[2], &n) ||
      !arg_buf(env, argv[3], &out, &outlen) || n < 0 || (size_t)n > len)
    return num(env, -EINVAL);
  if (send(fd, buf, n, MSG_NOSIGNAL) < 0) return num(env, -errno);
  ssize_t r;
  do r = recv(fd, out, outlen, 0);
  while (r < 0 && errno == EINTR);
  return num(env, r < 0 ? -errno : (double)r);
}

static napi_value Close(napi_env env, napi_callback_info info) {
  ARGS(1);
  int32_t fd;
  if (!arg_i32(env, argv[0], &fd)) return num(env, -EINVAL);
  return num(env, close(fd) < 0 ? -errno : 0);
}

// vmRead(pid, addr, buf, len) / vmWrite(pid, addr, buf, len) -> bytes transferred or -errno.
static napi_value VmRw(napi_env env, napi_callback_info info, int write) {
  ARGS(4);
  int32_t pid, n;
  int64_t addr;
  void *buf;
  size_t len;
  if (!arg_i32(env, argv[0], &pid) || !arg_i64(env, argv[1], &addr) || !arg_buf(env, argv[2], &buf, &len) ||
      !arg_i32(env, argv[3], &n) || n < 0 || (size_t)n > len)
    return num(env, -EINVAL);
  if (n == 0) return num(env, 0);
  struct iovec local = {buf, (size_t)n};
  struct iovec remote = {(void *)(uintptr_t)addr, (size_t)n};
  ssize_t r = write ? process_vm_writev(pid, &local, 1, &remote, 1, 0) : process_vm_readv(pid, &local, 1, &remote, 1, 0);
  return num(env, r < 0 ? -errno : (double)r);
}
static napi_value VmRead(napi_env env, napi_callback_info info) { return VmRw(env, info, 0); }
static napi_value VmWrite(napi_env env, napi_callback_info info) { return VmRw(env, info, 1); }

static napi_value PidfdOpen(napi_env env, napi_callback_info info) {
  ARGS(1);
  int32_t pid;
  if (!arg_i32(env, argv[0], &pid)) return num(env, -EINVAL);
  long r = syscall(SYS_pidfd_open, pid, 0);
  if (r >= 0) fcntl((int)r, F_SETFD, FD_CLOEXEC);
  return num(env, r < 0 ? -errno : (double)r);
}

static napi_value PidfdGetfd(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t pidfd, fd;
  if (!arg_i32(env, argv[0], &pidfd) || !arg_i32(env, argv[1], &fd)) return num(env, -EINVAL);
  long r = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
  return num(env, r < 0 ? -errno : (double)r);
}

// ---- shared memory ------------------------------------------------------------------------------

static void unmap_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  munmap(data, (size_t)(uintptr_t)hint);
}

// memfdBuffer(name, size) -> [fd, ArrayBuffer] or -errno: memory shared with client processes (a
// memfd the daemon maps MAP_SHARED; a client maps the same pages from the fd it is sent).
static napi_value MemfdBuffer(napi_env env, napi_callback_info info) {
  ARGS(2);
  char name[64];
  size_t n;
  int64_t size;
  if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &n) != napi_ok || !arg_i64(env, argv[1], &size) || size <= 0)
    return num(env, -EINVAL);
  int fd = memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) return num(env, -errno);
  if (ftruncate(fd, size) < 0) {
    int e = errno;
    close(fd);
    return num(env, -e);
  }
  void *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    int e = errno;
    close(fd);
    return num(env, -e);
  }
  napi_value ab, arr;
  if (napi_create_external_arraybuffer(env, p, (size_t)size, unmap_finalize, (void *)(uintptr_t)size, &ab) != napi_ok) {
    munmap(p, (size_t)size);
    close(fd);
    return num(env, -ENOMEM);
  }
  CHECK(napi_create_array_with_length(env, 2, &arr));
  napi_set_element(env, arr, 0, num(env, fd));
  napi_set_element(env, arr, 1, ab);
  return arr;
}

// ---- epoll sets, one of them watched by libuv -----------------------------------------------------

struct watcher {
  uv_poll_t h; // first: the handle's address is the watcher's
  napi_ref cb;
  napi_env env;
  int fd;
  struct watcher *next;
};
static struct watcher *watchers;

static void on_ready(uv_poll_t *h, int status, int events) {
  (void)status;
  (void)events;
  struct watcher *w = (struct watcher *)h;
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, global, res;
  if (napi_get_reference_value(env, w->cb, &cb) == napi_ok && napi_get_global(env, &global) == napi_ok) {
    if (napi_call_function(env, global, cb, 0, NULL, &res) == napi_pending_exception) {
      napi_value err;
      napi_get_and_clear_last_exception(env, &err);
      napi_fatal_exception(env, err);
    }
  }
  napi_close_handle_scope(env, scope);
}

// epollCreate() -> an epoll fd (close-on-exec).
static napi_value EpollCreate(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = epoll_create1(EPOLL_CLOEXEC);
  return num(env, fd < 0 ? -errno : fd);
}

// epollAdd(ep, fd, events, tag): events 1 = readable (plus hang-ups), 2 = hang-ups only. The tag
// (any int32) comes back with the fd's events.
static napi_value EpollAdd(napi_env env, napi_callback_info info) {
  ARGS(4);
  int32_t ep, fd, ev, tag;
  if (!arg_i32(env, argv[0], &ep) || !arg_i32(env, argv[1], &fd) || !arg_i32(env, argv[2], &ev) ||
      !arg_i32(env, argv[3], &tag))
    return num(env, -EINVAL);
  struct epoll_event e = {.events = (ev & 1 ? EPOLLIN : 0) | EPOLLRDHUP,
                          .data.u64 = ((uint64_t)(uint32_t)tag << 32) | (uint32_t)fd};
  return num(env, epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0 ? -errno : 0);
}

static napi_value EpollDel(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t ep, fd;
  if (!arg_i32(env, argv[0], &ep) || !arg_i32(env, argv[1], &fd)) return num(env, -EINVAL);
  return num(env, epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL) < 0 ? -errno : 0);
}

// epollDrain(ep, out: Int32Array) -> n: the ready events, without waiting, as (fd, tag, events)
// triples; events: 1 readable, 2 hang-up (for a file socket: its last reference went away).
static napi_value EpollDrain(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t ep;
  void *out;
  size_t len;
  if (!arg_i32(env, argv[0], &ep) || !arg_buf(env, argv[1], &out, &len)) return num(env, -EINVAL);
  int max = (int)(len / 12);
  if (max > 256) max = 256;
  if (max <= 0) return num(env, 0);
  struct epoll_event evs[256];
  int n = epoll_wait(ep, evs, max, 0);
  if (n < 0) return num(env, errno == EINTR ? 0 : -errno);
  int32_t *o = out;
  for (int i = 0; i < n; i++) {
    o[3 * i] = (int32_t)(uint32_t)evs[i].data.u64;
    o[3 * i + 1] = (int32_t)(evs[i].data.u64 >> 32);
    o[3 * i + 2] = (evs[i].events & EPOLLIN ? 1 : 0) | (evs[i].events & (EPOLLHUP | EPOLLRDHUP | EPOLLERR) ? 2 : 0);
  }
  return num(env, n);
}

// watch(fd, callback): libuv polls fd (an epoll set) for readability and calls back (no arguments).
static napi_value Watch(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd;
  if (!arg_i32(env, argv[0], &fd)) return num(env, -EINVAL);
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  struct watcher *w = calloc(1, sizeof *w);
  if (!w) return num(env, -ENOMEM);
  if (napi_create_reference(env, argv[1], 1, &w->cb) != napi_ok || uv_poll_init(loop, &w->h, fd) != 0) {
    free(w);
    return num(env, -EIO);
  }
  w->env = env;
  w->fd = fd;
  w->next = watchers;
  watchers = w;
  uv_poll_start(&w->h, UV_READABLE, on_ready);
  return num(env, 0);
}

static void on_closed(uv_handle_t *h) { free(h); }

// unwatch(fd): stop polling fd (the handle is freed once libuv has closed it).
static napi_value Unwatch(napi_env env, napi_callback_info info) {
  ARGS(1);
  int32_t fd;
  if (!arg_i32(env, argv[0], &fd)) return num(env, -EINVAL);
  for (struct watcher **p = &watchers; *p; p = &(*p)->next) {
    struct watcher *w = *p;
    if (w->fd != fd) continue;
    *p = w->next;
    uv_poll_stop(&w->h);
    napi_delete_reference(env, w->cb);
    uv_close((uv_handle_t *)&w->h, on_closed);
    return num(env, 0);
  }
  return num(env, -ENOENT);
}

#define FN(name, f)                                                                                \
  do {                                                                                             \
    napi_value fnv;                                                                                \
    CHECK(napi_create_function(env, name, NAPI_AUTO_LENGTH, f, NULL, &fnv));                       \
    CHECK(napi_set_named_property(env, exports, name, fnv));                                       \
  } while (0)

static napi_value Init(napi_env env, napi_value exports) {
  FN("listen", Listen);
  FN("accept", Accept);
  FN("connect", Connect);
  FN("socketpair", SocketPair);
  FN("recv", Recv);
  FN("send", Send);
  FN("call", Call);
  FN("close", Close);
  FN("vmRead", VmRead);
  FN("vmWrite", VmWrite);
  FN("pidfdOpen", PidfdOpen);
  FN("pidfdGetfd", PidfdGetfd);
  FN("memfdBuffer", MemfdBuffer);
  FN("epollCreate", EpollCreate);
  FN("epollAdd", EpollAdd);
  FN("epollDel", EpollDel);
  FN("epollDrain", EpollDrain);
  FN("watch", Watch);
  FN("unwatch", Unwatch);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
