/*
 * mount(2), umount2(2) and syncfs(2) for `lading run`, and ext4's top-directory flag for the
 * directories that hold unpacked trees (Node-API, no C++, no library).
 *
 * Why this exists: Node has none of these calls, and `lading run` needs each once per container
 * (src/run/rootfs.ts mounts the overlay and unmounts it, src/run/layers.ts syncs the store's file
 * system before a new layer is renamed in). Through util-linux `mount`/`umount` and coreutils'
 * `sync -f` each call was a process spawn, 2-4 ms apiece on the path of every run, against
 * microseconds for the system call. No maintained npm package exposes them. The addon is optional:
 * where it was not built (no compiler), src/io/native-fs.ts falls back to those programs.
 *
 *   mount(source: string, target: string, fstype: string, flags: number, data: string, cwd?: string): void
 *   umount2(target: string, flags: number): void
 *   syncfs(path: string): void
 *   syncfsStart(path: string): Promise<void>
 *   topdir(path: string): boolean
 *
 * Failures throw an Error whose `code` is the errno name (EBUSY, EINVAL, ...) and whose message
 * is strerror's. `cwd`, when given, is the directory relative paths in `data` are resolved from
 * (overlay's lowerdir/upperdir/workdir, kept short by being relative: the kernel takes one page
 * of options): the call changes into it and back around mount(2), inside this one synchronous
 * call, so no JavaScript runs meanwhile. All calls are synchronous: each takes microseconds to
 * a few milliseconds (syncfs: as long as the disk needs, which its caller waits for anyway).
 *
 * syncfsStart is syncfs(2) on libuv's pool: a layer's unpack starts one now and then while it
 * writes, so the disk takes the data written so far while the main thread creates more files,
 * and the last, waited-for syncfs finds little left to write. Its promise rejects with the errno
 * error as syncfs does.
 *
 * topdir sets FS_TOPDIR_FL (chattr +T) on a directory whose entries are whole trees under unique
 * names (the store's unpacked layers, a build's scratch trees): ext4's Orlov allocator then puts
 * each new entry in a block group it picks afresh (starting from a hash of the name) instead of
 * beside its siblings. Why: on an ext4 without a journal the kernel will not reuse an inode for
 * 60 s after it was freed (360 s while its inode table block is dirty), and every new inode in
 * a group scans past each such inode (fs/ext4/ialloc.c recently_deleted()); where a tree had just
 * been removed, creating 6,000 files took 0.5-1.2 s instead of 50 ms. It is a hint: false, never
 * an exception, where the file system has no such flag (tmpfs, xfs, overlayfs) or refuses it.
 */
#define _GNU_SOURCE /* syncfs(2) */
#include <node_api.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <linux/fs.h>

#define MAX_ARG 8192

static const char *errno_name(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case EBUSY: return "EBUSY";
    case EINVAL: return "EINVAL";
    case ENOTDIR: return "ENOTDIR";
    case ENODEV: return "ENODEV";
    case ENOMEM: return "ENOMEM";
    case ELOOP: return "ELOOP";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case EIO: return "EIO";
    case EROFS: return "EROFS";
    case ENOSPC: return "ENOSPC";
    case EBADF: return "EBADF";
    case EFAULT: return "EFAULT";
    case EMFILE: return "EMFILE";
    case ENOTBLK: return "ENOTBLK";
    case ENXIO: return "ENXIO";
    case EDQUOT: return "EDQUOT";
    case ECANCELED: return "ECANCELED";
    default: return "EUNKNOWN";
  }
}

/* An Error `<syscall>: <strerror>` with code = errno name, errno and syscall set. */
static napi_value errno_error(napi_env env, const char *syscall, int e) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", syscall, strerror(e));
  napi_value code, text, err;
  napi_create_string_utf8(env, errno_name(e), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &err);
  napi_value errno_value;
  napi_create_int32(env, -e, &errno_value);
  napi_set_named_property(env, err, "errno", errno_value);
  napi_value sys;
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sys);
  napi_set_named_property(env, err, "syscall", sys);
  return err;
}

/* Throws errno_error; returns NULL for the caller to return. */
static napi_value throw_errno(napi_env env, const char *syscall, int e) {
  napi_throw(env, errno_error(env, syscall, e));
  return NULL;
}

/* A string argument copied into a fresh buffer (NULL with a TypeError thrown if it is not one). */
static char *string_arg(napi_env env, napi_value v, const char *what) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok || len > MAX_ARG) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s must be a string of at most %d bytes", what, MAX_ARG);
    napi_throw_type_error(env, NULL, msg);
    return NULL;
  }
  char *s = malloc(len + 1);
  if (s == NULL) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  if (strlen(s) != len) { /* an embedded NUL would cut the path short: refuse it */
    free(s);
    napi_throw_type_error(env, NULL, "string arguments must not contain NUL bytes");
    return NULL;
  }
  return s;
}

static int number_arg(napi_env env, napi_value v, unsigned long *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || d < 0 || d > 4294967295.0 || d != (double)(unsigned long)d) {
    napi_throw_type_error(env, NULL, "flags must be a non-negative integer");
    return 0;
  }
  *out = (unsigned long)d;
  return 1;
}

/* The call's arguments, at least `min` of them (else a TypeError naming `usage`, and 0). */
static size_t get_args(napi_env env, napi_callback_info info, size_t max, size_t min, napi_value *argv, const char *usage) {
  size_t argc = max;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < min) {
    napi_throw_type_error(env, NULL, usage);
    return 0;
  }
  return argc;
}

/* undefined for rc == 0, else the errno error thrown. */
static napi_value result_of(napi_env env, int rc, int e, const char *syscall) {
  if (rc != 0) return throw_errno(env, syscall, e);
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

static napi_value do_mount(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  size_t argc = get_args(env, info, 6, 5, argv, "mount(source, target, fstype, flags, data[, cwd])");
  if (argc == 0) return NULL;
  char *source = NULL, *target = NULL, *fstype = NULL, *data = NULL, *cwd = NULL;
  unsigned long flags = 0;
  napi_value result = NULL;
  int saved = -1;
  if ((source = string_arg(env, argv[0], "source")) == NULL) goto out;
  if ((target = string_arg(env, argv[1], "target")) == NULL) goto out;
  if ((fstype = string_arg(env, argv[2], "fstype")) == NULL) goto out;
  if (!number_arg(env, argv[3], &flags)) goto out;
  if ((data = string_arg(env, argv[4], "data")) == NULL) goto out;
  if (argc > 5) {
    napi_valuetype t;
    napi_typeof(env, argv[5], &t);
    if (t != napi_undefined && (cwd = string_arg(env, argv[5], "cwd")) == NULL) goto out;
  }
  if (cwd != NULL) {
    saved = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (saved < 0) {
      throw_errno(env, "open .", errno);
      goto out;
    }
    if (chdir(cwd) != 0) {
      throw_errno(env, "chdir", errno);
      goto out;
    }
  }
  int rc = mount(source, target, fstype, flags, data);
  int e = errno;
  if (saved >= 0 && fchdir(saved) != 0) {
    /* Cannot happen for a directory we hold open; if it did, relative paths would mislead. */
    abort();
  }
  if (rc != 0) {
    throw_errno(env, "mount", e);
    goto out;
  }
  napi_get_undefined(env, &result);
out:
  if (saved >= 0) close(saved);
  free(source);
  free(target);
  free(fstype);
  free(data);
  free(cwd);
  return result;
}

static napi_value do_umount2(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, 2, argv, "umount2(target, flags)") == 0) return NULL;
  unsigned long flags;
  if (!number_arg(env, argv[1], &flags)) return NULL;
  char *target = string_arg(env, argv[0], "target");
  if (target == NULL) return NULL;
  int rc = umount2(target, (int)flags);
  int e = errno;
  free(target);
  return result_of(env, rc, e, "umount2");
}

/* The one argument of a call, a path, opened for syncfs; -1 with the exception thrown. */
static int open_path_arg(napi_env env, napi_callback_info info, const char *usage) {
  napi_value argv[1];
  if (get_args(env, info, 1, 1, argv, usage) == 0) return -1;
  char *p = string_arg(env, argv[0], "path");
  if (p == NULL) return -1;
  int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  int e = errno;
  free(p);
  if (fd < 0) throw_errno(env, "open", e);
  return fd;
}

static napi_value do_syncfs(napi_env env, napi_callback_info info) {
  int fd = open_path_arg(env, info, "syncfs(path)");
  if (fd < 0) return NULL;
  int rc = syncfs(fd);
  int e = errno;
  close(fd);
  return result_of(env, rc, e, "syncfs");
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int fd;
  int err; /* errno of syncfs, 0 on success */
} syncfs_job;

static void syncfs_execute(napi_env env, void *data) {
  (void)env;
  syncfs_job *job = data;
  job->err = syncfs(job->fd) == 0 ? 0 : errno;
  close(job->fd);
}

static void syncfs_complete(napi_env env, napi_status status, void *data) {
  syncfs_job *job = data;
  if (status != napi_ok) job->err = ECANCELED;
  if (job->err == 0) {
    napi_value u;
    napi_get_undefined(env, &u);
    napi_resolve_deferred(env, job->deferred, u);
  } else {
    napi_reject_deferred(env, job->deferred, errno_error(env, "syncfs", job->err));
  }
  napi_delete_async_work(env, job->work);
  free(job);
}

static napi_value do_syncfs_start(napi_env env, napi_callback_info info) {
  /* Opened here, on the caller's thread, so a bad path throws at once like syncfs(). */
  int fd = open_path_arg(env, info, "syncfsStart(path)");
  if (fd < 0) return NULL;
  syncfs_job *job = calloc(1, sizeof *job);
  if (job == NULL) {
    close(fd);
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  job->fd = fd;
  napi_value promise, name;
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, "lading_syncfs", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, syncfs_execute, syncfs_complete, job, &job->work) != napi_ok ||
      napi_queue_async_work(env, job->work) != napi_ok) {
    close(fd);
    free(job);
    napi_throw_error(env, NULL, "could not queue syncfs");
    return NULL;
  }
  return promise;
}

static napi_value do_topdir(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, 1, argv, "topdir(path)") == 0) return NULL;
  char *p = string_arg(env, argv[0], "path");
  if (p == NULL) return NULL;
  int ok = 0;
  int fd = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  free(p);
  if (fd >= 0) {
    int flags = 0; /* the kernel reads and writes an int, whatever the ioctl's declared type */
    if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
      if (flags & FS_TOPDIR_FL) ok = 1;
      else {
        flags |= FS_TOPDIR_FL;
        ok = ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
      }
    }
    close(fd);
  }
  napi_value r;
  napi_get_boolean(env, ok, &r);
  return r;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"mount", NULL, do_mount, NULL, NULL, NULL, napi_enumerable, NULL},
    {"umount2", NULL, do_umount2, NULL, NULL, NULL, napi_enumerable, NULL},
    {"syncfs", NULL, do_syncfs, NULL, NULL, NULL, napi_enumerable, NULL},
    {"syncfsStart", NULL, do_syncfs_start, NULL, NULL, NULL, napi_enumerable, NULL},
    {"topdir", NULL, do_topdir, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
