/* Reference batch normalization over x[rows][c] (NHWC with rows = n*h*w).
 *
 * Statistics use two passes in double (mean, then squared deviations), which
 * stays accurate when the mean is large against the spread, where the
 * one-pass E[x^2] - E[x]^2 would cancel. */
#include "kernels/kernels.h"

#include <math.h>

void et_batchnorm_forward_train_ref(const et_batchnorm_params *p, size_t rows, int c,
                                    const float *x, const float *gamma, const float *beta, float *y,
                                    float *save_mean, float *save_invstd, float *running_mean,
                                    float *running_var)
{
    for (int ch = 0; ch < c; ch++) {
        double sum = 0.0;
        for (size_t r = 0; r < rows; r++)
            sum += x[r * c + ch];
        double mean = sum / (double)rows;
        double sq = 0.0;
        for (size_t r = 0; r < rows; r++) {
            double d = x[r * c + ch] - mean;
            sq += d * d;
        }
        double var = sq / (double)rows;
        double invstd = 1.0 / sqrt(var + p->epsilon);
        for (size_t r = 0; r < rows; r++)
            y[r * c + ch] = (float)(gamma[ch] * (x[r * c + ch] - mean) * invstd + beta[ch]);
        save_mean[ch] = (float)mean;
        save_invstd[ch] = (float)invstd;
        if (running_mean && running_var) {
            /* One row has no spread to estimate; keep its biased 0 rather than divide by 0. */
            double unbiased = rows > 1 ? sq / (double)(rows - 1) : var;
            double m = p->momentum;
            running_mean[ch] = (float)(m * running_mean[ch] + (1.0 - m) * mean);
            running_var[ch] = (float)(m * running_var[ch] + (1.0 - m) * unbiased);
        }
    }
}

void et_batchnorm_forward_infer_ref(const et_batchnorm_params *p, size_t rows, int c,
                                    const float *x, const float *gamma, const float *beta,
                                    const float *running_mean, const float *running_var, float *y)
{
    for (int ch = 0; ch < c; ch++) {
        double invstd = 1.0 / sqrt((double)running_var[ch] + p->epsilon);
        for (size_t r = 0; r < rows; r++)
            y[r * c + ch] =
                (float)(gamma[ch] * (x[r * c + ch] - (double)running_mean[ch]) * invstd + beta[ch]);
    }
}

/* With xhat = (x - mean) * invstd and m = rows, the batch statistics make every
 * x influence every y of its channel. Differentiating through mean and variance:
 *   dbeta  = sum dy
 *   dgamma = sum dy * xhat
 *   dx     = gamma * invstd * (dy - dbeta / m - xhat * dgamma / m)
 * (the standard result, e.g. Ioffe & Szegedy 2015, simplified). */
void et_batchnorm_backward_ref(size_t rows, int c, const float *x, const float *gamma,
                               const float *save_mean, const float *save_invstd, const float *dy,
                               float *dx, float *dgamma, float *dbeta)
{
    for (int ch = 0; ch < c; ch++) {
        double mean = save_mean[ch], invstd = save_invstd[ch];
        double sum_dy = 0.0, sum_dy_xhat = 0.0;
        for (size_t r = 0; r < rows; r++) {
            double g = dy[r * c + ch];
            sum_dy += g;
            sum_dy_xhat += g * (x[r * c + ch] - mean) * invstd;
        }
        if (dbeta)
            dbeta[ch] = (float)sum_dy;
        if (dgamma)
            dgamma[ch] = (float)sum_dy_xhat;
        if (!dx)
            continue;
        double scale = gamma[ch] * invstd, m = (double)rows;
        for (size_t r = 0; r < rows; r++) {
            double xhat = (x[r * c + ch] - mean) * invstd;
            dx[r * c + ch] =
                (float)(scale * (dy[r * c + ch] - sum_dy / m - xhat * sum_dy_xhat / m));
        }
    }
}

void et_batchnorm_backward_infer_ref(const et_batchnorm_params *p, size_t rows, int c,
                                     const float *x, const float *gamma, const float *running_mean,
                                     const float *running_var, const float *dy, float *dx,
                                     float *dgamma, float *dbeta)
{
    for (int ch = 0; ch < c; ch++) {
        double mean = running_mean[ch];
        double invstd = 1.0 / sqrt((double)running_var[ch] + p->epsilon);
        double sum_dy = 0.0, sum_dy_xhat = 0.0;
        for (size_t r = 0; r < rows; r++) {
            double g = dy[r * c + ch];
            sum_dy += g;
            sum_dy_xhat += g * (x[r * c + ch] - mean) * invstd;
            if (dx)
                dx[r * c + ch] = (float)(g * gamma[ch] * invstd);
        }
        if (dbeta)
            dbeta[ch] = (float)sum_dy;
        if (dgamma)
            dgamma[ch] = (float)sum_dy_xhat;
    }
}
