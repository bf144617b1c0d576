/* The .npy format, version 1.0: "\x93NUMPY", 1, 0, a little-endian uint16
 * header length, then a Python dict literal padded with spaces and ended by
 * '\n'. Hand-written: no C library for it ships in Debian, and it is small. */
#include "dsp/npy.h"

#include <stdlib.h>
#include <string.h>

size_t et_npy_header(char *out, size_t n, const char *descr, const uint64_t *shape, int ndim)
{
    char dict[256];
    int used = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                        descr);
    for (int i = 0; i < ndim; i++)
        used += snprintf(dict + used, sizeof dict - (size_t)used, "%llu%s",
                         (unsigned long long)shape[i], ndim == 1 ? "," : i + 1 < ndim ? ", " : "");
    used += snprintf(dict + used, sizeof dict - (size_t)used, "), }");
    size_t total = 10 + (size_t)used + 1;
    total = (total + 63) / 64 * 64;
    if (total > n || total - 10 > 65535)
        return 0;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    size_t hlen = total - 10;
    out[8] = (char)(hlen & 0xFF);
    out[9] = (char)(hlen >> 8);
    memcpy(out + 10, dict, (size_t)used);
    memset(out + 10 + used, ' ', hlen - (size_t)used - 1);
    out[total - 1] = '\n';
    return total;
}

et_status et_npy_parse(const uint8_t *buf, size_t n, const char *descr, uint64_t *shape,
                       int *ndim, size_t *data_offset, const char *path, et_error *err)
{
    if (n < 10 || memcmp(buf, "\x93NUMPY\x01\x00", 8))
        return et_error_set(err, ET_ECORRUPT, "%s: not a version 1.0 .npy file", path);
    size_t hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
    if (10 + hlen > n)
        return et_error_set(err, ET_ECORRUPT, "%s: truncated .npy header", path);
    char header[65536];
    memcpy(header, buf + 10, hlen);
    header[hlen] = '\0';
    char want[64];
    snprintf(want, sizeof want, "'descr': '%s'", descr);
    if (!strstr(header, want) || !strstr(header, "'fortran_order': False"))
        return et_error_set(err, ET_ECORRUPT, "%s: expected dtype %s in C order", path, descr);
    const char *s = strstr(header, "'shape': (");
    if (!s)
        return et_error_set(err, ET_ECORRUPT, "%s: .npy header without a shape", path);
    s += 10;
    int k = 0;
    while (*s && *s != ')' && k < 8) {
        char *end = NULL;
        unsigned long long v = strtoull(s, &end, 10);
        if (end == s)
            break;
        shape[k++] = v;
        s = end;
        while (*s == ',' || *s == ' ')
            s++;
    }
    *ndim = k;
    *data_offset = 10 + hlen;
    return ET_OK;
}
