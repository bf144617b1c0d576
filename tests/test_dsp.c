/* dsp: resize modes, colour conversion, the raw block, and the feature cache. */
#include "testutil.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static float *process(const et_impulse *imp, const et_image *img, int *channels)
{
    *channels = et_dsp_channels(imp, img->channels);
    float *out = calloc((size_t)imp->width * imp->height * *channels, sizeof *out);
    void *scratch = malloc(et_dsp_scratch_size(imp));
    et_error err = {0};
    cr_assert_eq(et_dsp_process(imp, img, out, scratch, &err), 0, "%s", err.msg);
    free(scratch);
    return out;
}

Test(dsp, same_size_squash_is_exact_and_colour_follows_bt601)
{
    uint8_t px[2 * 2 * 3] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30};
    et_image img = {2, 2, 3, px};
    et_impulse imp = et_impulse_defaults();
    imp.width = imp.height = 2;
    int c = 0;
    float *rgb = process(&imp, &img, &c);
    cr_assert_eq(c, 3);
    for (int i = 0; i < 12; i++)
        cr_assert_float_eq(rgb[i], px[i] / 255.0f, 1e-7, "value %d", i);
    free(rgb);
    imp.color = ET_COLOR_GRAYSCALE;
    float *grey = process(&imp, &img, &c);
    cr_assert_eq(c, 1);
    cr_assert_float_eq(grey[0], 0.299f, 1e-6);
    cr_assert_float_eq(grey[1], 0.587f, 1e-6);
    cr_assert_float_eq(grey[2], 0.114f, 1e-6);
    cr_assert_float_eq(grey[3], (0.299f * 10 + 0.587f * 20 + 0.114f * 30) / 255.0f, 1e-6);
    free(grey);
}

Test(dsp, grey_input_to_rgb_and_alpha_dropped)
{
    uint8_t ga[2] = {200, 7}; /* one grey + alpha pixel */
    et_image img = {1, 1, 2, ga};
    et_impulse imp = et_impulse_defaults();
    imp.width = imp.height = 1;
    int c = 0;
    float *rgb = process(&imp, &img, &c);
    cr_assert_eq(c, 3);
    for (int k = 0; k < 3; k++)
        cr_assert_float_eq(rgb[k], 200 / 255.0f, 1e-7);
    free(rgb);
    imp.processing = ET_PROCESSING_RAW;
    imp.raw_scale = 0.5;
    float *raw = process(&imp, &img, &c);
    cr_assert_eq(c, 2, "the raw block keeps every channel");
    cr_assert_float_eq(raw[0], 100.0f, 1e-6);
    cr_assert_float_eq(raw[1], 3.5f, 1e-6);
    free(raw);
}

/* A 40x20 picture: left half black, right half white. */
static et_image halves(void)
{
    et_image img = {40, 20, 1, malloc(800)};
    for (int y = 0; y < 20; y++)
        for (int x = 0; x < 40; x++)
            img.pixels[y * 40 + x] = x < 20 ? 0 : 255;
    return img;
}

Test(dsp, resize_modes_crop_and_pad_the_right_parts)
{
    et_image img = halves();
    et_impulse imp = et_impulse_defaults();
    imp.color = ET_COLOR_GRAYSCALE;
    imp.width = imp.height = 10;
    int c = 0;
    /* fit-longest: scaled to 10x5 and centred, black bands top and bottom. */
    imp.resize = ET_RESIZE_FIT_LONGEST;
    float *pad = process(&imp, &img, &c);
    for (int x = 0; x < 10; x++) {
        cr_assert_float_eq(pad[0 * 10 + x], 0.0f, 1e-6, "top band, x %d", x);
        cr_assert_float_eq(pad[9 * 10 + x], 0.0f, 1e-6, "bottom band, x %d", x);
    }
    cr_assert_gt(pad[5 * 10 + 9], 0.9f, "the image's white right edge is inside");
    free(pad);
    /* fit-shortest: the centre 20x20 crop holds 10 black then 10 white columns. */
    imp.resize = ET_RESIZE_FIT_SHORTEST;
    float *crop = process(&imp, &img, &c);
    cr_assert_float_eq(crop[5 * 10 + 0], 0.0f, 1e-6);
    cr_assert_float_eq(crop[5 * 10 + 9], 1.0f, 1e-6);
    cr_assert(crop[5 * 10 + 4] < 0.2f && crop[5 * 10 + 5] > 0.8f, "the edge stays in the middle");
    free(crop);
    /* squash: both halves, stretched. */
    imp.resize = ET_RESIZE_SQUASH;
    float *sq = process(&imp, &img, &c);
    cr_assert_float_eq(sq[0], 0.0f, 1e-6);
    cr_assert_float_eq(sq[9], 1.0f, 1e-6);
    free(sq);
    free(img.pixels);
}

Test(dsp, bad_images_are_refused)
{
    et_impulse imp = et_impulse_defaults();
    et_image empty = {0, 0, 3, NULL};
    float out[1];
    char scratch[16];
    et_error err = {0};
    cr_assert_eq(et_dsp_process(&imp, &empty, out, scratch, &err), ET_EINVAL);
}

static const char *project_with_images(const char *dir, int n)
{
    for (int i = 0; i < n; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "in/%s/%02d.png", i % 2 ? "odd" : "even", i);
        tu_image(tu_path(dir, rel), "png", 12, 9, 3, 300 + i);
    }
    const char *proj = tu_path(dir, "proj");
    et_error err = {0};
    cr_assert_eq(et_project_init(proj, &err), 0);
    et_project *p = tu_open(proj);
    et_import_result res;
    const char *paths[] = {tu_path(dir, "in")};
    et_import_options opt = et_import_defaults();
    cr_assert_eq(et_import(p, paths, 1, &opt, NULL, NULL, &res, &err), 0, "%s", err.msg);
    et_project_close(p);
    return proj;
}

Test(features, cache_matches_direct_processing_and_reuses_rows)
{
    const char *dir = tu_tmpdir();
    const char *proj = project_with_images(dir, 10);
    et_project *p = tu_open(proj);
    et_impulse imp = et_impulse_defaults();
    imp.width = 16;
    imp.height = 8;
    imp.resize = ET_RESIZE_FIT_LONGEST;
    et_features_stats st;
    et_error err = {0};
    cr_assert_eq(et_features_update(p, &imp, 1, &st, &err), 0, "%s", err.msg);
    cr_assert_eq(st.samples, 10);
    cr_assert_eq(st.computed, 10);
    et_features *f = NULL;
    cr_assert_eq(et_features_open(p, &imp, &f, &err), 0, "%s", err.msg);
    cr_assert_eq(et_features_rows(f), 10);
    int h, w, c;
    et_features_shape(f, &h, &w, &c);
    cr_assert(h == 8 && w == 16 && c == 3);
    cr_assert_eq(et_features_n_labels(f), 2);
    cr_assert_str_eq(et_features_label_name(f, 0), "even");
    /* Row i equals processing the stored sample directly. */
    for (size_t i = 0; i < 10; i++) {
        et_sample s;
        cr_assert_eq(et_sample_get(p, et_features_id(f, i), &s, &err), 0);
        et_image img;
        cr_assert_eq(et_sample_load(p, &s, &img, &err), 0, "%s", err.msg);
        int ch = 0;
        float *direct = process(&imp, &img, &ch);
        cr_assert_arr_eq(direct, et_features_row(f, i), sizeof(float) * 16 * 8 * 3);
        cr_assert_str_eq(et_features_label_name(f, (size_t)et_features_label(f, i)), s.label);
        cr_assert_eq(et_features_category(f, i), s.category);
        free(direct);
        et_image_free(&img);
    }
    et_features_close(f);
    /* Nothing changed: nothing computed. One relabel: rows reused, labels new. */
    cr_assert_eq(et_features_update(p, &imp, 1, &st, &err), 0);
    cr_assert_eq(st.computed, 0);
    cr_assert_eq(et_sample_relabel(p, 1, "odd", &err), 0);
    cr_assert_eq(et_sample_remove(p, 2, &err), 0);
    cr_assert_eq(et_features_update(p, &imp, 1, &st, &err), 0);
    cr_assert_eq(st.computed, 0);
    cr_assert_eq(st.reused, 9);
    cr_assert_eq(et_features_open(p, &imp, &f, &err), 0);
    cr_assert_eq(et_features_rows(f), 9);
    cr_assert_eq(et_features_n_labels(f), 2);
    cr_assert_str_eq(et_features_label_name(f, (size_t)et_features_label(f, 0)), "odd");
    et_features_close(f);
    /* Another processing block: a second set, computed afresh. */
    imp.color = ET_COLOR_GRAYSCALE;
    cr_assert_eq(et_features_open(p, &imp, &f, &err), ET_ENOTFOUND);
    cr_assert_eq(et_features_update(p, &imp, 2, &st, &err), 0);
    cr_assert_eq(st.computed, 9);
    et_project_close(p);
}

Test(features, npy_files_have_numpy_headers)
{
    const char *dir = tu_tmpdir();
    const char *proj = project_with_images(dir, 4);
    et_project *p = tu_open(proj);
    et_impulse imp = et_impulse_defaults();
    imp.width = imp.height = 8;
    et_features_stats st;
    et_error err = {0};
    cr_assert_eq(et_features_update(p, &imp, 1, &st, &err), 0, "%s", err.msg);
    char path[4096];
    snprintf(path, sizeof path, "%s/features.npy", st.path);
    size_t n = 0;
    unsigned char *b = tu_read(path, &n);
    cr_assert(!memcmp(b, "\x93NUMPY\x01\x00", 8));
    size_t hlen = (size_t)b[8] | (size_t)b[9] << 8;
    cr_assert_eq((10 + hlen) % 64, 0, "data aligned to 64 bytes");
    cr_assert(strstr((char *)b + 10, "'descr': '<f4', 'fortran_order': False, 'shape': (4, 8, 8, 3), }"));
    cr_assert_eq(n, 10 + hlen + 4 * 8 * 8 * 3 * 4);
    free(b);
    snprintf(path, sizeof path, "%s/ids.npy", st.path);
    b = tu_read(path, &n);
    cr_assert(strstr((char *)b + 10, "'descr': '<i8', 'fortran_order': False, 'shape': (4,), }"));
    free(b);
    et_project_close(p);
}

Test(features, empty_project_and_interrupt)
{
    const char *dir = tu_tmpdir();
    const char *proj = tu_path(dir, "proj");
    et_error err = {0};
    cr_assert_eq(et_project_init(proj, &err), 0);
    et_project *p = tu_open(proj);
    et_impulse imp = et_impulse_defaults();
    et_features_stats st;
    cr_assert_eq(et_features_update(p, &imp, 1, &st, &err), ET_EINVAL);
    cr_assert(strstr(err.msg, "no samples"), "%s", err.msg);
    et_project_close(p);

    proj = project_with_images(tu_tmpdir(), 6);
    p = tu_open(proj);
    et_interrupt_raise();
    cr_assert_eq(et_features_update(p, &imp, 1, &st, &err), ET_EINTR);
    et_interrupt_clear();
    cr_assert_eq(et_features_open(p, &imp, &(et_features *){NULL}, &err), ET_ENOTFOUND,
                 "an interrupted run leaves no half-written set");
    et_project_close(p);
}
