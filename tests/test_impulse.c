/* impulse: defaults, JSON, assignments, validation messages, versions. */
#include "testutil.h"

#include "edgetrain/train.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static et_status set(et_impulse *imp, const char *a, et_error *err)
{
    return et_impulse_set(imp, a, err);
}

Test(impulse, defaults_match_the_design)
{
    et_impulse imp = et_impulse_defaults();
    cr_assert_eq(imp.width, 96);
    cr_assert_eq(imp.resize, ET_RESIZE_SQUASH);
    cr_assert_eq(imp.model, ET_MODEL_CONV);
    cr_assert_eq(imp.n_conv, 2);
    cr_assert_eq(imp.conv[0].filters, 32);
    cr_assert_eq(imp.conv[1].filters, 16);
    cr_assert_float_eq(imp.dropout, 0.25, 1e-12);
    cr_assert_eq(imp.epochs, 30);
    cr_assert_float_eq(imp.learning_rate, 0.002, 1e-12);
    cr_assert_eq(imp.batch_size, 32);
    cr_assert_float_eq(imp.validation_split, 0.2, 1e-12);
    et_error err = {0};
    cr_assert_eq(et_impulse_validate(&imp, &err), 0, "%s", err.msg);
}

/* The training defaults that go with the impulse's: Adam at learning.learning_rate,
 * decayed to 0 by a cosine over all steps (docs/BENCHMARKS.md, Fashion-MNIST). */
Test(impulse, training_defaults_decay_the_rate)
{
    et_impulse imp = et_impulse_defaults();
    cr_assert_eq(imp.schedule, ET_SCHEDULE_COSINE);
    et_train_options o = et_train_defaults();
    cr_assert_eq(o.schedule, -1, "the impulse's schedule");
    cr_assert_eq(o.optimizer, ET_OPT_ADAM);
    cr_assert_float_eq(o.label_smoothing, 0.0, 1e-12, "smoothing would spoil best-by-loss");
    cr_assert_eq(o.epochs, 0, "the impulse's epochs");
    cr_assert_float_eq(o.learning_rate, 0.0, 1e-12, "the impulse's learning rate");
}

Test(impulse, json_round_trip_is_canonical)
{
    const char *text = "{\"input\": {\"width\": 96, \"height\": 80, \"resize\": \"fit-shortest\"},"
                       " \"processing\": {\"type\": \"image\", \"color\": \"grayscale\"},"
                       " \"learning\": {\"alpha\": 0.35, \"type\": \"transfer\", \"model\": \"mobilenetv2\","
                       " \"head_neurons\": 16, \"dropout\": 0.1, \"epochs\": 20, \"augment\": true}}";
    et_impulse imp;
    et_error err = {0};
    cr_assert_eq(et_impulse_from_json(text, strlen(text), "t.json", &imp, &err), 0, "%s", err.msg);
    cr_assert_eq(imp.model, ET_MODEL_MOBILENETV2);
    cr_assert_eq(imp.height, 80);
    cr_assert_eq(imp.resize, ET_RESIZE_FIT_SHORTEST);
    cr_assert(imp.augment);
    char *a = et_impulse_to_json(&imp, false);
    cr_assert(strstr(a, "\"alpha\":0.35,"), "short decimals, not 0.3499999...: %s", a);
    et_impulse back;
    cr_assert_eq(et_impulse_from_json(a, strlen(a), "a", &back, &err), 0, "%s", err.msg);
    char *b = et_impulse_to_json(&back, false);
    cr_assert_str_eq(a, b);
    free(a);
    free(b);
}

Test(impulse, the_schedule_is_stored_and_old_impulses_keep_a_constant_rate)
{
    et_impulse imp = et_impulse_defaults(), back;
    et_error err = {0};
    char *a = et_impulse_to_json(&imp, false);
    cr_assert(strstr(a, "\"schedule\":\"cosine\""), "%s", a);
    cr_assert_eq(et_impulse_from_json(a, strlen(a), "a", &back, &err), 0, "%s", err.msg);
    cr_assert_eq(back.schedule, ET_SCHEDULE_COSINE);
    free(a);
    /* An impulse written before the key existed trained at a constant rate. */
    const char *old = "{\"learning\": {\"epochs\": 20, \"learning_rate\": 0.0005}}";
    cr_assert_eq(et_impulse_from_json(old, strlen(old), "old", &back, &err), 0, "%s", err.msg);
    cr_assert_eq(back.schedule, ET_SCHEDULE_CONSTANT);
    cr_assert_eq(et_impulse_set(&back, "learning.schedule=cosine", &err), 0, "%s", err.msg);
    cr_assert_eq(back.schedule, ET_SCHEDULE_COSINE);
    cr_assert_eq(et_impulse_set(&back, "learning.schedule=step", &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "learning.schedule") && strstr(err.msg, "constant|cosine"), "%s",
              err.msg);
    cr_assert_eq(back.schedule, ET_SCHEDULE_COSINE, "a refused value changes nothing");
}

Test(impulse, json_errors_name_the_place)
{
    et_impulse imp;
    et_error err = {0};
    const char *bad = "{\"input\": {\"width\": 96,,}}";
    cr_assert_eq(et_impulse_from_json(bad, strlen(bad), "imp.json", &imp, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "imp.json:1:"), "line and column: %s", err.msg);
    const char *unknown = "{\"input\": {\"colour\": \"rgb\"}}";
    cr_assert_eq(et_impulse_from_json(unknown, strlen(unknown), "imp.json", &imp, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "input.colour") && strstr(err.msg, "width"), "%s", err.msg);
    const char *block = "{\"output\": {}}";
    cr_assert_eq(et_impulse_from_json(block, strlen(block), "imp.json", &imp, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "'output'"), "%s", err.msg);
    const char *dup = "{\"input\": {\"width\": 32, \"width\": 64}}";
    cr_assert_eq(et_impulse_from_json(dup, strlen(dup), "imp.json", &imp, &err), ET_EINVAL);
    cr_assert_eq(et_impulse_from_json("[1]", 3, "imp.json", &imp, &err), ET_EINVAL);
}

Test(impulse, assignments_and_their_errors)
{
    et_impulse imp = et_impulse_defaults();
    et_error err = {0};
    cr_assert_eq(set(&imp, "input.width=64", &err), 0, "%s", err.msg);
    cr_assert_eq(imp.width, 64);
    cr_assert_eq(set(&imp, "input.width=4", &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "input.width=4") && strstr(err.msg, "8..512"), "%s", err.msg);
    cr_assert_eq(imp.width, 64, "a failed assignment changes nothing");
    cr_assert_eq(set(&imp, "input.width=abc", &err), ET_EINVAL);
    cr_assert_eq(set(&imp, "input.width=64.5", &err), ET_EINVAL);
    cr_assert_eq(set(&imp, "input.resize=stretch", &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "squash|fit-shortest|fit-longest"), "%s", err.msg);
    cr_assert_eq(set(&imp, "processing.color=grayscale", &err), 0);
    cr_assert_eq(set(&imp, "processing.scale=2", &err), ET_EINVAL, "scale is for the raw block");
    cr_assert(strstr(err.msg, "raw"), "%s", err.msg);
    cr_assert_eq(set(&imp, "learning.alpha=0.35", &err), ET_EINVAL, "alpha is for transfer");
    cr_assert_eq(set(&imp, "nonsense", &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "block.key=value"), "%s", err.msg);
    cr_assert_eq(set(&imp, "model.alpha=1", &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "unknown block 'model'"), "%s", err.msg);
    cr_assert_eq(set(&imp, "learning.conv_layers=8:3,16:5,32:3", &err), 0, "%s", err.msg);
    cr_assert_eq(imp.n_conv, 3);
    cr_assert_eq(imp.conv[1].kernel, 5);
    cr_assert_eq(set(&imp, "learning.conv_layers=[{\"filters\":4,\"kernel\":3}]", &err), 0, "%s",
                 err.msg);
    cr_assert_eq(imp.n_conv, 1);
    cr_assert_eq(set(&imp, "learning.conv_layers=8:9", &err), ET_EINVAL);
    cr_assert_eq(set(&imp, "learning.dense_layers=64,32", &err), 0, "%s", err.msg);
    cr_assert_eq(imp.n_dense, 2);
    cr_assert_eq(set(&imp, "learning.batch_norm=true", &err), 0, "%s", err.msg);
    cr_assert(imp.batch_norm);
    char *j = et_impulse_to_json(&imp, false);
    cr_assert(strstr(j, "\"batch_norm\":true"), "%s", j);
    et_impulse back;
    cr_assert_eq(et_impulse_from_json(j, strlen(j), "j", &back, &err), 0, "%s", err.msg);
    cr_assert(back.batch_norm);
    free(j);
    cr_assert_eq(set(&imp, "learning.batch_norm=1", &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "true or false"), "%s", err.msg);
    cr_assert_eq(set(&imp, "learning.augment=yes", &err), ET_EINVAL);
    cr_assert_eq(set(&imp, "learning.augment=true", &err), 0);
    cr_assert_eq(set(&imp, "learning.learning_rate=0", &err), ET_EINVAL);
}

Test(impulse, switching_models_and_cross_checks)
{
    et_impulse imp = et_impulse_defaults();
    et_error err = {0};
    cr_assert_eq(set(&imp, "learning.model=mobilenetv2", &err), 0, "%s", err.msg);
    cr_assert_eq(imp.model, ET_MODEL_MOBILENETV2);
    cr_assert_float_eq(imp.alpha, 0.35, 1e-12);
    cr_assert_eq(imp.head_neurons, 16);
    cr_assert_float_eq(imp.dropout, 0.1, 1e-12);
    /* The transfer block trains 20 epochs at 0.0005 with augmentation. */
    cr_assert_eq(imp.epochs, 20);
    cr_assert_float_eq(imp.learning_rate, 0.0005, 1e-12);
    cr_assert(imp.augment);
    cr_assert_eq(et_impulse_validate(&imp, &err), 0, "%s", err.msg);
    cr_assert_eq(set(&imp, "learning.alpha=0.25", &err), 0);
    cr_assert_eq(et_impulse_validate(&imp, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "0.25") && strstr(err.msg, "mobilenetv2") && strstr(err.msg, "0.05"),
              "%s", err.msg);
    cr_assert_eq(set(&imp, "learning.model=mobilenetv1", &err), 0);
    cr_assert_eq(et_impulse_validate(&imp, &err), 0, "0.25 is a MobileNetV1 alpha: %s", err.msg);
    cr_assert_eq(set(&imp, "input.width=28", &err), 0);
    cr_assert_eq(et_impulse_validate(&imp, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "28x96") && strstr(err.msg, "32..224"), "%s", err.msg);
    /* Back to a conv net: its defaults return; 3 conv layers need 8 px. */
    cr_assert_eq(set(&imp, "learning.type=conv", &err), 0);
    cr_assert_eq(imp.model, ET_MODEL_CONV);
    cr_assert_eq(imp.n_conv, 2);
    et_impulse d = et_impulse_defaults();
    cr_assert(imp.epochs == d.epochs && imp.learning_rate == d.learning_rate && !imp.augment,
              "the conv net's training returns");
    /* A setting after the switch is kept; MobileNet to MobileNet keeps them. */
    cr_assert_eq(set(&imp, "learning.model=mobilenetv2", &err), 0);
    cr_assert_eq(set(&imp, "learning.augment=false", &err), 0);
    cr_assert_eq(set(&imp, "learning.model=mobilenetv1", &err), 0);
    cr_assert(!imp.augment);
    cr_assert_eq(set(&imp, "learning.batch_norm=true", &err), ET_EINVAL, "conv only");
    cr_assert(strstr(err.msg, "learning.model=conv"), "%s", err.msg);
    cr_assert_eq(set(&imp, "learning.type=conv", &err), 0);
    cr_assert_eq(set(&imp, "input.width=8", &err), 0);
    cr_assert_eq(set(&imp, "learning.conv_layers=8:3,8:3,8:3,8:3", &err), 0);
    cr_assert_eq(et_impulse_validate(&imp, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "too small for 4 conv layers") && strstr(err.msg, "16 px"), "%s",
              err.msg);
}

Test(impulse, features_key_ignores_the_learning_block)
{
    et_impulse a = et_impulse_defaults(), b = a;
    et_error err = {0};
    char ka[65], kb[65];
    cr_assert_eq(set(&b, "learning.epochs=3", &err), 0);
    et_impulse_features_key(&a, ka);
    et_impulse_features_key(&b, kb);
    cr_assert_str_eq(ka, kb);
    cr_assert_eq(set(&b, "processing.color=grayscale", &err), 0);
    et_impulse_features_key(&b, kb);
    cr_assert_str_neq(ka, kb);
}

Test(impulse, default_follows_the_data_and_versions_are_kept)
{
    const char *dir = tu_tmpdir();
    for (int i = 0; i < 6; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "in/a/%d.png", i);
        tu_image(tu_path(dir, rel), "png", i < 4 ? 28 : 40, i < 4 ? 20 : 40, 1, i);
    }
    const char *proj = tu_path(dir, "proj");
    et_error err = {0};
    cr_assert_eq(et_project_init(proj, &err), 0);
    et_project *p = tu_open(proj);
    et_impulse imp;
    int64_t version = -1;
    cr_assert_eq(et_impulse_current(p, &imp, &version, &err), 0, "%s", err.msg);
    cr_assert_eq(version, 0);
    cr_assert_eq(imp.width, 96, "no samples: 96x96");
    et_import_options opt = et_import_defaults();
    opt.category = ET_TRAINING;
    et_import_result res;
    const char *paths[] = {tu_path(dir, "in")};
    cr_assert_eq(et_import(p, paths, 1, &opt, NULL, NULL, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(et_impulse_current(p, &imp, &version, &err), 0);
    cr_assert_eq(imp.width, 28, "the most common training size");
    cr_assert_eq(imp.height, 20);
    cr_assert_eq(imp.color, ET_COLOR_GRAYSCALE);

    int64_t v1 = 0, v2 = 0, v3 = 0;
    cr_assert_eq(et_impulse_save_version(p, &imp, "first", &v1, &err), 0, "%s", err.msg);
    cr_assert_eq(set(&imp, "input.width=32", &err), 0);
    cr_assert_eq(et_impulse_save_version(p, &imp, "second", &v2, &err), 0);
    et_impulse old;
    cr_assert_eq(et_impulse_get_version(p, v1, &old, &err), 0);
    cr_assert_eq(et_impulse_save_version(p, &old, "revert", &v3, &err), 0);
    cr_assert_eq(v3, 3);
    cr_assert_eq(et_impulse_current(p, &imp, &version, &err), 0);
    cr_assert_eq(version, 3);
    cr_assert_eq(imp.width, 28);
    cr_assert_eq(et_impulse_get_version(p, 99, &old, &err), ET_ENOTFOUND);
    et_impulse bad = imp;
    bad.width = 2;
    cr_assert_eq(et_impulse_save_version(p, &bad, "bad", &v3, &err), ET_EINVAL);
    et_project_close(p);
}
