/* The repulsive forces of t-SNE by interpolation on a grid and FFT convolution
 * (FIt-SNE: Linderman, Rachh, Hoskins, Steinerberger & Kluger 2019, "Fast
 * interpolation-based t-SNE for improved visualization of single-cell RNA-seq
 * data", Nature Methods 16).
 *
 * Every gradient step needs, for each point i,
 *     F_i = sum_j K(y_i - y_j)^2 (y_i - y_j)   and   Z = sum_{i != j} K(y_i - y_j),
 * K(d) = 1 / (1 + |d|^2): n^2 pairs. Both kernels are smooth, so over a small
 * box of the map they are well approximated by their values at a few points:
 * the map is cut into square boxes of P x P equispaced nodes (spacing h); each
 * point spreads a unit charge onto its box's nodes with Lagrange weights; the
 * node-to-node sums are convolutions of that charge grid with the kernels
 * sampled at the node offsets (FFTs, zero-padded to twice the grid so nothing
 * wraps around); each point reads its force back from its box's nodes with
 * the same weights.
 *
 * One convolution gives both force components: the kernel K^2 (dx + i dy) is
 * complex and the charges are real, so the real and imaginary parts of the
 * result are F_x and F_y. Z needs no transform back: it is <rho, K * rho> =
 * sum over frequencies of K_hat |rho_hat|^2 (Parseval), minus the n self-pairs.
 * So a step costs one forward and one inverse 2-D FFT of the padded grid,
 * m x m, plus O(n P^2) to spread and gather. m grows with the map's extent
 * (it is about 2 extent / h), not with n.
 *
 * FIt-SNE instead convolves four charges (1, x, y, x^2 + y^2) with K^2 and
 * recovers F and Z by differences of their potentials; that needs twice the
 * transforms and loses digits to cancellation, which would rule out float.
 *
 * Accuracy is set by h: on the 10,000-point Fashion-MNIST map, h = 0.18 gives
 * forces within 1% of the exact ones (rms), h = 0.35 within 6%; Z is 20x more
 * accurate (Barnes-Hut at theta = 0.5: 1.6% and 1.0%).
 *
 * Reproducibility: points are sorted by box (counting sort, index order within
 * a box); each box's nodes belong to it alone, so spreading runs in parallel
 * over rows of boxes and every node sums its points in index order. FFT rows
 * and strips and the read-back are each done by one thread in a fixed order;
 * the parts of Z are per strip, added in strip order.
 */
#include "explore/tsne_internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define P 4        /* interpolation nodes per box side */
#define M_MIN 64   /* smallest padded grid side */
#define M_MAX 2048 /* largest: 5 grids of 16 MiB; past it, nodes spread out */
#define LADDER                                                                                     \
    8                            /* node spacings are h_max * 2^(-k / LADDER): the kernels'        \
                                    spectra are reused while the map stays on a step */
#define PAR_MIN 4096             /* fewer points: spread and gather on one thread */
#define STRIP_BYTES (256 * 1024) /* a strip (re and im) stays in the L2 cache */
#define PREFETCH_ROWS 8

struct et_repulsion {
    size_t n;
    double h_max;
    size_t cap;       /* m the grids are allocated for */
    et_fft_plan plan; /* for the current m (plan.m) */
    size_t w;         /* strip width for plan.m */
    float *gre, *gim; /* the charge grid, then forces at the nodes; cap x cap */
    float *kre, *kim; /* spectrum of K^2 (dx + i dy), strip by strip, times 1 / m^2 */
    float *kz;        /* spectrum of K (real), strip by strip, times 1 / m^2 */
    double kernel_h;  /* the spectra's node spacing (0: none for this m) */
    float **buf;      /* per thread: a strip, re then im */
    int nbuf;
    int32_t *box;  /* n: the box of each point */
    double *u;     /* n x 2: each point's place in its box, 0 .. 1 per axis */
    double *su;    /* the same, box by box (index order within a box) */
    size_t *start; /* boxes^2 + 1: where each box starts in su */
    size_t start_cap;
    double *zpart; /* per strip */
    size_t zpart_cap;
};

et_status et_repulsion_create(size_t n, double h_max, et_repulsion **out)
{
    et_repulsion *r = calloc(1, sizeof *r);
    if (!r)
        return ET_ENOMEM;
    r->n = n;
    r->h_max = h_max;
    r->box = malloc(n * sizeof *r->box);
    r->u = malloc(2 * n * sizeof *r->u);
    r->su = malloc(2 * n * sizeof *r->su);
    if (!r->box || !r->u || !r->su) {
        et_repulsion_destroy(r);
        return ET_ENOMEM;
    }
    *out = r;
    return ET_OK;
}

/* m x m floats. Large grids ask for transparent huge pages: a strip reads one
 * short piece of every row, and with 4 KiB pages each row is a TLB miss
 * (measured: a third off a step at m = 1,024). */
static float *grid_alloc(size_t m)
{
    size_t bytes = m * m * sizeof(float);
#ifdef MADV_HUGEPAGE
    const size_t huge = (size_t)2 << 20;
    if (bytes >= huge) {
        void *p = NULL;
        if (posix_memalign(&p, huge, bytes) != 0)
            return NULL;
        madvise(p, bytes, MADV_HUGEPAGE); /* advice only: failing is harmless */
        return p;
    }
#endif
    return malloc(bytes);
}

static void free_grids(et_repulsion *r)
{
    free(r->gre), free(r->gim), free(r->kre), free(r->kim), free(r->kz);
    r->gre = r->gim = r->kre = r->kim = r->kz = NULL;
    r->cap = 0;
}

static void free_bufs(et_repulsion *r)
{
    for (int t = 0; t < r->nbuf; t++)
        free(r->buf[t]);
    free(r->buf);
    r->buf = NULL;
    r->nbuf = 0;
}

void et_repulsion_destroy(et_repulsion *r)
{
    if (!r)
        return;
    free_grids(r);
    free_bufs(r);
    et_fft_plan_free(&r->plan);
    free(r->box), free(r->u), free(r->su), free(r->start), free(r->zpart);
    free(r);
}

/* Grids, plan, strip buffers and box table for side m. */
static et_status use_m(et_repulsion *r, size_t m)
{
    if (m > r->cap) {
        free_grids(r);
        r->gre = grid_alloc(m), r->gim = grid_alloc(m);
        r->kre = grid_alloc(m), r->kim = grid_alloc(m), r->kz = grid_alloc(m);
        if (!r->gre || !r->gim || !r->kre || !r->kim || !r->kz) {
            free_grids(r);
            return ET_ENOMEM;
        }
        r->cap = m;
    }
    size_t w = STRIP_BYTES / (2 * sizeof(float) * m);
    w = w < 8 ? 8 : w > 64 ? 64 : w;
    w = w < m ? w : m;
    int threads = omp_get_max_threads();
    if (r->plan.m != m || threads > r->nbuf) {
        free_bufs(r);
        r->buf = calloc((size_t)threads, sizeof *r->buf);
        if (!r->buf)
            return ET_ENOMEM;
        r->nbuf = threads;
        for (int t = 0; t < threads; t++)
            if (!(r->buf[t] = malloc(2 * m * w * sizeof(float)))) {
                free_bufs(r);
                return ET_ENOMEM;
            }
    }
    if (r->plan.m != m) {
        et_fft_plan_free(&r->plan);
        if (et_fft_plan_init(&r->plan, m) < 0)
            return ET_ENOMEM;
        r->kernel_h = 0;
    }
    r->w = w;
    size_t strips = m / w;
    if (strips > r->zpart_cap) {
        free(r->zpart);
        if (!(r->zpart = malloc(strips * sizeof *r->zpart))) {
            r->zpart_cap = 0;
            return ET_ENOMEM;
        }
        r->zpart_cap = strips;
    }
    size_t boxes = m / (2 * P);
    if (boxes * boxes + 1 > r->start_cap) {
        free(r->start);
        if (!(r->start = malloc((boxes * boxes + 1) * sizeof *r->start))) {
            r->start_cap = 0;
            return ET_ENOMEM;
        }
        r->start_cap = boxes * boxes + 1;
    }
    return ET_OK;
}

/* The padded grid's offset of index i (circular: the upper half is negative). */
static double offset(size_t i, size_t m)
{
    return i < m / 2 ? (double)i : (double)i - (double)m;
}

/* Strip s of the grid (columns s w .. s w + w - 1, rows below `rows`) into the
 * buffer (re, im); rows from `rows` on are zero. */
static void strip_in(const et_repulsion *r, size_t s, size_t rows, float *re, float *im)
{
    size_t m = r->plan.m, w = r->w;
    /* Plain loops, not memcpy: a piece is only w floats, and the calls cost
     * more than the copying. */
    for (size_t i = 0; i < rows; i++) {
        const float *sr = r->gre + i * m + s * w, *si = r->gim + i * m + s * w;
        /* Rows are m floats apart, too far for the hardware prefetcher. */
        __builtin_prefetch(sr + PREFETCH_ROWS * m);
        __builtin_prefetch(si + PREFETCH_ROWS * m);
        for (size_t c = 0; c < w; c++)
            re[i * w + c] = sr[c], im[i * w + c] = si[c];
    }
    memset(re + rows * w, 0, (m - rows) * w * sizeof *re);
    memset(im + rows * w, 0, (m - rows) * w * sizeof *im);
}

/* The spectra of the kernels for node spacing h, on the current m. */
static void kernel_spectra(et_repulsion *r, double h)
{
    size_t m = r->plan.m, w = r->w;
    ptrdiff_t strips = (ptrdiff_t)(m / w);
    float scale = 1.0f / ((float)m * (float)m); /* the inverse transform's 1 / m^2 */
    for (int pass = 0; pass < 2; pass++) {
#pragma omp parallel for schedule(dynamic, 16) if (m >= 256)
        for (ptrdiff_t ii = 0; ii < (ptrdiff_t)m; ii++) {
            size_t i = (size_t)ii;
            double dy = offset(i, m) * h;
            for (size_t j = 0; j < m; j++) {
                double dx = offset(j, m) * h, q = 1 / (1 + dx * dx + dy * dy);
                r->gre[i * m + j] = (float)(pass == 0 ? q * q * dx : q);
                r->gim[i * m + j] = (float)(pass == 0 ? q * q * dy : 0);
            }
        }
        et_fft_rows(&r->plan, r->gre, r->gim, m, m, false);
#pragma omp parallel for schedule(dynamic, 1) if (m >= 256)
        for (ptrdiff_t s = 0; s < strips; s++) {
            float *re = r->buf[omp_get_thread_num()], *im = re + m * w;
            strip_in(r, (size_t)s, m, re, im);
            et_fft_strip(&r->plan, re, im, w, false);
            size_t at = (size_t)s * m * w;
            for (size_t i = 0; i < m * w; i++) {
                if (pass == 0) {
                    r->kre[at + i] = re[i] * scale;
                    r->kim[at + i] = im[i] * scale;
                } else {
                    /* K is even in both axes, so its spectrum is real (the
                     * imaginary parts are rounding noise). */
                    r->kz[at + i] = re[i] * scale;
                }
            }
        }
    }
    r->kernel_h = h;
}

/* The Lagrange basis on the nodes 1/8, 3/8, 5/8, 7/8 (P = 4) at u in [0, 1]:
 * products of the distances to the other nodes over their values at the node
 * (-3/32, 1/32, -1/32, 3/32). */
static void lagrange(double u, double *wt)
{
    double a = u - 0.125, b = u - 0.375, c = u - 0.625, d = u - 0.875;
    wt[0] = (-32.0 / 3) * b * c * d;
    wt[1] = 32 * a * c * d;
    wt[2] = -32 * a * b * d;
    wt[3] = (32.0 / 3) * a * b * c;
}

double et_repulsion_compute(et_repulsion *r, const double *y, double *rep, et_status *rc)
{
    size_t n = r->n;
    double xmin = y[0], xmax = y[0], ymin = y[1], ymax = y[1];
    for (size_t i = 1; i < n; i++) { /* y is finite: plain comparisons will do */
        double px = y[2 * i], py = y[2 * i + 1];
        xmin = px < xmin ? px : xmin, xmax = px > xmax ? px : xmax;
        ymin = py < ymin ? py : ymin, ymax = py > ymax ? py : ymax;
    }
    double extent = fmax(fmax(xmax - xmin, ymax - ymin), 1e-9);
    /* The smallest grid whose nodes can be at most h_max apart, then the
     * smallest spacing on the ladder that covers the map. */
    size_t m = M_MIN;
    while (m < M_MAX && (double)(m / (2 * P) * P) * r->h_max < extent)
        m *= 2;
    size_t boxes = m / (2 * P), nodes = boxes * P;
    double h_raw = extent / (double)nodes, h;
    if (h_raw <= r->h_max) {
        int k = (int)floor(log2(r->h_max / h_raw) * LADDER);
        h = r->h_max * exp2(-(double)k / LADDER);
        while (h < h_raw)
            h = r->h_max * exp2(-(double)--k / LADDER);
    } else {
        h = h_raw; /* the map outgrew M_MAX */
    }
    *rc = use_m(r, m);
    if (*rc < 0)
        return 0;
    if (r->kernel_h != h)
        kernel_spectra(r, h);

    size_t w = r->w;
    double bw = P * h; /* box width */
    double x0 = (xmin + xmax) / 2 - bw * (double)boxes / 2;
    double y0 = (ymin + ymax) / 2 - bw * (double)boxes / 2;
    bool par = n >= PAR_MIN;

    /* Each point's box and place in it. */
#pragma omp parallel for schedule(dynamic, 1024) if (par)
    for (ptrdiff_t ii = 0; ii < (ptrdiff_t)n; ii++) {
        size_t i = (size_t)ii;
        double fx = (y[2 * i] - x0) / bw, fy = (y[2 * i + 1] - y0) / bw;
        double bx = fmin(fmax(floor(fx), 0), (double)boxes - 1);
        double by = fmin(fmax(floor(fy), 0), (double)boxes - 1);
        r->box[i] = (int32_t)(by * (double)boxes + bx);
        r->u[2 * i] = fx - bx, r->u[2 * i + 1] = fy - by;
    }
    /* Counting sort by box, index order within a box: the places, box by box. */
    size_t nb = boxes * boxes;
    memset(r->start, 0, (nb + 1) * sizeof *r->start);
    for (size_t i = 0; i < n; i++)
        r->start[r->box[i] + 1]++;
    for (size_t b = 0; b < nb; b++)
        r->start[b + 1] += r->start[b];
    for (size_t i = 0; i < n; i++) {
        size_t at = r->start[r->box[i]]++;
        r->su[2 * at] = r->u[2 * i], r->su[2 * at + 1] = r->u[2 * i + 1];
    }
    for (size_t b = nb; b > 0; b--)
        r->start[b] = r->start[b - 1];
    r->start[0] = 0;

    /* Spread the unit charges; each row of boxes owns P rows of nodes. */
#pragma omp parallel for schedule(dynamic, 1) if (par)
    for (ptrdiff_t brow = 0; brow < (ptrdiff_t)boxes; brow++) {
        float *rows = r->gre + (size_t)brow * P * m;
        memset(rows, 0, P * m * sizeof *rows);
        memset(r->gim + (size_t)brow * P * m, 0, P * m * sizeof *rows);
        for (size_t b = (size_t)brow * boxes; b < (size_t)(brow + 1) * boxes; b++) {
            float *at = rows + (b % boxes) * P;
            for (size_t e = r->start[b]; e < r->start[b + 1]; e++) {
                double wx[P], wy[P];
                lagrange(r->su[2 * e], wx);
                lagrange(r->su[2 * e + 1], wy);
                for (size_t a = 0; a < P; a++)
                    for (size_t c = 0; c < P; c++)
                        at[a * m + c] += (float)(wy[a] * wx[c]);
            }
        }
    }

    /* Rows forward; then per strip of columns: forward, Z's part, times the
     * force kernel, inverse; then rows inverse. */
    et_fft_rows(&r->plan, r->gre, r->gim, nodes, m, false);
    ptrdiff_t strips = (ptrdiff_t)(m / w);
#pragma omp parallel for schedule(dynamic, 1) if (m >= 256)
    for (ptrdiff_t s = 0; s < strips; s++) {
        float *re = r->buf[omp_get_thread_num()], *im = re + m * w;
        strip_in(r, (size_t)s, nodes, re, im);
        et_fft_strip(&r->plan, re, im, w, false);
        const float *kre = r->kre + (size_t)s * m * w, *kim = r->kim + (size_t)s * m * w;
        const float *kz = r->kz + (size_t)s * m * w;
        /* One partial sum per column of the strip (independent chains, so they
         * vectorise), added in column order. */
        double acc[64] = {0}, zs = 0;
        for (size_t i = 0; i < m; i++) {
            float *ar = re + i * w, *ai = im + i * w;
            const float *gr = kre + i * w, *gi = kim + i * w, *gz = kz + i * w;
            for (size_t c = 0; c < w; c++) {
                float a = ar[c], b = ai[c];
                acc[c] += (double)gz[c] * ((double)a * a + (double)b * b);
                ar[c] = a * gr[c] - b * gi[c];
                ai[c] = a * gi[c] + b * gr[c];
            }
        }
        for (size_t c = 0; c < w; c++)
            zs += acc[c];
        r->zpart[s] = zs;
        et_fft_strip(&r->plan, re, im, w, true);
        for (size_t i = 0; i < nodes; i++) {
            float *dr = r->gre + i * m + (size_t)s * w, *di = r->gim + i * m + (size_t)s * w;
            for (size_t c = 0; c < w; c++)
                dr[c] = re[i * w + c], di[c] = im[i * w + c];
        }
    }
    et_fft_rows(&r->plan, r->gre, r->gim, nodes, m, true);
    double z = -(double)n;
    for (ptrdiff_t s = 0; s < strips; s++)
        z += r->zpart[s];

        /* Read the forces back at each point. */
#pragma omp parallel for schedule(dynamic, 1024) if (par)
    for (ptrdiff_t ii = 0; ii < (ptrdiff_t)n; ii++) {
        size_t i = (size_t)ii, b = (size_t)r->box[i];
        const float *gr = r->gre + (b / boxes) * P * m + (b % boxes) * P;
        const float *gi = r->gim + (b / boxes) * P * m + (b % boxes) * P;
        double wx[P], wy[P], fx = 0, fy = 0;
        lagrange(r->u[2 * i], wx);
        lagrange(r->u[2 * i + 1], wy);
        for (size_t a = 0; a < P; a++)
            for (size_t c = 0; c < P; c++) {
                double wt = wy[a] * wx[c];
                fx += wt * gr[a * m + c], fy += wt * gi[a * m + c];
            }
        rep[2 * i] = fx;
        rep[2 * i + 1] = fy;
    }
    *rc = ET_OK;
    return z;
}

double et_repulsion_exact(const double *y, size_t n, double *rep, double *zpart)
{
#pragma omp parallel for schedule(dynamic, 64) if (n >= 512)
    for (ptrdiff_t ii = 0; ii < (ptrdiff_t)n; ii++) {
        size_t i = (size_t)ii;
        double fx = 0, fy = 0, z = 0;
        for (size_t j = 0; j < n; j++) {
            if (j == i)
                continue;
            double dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1];
            double q = 1 / (1 + dx * dx + dy * dy);
            z += q;
            fx += q * q * dx, fy += q * q * dy;
        }
        rep[2 * i] = fx, rep[2 * i + 1] = fy;
        zpart[i] = z;
    }
    double z = 0;
    for (size_t i = 0; i < n; i++)
        z += zpart[i];
    return z;
}
