/* The tuner's plot: accuracy against latency on the target, one marker per
 * trained trial with its area by RAM, the Pareto front (accuracy vs latency)
 * as a staircase, the latency budget as a line and the RAM budget as a
 * reference marker. SVG (hover a marker for its trial) and PNG (drawn here
 * with stb_easy_font text, as the explorer's PNG), both written atomically. */
#include "tune/tune_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image_write.h>
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-braces"
#include <stb_easy_font.h>
#pragma GCC diagnostic pop

/* ------------------------------------------------------------------------
 * The layout both writers share: which trials, the axes, marker sizes.
 */
typedef struct pt {
    const et_tune_trial *t;
    double lat, acc, ram;
    bool front2d; /* on the accuracy-vs-latency staircase */
} pt;

typedef struct layout {
    pt *pts;
    size_t n;
    et_precision pr;
    bool logx;
    double x0, x1, y0, y1; /* data ranges (x in log10 when logx) */
    double max_ram;
    int w, h, left, right, top, bottom;
} layout;

static int by_latency(const void *a, const void *b)
{
    const pt *x = a, *y = b;
    if (x->lat != y->lat)
        return x->lat < y->lat ? -1 : 1;
    return x->acc > y->acc ? -1 : x->acc < y->acc;
}

static et_status layout_init(layout *L, const et_tune_run_info *run, const et_tune_trial *trials,
                             size_t n, int w, int h, et_error *err)
{
    memset(L, 0, sizeof *L);
    L->pr = et_tune_objective_precision(run->objective);
    L->pts = calloc(n + 1, sizeof *L->pts);
    if (!L->pts)
        return et_error_set(err, ET_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        double acc = et_tune_trial_objective(&trials[i], run->objective);
        if (acc < 0 || !trials[i].profiled)
            continue;
        L->pts[L->n++] = (pt){&trials[i], fmax(trials[i].latency_ms[L->pr], 1e-6), 100 * acc,
                              (double)trials[i].ram_bytes[L->pr], false};
    }
    qsort(L->pts, L->n, sizeof *L->pts, by_latency);
    double best = -1;
    for (size_t i = 0; i < L->n; i++)
        if (L->pts[i].acc > best) {
            L->pts[i].front2d = true;
            best = L->pts[i].acc;
        }
    double lo = INFINITY, hi = 0, alo = 100, ahi = 0;
    for (size_t i = 0; i < L->n; i++) {
        lo = fmin(lo, L->pts[i].lat);
        hi = fmax(hi, L->pts[i].lat);
        alo = fmin(alo, L->pts[i].acc);
        ahi = fmax(ahi, L->pts[i].acc);
        L->max_ram = fmax(L->max_ram, L->pts[i].ram);
    }
    if (run->max_latency_ms > 0) {
        lo = fmin(lo, run->max_latency_ms);
        hi = fmax(hi, run->max_latency_ms);
    }
    if (run->max_ram_bytes > 0)
        L->max_ram = fmax(L->max_ram, (double)run->max_ram_bytes);
    if (!isfinite(lo)) {
        lo = 1;
        hi = 10;
    }
    if (L->n == 0) {
        alo = 0;
        ahi = 100;
    }
    L->logx = hi / lo > 20;
    if (L->logx) {
        L->x0 = floor(log10(lo));
        L->x1 = ceil(log10(hi));
    } else {
        double pad = (hi - lo) * 0.08 + 0.05 * hi + 1e-9;
        L->x0 = fmax(0, lo - pad);
        L->x1 = hi + pad;
    }
    L->y0 = fmax(0, floor(alo - 2));
    L->y1 = fmin(100, ceil(ahi + 1));
    if (L->y1 - L->y0 < 2)
        L->y0 = fmax(0, L->y1 - 2);
    if (L->max_ram <= 0)
        L->max_ram = 1;
    L->w = w, L->h = h;
    L->left = w / 12 + 20, L->right = w / 5 + 20, L->top = h / 12 + 10, L->bottom = h / 10 + 20;
    return ET_OK;
}

static double px_x(const layout *L, double lat)
{
    double v = L->logx ? log10(lat) : lat;
    return L->left + (v - L->x0) / (L->x1 - L->x0) * (L->w - L->left - L->right);
}

static double px_y(const layout *L, double acc)
{
    return L->h - L->bottom - (acc - L->y0) / (L->y1 - L->y0) * (L->h - L->top - L->bottom);
}

static double radius(const layout *L, double ram)
{
    double scale = (L->w < L->h ? L->w : L->h) / 600.0;
    return scale * (3 + 15 * sqrt(fmax(0, ram) / L->max_ram));
}

/* Axis ticks: x at decades (log) or a 1-2-5 step, y at a 1-2-5 step. */
static int ticks(double a, double b, bool log, double *out, int max)
{
    int n = 0;
    if (log) {
        for (double e = a; e <= b + 1e-9 && n < max; e++)
            out[n++] = pow(10, e);
        return n;
    }
    double span = b - a, step = pow(10, floor(log10(span / 5)));
    if (span / step > 10)
        step *= span / (step * 2) > 10 ? 5 : 2;
    for (double v = ceil(a / step) * step; v <= b + 1e-9 && n < max; v += step)
        out[n++] = v;
    return n;
}

static void fmt_ms(double v, char *out, size_t n)
{
    if (v >= 1000)
        snprintf(out, n, "%gs", v / 1000);
    else
        snprintf(out, n, "%gms", v);
}

static void fmt_ram(double b, char *out, size_t n)
{
    if (b >= 1 << 20)
        snprintf(out, n, "%.1f MiB", b / (1 << 20));
    else
        snprintf(out, n, "%.0f KiB", b / 1024);
}

static void title_text(const et_tune_run_info *run, const layout *L, char *out, size_t n)
{
    snprintf(out, n, "Tuner run %lld: %s accuracy vs latency on %s", (long long)run->id,
             et_precision_name(L->pr), run->target);
}

/* ------------------------------------------------------------------------
 * SVG.
 */
typedef struct sbuf {
    char *data;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0)
        return;
    if (b->len + (size_t)need + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 8192) + (size_t)need;
        char *grown = realloc(b->data, cap);
        if (!grown) {
            b->oom = true;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)need;
}

static void sb_xml(sbuf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            sb_printf(b, "&lt;");
        else if (*s == '>')
            sb_printf(b, "&gt;");
        else if (*s == '&')
            sb_printf(b, "&amp;");
        else if (*s == '"')
            sb_printf(b, "&quot;");
        else
            sb_printf(b, "%c", *s);
    }
}

static const char *status_color(et_trial_status s)
{
    return s == ET_TRIAL_DONE ? "#1f77b4" : s == ET_TRIAL_WAITING ? "#ff7f0e" : "#9a9a9a";
}

static void describe(const et_tune_trial *t, char *out, size_t n)
{
    const et_impulse *imp = &t->impulse;
    size_t used = (size_t)snprintf(out, n, "%dx%d %s, ", imp->width, imp->height,
                                   imp->color == ET_COLOR_RGB ? "rgb" : "grayscale");
    if (imp->model == ET_MODEL_CONV) {
        used += (size_t)snprintf(out + used, n - used, "conv");
        for (int i = 0; i < imp->n_conv && used < n; i++)
            used += (size_t)snprintf(out + used, n - used, " %d:%d", imp->conv[i].filters,
                                     imp->conv[i].kernel);
    } else {
        snprintf(out + used, n - used, "%s alpha %g", et_model_name(imp->model), imp->alpha);
    }
}

et_status et_tune_plot_svg(const char *path, const et_tune_run_info *run,
                           const et_tune_trial *trials, size_t n, et_error *err)
{
    layout L;
    et_status rc = layout_init(&L, run, trials, n, 960, 640, err);
    if (rc < 0)
        return rc;
    sbuf b = {0};
    char text[512];
    sb_printf(&b,
              "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg "
              "xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d "
              "%d\" font-family=\"sans-serif\" font-size=\"13\">\n<rect width=\"100%%\" "
              "height=\"100%%\" fill=\"white\"/>\n",
              L.w, L.h, L.w, L.h);
    title_text(run, &L, text, sizeof text);
    sb_printf(&b, "<text x=\"%d\" y=\"28\" font-size=\"17\">", L.left);
    sb_xml(&b, text);
    sb_printf(&b, "</text>\n");
    double px0 = L.left, px1 = L.w - L.right, py0 = L.top, py1 = L.h - L.bottom;
    sb_printf(&b,
              "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
              "stroke=\"#444\"/>\n",
              px0, py0, px1 - px0, py1 - py0);
    double tk[32];
    int nt = ticks(L.x0, L.x1, L.logx, tk, 32);
    for (int i = 0; i < nt; i++) {
        double x = px_x(&L, tk[i]);
        char lab[32];
        fmt_ms(tk[i], lab, sizeof lab);
        sb_printf(&b,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                  x, py0, x, py1, x, py1 + 18, lab);
    }
    nt = ticks(L.y0, L.y1, false, tk, 32);
    for (int i = 0; i < nt; i++) {
        double y = px_y(&L, tk[i]);
        sb_printf(&b,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g%%</text>\n",
                  px0, y, px1, y, px0 - 6, y + 4, tk[i]);
    }
    sb_printf(&b,
              "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s latency on %s%s</text>\n"
              "<text transform=\"translate(%.1f %.1f) rotate(-90)\" text-anchor=\"middle\">%s "
              "validation accuracy</text>\n",
              (px0 + px1) / 2, py1 + 42, et_precision_name(L.pr), run->target,
              L.logx ? " (log scale)" : "", px0 - 48, (py0 + py1) / 2, et_precision_name(L.pr));
    if (run->max_latency_ms > 0) {
        double x = px_x(&L, run->max_latency_ms);
        char lab[32];
        fmt_ms(run->max_latency_ms, lab, sizeof lab);
        sb_printf(&b,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#d62728\" "
                  "stroke-dasharray=\"6 4\" stroke-width=\"1.5\"/><text x=\"%.1f\" y=\"%.1f\" "
                  "fill=\"#d62728\" text-anchor=\"%s\">latency budget %s</text>\n",
                  x, py0, x, py1, x < (px0 + px1) / 2 ? x + 4 : x - 4, py1 - 6,
                  x < (px0 + px1) / 2 ? "start" : "end", lab);
    }
    /* The staircase of the accuracy-vs-latency front. */
    sb_printf(&b, "<polyline fill=\"none\" stroke=\"#2ca02c\" stroke-width=\"2\" points=\"");
    double last_y = 0;
    bool first = true;
    for (size_t i = 0; i < L.n; i++) {
        if (!L.pts[i].front2d)
            continue;
        double x = px_x(&L, L.pts[i].lat), y = px_y(&L, L.pts[i].acc);
        if (!first)
            sb_printf(&b, "%.1f,%.1f ", x, last_y);
        sb_printf(&b, "%.1f,%.1f ", x, y);
        last_y = y;
        first = false;
    }
    if (!first)
        sb_printf(&b, "%.1f,%.1f", px1, last_y);
    sb_printf(&b, "\"/>\n");
    /* Markers, largest first so that small ones stay visible. */
    for (size_t k = 0; k < L.n; k++) {
        size_t big = k;
        for (size_t i = k + 1; i < L.n; i++)
            if (L.pts[i].ram > L.pts[big].ram)
                big = i;
        pt tmp = L.pts[k];
        L.pts[k] = L.pts[big];
        L.pts[big] = tmp;
    }
    for (size_t i = 0; i < L.n; i++) {
        const pt *q = &L.pts[i];
        const et_tune_trial *t = q->t;
        char d[256], ram[32];
        describe(t, d, sizeof d);
        fmt_ram(q->ram, ram, sizeof ram);
        sb_printf(&b,
                  "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\" fill-opacity=\"0.6\" "
                  "stroke=\"%s\" stroke-width=\"%s\"><title>trial %lld (%s%s): %.2f%%, %.2f ms, "
                  "RAM %s; ",
                  px_x(&L, q->lat), px_y(&L, q->acc), radius(&L, q->ram), status_color(t->status),
                  t->pareto ? "#000" : "#fff", t->pareto ? "2" : "1", (long long)t->id,
                  et_trial_status_name(t->status), t->pareto ? ", Pareto front" : "", q->acc,
                  q->lat, ram);
        sb_xml(&b, d);
        sb_printf(&b, "</title></circle>\n");
    }
    /* Legend. */
    double lx = px1 + 20, ly = py0 + 10;
    static const et_trial_status shown[] = {ET_TRIAL_DONE, ET_TRIAL_PRUNED, ET_TRIAL_WAITING};
    static const char *const labels[] = {"done (full training)", "pruned (fewer epochs)",
                                         "waiting"};
    for (int i = 0; i < 3; i++, ly += 22)
        sb_printf(&b,
                  "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"6\" fill=\"%s\" fill-opacity=\"0.6\"/>"
                  "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                  lx + 6, ly, status_color(shown[i]), lx + 18, ly + 4, labels[i]);
    sb_printf(&b,
              "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"6\" fill=\"white\" stroke=\"#000\" "
              "stroke-width=\"2\"/><text x=\"%.1f\" y=\"%.1f\">Pareto front (ring)</text>\n",
              lx + 6, ly, lx + 18, ly + 4);
    ly += 22;
    sb_printf(&b,
              "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#2ca02c\" "
              "stroke-width=\"2\"/><text x=\"%.1f\" y=\"%.1f\">best up to that latency</text>\n",
              lx, ly, lx + 12, ly, lx + 18, ly + 4);
    ly += 34;
    sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\">marker area: %s RAM</text>\n", lx, ly,
              et_precision_name(L.pr));
    ly += 10;
    double refs[3] = {L.max_ram / 16, L.max_ram / 4, L.max_ram};
    for (int i = 0; i < 3; i++) {
        double r = radius(&L, refs[i]);
        char lab[48];
        fmt_ram(refs[i], lab, sizeof lab);
        bool budget =
            i == 2 && run->max_ram_bytes > 0 && fabs(refs[i] - (double)run->max_ram_bytes) < 0.5;
        ly += r + 6;
        sb_printf(&b,
                  "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"none\" stroke=\"%s\" "
                  "%s/><text x=\"%.1f\" y=\"%.1f\">%s%s</text>\n",
                  lx + 20, ly, r, budget ? "#d62728" : "#666",
                  budget ? "stroke-dasharray=\"4 3\"" : "", lx + 44, ly + 4, lab,
                  budget ? " (RAM budget)" : "");
        ly += r;
    }
    sb_printf(&b, "</svg>\n");
    free(L.pts);
    if (b.oom) {
        free(b.data);
        return et_error_set(err, ET_ENOMEM, "%s: out of memory", path);
    }
    rc = et_write_file_atomic(path, b.data, b.len, err);
    free(b.data);
    return rc;
}

/* ------------------------------------------------------------------------
 * PNG.
 */
typedef struct canvas {
    uint8_t *px;
    int w, h;
} canvas;

static void blend(canvas *c, int x, int y, const uint8_t rgb[3], double a)
{
    if (x < 0 || y < 0 || x >= c->w || y >= c->h || a <= 0)
        return;
    uint8_t *p = c->px + ((size_t)y * (size_t)c->w + (size_t)x) * 3;
    for (int k = 0; k < 3; k++)
        p[k] = (uint8_t)lround(p[k] * (1 - a) + rgb[k] * a);
}

static void rect(canvas *c, int x0, int y0, int x1, int y1, const uint8_t rgb[3])
{
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            blend(c, x, y, rgb, 1);
}

/* A line of width w (pixels), every dash_on pixels of every dash_on + dash_off. */
static void line(canvas *c, double x0, double y0, double x1, double y1, double w,
                 const uint8_t rgb[3], int dash_on, int dash_off)
{
    double len = hypot(x1 - x0, y1 - y0);
    int steps = (int)ceil(len) + 1;
    for (int i = 0; i <= steps; i++) {
        if (dash_on > 0 && i % (dash_on + dash_off) >= dash_on)
            continue;
        double t = steps ? (double)i / steps : 0;
        double x = x0 + (x1 - x0) * t, y = y0 + (y1 - y0) * t;
        for (int dy = (int)floor(-w / 2); dy <= (int)ceil(w / 2); dy++)
            for (int dx = (int)floor(-w / 2); dx <= (int)ceil(w / 2); dx++)
                if (dx * dx + dy * dy <= w * w / 4 + 0.25)
                    blend(c, (int)lround(x) + dx, (int)lround(y) + dy, rgb, 1);
    }
}

/* A disc, anti-aliased; ring > 0 draws only an outline that wide. */
static void disc(canvas *c, double cx, double cy, double r, const uint8_t rgb[3], double alpha,
                 double ring)
{
    for (int y = (int)floor(cy - r - 1); y <= (int)ceil(cy + r + 1); y++)
        for (int x = (int)floor(cx - r - 1); x <= (int)ceil(cx + r + 1); x++) {
            double d = hypot(x + 0.5 - cx, y + 0.5 - cy);
            double a = fmin(1, fmax(0, r + 0.5 - d));
            if (ring > 0)
                a *= fmin(1, fmax(0, d - (r - ring) + 0.5));
            blend(c, x, y, rgb, alpha * a);
        }
}

static void text(canvas *c, int x, int y, int s, const char *t, const uint8_t rgb[3])
{
    char ascii[256];
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)t; *p && o + 1 < sizeof ascii; p++)
        if ((*p & 0xc0) != 0x80)
            ascii[o++] = *p >= 32 && *p < 127 ? (char)*p : '?';
    ascii[o] = 0;
    static float v[256 * 270];
    int quads = stb_easy_font_print(0, 0, ascii, NULL, v, (int)sizeof v);
    for (int q = 0; q < quads; q++) {
        const float *a = v + q * 16, *b = v + q * 16 + 8;
        rect(c, x + (int)a[0] * s, y + (int)a[1] * s, x + (int)b[0] * s, y + (int)b[1] * s, rgb);
    }
}

static int text_width(const char *t, int s)
{
    char ascii[256];
    snprintf(ascii, sizeof ascii, "%s", t);
    return stb_easy_font_width(ascii) * s;
}

static void png_sink(void *ctx, void *data, int size)
{
    sbuf *b = ctx;
    if (b->oom)
        return;
    if (b->len + (size_t)size > b->cap) {
        size_t cap = b->cap * 2 + (size_t)size + 4096;
        char *grown = realloc(b->data, cap);
        if (!grown) {
            b->oom = true;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, (size_t)size);
    b->len += (size_t)size;
}

static void hex(const char *h, uint8_t rgb[3])
{
    unsigned v = (unsigned)strtoul(h + 1, NULL, 16);
    rgb[0] = (uint8_t)(v >> 16), rgb[1] = (uint8_t)(v >> 8), rgb[2] = (uint8_t)v;
}

et_status et_tune_plot_png(const char *path, const et_tune_run_info *run,
                           const et_tune_trial *trials, size_t n, int width_px, int height_px,
                           et_error *err)
{
    if (width_px < 320 || width_px > 8192 || height_px < 240 || height_px > 8192)
        return et_error_set(err, ET_EINVAL, "%s: %d x %d pixels; choose 320..8192 x 240..8192",
                            path, width_px, height_px);
    layout L;
    et_status rc = layout_init(&L, run, trials, n, width_px, height_px, err);
    if (rc < 0)
        return rc;
    canvas c = {malloc((size_t)width_px * (size_t)height_px * 3), width_px, height_px};
    if (!c.px) {
        free(L.pts);
        return et_error_set(err, ET_ENOMEM, "%s: out of memory for the image", path);
    }
    memset(c.px, 255, (size_t)width_px * (size_t)height_px * 3);
    int s = (width_px < height_px ? width_px : height_px) / 400;
    s = s < 1 ? 1 : s > 3 ? 3 : s;
    static const uint8_t ink[3] = {0x20, 0x20, 0x20}, grid[3] = {0xe4, 0xe4, 0xe4},
                         red[3] = {0xd6, 0x27, 0x28}, green[3] = {0x2c, 0xa0, 0x2c},
                         black[3] = {0, 0, 0};
    double px0 = L.left, px1 = L.w - L.right, py0 = L.top, py1 = L.h - L.bottom;
    char buf[256];
    double tk[32];
    int nt = ticks(L.x0, L.x1, L.logx, tk, 32);
    for (int i = 0; i < nt; i++) {
        double x = px_x(&L, tk[i]);
        line(&c, x, py0, x, py1, 1, grid, 0, 0);
        fmt_ms(tk[i], buf, sizeof buf);
        text(&c, (int)x - text_width(buf, s) / 2, (int)py1 + 6 * s, s, buf, ink);
    }
    nt = ticks(L.y0, L.y1, false, tk, 32);
    for (int i = 0; i < nt; i++) {
        double y = px_y(&L, tk[i]);
        line(&c, px0, y, px1, y, 1, grid, 0, 0);
        snprintf(buf, sizeof buf, "%g%%", tk[i]);
        text(&c, (int)px0 - text_width(buf, s) - 4 * s, (int)y - 4 * s, s, buf, ink);
    }
    line(&c, px0, py0, px1, py0, 1, ink, 0, 0);
    line(&c, px0, py1, px1, py1, 1, ink, 0, 0);
    line(&c, px0, py0, px0, py1, 1, ink, 0, 0);
    line(&c, px1, py0, px1, py1, 1, ink, 0, 0);
    if (run->max_latency_ms > 0) {
        double x = px_x(&L, run->max_latency_ms);
        line(&c, x, py0, x, py1, 1.5 * s, red, 6 * s, 4 * s);
        char lab[32];
        fmt_ms(run->max_latency_ms, lab, sizeof lab);
        snprintf(buf, sizeof buf, "latency budget %s", lab);
        int tx = (int)x + 4 * s;
        if (tx + text_width(buf, s) > (int)px1)
            tx = (int)x - text_width(buf, s) - 4 * s;
        text(&c, tx, (int)py1 - 12 * s, s, buf, red);
    }
    double lx = -1, ly = 0;
    for (size_t i = 0; i < L.n; i++) {
        if (!L.pts[i].front2d)
            continue;
        double x = px_x(&L, L.pts[i].lat), y = px_y(&L, L.pts[i].acc);
        if (lx >= 0) {
            line(&c, lx, ly, x, ly, 2 * s, green, 0, 0);
            line(&c, x, ly, x, y, 2 * s, green, 0, 0);
        }
        lx = x, ly = y;
    }
    if (lx >= 0)
        line(&c, lx, ly, px1, ly, 2 * s, green, 0, 0);
    for (size_t k = 0; k < L.n; k++) {
        size_t big = k;
        for (size_t i = k + 1; i < L.n; i++)
            if (L.pts[i].ram > L.pts[big].ram)
                big = i;
        pt tmp = L.pts[k];
        L.pts[k] = L.pts[big];
        L.pts[big] = tmp;
    }
    for (size_t i = 0; i < L.n; i++) {
        uint8_t col[3];
        hex(status_color(L.pts[i].t->status), col);
        double x = px_x(&L, L.pts[i].lat), y = px_y(&L, L.pts[i].acc), r = radius(&L, L.pts[i].ram);
        disc(&c, x, y, r, col, 0.6, 0);
        if (L.pts[i].t->pareto)
            disc(&c, x, y, r, black, 1, 1.5 * s);
    }
    title_text(run, &L, buf, sizeof buf);
    text(&c, L.left, 8 * s, s + (s < 3), buf, ink);
    snprintf(buf, sizeof buf, "%s latency on %s%s", et_precision_name(L.pr), run->target,
             L.logx ? " (log scale)" : "");
    text(&c, (int)(px0 + px1) / 2 - text_width(buf, s) / 2, (int)py1 + 20 * s, s, buf, ink);
    snprintf(buf, sizeof buf, "y: %s validation accuracy", et_precision_name(L.pr));
    text(&c, (int)px0, (int)py0 - 12 * s, s, buf, ink);
    int gx = (int)px1 + 12 * s, gy = (int)py0 + 4 * s;
    static const et_trial_status shown[] = {ET_TRIAL_DONE, ET_TRIAL_PRUNED, ET_TRIAL_WAITING};
    static const char *const labels[] = {"done", "pruned", "waiting"};
    for (int i = 0; i < 3; i++, gy += 14 * s) {
        uint8_t col[3];
        hex(status_color(shown[i]), col);
        disc(&c, gx + 4 * s, gy + 3 * s, 4 * s, col, 0.6, 0);
        text(&c, gx + 12 * s, gy, s, labels[i], ink);
    }
    disc(&c, gx + 4 * s, gy + 3 * s, 4 * s, black, 1, 1.5 * s);
    text(&c, gx + 12 * s, gy, s, "Pareto front", ink);
    gy += 14 * s;
    line(&c, gx, gy + 3 * s, gx + 8 * s, gy + 3 * s, 2 * s, green, 0, 0);
    text(&c, gx + 12 * s, gy, s, "best up to", ink);
    gy += 10 * s;
    text(&c, gx + 12 * s, gy, s, "that latency", ink);
    gy += 22 * s;
    snprintf(buf, sizeof buf, "area: %s RAM", et_precision_name(L.pr));
    text(&c, gx, gy, s, buf, ink);
    gy += 6 * s;
    double refs[3] = {L.max_ram / 16, L.max_ram / 4, L.max_ram};
    for (int i = 0; i < 3; i++) {
        double r = radius(&L, refs[i]);
        bool budget =
            i == 2 && run->max_ram_bytes > 0 && fabs(refs[i] - (double)run->max_ram_bytes) < 0.5;
        gy += (int)r + 4 * s;
        disc(&c, gx + 20 * s, gy, r, budget ? red : ink, 1, 1);
        fmt_ram(refs[i], buf, sizeof buf);
        if (budget)
            strncat(buf, " budget", sizeof buf - strlen(buf) - 1);
        text(&c, gx + 20 * s + (int)r + 6 * s, gy - 3 * s, s, buf, budget ? red : ink);
        gy += (int)r;
    }
    free(L.pts);
    sbuf b = {0};
    if (!stbi_write_png_to_func(png_sink, &b, c.w, c.h, 3, c.px, c.w * 3))
        b.oom = true;
    free(c.px);
    if (b.oom) {
        free(b.data);
        return et_error_set(err, ET_ENOMEM, "%s: out of memory", path);
    }
    rc = et_write_file_atomic(path, b.data, b.len, err);
    free(b.data);
    return rc;
}
