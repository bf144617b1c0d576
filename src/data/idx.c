/* IDX files (the MNIST format): a 4-byte magic (0, 0, type, ndim), ndim
 * big-endian uint32 sizes, then the data. Plain or gzip-compressed. */
#include "edgetrain/data.h"

#include "core/fsutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Reads a file whole, inflating it when it is gzip-compressed. */
static et_status read_maybe_gz(const char *path, uint8_t **data, size_t *size, et_error *err)
{
    *data = NULL;
    *size = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return et_error_set(err, errno == ENOENT ? ET_ENOTFOUND : ET_EIO, "%s: %s", path,
                            strerror(errno ? errno : EIO));
    gzbuffer(gz, 1 << 17);
    size_t cap = 1 << 20, n = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        gzclose(gz);
        return et_error_set(err, ET_ENOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (n == cap) {
            if (cap >= ET_IDX_MAX_BYTES) {
                free(buf);
                gzclose(gz);
                return et_error_set(err, ET_EINVAL, "%s: more than %zu bytes of IDX data", path,
                                    ET_IDX_MAX_BYTES);
            }
            uint8_t *grown = realloc(buf, cap * 2);
            if (!grown) {
                free(buf);
                gzclose(gz);
                return et_error_set(err, ET_ENOMEM, "%s: out of memory", path);
            }
            buf = grown;
            cap *= 2;
        }
        unsigned want = cap - n > (1u << 30) ? (1u << 30) : (unsigned)(cap - n);
        int r = gzread(gz, buf + n, want);
        if (r < 0) {
            int zerr = 0;
            const char *msg = gzerror(gz, &zerr);
            et_status rc = et_error_set(err, ET_EINVAL, "%s: corrupt or truncated gzip data (%s)",
                                        path, msg);
            free(buf);
            gzclose(gz);
            return rc;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    /* gzread reports a stream cut short as a clean end; gzclose_r tells. */
    int zerr = 0;
    gzerror(gz, &zerr);
    int close_rc = gzclose(gz);
    if (zerr == Z_BUF_ERROR || close_rc == Z_BUF_ERROR) {
        free(buf);
        return et_error_set(err, ET_EINVAL, "%s: truncated gzip data", path);
    }
    *data = buf;
    *size = n;
    return ET_OK;
}

et_status et_idx_read(const char *path, et_idx *out, et_error *err)
{
    memset(out, 0, sizeof *out);
    uint8_t *b = NULL;
    size_t n = 0;
    et_status rc = read_maybe_gz(path, &b, &n, err);
    if (rc < 0)
        return rc;
    if (n < 4 || b[0] != 0 || b[1] != 0) {
        free(b);
        return et_error_set(err, ET_EINVAL, "%s: not an IDX file (bad magic number)", path);
    }
    if (b[2] != 0x08) {
        static const char *const types[] = {[0x09] = "signed byte", [0x0B] = "int16",
                                            [0x0C] = "int32", [0x0D] = "float32",
                                            [0x0E] = "float64"};
        const char *t = b[2] < 15 && types[b[2]] ? types[b[2]] : "unknown";
        et_status e = et_error_set(err, ET_EINVAL,
                                   "%s: IDX data type 0x%02X (%s) is not supported; "
                                   "only unsigned bytes (0x08) are",
                                   path, b[2], t);
        free(b);
        return e;
    }
    int ndim = b[3];
    if (ndim < 1 || ndim > 4 || n < 4 + 4 * (size_t)ndim) {
        free(b);
        return et_error_set(err, ET_EINVAL, "%s: IDX header with %d dimensions is not valid", path,
                            ndim);
    }
    uint64_t expect = 1;
    for (int i = 0; i < ndim; i++) {
        const uint8_t *d = b + 4 + 4 * i;
        out->dims[i] = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
        expect *= out->dims[i];
        if (expect > ET_IDX_MAX_BYTES) {
            free(b);
            return et_error_set(err, ET_EINVAL, "%s: IDX sizes describe more than %zu bytes",
                                path, ET_IDX_MAX_BYTES);
        }
    }
    size_t header = 4 + 4 * (size_t)ndim;
    size_t have = n - header;
    if (have != expect) {
        free(b);
        return et_error_set(err, ET_EINVAL, "%s: %s: the header promises %llu bytes of data, the file has %zu",
                            path, have < expect ? "truncated IDX file" : "IDX file with trailing bytes",
                            (unsigned long long)expect, have);
    }
    memmove(b, b + header, have);
    out->ndim = ndim;
    out->data = b;
    out->bytes = have;
    return ET_OK;
}

void et_idx_free(et_idx *idx)
{
    if (!idx)
        return;
    free(idx->data);
    idx->data = NULL;
}
