/*
 * edgetrain dsp: the processing blocks, and the feature cache built with them.
 *
 * One implementation turns a decoded image into features, used by feature
 * generation, training, evaluation, the tuner and (later) the exported
 * library, so a deployed model sees exactly what it was trained on:
 *
 *   1. the input block resizes to width x height (uint8, stb_image_resize's
 *      default filter, edges clamped): squash stretches; fit-shortest crops
 *      the centre to the target aspect ratio, then scales; fit-longest scales
 *      to fit inside and pads with black, centred. An alpha channel is
 *      dropped (not composited) by the image block, kept by the raw block.
 *   2. the image block gives NHWC float32: rgb = value/255 (grey replicated);
 *      grayscale = (0.299 R + 0.587 G + 0.114 B)/255 (BT.601). The raw block
 *      gives every decoded channel times processing.scale.
 */
#ifndef EDGETRAIN_DSP_H
#define EDGETRAIN_DSP_H

#include "edgetrain/core.h"
#include "edgetrain/data.h"
#include "edgetrain/impulse.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Channels of the features for an image with in_channels channels. */
int et_dsp_channels(const et_impulse *imp, int in_channels);

/* Scratch bytes et_dsp_process needs (width * height * 4). */
size_t et_dsp_scratch_size(const et_impulse *imp);

/* Processes img into out: height * width * et_dsp_channels() floats, NHWC.
 * scratch: et_dsp_scratch_size(imp) bytes owned by the caller. */
et_status et_dsp_process(const et_impulse *imp, const et_image *img, float *out, void *scratch,
                         et_error *err);

/* ------------------------------------------------------------------------
 * Feature sets: features for every sample, for one set of input and
 * processing parameters, cached under cache/features/<key>/ as .npy files
 * that numpy can load (numpy.load(..., mmap_mode="r")):
 *   features.npy   float32 (N, height, width, channels)
 *   ids.npy        int64 (N,)  sample ids
 *   labels.npy     int32 (N,)  index into meta.json "labels"
 *   categories.npy uint8 (N,)  0 training, 1 testing
 *   hashes.npy     uint8 (N, 32) pixel hashes (rows are reused by hash)
 *   meta.json      key, shape, label names, the blocks that made them
 */
typedef struct et_features_stats {
    int64_t samples;   /* rows in the set */
    int channels;      /* channels of each row (raw block: as decoded) */
    int64_t computed;  /* rows computed now */
    int64_t reused;    /* rows copied from the previous set */
    double seconds;
    char key[65];
    char path[3200];   /* the set's folder */
} et_features_stats;

/* Brings the feature set for imp up to date with the project's samples:
 * rows of unchanged images are reused, the others computed in parallel.
 * impulse_version is recorded with the set. Interruptible (ET_EINTR: the
 * previous set, if any, is left as it was). */
et_status et_features_update(et_project *p, const et_impulse *imp, int64_t impulse_version,
                             et_features_stats *stats, et_error *err);

typedef struct et_features et_features;

/* Opens the set for imp read-only (memory-mapped). ET_ENOTFOUND when it has
 * not been generated. The set may be out of date; et_features_update first. */
et_status et_features_open(et_project *p, const et_impulse *imp, et_features **out,
                           et_error *err);
void et_features_close(et_features *f);

size_t et_features_rows(const et_features *f);
/* Shape of one row: height, width, channels. */
void et_features_shape(const et_features *f, int *height, int *width, int *channels);
const float *et_features_row(const et_features *f, size_t i);
int64_t et_features_id(const et_features *f, size_t i);
int et_features_label(const et_features *f, size_t i);
et_category et_features_category(const et_features *f, size_t i);
size_t et_features_n_labels(const et_features *f);
const char *et_features_label_name(const et_features *f, size_t label);

#ifdef __cplusplus
}
#endif
#endif
