/*
 * edgetrain impulse: what turns an image into a prediction. An input block
 * (size, resize mode), a processing block (RGB or grayscale image, or raw
 * pixels) and a learning block (a small conv net, or MobileNetV1/V2 transfer
 * learning). Stored as JSON, versioned in the project:
 *
 *     {"input":      {"type": "image", "width": 96, "height": 96, "resize": "squash"},
 *      "processing": {"type": "image", "color": "grayscale"},
 *      "learning":   {"type": "transfer", "model": "mobilenetv2", "alpha": 0.35,
 *                     "head_neurons": 16, "dropout": 0.1, "epochs": 20,
 *                     "learning_rate": 0.0005, "batch_size": 32,
 *                     "validation_split": 0.2, "augment": false, "seed": 1}}
 *
 *     et_impulse imp;
 *     et_impulse_current(p, &imp, &version, &err);     // stored, or the default for the data
 *     et_impulse_set(&imp, "input.width=64", &err);      // validated: err names key, value, allowed
 *     et_impulse_save_version(p, &imp, "set input.width=64", &version, &err);
 *
 * Every field is checked where it enters; errors name the key, the value and
 * what is allowed.
 */
#ifndef EDGETRAIN_IMPULSE_H
#define EDGETRAIN_IMPULSE_H

#include "edgetrain/core.h"
#include "edgetrain/store.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ET_INPUT_MIN 8
#define ET_INPUT_MAX 512
#define ET_TRANSFER_INPUT_MIN 32
#define ET_TRANSFER_INPUT_MAX 224
#define ET_MAX_CONV_LAYERS 8
#define ET_MAX_DENSE_LAYERS 4

/* How the learning rate moves over a training run. */
typedef enum et_lr_schedule {
    ET_SCHEDULE_CONSTANT = 0, /* the same rate throughout */
    ET_SCHEDULE_COSINE = 1,   /* decayed to 0 along a half cosine over all steps (the default) */
} et_lr_schedule;

typedef enum et_resize_mode {
    ET_RESIZE_SQUASH = 0,       /* stretch to width x height */
    ET_RESIZE_FIT_SHORTEST = 1, /* scale the short side to fit, centre crop the long side */
    ET_RESIZE_FIT_LONGEST = 2,  /* scale the long side to fit, pad the short side with black */
} et_resize_mode;

typedef enum et_processing_type { ET_PROCESSING_IMAGE = 0, ET_PROCESSING_RAW = 1 } et_processing_type;
typedef enum et_color { ET_COLOR_RGB = 0, ET_COLOR_GRAYSCALE = 1 } et_color;
typedef enum et_model_kind {
    ET_MODEL_CONV = 0,        /* learning.type "conv" */
    ET_MODEL_MOBILENETV1 = 1, /* learning.type "transfer", model "mobilenetv1" */
    ET_MODEL_MOBILENETV2 = 2, /* learning.type "transfer", model "mobilenetv2" */
} et_model_kind;

typedef struct et_conv_layer {
    int filters; /* 1..1024 */
    int kernel;  /* 1..7, square; each conv layer is followed by ReLU and MaxPool 2 */
} et_conv_layer;

typedef struct et_impulse {
    /* input */
    int width, height;         /* pixels, ET_INPUT_MIN..ET_INPUT_MAX */
    et_resize_mode resize;
    /* processing */
    et_processing_type processing;
    et_color color;            /* image block */
    double raw_scale;          /* raw block: feature = pixel * raw_scale */
    /* learning */
    et_model_kind model;
    double alpha;              /* MobileNet width multiplier */
    int head_neurons;          /* transfer head: Dense(head_neurons) -> Dropout -> Dense(classes); 0 = none */
    int n_conv;
    et_conv_layer conv[ET_MAX_CONV_LAYERS];
    int n_dense;
    int dense[ET_MAX_DENSE_LAYERS]; /* conv net: hidden dense layers before the classifier */
    bool batch_norm;           /* conv net: batch norm after each conv (the conv then has no
                                  bias); folded into the conv on the device */
    double dropout;            /* 0..0.9 */
    int epochs;                /* 1..1000 */
    double learning_rate;      /* (0, 1] */
    et_lr_schedule schedule;   /* an impulse stored without it (written before it existed)
                                  reads as constant: how it was trained then */
    int batch_size;            /* 1..1024 */
    double validation_split;   /* 0.05..0.5 */
    bool augment;
    int64_t seed;
} et_impulse;

/* The default impulse for a project's data (DESIGN.md): input = the most
 * common training image size when both sides are <= 96 px, else 96x96;
 * squash; grayscale when every sample has one channel, else rgb; the default
 * conv net, 30 epochs, learning rate 0.002 with cosine decay, batch 32,
 * validation 0.2 (DESIGN.md's 20 epochs at a constant 0.0005 left the conv
 * net short of issue 3's accuracy target: docs/BENCHMARKS.md). */
et_status et_impulse_default_for(et_project *p, et_impulse *out, et_error *err);
/* The same without data: 96x96 rgb. */
et_impulse et_impulse_defaults(void);

/* Sets imp's learning block to model. From a MobileNet to a conv net, the
 * default conv net's architecture (32 3x3, 16 3x3, no dense layer, no batch
 * norm, dropout 0.25); from a conv net to a MobileNet, alpha 0.35, a
 * 16-neuron head, dropout 0.1; otherwise the architecture is kept. Training
 * settings are left alone ('impulse set learning.model=' also resets them). */
void et_impulse_switch_architecture(et_impulse *imp, et_model_kind model);

/* Parses and validates impulse JSON (text of n bytes; name is used in
 * messages, e.g. the file name). Missing fields take their defaults. */
et_status et_impulse_from_json(const char *text, size_t n, const char *name, et_impulse *out,
                               et_error *err);
/* Reads and validates an impulse JSON file (at most 1 MiB). */
et_status et_impulse_load_file(const char *path, et_impulse *out, et_error *err);

/* Canonical JSON of an impulse (every field, fixed key order), malloc'ed;
 * NULL when out of memory. pretty: indented. */
char *et_impulse_to_json(const et_impulse *imp, bool pretty);

/* Applies one "key=value" (e.g. "input.width=64", "learning.model=mobilenetv2",
 * "learning.conv_layers=[{\"filters\":8,\"kernel\":3}]" or "learning.conv_layers=8:3,16:3")
 * and validates the result. On error imp is unchanged. */
et_status et_impulse_set(et_impulse *imp, const char *assignment, et_error *err);

/* Checks every field and the combination (e.g. input too small for the model). */
et_status et_impulse_validate(const et_impulse *imp, et_error *err);

/* Hash of what determines the features (input + processing blocks): 64 hex digits. */
void et_impulse_features_key(const et_impulse *imp, char out[65]);

/* Channels the processing block produces (1 or 3; raw: 0 = as decoded). */
int et_impulse_channels(const et_impulse *imp);

/* Names for enums ("squash", "grayscale", "mobilenetv2", ...). */
const char *et_resize_name(et_resize_mode m);
const char *et_model_name(et_model_kind k);
const char *et_lr_schedule_name(et_lr_schedule s); /* "constant", "cosine" */
/* The widths (alpha) offered for a MobileNet (Keras' list): sets *list and
 * returns how many; 0 for a model without one. */
size_t et_model_alphas(et_model_kind k, const double **list);

/* ------------------------------------------------------------------------
 * Versions in the project. Version numbers start at 1 and only grow; a
 * revert stores the old impulse again as a new version.
 */

/* The newest stored impulse (*version >= 1), or when none is stored the
 * default for the data (*version = 0). */
et_status et_impulse_current(et_project *p, et_impulse *out, int64_t *version, et_error *err);
/* The current impulse, stored: when none is stored yet, the default for the
 * data is stored as version 1 (with note). ET_EINVAL when the project has no
 * samples yet (the default would not reflect any data). */
et_status et_impulse_current_stored(et_project *p, et_impulse *out, int64_t *version,
                                    const char *note, et_error *err);
/* One stored version. ET_ENOTFOUND when there is none. */
et_status et_impulse_get_version(et_project *p, int64_t version, et_impulse *out, et_error *err);
/* Stores imp as a new version with a note; marks feature sets made from
 * other processing parameters as stale. */
et_status et_impulse_save_version(et_project *p, const et_impulse *imp, const char *note,
                                  int64_t *version, et_error *err);

typedef struct et_impulse_version {
    int64_t version;
    char created_at[32];
    char note[256];
    char json[4096];
} et_impulse_version;

typedef int (*et_impulse_version_fn)(void *ctx, const et_impulse_version *v);
/* Visits the stored versions, oldest first. */
et_status et_impulse_history(et_project *p, et_impulse_version_fn fn, void *ctx, et_error *err);

#ifdef __cplusplus
}
#endif
#endif
