/* Image decoding through stb_image, with the checks stb_image leaves out:
 * it fills truncated JPEG, BMP and GIF data with zeros instead of failing,
 * so the end of each format is verified here before decoding. */
#include "edgetrain/data.h"

#include "core/fsutil.h"

#include <stb_image.h>
#include <stb_image_write.h>
#include <stdlib.h>
#include <string.h>

void et_image_free(et_image *img)
{
    if (!img)
        return;
    stbi_image_free(img->pixels);
    img->pixels = NULL;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* Names the format from its signature; NULL when it is none we decode. For
 * some formats we do not decode, *other names it for the message. */
static const char *sniff(const uint8_t *b, size_t n, const char *name, const char **other)
{
    *other = NULL;
    if (n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8))
        return "png";
    if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF)
        return "jpeg";
    if (n >= 6 && (!memcmp(b, "GIF87a", 6) || !memcmp(b, "GIF89a", 6)))
        return "gif";
    if (n >= 2 && b[0] == 'B' && b[1] == 'M')
        return "bmp";
    if (n >= 2 && b[0] == 'P' && (b[1] == '5' || b[1] == '6'))
        return "pnm";
    if (n >= 2 && b[0] == 'P' && b[1] >= '1' && b[1] <= '4') {
        *other = "plain-text or 1-bit PNM (P1-P4; only binary P5/P6 are read)";
        return NULL;
    }
    if (n >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4))
        *other = "WebP";
    else if (n >= 12 && !memcmp(b + 4, "ftyp", 4))
        *other = "HEIF/AVIF/MP4";
    else if (n >= 4 && (!memcmp(b, "II*\0", 4) || !memcmp(b, "MM\0*", 4)))
        *other = "TIFF";
    else if (n >= 4 && !memcmp(b, "%PDF", 4))
        *other = "PDF";
    else if (n >= 2 && b[0] == 0x1F && b[1] == 0x8B)
        *other = "gzip data";
    if (*other)
        return NULL;
    /* TGA has no signature: trust the extension, then the header checks. */
    char ext[8];
    et_path_ext(name, ext, sizeof ext);
    if (!strcmp(ext, "tga") || !strcmp(ext, "tpic") || !strcmp(ext, "icb") ||
        !strcmp(ext, "vda") || !strcmp(ext, "vst"))
        return "tga";
    return NULL;
}

/* Offset just past the JPEG scan header (SOS), walking the marker segments;
 * 0 when the headers themselves are cut short. */
static size_t jpeg_scan_start(const uint8_t *b, size_t n)
{
    size_t i = 2;
    while (i + 4 <= n) {
        if (b[i] != 0xFF)
            return 0;
        uint8_t m = b[i + 1];
        if (m == 0xFF) { /* fill byte */
            i++;
            continue;
        }
        if (m == 0xD8 || (m >= 0xD0 && m <= 0xD7) || m == 0x01) {
            i += 2;
            continue;
        }
        size_t len = (size_t)b[i + 2] << 8 | b[i + 3];
        if (len < 2 || i + 2 + len > n)
            return 0;
        if (m == 0xDA)
            return i + 2 + len;
        i += 2 + len;
    }
    return 0;
}

/* Skips PNM white space and comments from *i; false at the end. */
static bool pnm_skip(const uint8_t *b, size_t n, size_t *i)
{
    while (*i < n) {
        if (b[*i] == '#') {
            while (*i < n && b[*i] != '\n')
                (*i)++;
        } else if (b[*i] == ' ' || b[*i] == '\t' || b[*i] == '\n' || b[*i] == '\r') {
            (*i)++;
        } else {
            return true;
        }
    }
    return false;
}

static bool pnm_number(const uint8_t *b, size_t n, size_t *i, uint64_t *v)
{
    if (!pnm_skip(b, n, i) || b[*i] < '0' || b[*i] > '9')
        return false;
    for (*v = 0; *i < n && b[*i] >= '0' && b[*i] <= '9' && *v < (1u << 30); (*i)++)
        *v = *v * 10 + (uint64_t)(b[*i] - '0');
    return true;
}

/* P5/P6: header "P5 width height maxval" then one white-space byte, then the
 * pixels, 1 or 2 bytes per sample. stb_image accepts short pixel data. */
static bool pnm_complete(const uint8_t *b, size_t n, int w, int h)
{
    size_t i = 2;
    uint64_t width, height, maxval;
    if (!pnm_number(b, n, &i, &width) || !pnm_number(b, n, &i, &height) ||
        !pnm_number(b, n, &i, &maxval) || i >= n)
        return false;
    i++; /* the single white-space byte before the pixels */
    uint64_t samples = (uint64_t)w * (uint64_t)h * (b[1] == '6' ? 3 : 1);
    return i + samples * (maxval > 255 ? 2 : 1) <= n;
}

/* True when the file holds its whole image data as far as the format tells. */
static bool complete(const char *format, const uint8_t *b, size_t n, int w, int h)
{
    if (!strcmp(format, "jpeg")) {
        size_t s = jpeg_scan_start(b, n);
        if (s == 0)
            return false;
        /* In entropy-coded data 0xFF is always followed by 0x00 or RSTn, so the
         * first FF D9 after the scan header is the end-of-image marker. */
        for (size_t i = s; i + 1 < n; i++)
            if (b[i] == 0xFF && b[i + 1] == 0xD9)
                return true;
        return false;
    }
    if (!strcmp(format, "png")) {
        /* The IEND chunk: its type and the 4-byte CRC after it. */
        for (size_t i = n >= 64 ? n - 64 : 8; i + 8 <= n; i++)
            if (!memcmp(b + i, "IEND", 4))
                return true;
        return false;
    }
    if (!strcmp(format, "pnm"))
        return pnm_complete(b, n, w, h);
    if (!strcmp(format, "gif")) {
        size_t end = n;
        while (end > 0 && b[end - 1] == 0) /* some writers pad */
            end--;
        return end > 0 && b[end - 1] == 0x3B;
    }
    if (!strcmp(format, "bmp")) {
        if (n < 34)
            return false;
        uint32_t off = le32(b + 10);
        uint16_t bpp = le16(b + 28);
        uint32_t compression = le32(b + 30);
        if (compression != 0 && compression != 3 && compression != 6)
            return true; /* RLE: stb_image checks as it decodes */
        uint64_t row = ((uint64_t)bpp * (uint64_t)w + 31) / 32 * 4;
        return (uint64_t)off + row * (uint64_t)h <= n;
    }
    if (!strcmp(format, "tga")) {
        if (n < 18)
            return false;
        int type = b[2] & 7; /* 1 colour-mapped, 2 true-colour, 3 grey; bit 3 = RLE */
        if (b[2] & 8)
            return true;
        uint64_t cmap = b[1] ? (uint64_t)le16(b + 5) * ((b[7] + 7) / 8) : 0;
        uint64_t bpp = (uint64_t)(b[16] + 7) / 8;
        (void)type;
        return 18 + (uint64_t)b[0] + cmap + (uint64_t)w * (uint64_t)h * bpp <= n;
    }
    return true;
}

et_status et_image_decode(const uint8_t *bytes, size_t n, const char *name, et_image *out,
                          const char **format, const char **kind, et_error *err)
{
    memset(out, 0, sizeof *out);
    *format = NULL;
    *kind = NULL;
    if (n == 0) {
        *kind = "empty";
        return et_error_set(err, ET_EINVAL, "%s: empty file (0 bytes)", name);
    }
    const char *other = NULL;
    const char *fmt = sniff(bytes, n, name, &other);
    if (!fmt) {
        *kind = "unsupported";
        if (other)
            return et_error_set(err, ET_EINVAL,
                                "%s: %s is not supported (use PNG, JPEG, BMP, GIF, TGA or PNM)",
                                name, other);
        return et_error_set(err, ET_EINVAL,
                            "%s: not an image edgetrain reads (PNG, JPEG, BMP, GIF, TGA, PNM)",
                            name);
    }
    if (n > (size_t)INT32_MAX) {
        *kind = "too-large";
        return et_error_set(err, ET_EINVAL, "%s: file too large (%zu bytes)", name, n);
    }
    int w = 0, h = 0, c = 0;
    if (!stbi_info_from_memory(bytes, (int)n, &w, &h, &c)) {
        *kind = n < 64 ? "truncated" : "undecodable";
        return et_error_set(err, ET_EINVAL, "%s: bad %s header (%s)", name, fmt,
                            stbi_failure_reason() ? stbi_failure_reason() : "unknown");
    }
    if (w <= 0 || h <= 0) {
        *kind = "undecodable";
        return et_error_set(err, ET_EINVAL, "%s: %s header gives a %dx%d image", name, fmt, w, h);
    }
    if (w > ET_IMAGE_MAX_SIDE || h > ET_IMAGE_MAX_SIDE ||
        (uint64_t)w * (uint64_t)h > ET_IMAGE_MAX_PIXELS) {
        *kind = "too-large";
        return et_error_set(err, ET_EINVAL, "%s: %dx%d pixels; at most %dx%d and %u pixels allowed",
                            name, w, h, ET_IMAGE_MAX_SIDE, ET_IMAGE_MAX_SIDE,
                            ET_IMAGE_MAX_PIXELS);
    }
    if (!complete(fmt, bytes, n, w, h)) {
        *kind = "truncated";
        return et_error_set(err, ET_EINVAL, "%s: truncated %s (the image data ends early)", name,
                            fmt);
    }
    uint8_t *px = stbi_load_from_memory(bytes, (int)n, &w, &h, &c, 0);
    if (!px) {
        const char *why = stbi_failure_reason() ? stbi_failure_reason() : "unknown";
        bool cut = strstr(why, "truncated") || strstr(why, "outofdata") || strstr(why, "EOF") ||
                   strstr(why, "no more") || strstr(why, "short");
        *kind = cut ? "truncated" : "undecodable";
        return et_error_set(err, ET_EINVAL, "%s: cannot decode %s (%s)", name, fmt, why);
    }
    out->width = w;
    out->height = h;
    out->channels = c;
    out->pixels = px;
    *format = fmt;
    return ET_OK;
}

void et_image_hash(const et_image *img, char out[65])
{
    et_sha256 h;
    if (et_sha256_begin(&h) < 0) {
        memset(out, '0', 64);
        out[64] = '\0';
        return;
    }
    /* The sizes as little-endian uint32, so the hash is the same on every machine. */
    uint8_t dims[12];
    const uint32_t v[3] = {(uint32_t)img->width, (uint32_t)img->height, (uint32_t)img->channels};
    for (int i = 0; i < 3; i++)
        for (int b = 0; b < 4; b++)
            dims[4 * i + b] = (uint8_t)(v[i] >> (8 * b));
    et_sha256_add(&h, "edgetrain-image-v1", 18);
    et_sha256_add(&h, dims, sizeof dims);
    et_sha256_add(&h, img->pixels,
                  (size_t)img->width * (size_t)img->height * (size_t)img->channels);
    et_sha256_end(&h, out);
}

typedef struct png_buf {
    unsigned char *data;
    size_t n, cap;
    bool failed;
} png_buf;

static void png_append(void *ctx, void *data, int size)
{
    png_buf *b = ctx;
    if (b->failed || size <= 0)
        return;
    if (b->n + (size_t)size > b->cap) {
        size_t cap = (b->n + (size_t)size) * 2;
        unsigned char *grown = realloc(b->data, cap);
        if (!grown) {
            b->failed = true;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->n, data, (size_t)size);
    b->n += (size_t)size;
}

et_status et_image_write_png(const char *path, const et_image *img, et_error *err)
{
    png_buf b = {0};
    if (!stbi_write_png_to_func(png_append, &b, img->width, img->height, img->channels,
                                img->pixels, img->width * img->channels) ||
        b.failed) {
        free(b.data);
        return et_error_set(err, ET_ENOMEM, "%s: cannot encode a %dx%dx%d PNG", path, img->width,
                            img->height, img->channels);
    }
    et_status rc = et_write_file_atomic(path, b.data, b.n, err);
    free(b.data);
    return rc;
}
