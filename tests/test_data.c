/* data: image decoding (every format, truncation, limits) and IDX files. */
#include "testutil.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdlib.h>
#include <string.h>

static et_status decode_file(const char *path, et_image *img, const char **format,
                             const char **kind, et_error *err)
{
    size_t n = 0;
    unsigned char *bytes = tu_read(path, &n);
    et_status rc = et_image_decode(bytes, n, path, img, format, kind, err);
    free(bytes);
    return rc;
}

typedef struct fmt_case {
    char ext[8];
    char format[8];
    int channels;
    int lossless;
} fmt_case;

ParameterizedTestParameters(decode, every_format_round_trips)
{
    static fmt_case cases[] = {
        {"png", "png", 1, 1}, {"png", "png", 3, 1}, {"png", "png", 4, 1},
        {"bmp", "bmp", 3, 1}, {"tga", "tga", 3, 1}, {"pgm", "pnm", 1, 1},
        {"ppm", "pnm", 3, 1}, {"gif", "gif", 1, 1}, {"jpg", "jpeg", 3, 0},
        {"jpg", "jpeg", 1, 0},
    };
    return cr_make_param_array(fmt_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(fmt_case *c, decode, every_format_round_trips)
{
    const char *path = tu_path(tu_tmpdir(), "img.x");
    char named[2100];
    snprintf(named, sizeof named, "%s.%s", path, c->ext);
    tu_image(named, c->ext, 37, 23, c->channels, 5);
    et_image img;
    const char *format = NULL, *kind = NULL;
    et_error err = {0};
    cr_assert_eq(decode_file(named, &img, &format, &kind, &err), 0, "%s", err.msg);
    cr_assert_str_eq(format, c->format);
    cr_assert_eq(img.width, 37);
    cr_assert_eq(img.height, 23);
    /* GIF is palette-based (stb_image returns RGBA), and stb_image_write
     * always writes 3-component JPEGs. */
    if (strcmp(c->ext, "gif") != 0 && strcmp(c->ext, "jpg") != 0)
        cr_assert_eq(img.channels, c->channels, "%s with %d channels came back with %d",
                     c->ext, c->channels, img.channels);
    if (c->lossless) {
        unsigned char *want = tu_pixels(37, 23, c->channels, 5);
        for (int i = 0; i < 37 * 23; i++)
            cr_assert_eq(img.pixels[(size_t)i * img.channels], want[(size_t)i * c->channels],
                         "pixel %d", i);
        free(want);
    }
    et_image_free(&img);
}

ParameterizedTestParameters(decode, truncated_files_are_refused)
{
    static fmt_case cases[] = {
        {"png", "png", 3, 1}, {"bmp", "bmp", 3, 1}, {"tga", "tga", 3, 1}, {"ppm", "pnm", 3, 1},
        {"gif", "gif", 1, 1}, {"jpg", "jpeg", 3, 0},
    };
    return cr_make_param_array(fmt_case, cases, sizeof cases / sizeof cases[0]);
}

/* stb_image alone decodes several of these cut files "successfully", filling
 * the missing part with zeros; edgetrain must name them instead. */
ParameterizedTest(fmt_case *c, decode, truncated_files_are_refused)
{
    const char *dir = tu_tmpdir();
    char path[2100];
    snprintf(path, sizeof path, "%s/img.%s", dir, c->ext);
    tu_image(path, c->ext, 40, 30, c->channels, 9);
    size_t full = 0;
    unsigned char *bytes = tu_read(path, &full);
    size_t cuts[] = {full - 1, full - 2, full * 3 / 4, full / 2, 40, 10, 3};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        et_image img;
        const char *format = NULL, *kind = NULL;
        et_error err = {0};
        et_status rc = et_image_decode(bytes, cuts[k], path, &img, &format, &kind, &err);
        cr_assert_eq(rc, ET_EINVAL, "%s cut to %zu of %zu bytes decoded", c->ext, cuts[k], full);
        cr_assert(kind && (!strcmp(kind, "truncated") || !strcmp(kind, "undecodable") ||
                           !strcmp(kind, "unsupported")),
                  "kind %s", kind ? kind : "(null)");
        cr_assert(strstr(err.msg, "img."), "the message names the file: %s", err.msg);
    }
    free(bytes);
}

Test(decode, jpeg_cut_after_headers_is_truncated)
{
    const char *dir = tu_tmpdir();
    const char *path = tu_path(dir, "a.jpg");
    tu_image(path, "jpg", 64, 64, 3, 3);
    size_t n = 0;
    unsigned char *bytes = tu_read(path, &n);
    et_image img;
    const char *format = NULL, *kind = NULL;
    et_error err = {0};
    cr_assert_eq(et_image_decode(bytes, n * 2 / 3, "a.jpg", &img, &format, &kind, &err), ET_EINVAL);
    cr_assert_str_eq(kind, "truncated");
    cr_assert(strstr(err.msg, "truncated jpeg"), "%s", err.msg);
    free(bytes);
}

Test(decode, empty_unsupported_and_huge)
{
    et_image img;
    const char *format = NULL, *kind = NULL;
    et_error err = {0};
    cr_assert_eq(et_image_decode((const uint8_t *)"", 0, "z.png", &img, &format, &kind, &err),
                 ET_EINVAL);
    cr_assert_str_eq(kind, "empty");
    const char *text = "hello, this is a text file\n";
    cr_assert_eq(et_image_decode((const uint8_t *)text, strlen(text), "notes.txt", &img, &format,
                                 &kind, &err),
                 ET_EINVAL);
    cr_assert_str_eq(kind, "unsupported");
    cr_assert(strstr(err.msg, "notes.txt"), "%s", err.msg);
    const uint8_t webp[] = "RIFF\x10\0\0\0WEBPVP8 ....";
    cr_assert_eq(et_image_decode(webp, sizeof webp, "x.webp", &img, &format, &kind, &err),
                 ET_EINVAL);
    cr_assert(strstr(err.msg, "WebP"), "%s", err.msg);
    /* A PNM header that claims 100000 x 100000 pixels. */
    const char *huge = "P5\n100000 100000\n255\n\x01\x02\x03";
    cr_assert_eq(et_image_decode((const uint8_t *)huge, strlen(huge) + 3, "big.pgm", &img, &format,
                                 &kind, &err),
                 ET_EINVAL);
    cr_assert_str_eq(kind, "too-large");
}

Test(decode, image_hash_depends_on_pixels_and_shape)
{
    unsigned char px[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    et_image a = {.width = 2, .height = 2, .channels = 3, .pixels = px};
    et_image b = {.width = 4, .height = 1, .channels = 3, .pixels = px};
    char ha[65], hb[65], ha2[65];
    et_image_hash(&a, ha);
    et_image_hash(&b, hb);
    et_image_hash(&a, ha2);
    cr_assert_str_eq(ha, ha2);
    cr_assert_str_neq(ha, hb, "same bytes, other shape: another image");
    px[5] ^= 1;
    et_image_hash(&a, ha2);
    cr_assert_str_neq(ha, ha2);
}

Test(idx, reads_plain_and_gzip)
{
    const char *dir = tu_tmpdir();
    for (int gz = 0; gz <= 1; gz++) {
        const char *ip = tu_path(dir, gz ? "a-images-idx3-ubyte.gz" : "a-images-idx3-ubyte");
        const char *lp = tu_path(dir, gz ? "a-labels-idx1-ubyte.gz" : "a-labels-idx1-ubyte");
        tu_idx_pair(ip, lp, 7, 5, 4, 3, 11, gz);
        et_idx idx;
        et_error err = {0};
        cr_assert_eq(et_idx_read(ip, &idx, &err), 0, "%s", err.msg);
        cr_assert_eq(idx.ndim, 3);
        cr_assert_eq(idx.dims[0], 7);
        cr_assert_eq(idx.dims[1], 5);
        cr_assert_eq(idx.dims[2], 4);
        cr_assert_eq(idx.bytes, 7 * 5 * 4);
        unsigned char *want = tu_pixels(4, 5, 1, 11 + 6);
        cr_assert_arr_eq(idx.data + 6 * 20, want, 20);
        free(want);
        et_idx_free(&idx);
        cr_assert_eq(et_idx_read(lp, &idx, &err), 0, "%s", err.msg);
        cr_assert_eq(idx.ndim, 1);
        cr_assert_eq(idx.data[4], 4 % 3);
        et_idx_free(&idx);
    }
}

Test(idx, bad_files_say_what_is_wrong)
{
    const char *dir = tu_tmpdir();
    const char *ip = tu_path(dir, "b-images-idx3-ubyte");
    tu_idx_pair(ip, NULL, 4, 3, 3, 2, 1, 0);
    tu_truncate(ip, tu_file_size(ip) - 5);
    et_idx idx;
    et_error err = {0};
    cr_assert_eq(et_idx_read(ip, &idx, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "truncated IDX"), "%s", err.msg);

    unsigned char floats[] = {0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0};
    const char *fp = tu_path(dir, "f-idx1-ubyte");
    tu_write(fp, floats, sizeof floats);
    cr_assert_eq(et_idx_read(fp, &idx, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "float32"), "%s", err.msg);

    const char *np = tu_path(dir, "n-idx1-ubyte");
    tu_write(np, "PK\x03\x04zipfile", 11);
    cr_assert_eq(et_idx_read(np, &idx, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "not an IDX file"), "%s", err.msg);

    /* A gzip stream cut in the middle. */
    const char *gp = tu_path(dir, "g-images-idx3-ubyte.gz");
    tu_idx_pair(gp, NULL, 50, 10, 10, 2, 1, 1);
    tu_truncate(gp, tu_file_size(gp) / 2);
    cr_assert_eq(et_idx_read(gp, &idx, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "g-images"), "%s", err.msg);

    /* Trailing bytes after the data. */
    const char *tp = tu_path(dir, "t-images-idx3-ubyte");
    tu_idx_pair(tp, NULL, 2, 2, 2, 2, 1, 0);
    size_t n = 0;
    unsigned char *d = tu_read(tp, &n);
    unsigned char *longer = calloc(1, n + 3);
    memcpy(longer, d, n);
    tu_write(tp, longer, n + 3);
    free(d);
    free(longer);
    cr_assert_eq(et_idx_read(tp, &idx, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "trailing"), "%s", err.msg);
}
