/* The input block (resize) and the image / raw processing blocks. */
#include "edgetrain/dsp.h"

#include <math.h>
#include <stb_image_resize.h>
#include <string.h>

int et_dsp_channels(const et_impulse *imp, int in_channels)
{
    if (imp->processing == ET_PROCESSING_RAW)
        return in_channels;
    return imp->color == ET_COLOR_GRAYSCALE ? 1 : 3;
}

size_t et_dsp_scratch_size(const et_impulse *imp)
{
    return (size_t)imp->width * (size_t)imp->height * 4;
}

static et_status resize_into(const uint8_t *src, int sw, int sh, int src_stride, uint8_t *dst,
                             int dw, int dh, int dst_stride, int c, et_error *err)
{
    if (sw == dw && sh == dh) {
        for (int y = 0; y < sh; y++)
            memcpy(dst + (size_t)y * dst_stride, src + (size_t)y * src_stride, (size_t)sw * c);
        return ET_OK;
    }
    if (!stbir_resize_uint8_generic(src, sw, sh, src_stride, dst, dw, dh, dst_stride, c,
                                    STBIR_ALPHA_CHANNEL_NONE, 0, STBIR_EDGE_CLAMP,
                                    STBIR_FILTER_DEFAULT, STBIR_COLORSPACE_LINEAR, NULL))
        return et_error_set(err, ET_ENOMEM, "resizing %dx%d to %dx%d failed (out of memory)", sw,
                            sh, dw, dh);
    return ET_OK;
}

/* Input block: img -> scratch, width x height x img->channels uint8. */
static et_status input_block(const et_impulse *imp, const et_image *img, uint8_t *scratch,
                             et_error *err)
{
    const int W = imp->width, H = imp->height, c = img->channels;
    const int sw = img->width, sh = img->height, stride = sw * c;
    switch (imp->resize) {
    case ET_RESIZE_SQUASH:
        return resize_into(img->pixels, sw, sh, stride, scratch, W, H, W * c, c, err);
    case ET_RESIZE_FIT_SHORTEST: {
        /* Crop the centre of the source to the target's aspect ratio. */
        int cw = sw, ch = sh;
        if ((int64_t)sw * H > (int64_t)sh * W)
            cw = (int)lround((double)sh * W / H);
        else
            ch = (int)lround((double)sw * H / W);
        cw = cw < 1 ? 1 : cw;
        ch = ch < 1 ? 1 : ch;
        const uint8_t *origin = img->pixels + (size_t)((sh - ch) / 2) * stride +
                                (size_t)((sw - cw) / 2) * c;
        return resize_into(origin, cw, ch, stride, scratch, W, H, W * c, c, err);
    }
    case ET_RESIZE_FIT_LONGEST: {
        double scale = fmin((double)W / sw, (double)H / sh);
        int nw = (int)lround(sw * scale), nh = (int)lround(sh * scale);
        nw = nw < 1 ? 1 : nw > W ? W : nw;
        nh = nh < 1 ? 1 : nh > H ? H : nh;
        memset(scratch, 0, (size_t)W * H * c);
        uint8_t *origin = scratch + (size_t)((H - nh) / 2) * W * c + (size_t)((W - nw) / 2) * c;
        return resize_into(img->pixels, sw, sh, stride, origin, nw, nh, W * c, c, err);
    }
    }
    return et_error_set(err, ET_EINVAL, "unknown resize mode %d", (int)imp->resize);
}

et_status et_dsp_process(const et_impulse *imp, const et_image *img, float *out, void *scratch,
                         et_error *err)
{
    if (!img->pixels || img->width < 1 || img->height < 1 || img->channels < 1 ||
        img->channels > 4)
        return et_error_set(err, ET_EINVAL, "image of %dx%dx%d cannot be processed", img->width,
                            img->height, img->channels);
    uint8_t *px = scratch;
    et_status rc = input_block(imp, img, px, err);
    if (rc < 0)
        return rc;
    const size_t n = (size_t)imp->width * imp->height;
    const int c = img->channels;
    if (imp->processing == ET_PROCESSING_RAW) {
        const float scale = (float)imp->raw_scale;
        for (size_t i = 0; i < n * (size_t)c; i++)
            out[i] = (float)px[i] * scale;
        return ET_OK;
    }
    const bool grey_in = c <= 2; /* 2 = grey + alpha */
    if (imp->color == ET_COLOR_GRAYSCALE) {
        for (size_t i = 0; i < n; i++) {
            const uint8_t *p = px + i * c;
            out[i] = grey_in ? p[0] / 255.0f
                             : (0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2]) / 255.0f;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            const uint8_t *p = px + i * c;
            for (int k = 0; k < 3; k++)
                out[3 * i + k] = p[grey_in ? 0 : k] / 255.0f;
        }
    }
    return ET_OK;
}
