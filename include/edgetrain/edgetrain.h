/*
 * edgetrain: train image classifiers for microcontrollers on your own machine.
 *
 * A worked example: create a project, import a folder of class sub-folders,
 * and print how many samples each label has.
 *
 *     #include <edgetrain/edgetrain.h>
 *
 *     et_error err = {0};
 *     et_project *p = NULL;
 *     if (et_project_init("shoes", &err) < 0 || et_project_open("shoes", &p, &err) < 0)
 *         return fprintf(stderr, "%s\n", err.msg), 1;
 *     et_import_options opt = et_import_defaults();
 *     et_import_result res;
 *     const char *paths[] = {"photos"};           // photos/boot/ and photos/sandal/ hold JPEGs
 *     et_import(p, paths, 1, &opt, NULL, NULL, &res, &err);
 *     et_data_report *r = NULL;
 *     if (et_data_report_create(p, false, &r, &err) == 0) {
 *         for (size_t i = 0; i < r->n_labels; i++)
 *             printf("%s: %lld training, %lld testing\n", r->labels[i].label,
 *                    (long long)r->labels[i].training, (long long)r->labels[i].testing);
 *         et_data_report_destroy(r);
 *     }
 *     et_project_close(p);
 *
 * Modules: core.h (status, arena, log, progress), store.h (projects and
 * samples), data.h (decoding, import, the data report), impulse.h (the
 * impulse and its versions), dsp.h (processing blocks, the feature cache).
 */
#ifndef EDGETRAIN_H
#define EDGETRAIN_H

#include "edgetrain/core.h"
#include "edgetrain/data.h"
#include "edgetrain/dsp.h"
#include "edgetrain/explore.h"
#include "edgetrain/impulse.h"
#include "edgetrain/metrics.h"
#include "edgetrain/net.h"
#include "edgetrain/nn.h"
#include "edgetrain/profile.h"
#include "edgetrain/store.h"
#include "edgetrain/train.h"
#include "edgetrain/tune.h"

#define ET_VERSION_STRING "0.1.0"

#endif
