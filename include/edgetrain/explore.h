/*
 * edgetrain explore: the math and plots behind the feature explorer. Every
 * sample's feature vector is mapped to 2-D so that a user can see whether the
 * classes separate and spot samples that sit in another class's cluster.
 *
 * A typical map: reduce the features to 50 dimensions with PCA, embed those
 * with t-SNE, and write the result as SVG (hover a dot to see its sample),
 * PNG and CSV:
 *
 *     et_error err = {0};
 *     size_t k = d < 50 ? d : 50;
 *     float *pcs = malloc(n * k * sizeof *pcs), *xy = malloc(n * 2 * sizeof *xy);
 *     et_pca_options po = et_pca_defaults();
 *     po.components = k;
 *     et_tsne_options to = et_tsne_defaults();
 *     if (et_pca(features, n, d, &po, pcs, NULL, NULL, &err) < 0 ||
 *         et_tsne(pcs, n, k, &to, xy, &err) < 0)
 *         return fprintf(stderr, "edgetrain: %s\n", err.msg), 1;
 *     et_map_point *pts = malloc(n * sizeof *pts);
 *     for (size_t i = 0; i < n; i++)
 *         pts[i] = (et_map_point){xy[2 * i], xy[2 * i + 1], label[i], id[i], path[i]};
 *     et_map_write_svg("explorer.svg", pts, n, names, n_names, "shoes: t-SNE", &err);
 *
 * Matrices are row-major float32: row i of an n x d matrix x is
 * x[i * d .. i * d + d - 1]. The caller owns every array passed in or out;
 * nothing is kept after a call returns. Results are reproducible: the same
 * input and seed give bit-identical output, whatever the OpenMP thread count.
 * Long calls poll et_interrupted() and then return ET_EINTR.
 */
#ifndef EDGETRAIN_EXPLORE_H
#define EDGETRAIN_EXPLORE_H

#include "edgetrain/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------
 * PCA. The data are centred (column means subtracted) and projected on the
 * top principal directions, found by randomized subspace iteration (Halko,
 * Martinsson & Tropp 2011) on the centred matrix without ever forming the
 * d x d covariance, so d may be large (96x96x3 = 27,648 features) and n may
 * be tens of thousands. Memory beyond x and out: O((n + d) * (k + 10)) floats.
 * Time: about 9 passes over x of n * d * (k + 10) multiply-adds each (0.7 s
 * for 10,000 x 784 to 50 components on two cores).
 *
 * Accuracy: the leading components are exact to float precision; the last
 * few of k are approximate when the spectrum is flat (Fashion-MNIST 10,000 x
 * 784, k = 50: components 1-20 match exact PCA to |cos| > 0.9999, the 50th
 * keeps 96% of its exact variance). A map needs the subspace, not the
 * trailing directions, so this is the usual trade.
 *
 * Sign convention: each principal direction is flipped so that its entry of
 * largest magnitude (the first such entry on ties) is positive.
 * Directions beyond the rank of the centred data have no variance; their
 * output columns are 0.
 */
#define ET_PCA_MAX_COMPONENTS 50

typedef struct et_pca_options {
    size_t components; /* k: output columns, 1 .. min(ET_PCA_MAX_COMPONENTS, d) */
    uint64_t seed;     /* seeds the random start of the subspace iteration */
} et_pca_options;

/* components 2, seed 1. */
et_pca_options et_pca_defaults(void);

/* Principal component scores of x.
 *   x         n x d, row-major, finite values; borrowed, not modified.
 *   n         rows (samples), at least 2.
 *   d         columns (features), at least 1.
 *   opt       options; NULL = et_pca_defaults().
 *   out       n x k, row-major, caller-allocated: out[i * k + c] is sample i's
 *             score on component c; components ordered by decreasing variance.
 *   variance  k doubles, caller-allocated, or NULL: the variance of each
 *             output column (sum of squares divided by n - 1).
 *   components  k x d floats, row-major, caller-allocated, or NULL: row c is
 *             principal direction c (unit length, or all 0 past the rank), so
 *             out[i * k + c] = sum_j (x[i * d + j] - mean_j) * components[c * d + j].
 *   err       error report, or NULL.
 * Returns ET_OK; ET_EINVAL (bad sizes, k out of range, NaN/Inf in x: the
 * message names the row); ET_ENOMEM; ET_EINTR when interrupted (out is then
 * unspecified). */
et_status et_pca(const float *x, size_t n, size_t d, const et_pca_options *opt, float *out,
                 double *variance, float *components, et_error *err);

/* ------------------------------------------------------------------------
 * t-SNE (van der Maaten & Hinton 2008; repulsion as in FIt-SNE, Linderman et
 * al. 2019). Input affinities are calibrated to the perplexity on each point's
 * 3 * perplexity exact nearest neighbours (squared Euclidean distance in the
 * input space, found by blocks of sgemm), symmetrised; the repulsive forces and
 * their normalisation are interpolated from a grid of charges convolved by FFT
 * (node spacing at most theta map units), or computed exactly for theta = 0 or
 * fewer than 512 samples.
 * Cost: O(n^2 d) multiply-adds at BLAS speed for the neighbour search and
 * O(iterations * (n + grid)) for the optimisation (Fashion-MNIST on two cores:
 * 10,000 samples in about 3 s, 70,000 in about 19 s, PCA included), so for
 * large d reduce the input to about 50 dimensions with et_pca first. Memory
 * peaks at about 170 * perplexity bytes per sample while the affinities are
 * built (360 MB for 70,000 samples at perplexity 30).
 *
 * Output is bit-identical for the same input, options and seed whatever the
 * thread count (on one build: libm's exp and log take part).
 */
typedef struct et_tsne_options {
    double perplexity;    /* effective neighbour count, >= 1; default 30.
                             Needs 3 * perplexity < n - 1. */
    double theta;         /* grid node spacing in map units, 0 (exact, O(n^2) per step) .. 1;
                             default 0.5 */
    int iterations;       /* gradient steps, >= 1; default 1000. The first 250 (or all, if
                             fewer) use early exaggeration 12 and momentum 0.5; later ones
                             momentum 0.8 */
    double learning_rate; /* > 0, or 0 = automatic: max(200, n / 12) (Belkina et al. 2019);
                             default 0 */
    uint64_t seed;        /* seeds the random initial map; default 1 */
} et_tsne_options;

/* perplexity 30, theta 0.5, iterations 1000, learning_rate 0 (auto), seed 1. */
et_tsne_options et_tsne_defaults(void);

/* A 2-D embedding of x.
 *   x    n x d, row-major, finite values; borrowed, not modified.
 *   n    rows (samples), at least 2 and more than 3 * perplexity + 1.
 *   d    columns (features), at least 1.
 *   opt  options; NULL = et_tsne_defaults().
 *   out  n x 2, row-major, caller-allocated: out[2 * i], out[2 * i + 1] are
 *        sample i's map coordinates (centred on 0; the scale has no unit).
 *   err  error report, or NULL.
 * Draws a progress bar on stderr when it is a terminal (see et_progress).
 * Returns ET_OK; ET_EINVAL (n < 2, perplexity too large for n, options out of
 * range, NaN/Inf in x: the message names the row and says what to do; or an
 * explicit learning rate so large that the map diverged); ET_ENOMEM; ET_EINTR
 * when interrupted (out is then unspecified). */
et_status et_tsne(const float *x, size_t n, size_t d, const et_tsne_options *opt, float *out,
                  et_error *err);

/* ------------------------------------------------------------------------
 * Writing a map. Each point has a position, a label and the sample it stands
 * for. Every writer writes atomically (a temporary file renamed over path),
 * so an interrupted write leaves any old file at path whole.
 *
 * Labels: 0 .. n_labels - 1 index label_names; a negative label means
 * "unlabelled" (drawn light grey, listed last in the legend). Colours come
 * from a fixed palette of 12 qualitative colours, label c gets colour
 * c % 12. Dots are drawn in a fixed pseudo-random order (not by label), so
 * that no class is systematically hidden under another.
 *
 * Common parameters:
 *   path         file to write (replaced if it exists).
 *   pts          n points; borrowed. x and y must be finite (any range: the
 *                map is scaled to fit, keeping the aspect ratio).
 *   label_names  n_labels NUL-terminated UTF-8 names, or NULL to show the
 *                label numbers; borrowed.
 *   title        UTF-8 text above the map, or NULL for none; borrowed.
 *   err          error report, or NULL.
 * Return ET_OK; ET_EINVAL (a label >= n_labels, a non-finite coordinate: the
 * message names the point); ET_ENOMEM; ET_EIO (the file cannot be written).
 */
typedef struct et_map_point {
    float x, y;         /* map coordinates (e.g. from et_tsne) */
    int label;          /* index into label_names, negative = unlabelled */
    int64_t id;         /* sample id, shown on hover and in the CSV */
    const char *source; /* where the sample came from (file name), or NULL; borrowed */
} et_map_point;

/* SVG scatter plot: one <circle> per point with a <title> child
 * "id N · label · source" (the browser shows it on hover), a legend with
 * each label's name, colour and point count, and the title. All text is
 * XML-escaped. */
et_status et_map_write_svg(const char *path, const et_map_point *pts, size_t n,
                           const char *const *label_names, size_t n_labels, const char *title,
                           et_error *err);

/* PNG of the same scatter plot, width_px x height_px RGB pixels (each 64 ..
 * 8192), dots as small anti-aliased discs, title and legend drawn with a
 * built-in ASCII bitmap font (other characters show as '?'). Legend entries
 * that do not fit are summarised as "... N more". */
et_status et_map_write_png(const char *path, const et_map_point *pts, size_t n,
                           const char *const *label_names, size_t n_labels, const char *title,
                           int width_px, int height_px, et_error *err);

/* CSV: a header line "id,label,source,x,y", then one line per point in input
 * order: the id, the label's name (empty when unlabelled), the source (empty
 * when NULL), and the coordinates (shortest form that reads back as the same
 * float32). Fields holding a comma, quote, CR or LF are quoted as in
 * RFC 4180 ("" for a quote); lines end with LF. */
et_status et_map_write_csv(const char *path, const et_map_point *pts, size_t n,
                           const char *const *label_names, size_t n_labels, et_error *err);

/* ------------------------------------------------------------------------
 * The feature explorer: every sample of a feature set (or a stratified,
 * seeded subset of at most limit samples) mapped to 2-D.
 */
typedef struct et_features et_features; /* see edgetrain/dsp.h */
typedef struct et_project et_project;   /* see edgetrain/store.h */

typedef enum et_explore_method { ET_EXPLORE_TSNE = 0, ET_EXPLORE_PCA = 1 } et_explore_method;

/* Maps the selected rows of f to vectors to explore instead of the features
 * themselves (e.g. a trained model's penultimate layer): *out receives
 * n x *dims floats, malloc'ed (the explorer frees it). */
typedef et_status (*et_embed_fn)(void *ctx, const et_features *f, const size_t *rows, size_t n,
                                 float **out, size_t *dims, et_error *err);

typedef struct et_explore_options {
    et_explore_method method; /* t-SNE after PCA to <= 50 dimensions, or PCA to 2 */
    int category;             /* ET_TRAINING, ET_TESTING or ET_CATEGORY_NONE (both) */
    size_t limit;             /* at most this many samples, each label's share in proportion
                                 (largest remainder); 0 = all */
    int64_t seed;             /* subset, PCA and t-SNE seed */
    double perplexity;        /* t-SNE; lowered automatically for small sets */
    int iterations;           /* t-SNE */
    et_embed_fn embed;        /* NULL: explore the features themselves */
    void *embed_ctx;
} et_explore_options;

/* t-SNE, all categories, limit 5000, seed 1, perplexity 30, 1000 iterations. */
et_explore_options et_explore_defaults(void);

typedef struct et_explore_result {
    et_map_point *points; /* n points; sources live in arena */
    size_t n;
    size_t dimensions;    /* features per sample before reduction */
    double perplexity;    /* the perplexity used (t-SNE) */
    et_arena arena;
} et_explore_result;

/* Maps the samples of f (an open feature set of project p). ET_EINVAL when
 * fewer than 5 samples are selected. Release out with et_explore_result_free. */
et_status et_explore_run(et_project *p, const et_features *f, const et_explore_options *opt,
                         et_explore_result *out, et_error *err);
void et_explore_result_free(et_explore_result *r);

#ifdef __cplusplus
}
#endif
#endif
