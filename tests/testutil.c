/* Test helpers. See testutil.h. */
#include "testutil.h"

#include "core/fsutil.h"

#include <criterion/criterion.h>
#include <sqlite3.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <stb_image_write.h>

const char *tu_tmpdir(void)
{
    static char dir[1024];
    static unsigned counter;
    const char *base = getenv("ET_TEST_TMP");
    if (!base || !*base)
        base = "/tmp/edgetrain-tests";
    et_error err = {0};
    cr_assert_eq(et_mkdir_p(base, &err), 0, "%s", err.msg);
    snprintf(dir, sizeof dir, "%s/t%ld-%u-XXXXXX", base, (long)getpid(), counter++);
    cr_assert(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
    return dir;
}

const char *tu_path(const char *dir, const char *rel)
{
    static char bufs[8][2048];
    static int k;
    char *b = bufs[k++ & 7];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, rel);
    char parent[2048];
    et_path_dir(b, parent, sizeof parent);
    et_error err = {0};
    cr_assert_eq(et_mkdir_p(parent, &err), 0, "%s", err.msg);
    return b;
}

static void make_parent(const char *path)
{
    char parent[2048];
    et_path_dir(path, parent, sizeof parent);
    et_error err = {0};
    cr_assert_eq(et_mkdir_p(parent, &err), 0, "%s", err.msg);
}

void tu_write(const char *path, const void *data, size_t n)
{
    make_parent(path);
    FILE *f = fopen(path, "wb");
    cr_assert(f, "cannot write %s", path);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

unsigned char *tu_read(const char *path, size_t *n)
{
    unsigned char *data = NULL;
    et_error err = {0};
    cr_assert_eq(et_read_file(path, (size_t)1 << 30, &data, n, &err), 0, "%s", err.msg);
    return data;
}

void tu_copy(const char *from, const char *to)
{
    size_t n = 0;
    unsigned char *d = tu_read(from, &n);
    tu_write(to, d, n);
    free(d);
}

void tu_truncate(const char *path, size_t n)
{
    cr_assert_eq(truncate(path, (off_t)n), 0, "truncate %s", path);
}

size_t tu_file_size(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "stat %s", path);
    return (size_t)st.st_size;
}

unsigned char *tu_pixels(int w, int h, int c, unsigned seed)
{
    unsigned char *px = malloc((size_t)w * h * c);
    cr_assert(px);
    uint32_t s = seed * 2654435761u + 12345u;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++) {
                s = s * 1664525u + 1013904223u;
                /* Smooth gradients plus a little noise: survives JPEG well enough. */
                int v = (x * 255 / (w > 1 ? w - 1 : 1) + y * 97 + k * 60 + (int)(seed * 37)) % 256;
                px[((size_t)y * w + x) * c + k] = (unsigned char)((v + (int)(s >> 29)) & 255);
            }
    return px;
}

static void write_pnm(const char *path, int w, int h, int c, const unsigned char *px)
{
    char header[64];
    int n = snprintf(header, sizeof header, "P%d\n%d %d\n255\n", c == 1 ? 5 : 6, w, h);
    size_t body = (size_t)w * h * c;
    unsigned char *buf = malloc((size_t)n + body);
    memcpy(buf, header, (size_t)n);
    memcpy(buf + n, px, body);
    tu_write(path, buf, (size_t)n + body);
    free(buf);
}

/* A GIF with a 256-entry grey palette and LZW data that never compresses:
 * 9-bit codes with a clear code every 250 pixels keep the code size fixed. */
static void write_gif(const char *path, int w, int h, int c, const unsigned char *px)
{
    size_t cap = 64 + 768 + (size_t)w * h * 2 + 1024;
    unsigned char *b = calloc(1, cap), *p = b;
    memcpy(p, "GIF89a", 6);
    p += 6;
    *p++ = (unsigned char)(w & 255); *p++ = (unsigned char)(w >> 8);
    *p++ = (unsigned char)(h & 255); *p++ = (unsigned char)(h >> 8);
    *p++ = 0xF7; /* global colour table, 256 entries */
    *p++ = 0;
    *p++ = 0;
    for (int i = 0; i < 256; i++) {
        *p++ = (unsigned char)i; *p++ = (unsigned char)i; *p++ = (unsigned char)i;
    }
    *p++ = 0x2C;
    memset(p, 0, 4);
    p += 4;
    *p++ = (unsigned char)(w & 255); *p++ = (unsigned char)(w >> 8);
    *p++ = (unsigned char)(h & 255); *p++ = (unsigned char)(h >> 8);
    *p++ = 0;
    *p++ = 8; /* LZW minimum code size */
    /* Pack codes into a bit stream first. */
    size_t npx = (size_t)w * h;
    unsigned char *bits = calloc(1, npx * 2 + 64);
    size_t bitpos = 0;
#define EMIT(code)                                                                     \
    do {                                                                               \
        for (int bi = 0; bi < 9; bi++, bitpos++)                                       \
            if ((code) >> bi & 1)                                                      \
                bits[bitpos >> 3] |= (unsigned char)(1u << (bitpos & 7));              \
    } while (0)
    EMIT(256);
    for (size_t i = 0; i < npx; i++) {
        if (i && i % 250 == 0)
            EMIT(256);
        unsigned v = px[i * c]; /* grey: the first channel */
        EMIT(v);
    }
    EMIT(257);
#undef EMIT
    size_t nbytes = (bitpos + 7) / 8;
    for (size_t off = 0; off < nbytes; off += 255) {
        size_t chunk = nbytes - off < 255 ? nbytes - off : 255;
        *p++ = (unsigned char)chunk;
        memcpy(p, bits + off, chunk);
        p += chunk;
    }
    *p++ = 0;
    *p++ = 0x3B;
    tu_write(path, b, (size_t)(p - b));
    free(bits);
    free(b);
}

void tu_image(const char *path, const char *format, int w, int h, int c, unsigned seed)
{
    unsigned char *px = tu_pixels(w, h, c, seed);
    make_parent(path);
    int ok = 1;
    if (!strcmp(format, "png"))
        ok = stbi_write_png(path, w, h, c, px, w * c);
    else if (!strcmp(format, "jpg"))
        ok = stbi_write_jpg(path, w, h, c, px, 95);
    else if (!strcmp(format, "bmp"))
        ok = stbi_write_bmp(path, w, h, c, px);
    else if (!strcmp(format, "tga")) {
        stbi_write_tga_with_rle = 0;
        ok = stbi_write_tga(path, w, h, c, px);
    } else if (!strcmp(format, "pgm") || !strcmp(format, "ppm"))
        write_pnm(path, w, h, c, px);
    else if (!strcmp(format, "gif"))
        write_gif(path, w, h, c, px);
    else
        cr_assert_fail("unknown fixture format %s", format);
    cr_assert(ok, "writing %s", path);
    free(px);
}

static void write_maybe_gz(const char *path, const unsigned char *d, size_t n, int gz)
{
    make_parent(path);
    if (!gz) {
        tu_write(path, d, n);
        return;
    }
    gzFile f = gzopen(path, "wb");
    cr_assert(f);
    cr_assert_eq(gzwrite(f, d, (unsigned)n), (int)n);
    gzclose(f);
}

static void be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}

void tu_idx_pair(const char *images_path, const char *labels_path, int n, int h, int w,
                 int classes, unsigned seed, int gz)
{
    size_t isz = 16 + (size_t)n * h * w;
    unsigned char *img = malloc(isz);
    img[0] = img[1] = 0; img[2] = 8; img[3] = 3;
    be32(img + 4, (uint32_t)n); be32(img + 8, (uint32_t)h); be32(img + 12, (uint32_t)w);
    for (int i = 0; i < n; i++) {
        unsigned char *px = tu_pixels(w, h, 1, seed + (unsigned)i);
        memcpy(img + 16 + (size_t)i * h * w, px, (size_t)h * w);
        free(px);
    }
    write_maybe_gz(images_path, img, isz, gz);
    free(img);
    if (!labels_path)
        return;
    unsigned char *lab = malloc(8 + (size_t)n);
    lab[0] = lab[1] = 0; lab[2] = 8; lab[3] = 1;
    be32(lab + 4, (uint32_t)n);
    for (int i = 0; i < n; i++)
        lab[8 + i] = (unsigned char)(i % classes);
    write_maybe_gz(labels_path, lab, 8 + (size_t)n, gz);
    free(lab);
}

static char *slurp_fd(int fd)
{
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    for (;;) {
        if (n + 1 >= cap)
            b = realloc(b, cap *= 2);
        ssize_t r = read(fd, b + n, cap - n - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    b[n] = 0;
    return b;
}

int tu_run(char **out, char **err, const char *arg, ...)
{
    const char *cli = getenv("ET_CLI");
    cr_assert(cli && *cli, "ET_CLI is not set (run the tests through ctest)");
    const char *argv[64] = {cli};
    int argc = 1;
    va_list ap;
    va_start(ap, arg);
    for (const char *a = arg; a && argc < 63; a = va_arg(ap, const char *))
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    char outpath[] = "/tmp/et-out-XXXXXX", errpath[] = "/tmp/et-err-XXXXXX";
    int ofd = mkstemp(outpath), efd = mkstemp(errpath);
    cr_assert(ofd >= 0 && efd >= 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(ofd, 1);
        dup2(efd, 2);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        execv(cli, (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    lseek(ofd, 0, SEEK_SET);
    lseek(efd, 0, SEEK_SET);
    if (out)
        *out = slurp_fd(ofd);
    if (err)
        *err = slurp_fd(efd);
    close(ofd);
    close(efd);
    unlink(outpath);
    unlink(errpath);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

et_project *tu_open(const char *dir)
{
    et_project *p = NULL;
    et_error err = {0};
    cr_assert_eq(et_project_open(dir, &p, &err), 0, "%s", err.msg);
    return p;
}

static int count_one(void *ctx, const et_sample *s)
{
    (void)s;
    (*(long *)ctx)++;
    return 0;
}

long tu_count(et_project *p, const char *label, et_category cat)
{
    long n = 0;
    et_sample_filter f = {.label = label, .category = cat};
    et_error err = {0};
    cr_assert_eq(et_samples_each(p, &f, count_one, &n, &err), 0, "%s", err.msg);
    return n;
}

static sqlite3 *open_db(const char *proj)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/edgetrain.db", proj);
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK, "%s", path);
    return db;
}

long tu_db_int(const char *proj, const char *sql)
{
    sqlite3 *db = open_db(proj);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", sql);
    long v = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

void tu_db_exec(const char *proj, const char *sql)
{
    sqlite3 *db = open_db(proj);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
}
