/* Internal helpers for files, paths and hashing. Not part of the public API. */
#ifndef ET_CORE_FSUTIL_H
#define ET_CORE_FSUTIL_H

#include "edgetrain/core.h"

#include <stdio.h>

#define ET_HASH_HEX 65 /* 64 hex digits of SHA-256 + NUL */

/* SHA-256 of data as 64 lowercase hex digits. */
void et_sha256_hex(const void *data, size_t n, char out[ET_HASH_HEX]);

/* Incremental SHA-256. */
typedef struct et_sha256 {
    void *ctx;
} et_sha256;
et_status et_sha256_begin(et_sha256 *h);
void et_sha256_add(et_sha256 *h, const void *data, size_t n);
void et_sha256_end(et_sha256 *h, char out[ET_HASH_HEX]);

/* Reads a whole file into a malloc'ed buffer (NUL-terminated past *size).
 * Refuses files larger than max_bytes with ET_EINVAL. Caller frees *data. */
et_status et_read_file(const char *path, size_t max_bytes, unsigned char **data, size_t *size,
                       et_error *err);



/* fsync a folder so that renames inside it survive a crash. */
et_status et_fsync_dir(const char *path, et_error *err);

bool et_is_dir(const char *path);
bool et_is_file(const char *path);

/* a + "/" + b into out (size n); false when it does not fit. */
bool et_path_join(char *out, size_t n, const char *a, const char *b);
/* The last path component (pointer into path). */
const char *et_path_base(const char *path);
/* The folder part of path into out ("." when none). */
void et_path_dir(const char *path, char *out, size_t n);
/* Lower-case extension without the dot ("" when none), into out (size n). */
void et_path_ext(const char *path, char *out, size_t n);

#endif
