/* Files, paths and hashing. SHA-256 comes from OpenSSL's libcrypto. */
#include "core/fsutil.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void to_hex(const unsigned char *md, char out[ET_HASH_HEX])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 15];
    }
    out[64] = '\0';
}

void et_sha256_hex(const void *data, size_t n, char out[ET_HASH_HEX])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(data, n, md, &len, EVP_sha256(), NULL);
    to_hex(md, out);
}

et_status et_sha256_begin(et_sha256 *h)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(ctx);
        return ET_ENOMEM;
    }
    h->ctx = ctx;
    return ET_OK;
}

void et_sha256_add(et_sha256 *h, const void *data, size_t n)
{
    EVP_DigestUpdate(h->ctx, data, n);
}

void et_sha256_end(et_sha256 *h, char out[ET_HASH_HEX])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_DigestFinal_ex(h->ctx, md, &len);
    EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
    to_hex(md, out);
}

et_status et_read_file(const char *path, size_t max_bytes, unsigned char **data, size_t *size,
                       et_error *err)
{
    *data = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return et_error_set(err, errno == ENOENT ? ET_ENOTFOUND : ET_EIO, "%s: %s", path,
                            strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return et_error_set(err, ET_EIO, "%s: not a regular file", path);
    }
    if ((size_t)st.st_size > max_bytes) {
        close(fd);
        return et_error_set(err, ET_EINVAL, "%s: file is %lld bytes, more than the %zu allowed",
                            path, (long long)st.st_size, max_bytes);
    }
    size_t n = (size_t)st.st_size;
    unsigned char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        return et_error_set(err, ET_ENOMEM, "%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) {
        free(buf);
        return et_error_set(err, ET_EIO, "%s: short read (%zu of %zu bytes)", path, got, n);
    }
    buf[n] = 0;
    *data = buf;
    *size = n;
    return ET_OK;
}

et_status et_write_file_atomic(const char *path, const void *data, size_t n, et_error *err)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return et_error_set(err, ET_EINVAL, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return et_error_set(err, ET_EIO, "%s: %s", tmp, strerror(errno));
    const unsigned char *p = data;
    size_t left = n;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return et_error_set(err, ET_EIO, "%s: write failed: %s", path, strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) < 0 || close(fd) < 0) {
        int e = errno;
        unlink(tmp);
        return et_error_set(err, ET_EIO, "%s: %s", path, strerror(e));
    }
    if (rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        return et_error_set(err, ET_EIO, "%s: rename failed: %s", path, strerror(e));
    }
    return ET_OK;
}

et_status et_mkdir_p(const char *path, et_error *err)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return et_error_set(err, ET_EINVAL, "bad folder path '%s'", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                return et_error_set(err, ET_EIO, "%s: cannot create folder: %s", buf,
                                    strerror(errno));
            if (!et_is_dir(buf))
                return et_error_set(err, ET_EIO, "%s: exists and is not a folder", buf);
            buf[i] = c;
        }
    }
    return ET_OK;
}

et_status et_fsync_dir(const char *path, et_error *err)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return et_error_set(err, ET_EIO, "%s: %s", path, strerror(errno));
    int rc = fsync(fd);
    close(fd);
    if (rc < 0)
        return et_error_set(err, ET_EIO, "%s: fsync failed: %s", path, strerror(errno));
    return ET_OK;
}

bool et_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool et_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool et_path_join(char *out, size_t n, const char *a, const char *b)
{
    size_t la = strlen(a);
    while (la > 1 && a[la - 1] == '/')
        la--;
    int w = snprintf(out, n, "%.*s/%s", (int)la, a, b);
    return w >= 0 && (size_t)w < n;
}

const char *et_path_base(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

void et_path_dir(const char *path, char *out, size_t n)
{
    const char *s = strrchr(path, '/');
    if (!s) {
        snprintf(out, n, ".");
    } else if (s == path) {
        snprintf(out, n, "/");
    } else {
        snprintf(out, n, "%.*s", (int)(s - path), path);
    }
}

void et_path_ext(const char *path, char *out, size_t n)
{
    const char *base = et_path_base(path);
    const char *dot = strrchr(base, '.');
    size_t i = 0;
    if (dot && dot != base) {
        for (dot++; *dot && i + 1 < n; dot++)
            out[i++] = (char)tolower((unsigned char)*dot);
    }
    out[i] = '\0';
}
