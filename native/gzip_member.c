/*
 * gzip members from libdeflate, on libuv's thread pool (Node-API, no C++).
 *
 * Why this exists: Lading compresses layers in 1 MiB blocks on both cores. With Node's zlib a
 * block costs about 40% more CPU than with libdeflate at a level that also writes smaller output
 * (Debian minbase rootfs, 204 MB: zlib level 4 2.4 s -> 95.3 MB; libdeflate level 6 1.9 s ->
 * 92.1 MB), and deflate is most of a repack's CPU. No maintained npm package binds libdeflate
 * natively, so this file does, against Debian's libdeflate-dev. It has one function:
 *
 *   gzipMember(input: Buffer, level: 1..12): Promise<Buffer>
 *   gzipMemberInto(input: Buffer, level: 1..12, out: Buffer): Promise<number>
 *
 * which compress `input` into one complete gzip member (RFC 1952: MTIME 0, OS 255 "unknown",
 * CRC-32 and ISIZE trailer), so the output depends only on the input, the level and the
 * libdeflate version. The first returns a new Buffer; the second writes into `out` (which must
 * have room for libdeflate's bound, else it rejects) and returns the length written, so that a
 * caller can reuse its output buffers instead of leaving one to the garbage collector per block.
 * The Buffers must not change until the promise settles.
 */
#include <node_api.h>
#include <libdeflate.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#define MAX_LEVEL 12

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref input_ref;
  bool into;        /* gzipMemberInto: write into the caller's output Buffer */
  napi_ref dest_ref;
  uint8_t *dest;
  size_t dest_cap;
  const uint8_t *in;
  size_t in_len;
  int level;
  uint8_t *out;
  size_t out_len;
  const char *error;
} job_t;

/* One compressor per level per pool thread, kept for the thread's life: allocating one costs
 * more than compressing a small block, and the pool's threads live as long as the process. */
static __thread struct libdeflate_compressor *compressors[MAX_LEVEL + 1];
/* Per pool thread: room for the worst case, so only the exact output is allocated per job. */
static __thread uint8_t *scratch;
static __thread size_t scratch_size;

static struct libdeflate_compressor *compressor(int level) {
  if (compressors[level] == NULL) compressors[level] = libdeflate_alloc_compressor(level);
  return compressors[level];
}

/*
 * Already-compressed content (.deb, .gz, .jar, .png, ... common in images) costs deflate its full
 * match-finding effort for nothing. A block is stored (level 0: valid deflate, uncompressed
 * blocks) when two cheap tests agree it is incompressible: the byte histogram of every 4th byte
 * has an order-0 entropy of at least 7.9 bits per byte (text is about 4-5, machine code 5-6.5),
 * and level 1 saves less than 2% on its first 64 KiB (catching repeats that entropy cannot see).
 * The decision depends only on the block's bytes, so output stays deterministic.
 */
#define PROBE_BYTES (64 * 1024)
static int incompressible(const uint8_t *in, size_t n) {
  if (n < 2 * PROBE_BYTES) return 0;
  uint32_t hist[256] = {0};
  size_t samples = 0;
  for (size_t i = 0; i < n; i += 4, samples++) hist[in[i]]++;
  double h = 0;
  for (int b = 0; b < 256; b++) {
    if (hist[b] == 0) continue;
    double p = (double)hist[b] / (double)samples;
    h -= p * log2(p);
  }
  if (h < 7.9) return 0;
  struct libdeflate_compressor *c1 = compressor(1);
  if (c1 == NULL) return 0;
  static __thread uint8_t *probe;
  if (probe == NULL && (probe = malloc(PROBE_BYTES)) == NULL) return 0;
  size_t out = libdeflate_deflate_compress(c1, in, PROBE_BYTES, probe, PROBE_BYTES);
  /* 0 means it did not fit in PROBE_BYTES: no saving at all. */
  return out == 0 || out > PROBE_BYTES - PROBE_BYTES / 50;
}

static void execute(napi_env env, void *data) {
  (void)env;
  job_t *j = data;
  int level = incompressible(j->in, j->in_len) ? 0 : j->level;
  struct libdeflate_compressor *c = compressor(level);
  if (c == NULL) { j->error = "libdeflate: out of memory allocating a compressor"; return; }
  size_t bound = libdeflate_gzip_compress_bound(c, j->in_len);
  if (j->into) {
    if (j->dest == NULL || j->dest_cap < bound) { j->error = "gzipMemberInto: the output Buffer is smaller than libdeflate's bound"; return; }
    j->out_len = libdeflate_gzip_compress(c, j->in, j->in_len, j->dest, j->dest_cap);
    if (j->out_len == 0) j->error = "libdeflate: output larger than its bound";
    return;
  }
  if (scratch_size < bound) {
    free(scratch);
    scratch = malloc(bound);
    scratch_size = scratch ? bound : 0;
    if (scratch == NULL) { j->error = "libdeflate: out of memory for the output"; return; }
  }
  j->out_len = libdeflate_gzip_compress(c, j->in, j->in_len, scratch, bound);
  if (j->out_len == 0) { j->error = "libdeflate: output larger than its bound"; return; }
  /* The scratch stays with the thread; the Buffer gets an exact-size copy, made here, off the main thread. */
  j->out = malloc(j->out_len);
  if (j->out == NULL) { j->error = "libdeflate: out of memory for the output"; return; }
  memcpy(j->out, scratch, j->out_len);
}

static void free_output(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  free(data);
}

static void complete(napi_env env, napi_status status, void *data) {
  job_t *j = data;
  napi_value result;
  if (status != napi_ok && j->error == NULL) j->error = "gzipMember: the job was cancelled";
  napi_status made = napi_generic_failure;
  if (j->error == NULL && j->into) {
    made = napi_create_double(env, (double)j->out_len, &result);
  } else if (j->error == NULL) {
    made = napi_create_external_buffer(env, j->out_len, j->out, free_output, NULL, &result);
    if (made == napi_ok) j->out = NULL; /* owned by the Buffer now */
    /* Runtimes that forbid external buffers (a V8 sandbox) get a copy instead. */
    else made = napi_create_buffer_copy(env, j->out_len, j->out, NULL, &result);
  }
  if (made == napi_ok) {
    napi_resolve_deferred(env, j->deferred, result);
  } else {
    napi_value msg, err;
    napi_create_string_utf8(env, j->error ? j->error : "gzipMember: cannot create the output Buffer", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &err);
    napi_reject_deferred(env, j->deferred, err);
  }
  free(j->out);
  napi_delete_reference(env, j->input_ref);
  if (j->dest_ref != NULL) napi_delete_reference(env, j->dest_ref);
  napi_delete_async_work(env, j->work);
  free(j);
}

/* gzipMember(input, level) and, with `into`, gzipMemberInto(input, level, out). */
static napi_value start_job(napi_env env, napi_callback_info info, bool into) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  const char *usage = into ? "gzipMemberInto(input: Buffer, level: number, out: Buffer)" : "gzipMember(input: Buffer, level: number)";
  bool is_buffer = false, out_is_buffer = false;
  if (argc < (into ? 3 : 2) || napi_is_buffer(env, argv[0], &is_buffer) != napi_ok || !is_buffer ||
      (into && (napi_is_buffer(env, argv[2], &out_is_buffer) != napi_ok || !out_is_buffer))) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  int32_t level = 0;
  if (napi_get_value_int32(env, argv[1], &level) != napi_ok || level < 1 || level > MAX_LEVEL) {
    napi_throw_range_error(env, NULL, "gzipMember: level must be an integer 1-12");
    return NULL;
  }
  job_t *j = calloc(1, sizeof(job_t));
  if (j == NULL) { napi_throw_error(env, NULL, "gzipMember: out of memory"); return NULL; }
  void *in = NULL;
  napi_get_buffer_info(env, argv[0], &in, &j->in_len);
  j->in = in;
  j->level = level;
  napi_create_reference(env, argv[0], 1, &j->input_ref);
  j->into = into;
  if (into) {
    void *dest = NULL;
    napi_get_buffer_info(env, argv[2], &dest, &j->dest_cap);
    j->dest = dest;
    napi_create_reference(env, argv[2], 1, &j->dest_ref);
  }
  napi_value promise, name;
  napi_create_promise(env, &j->deferred, &promise);
  napi_create_string_utf8(env, "lading:gzipMember", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, execute, complete, j, &j->work);
  napi_queue_async_work(env, j->work);
  return promise;
}

static napi_value gzip_member(napi_env env, napi_callback_info info) { return start_job(env, info, false); }
static napi_value gzip_member_into(napi_env env, napi_callback_info info) { return start_job(env, info, true); }

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value fn;
  napi_create_function(env, "gzipMember", NAPI_AUTO_LENGTH, gzip_member, NULL, &fn);
  napi_set_named_property(env, exports, "gzipMember", fn);
  napi_create_function(env, "gzipMemberInto", NAPI_AUTO_LENGTH, gzip_member_into, NULL, &fn);
  napi_set_named_property(env, exports, "gzipMemberInto", fn);
  return exports;
}
