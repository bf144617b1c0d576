/* Writing a 2-D map of the samples: SVG (hover shows the sample), PNG, CSV.
 *
 * Each writer builds the whole file in memory and hands it to
 * et_write_file_atomic, so a crash or a full disk never leaves half a file.
 * Numbers are formatted without depending on the C locale's decimal point.
 */
#include "edgetrain/explore.h"

#include "core/fsutil.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image_write.h>
/* stb_easy_font is all static functions (not all used here) written for C89. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-braces"
#include <stb_easy_font.h>
#pragma GCC diagnostic pop

#define N_COLORS 12

/* Tableau 10 without its grey, then navy, ochre and grey: qualitative, and
 * distinct from the light grey used for unlabelled points. */
static const uint8_t palette[N_COLORS][3] = {
    {0x1f, 0x77, 0xb4}, {0xff, 0x7f, 0x0e}, {0x2c, 0xa0, 0x2c}, {0xd6, 0x27, 0x28},
    {0x94, 0x67, 0xbd}, {0x8c, 0x56, 0x4b}, {0xe3, 0x77, 0xc2}, {0x17, 0xbe, 0xcf},
    {0xbc, 0xbd, 0x22}, {0x39, 0x3b, 0x79}, {0x8c, 0x6d, 0x31}, {0x7f, 0x7f, 0x7f}};
static const uint8_t unlabelled_color[3] = {0xc8, 0xc8, 0xc8};
static const char unlabelled_name[] = "(unlabelled)";

/* ------------------------------------------------------------------------
 * A growing byte buffer; an allocation failure is remembered and reported once.
 */
typedef struct buf {
    char *data;
    size_t len, cap;
    bool oom;
} buf;

static void buf_add(buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown) {
            b->oom = true;
            return;
        }
        b->data = grown, b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

static void buf_str(buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (len > 0)
        buf_add(b, tmp, (size_t)len < sizeof tmp ? (size_t)len : sizeof tmp - 1);
}

/* v with one decimal, independent of the locale. */
static void buf_num1(buf *b, double v)
{
    long t = lround(v * 10);
    buf_printf(b, "%s%ld.%ld", t < 0 ? "-" : "", labs(t) / 10, labs(t) % 10);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s)
{
    size_t len = s[0] < 0x80                   ? 1
                 : s[0] >= 0xc2 && s[0] < 0xe0 ? 2
                 : s[0] >= 0xe0 && s[0] < 0xf0 ? 3
                 : s[0] >= 0xf0 && s[0] < 0xf5 ? 4
                                               : 0;
    for (size_t m = 1; m < len; m++)
        if ((s[m] & 0xc0) != 0x80)
            return 0;
    /* Overlong 3- and 4-byte forms, surrogates and code points past U+10FFFF. */
    if ((len == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (len == 3 && s[0] == 0xed && s[1] >= 0xa0) ||
        (len == 4 && s[0] == 0xf0 && s[1] < 0x90) || (len == 4 && s[0] == 0xf4 && s[1] >= 0x90))
        return 0;
    return len;
}

/* Text as XML character data or attribute value: & < > " ' escaped, control
 * characters XML forbids and invalid UTF-8 replaced by U+FFFD. */
static void buf_xml(buf *b, const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    while (*s) {
        size_t len = utf8_len(s);
        if (len == 0 || (*s < 0x20 && *s != '\t' && *s != '\n' && *s != '\r')) {
            buf_str(b, "\xef\xbf\xbd");
            s++;
            continue;
        }
        switch (*s) {
        case '&': buf_str(b, "&amp;"); break;
        case '<': buf_str(b, "&lt;"); break;
        case '>': buf_str(b, "&gt;"); break;
        case '"': buf_str(b, "&quot;"); break;
        case '\'': buf_str(b, "&apos;"); break;
        default: buf_add(b, (const char *)s, len);
        }
        s += len;
    }
}

/* A CSV field, quoted (RFC 4180) when it holds a comma, quote, CR or LF. */
static void buf_csv(buf *b, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        buf_str(b, s);
        return;
    }
    buf_str(b, "\"");
    for (const char *p = s; *p; p++)
        buf_add(b, *p == '"' ? "\"\"" : p, *p == '"' ? 2 : 1);
    buf_str(b, "\"");
}

/* The shortest %g form of a float that reads back as the same float, with a '.'. */
static void buf_float(buf *b, float v)
{
    char tmp[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, (double)v);
        if (strtof(tmp, NULL) == v)
            break;
    }
    for (char *p = tmp; *p; p++)
        if (*p == ',')
            *p = '.';
    buf_str(b, tmp);
}

/* ------------------------------------------------------------------------
 * What every format needs: checked input, counts per label, the drawing order
 * and the mapping from map coordinates to the page.
 */
typedef struct map {
    const et_map_point *pts;
    size_t n, n_labels;
    const char *const *names;
    size_t *count; /* n_labels + 1: the last counts unlabelled points */
    size_t *order; /* n point indices in drawing order */
    double cx, cy; /* centre of the points' bounding box */
    double range;  /* its larger side (> 0) */
    char num[32];  /* scratch for a label shown as its number */
} map;

typedef struct keyed {
    uint64_t key;
    size_t i;
} keyed;

static int keyed_cmp(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    return x->key != y->key ? (x->key > y->key) - (x->key < y->key) : (x->i > y->i) - (x->i < y->i);
}

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void map_free(map *m)
{
    free(m->count);
    free(m->order);
}

static et_status map_init(map *m, const char *path, const et_map_point *pts, size_t n,
                          const char *const *names, size_t n_labels, bool need_order, et_error *err)
{
    memset(m, 0, sizeof *m);
    m->pts = pts, m->n = n, m->n_labels = n_labels, m->names = names;
    if (!path || (!pts && n > 0))
        return et_error_set(err, ET_EINVAL, "map: no file name or no points given");
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        const et_map_point *p = &pts[i];
        if (!isfinite(p->x) || !isfinite(p->y))
            return et_error_set(err, ET_EINVAL,
                                "map: point %zu (sample id %lld) has a non-finite "
                                "coordinate; recompute the map",
                                i, (long long)p->id);
        if (p->label >= 0 && (size_t)p->label >= n_labels)
            return et_error_set(err, ET_EINVAL,
                                "map: point %zu (sample id %lld) has label %d but "
                                "only %zu label names were given",
                                i, (long long)p->id, p->label, n_labels);
        xmin = fmin(xmin, p->x), xmax = fmax(xmax, p->x);
        ymin = fmin(ymin, p->y), ymax = fmax(ymax, p->y);
    }
    m->cx = n ? (xmin + xmax) / 2 : 0, m->cy = n ? (ymin + ymax) / 2 : 0;
    m->range = n ? fmax(xmax - xmin, ymax - ymin) : 0;
    if (!(m->range > 0))
        m->range = 1;
    m->count = calloc(n_labels + 1, sizeof *m->count);
    m->order = need_order ? malloc((n ? n : 1) * sizeof *m->order) : NULL;
    keyed *k = need_order ? malloc((n ? n : 1) * sizeof *k) : NULL;
    if (!m->count || (need_order && (!m->order || !k))) {
        free(k);
        map_free(m);
        return et_error_set(err, ET_ENOMEM, "map: out of memory for %zu points", n);
    }
    for (size_t i = 0; i < n; i++)
        m->count[pts[i].label < 0 ? n_labels : (size_t)pts[i].label]++;
    if (need_order) {
        /* A fixed shuffle: no class is always drawn on top of another. */
        for (size_t i = 0; i < n; i++)
            k[i] = (keyed){mix(i + 0x9e3779b97f4a7c15ULL), i};
        qsort(k, n, sizeof *k, keyed_cmp);
        for (size_t i = 0; i < n; i++)
            m->order[i] = k[i].i;
        free(k);
    }
    return ET_OK;
}

static const char *label_name(map *m, int label)
{
    if (label < 0)
        return unlabelled_name;
    if (m->names && m->names[label])
        return m->names[label];
    snprintf(m->num, sizeof m->num, "%d", label);
    return m->num;
}

static const uint8_t *label_color(int label)
{
    return label < 0 ? unlabelled_color : palette[label % N_COLORS];
}

/* Legend rows: every label, then "(unlabelled)" when some point has none. */
static size_t legend_rows(const map *m)
{
    return m->n_labels + (m->count[m->n_labels] > 0);
}

static int legend_label(const map *m, size_t row)
{
    return row < m->n_labels ? (int)row : -1;
}

static size_t legend_count(const map *m, size_t row)
{
    return m->count[row < m->n_labels ? row : m->n_labels];
}

static et_status finish(buf *b, const char *path, const char *what, et_error *err)
{
    et_status rc = b->oom ? et_error_set(err, ET_ENOMEM, "%s: out of memory for the %s", path, what)
                          : et_write_file_atomic(path, b->data, b->len, err);
    free(b->data);
    return rc;
}

/* ------------------------------------------------------------------------
 * SVG.
 */
#define SVG_PLOT 760 /* side of the square plot area */
#define SVG_MARGIN 20
#define SVG_LEGEND 240 /* width of the legend column */
#define SVG_ROW 20     /* legend row height */

et_status et_map_write_svg(const char *path, const et_map_point *pts, size_t n,
                           const char *const *label_names, size_t n_labels, const char *title,
                           et_error *err)
{
    map m;
    et_status rc = map_init(&m, path, pts, n, label_names, n_labels, true, err);
    if (rc < 0)
        return rc;
    int top = title ? 40 : 0;
    size_t rows = legend_rows(&m);
    int width = SVG_MARGIN * 3 + SVG_PLOT + SVG_LEGEND;
    double legend_h = (double)SVG_MARGIN * 2 + (double)rows * SVG_ROW;
    double height = fmax(top + SVG_PLOT + 2 * SVG_MARGIN, top + legend_h);
    double scale = SVG_PLOT / m.range * 0.98;
    double r = n > 20000 ? 1.5 : n > 2000 ? 2.5 : 3.5;

    buf b = {0};
    buf_str(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    buf_printf(&b,
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%.0f\" "
               "viewBox=\"0 0 %d %.0f\" font-family=\"sans-serif\">\n",
               width, height, width, height);
    if (title) {
        buf_str(&b, "<title>");
        buf_xml(&b, title);
        buf_str(&b, "</title>\n");
    }
    /* One class per colour keeps the file small: a dot is only its position and class. */
    buf_str(&b, "<style>\n");
    for (int c = 0; c < N_COLORS; c++)
        buf_printf(&b, ".c%d{fill:#%02x%02x%02x}\n", c, palette[c][0], palette[c][1],
                   palette[c][2]);
    buf_printf(&b, ".cu{fill:#%02x%02x%02x}\n", unlabelled_color[0], unlabelled_color[1],
               unlabelled_color[2]);
    buf_str(&b, "</style>\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    if (title) {
        buf_printf(&b, "<text x=\"%d\" y=\"28\" font-size=\"20\">", SVG_MARGIN);
        buf_xml(&b, title);
        buf_str(&b, "</text>\n");
    }
    buf_str(&b, "<g fill-opacity=\"0.8\">\n");
    double ox = SVG_MARGIN + SVG_PLOT / 2.0, oy = top + SVG_MARGIN + SVG_PLOT / 2.0;
    for (size_t o = 0; o < n && !b.oom; o++) {
        const et_map_point *p = &pts[m.order[o]];
        buf_str(&b, "<circle cx=\"");
        buf_num1(&b, ox + (p->x - m.cx) * scale);
        buf_str(&b, "\" cy=\"");
        buf_num1(&b, oy - (p->y - m.cy) * scale); /* y grows upwards on the map */
        buf_str(&b, "\" r=\"");
        buf_num1(&b, r);
        if (p->label < 0)
            buf_str(&b, "\" class=\"cu\"><title>");
        else
            buf_printf(&b, "\" class=\"c%d\"><title>", p->label % N_COLORS);
        buf_printf(&b, "id %lld \xc2\xb7 ", (long long)p->id);
        buf_xml(&b, label_name(&m, p->label));
        if (p->source) {
            buf_str(&b, " \xc2\xb7 ");
            buf_xml(&b, p->source);
        }
        buf_str(&b, "</title></circle>\n");
    }
    buf_str(&b, "</g>\n<g font-size=\"13\">\n");
    int lx = SVG_MARGIN * 2 + SVG_PLOT;
    for (size_t row = 0; row < rows; row++) {
        int label = legend_label(&m, row);
        double y = top + SVG_MARGIN + (double)row * SVG_ROW;
        buf_printf(&b, "<rect x=\"%d\" y=\"%.0f\" width=\"12\" height=\"12\" class=\"", lx, y);
        if (label < 0)
            buf_str(&b, "cu");
        else
            buf_printf(&b, "c%d", label % N_COLORS);
        buf_printf(&b, "\"/><text x=\"%d\" y=\"%.0f\">", lx + 18, y + 11);
        buf_xml(&b, label_name(&m, label));
        buf_printf(&b, " (%zu)</text>\n", legend_count(&m, row));
    }
    buf_str(&b, "</g>\n</svg>\n");
    map_free(&m);
    return finish(&b, path, "SVG", err);
}

/* ------------------------------------------------------------------------
 * PNG.
 */
static void png_sink(void *ctx, void *data, int size)
{
    buf_add(ctx, data, (size_t)size);
}

typedef struct canvas {
    uint8_t *px; /* w x h RGB */
    int w, h;
} canvas;

static void fill_rect(canvas *c, int x0, int y0, int x1, int y1, const uint8_t rgb[3])
{
    x0 = x0 < 0 ? 0 : x0, y0 = y0 < 0 ? 0 : y0;
    x1 = x1 > c->w ? c->w : x1, y1 = y1 > c->h ? c->h : y1;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            memcpy(c->px + ((size_t)y * (size_t)c->w + (size_t)x) * 3, rgb, 3);
}

/* A disc of radius r at (cx, cy), edges anti-aliased by pixel coverage. */
static void disc(canvas *c, double cx, double cy, double r, const uint8_t rgb[3], double alpha)
{
    int x0 = (int)floor(cx - r - 1), x1 = (int)ceil(cx + r + 1);
    int y0 = (int)floor(cy - r - 1), y1 = (int)ceil(cy + r + 1);
    for (int y = y0 < 0 ? 0 : y0; y < y1 && y < c->h; y++)
        for (int x = x0 < 0 ? 0 : x0; x < x1 && x < c->w; x++) {
            double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
            double a = alpha * fmin(1, fmax(0, r + 0.5 - sqrt(dx * dx + dy * dy)));
            if (a <= 0)
                continue;
            uint8_t *p = c->px + ((size_t)y * (size_t)c->w + (size_t)x) * 3;
            for (int k = 0; k < 3; k++)
                p[k] = (uint8_t)lround(p[k] * (1 - a) + rgb[k] * a);
        }
}

/* The ASCII that stb_easy_font can draw: other characters become '?', one per
 * UTF-8 sequence; shortened with ".." to at most max_px pixels at scale s. */
static void printable(const char *text, char *out, size_t cap, int max_px, int s)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p && o + 1 < cap; p++) {
        if ((*p & 0xc0) == 0x80)
            continue;
        out[o++] = *p >= 32 && *p < 127 ? (char)*p : '?';
    }
    out[o] = 0;
    if (stb_easy_font_width(out) * s <= max_px)
        return;
    while (o > 0) {
        out[--o] = 0;
        char tmp[512];
        snprintf(tmp, sizeof tmp, "%s..", out);
        if (stb_easy_font_width(tmp) * s <= max_px) {
            snprintf(out, cap, "%s", tmp);
            return;
        }
    }
}

/* text (printable ASCII) with its top-left corner at (x, y), each font pixel s x s. */
static et_status draw_text(canvas *c, int x, int y, int s, char *text, const uint8_t rgb[3])
{
    int cap = (int)strlen(text) * 1024 + 64;
    float *v = malloc((size_t)cap);
    if (!v)
        return ET_ENOMEM;
    int quads = stb_easy_font_print(0, 0, text, NULL, v, cap);
    for (int q = 0; q < quads; q++) {
        const float *a = v + q * 16, *b = v + q * 16 + 8; /* corners 0 and 2, 4 floats each */
        fill_rect(c, x + (int)a[0] * s, y + (int)a[1] * s, x + (int)b[0] * s, y + (int)b[1] * s,
                  rgb);
    }
    free(v);
    return ET_OK;
}

et_status et_map_write_png(const char *path, const et_map_point *pts, size_t n,
                           const char *const *label_names, size_t n_labels, const char *title,
                           int width_px, int height_px, et_error *err)
{
    if (width_px < 64 || width_px > 8192 || height_px < 64 || height_px > 8192)
        return et_error_set(err, ET_EINVAL,
                            "map: a PNG of %d x %d pixels; choose 64 to 8192 "
                            "for each side",
                            width_px, height_px);
    map m;
    et_status rc = map_init(&m, path, pts, n, label_names, n_labels, true, err);
    if (rc < 0)
        return rc;
    canvas c = {malloc((size_t)width_px * (size_t)height_px * 3), width_px, height_px};
    if (!c.px) {
        map_free(&m);
        return et_error_set(err, ET_ENOMEM, "%s: out of memory for the image", path);
    }
    memset(c.px, 255, (size_t)width_px * (size_t)height_px * 3);
    static const uint8_t ink[3] = {0x20, 0x20, 0x20};
    int s = (width_px < height_px ? width_px : height_px) / 300;
    s = s < 1 ? 1 : s > 4 ? 4 : s;
    int margin = 4 * s + 4, line = 12 * s;
    int top = title ? line + margin : 0;
    int legend = width_px / 4 > 300 * s / 2 ? 300 * s / 2 : width_px / 4;
    if (width_px - legend < 2 * height_px / 3 || legend < 60)
        legend = 0; /* too narrow: the map gets the whole width */
    double aw = width_px - legend - 2.0 * margin, ah = height_px - top - 2.0 * margin;
    double side = fmin(aw, ah);
    double scale = side / m.range * 0.98;
    double ox = margin + aw / 2, oy = top + margin + ah / 2;
    double r = fmax(1.0, side / (n > 5000 ? 400.0 : 200.0));
    for (size_t o = 0; o < n; o++) {
        const et_map_point *p = &pts[m.order[o]];
        disc(&c, ox + (p->x - m.cx) * scale, oy - (p->y - m.cy) * scale, r, label_color(p->label),
             0.85);
    }
    /* Text last, so that no dot hides it. */
    char text[512];
    if (title) {
        printable(title, text, sizeof text, width_px - 2 * margin, s);
        rc = draw_text(&c, margin, margin, s, text, ink);
    }
    if (legend > 0) {
        size_t rows = legend_rows(&m);
        int row_h = line + 2 * s, lx = width_px - legend + margin / 2;
        size_t fit = (size_t)((height_px - top - 2 * margin) / row_h);
        size_t shown = rows <= fit ? rows : fit > 0 ? fit - 1 : 0;
        for (size_t row = 0; row < shown && rc == ET_OK; row++) {
            int label = legend_label(&m, row);
            int y = top + margin + (int)row * row_h;
            fill_rect(&c, lx, y, lx + 8 * s, y + 8 * s, label_color(label));
            char entry[600];
            snprintf(entry, sizeof entry, "%s (%zu)", label_name(&m, label), legend_count(&m, row));
            printable(entry, text, sizeof text, legend - 12 * s - margin, s);
            rc = draw_text(&c, lx + 12 * s, y, s, text, ink);
        }
        if (shown < rows && fit > 0 && rc == ET_OK) {
            snprintf(text, sizeof text, "... %zu more", rows - shown);
            rc = draw_text(&c, lx, top + margin + (int)shown * row_h, s, text, ink);
        }
    }
    map_free(&m);
    buf b = {0};
    if (rc == ET_OK && !stbi_write_png_to_func(png_sink, &b, c.w, c.h, 3, c.px, c.w * 3))
        b.oom = true;
    free(c.px);
    if (rc < 0) {
        free(b.data);
        return et_error_set(err, ET_ENOMEM, "%s: out of memory for the text", path);
    }
    return finish(&b, path, "PNG", err);
}

/* ------------------------------------------------------------------------
 * CSV.
 */
et_status et_map_write_csv(const char *path, const et_map_point *pts, size_t n,
                           const char *const *label_names, size_t n_labels, et_error *err)
{
    map m;
    et_status rc = map_init(&m, path, pts, n, label_names, n_labels, false, err);
    if (rc < 0)
        return rc;
    buf b = {0};
    buf_str(&b, "id,label,source,x,y\n");
    for (size_t i = 0; i < n && !b.oom; i++) {
        const et_map_point *p = &pts[i];
        buf_printf(&b, "%lld,", (long long)p->id);
        buf_csv(&b, p->label < 0 ? "" : label_name(&m, p->label));
        buf_str(&b, ",");
        buf_csv(&b, p->source ? p->source : "");
        buf_str(&b, ",");
        buf_float(&b, p->x);
        buf_str(&b, ",");
        buf_float(&b, p->y);
        buf_str(&b, "\n");
    }
    map_free(&m);
    return finish(&b, path, "CSV", err);
}
