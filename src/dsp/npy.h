/* Writing and reading the .npy format (version 1.0) for the feature cache.
 * Internal. Little-endian data, C order. */
#ifndef ET_DSP_NPY_H
#define ET_DSP_NPY_H

#include "edgetrain/core.h"

#include <stdio.h>

/* Header for an array of dtype descr ("<f4", "<i8", "<i4", "|u1") and shape,
 * padded so the data starts on a 64-byte boundary. Returns bytes written to
 * out (at most n), or 0 when it does not fit. */
size_t et_npy_header(char *out, size_t n, const char *descr, const uint64_t *shape, int ndim);

/* Parses a header at the start of buf (n bytes): checks descr, returns the
 * shape and the data offset. ET_ECORRUPT naming path when it is not one. */
et_status et_npy_parse(const uint8_t *buf, size_t n, const char *descr, uint64_t *shape,
                       int *ndim, size_t *data_offset, const char *path, et_error *err);

#endif
