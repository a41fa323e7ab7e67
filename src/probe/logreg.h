/* Linear probes: L2-regularised logistic regression trained full-batch with L-BFGS, with the
 * matrix products on the OpenCL device through bc_gemm and the optimiser's small vectors on the
 * host. Deterministic: the same features, labels and options give the same weights.
 *
 * Objective (the one scikit-learn's LogisticRegression(C, solver="lbfgs") minimises, divided by
 * C * N, so l2 = 1 / (C * N)):
 *   K == 2: one weight vector w (D) and bias b, p = sigmoid(x.w + b),
 *           f = mean_i logloss(y_i, p_i) + l2 / 2 * |w|^2
 *   K >  2: W (K, D), b (K), p = softmax(x W^T + b),
 *           f = mean_i -log p_i[y_i]      + l2 / 2 * |W|^2
 * The bias is not penalised. Features are standardised first (train mean and population standard
 * deviation per column, as StandardScaler; a constant column gets scale 1), and the model keeps
 * the transform so it applies to raw features.
 *
 * Scalar mix (ELMo, Peters et al. 2018; AllenNLP's ScalarMix): with J layer blocks of D columns
 * each, x = gamma * sum_j softmax(s)_j * x_j with gamma = 1 is learnt jointly with the classifier (s unpenalised,
 * starting at 0: equal weights; each block standardised on its own first). gamma stays 1: a
 * linear classifier's weights already scale the mix, and a free gamma would undo the L2 penalty
 * (on separable data it grows without bound). */
#ifndef BC_PROBE_LOGREG_H
#define BC_PROBE_LOGREG_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/runtime.h"

typedef struct {
  double l2;       /* lambda above (>= 0) */
  int max_iter;    /* L-BFGS iterations, 0 = 1000 */
  double tol;      /* stop when max |gradient| <= tol; 0 = 1e-6 */
  int memory;      /* L-BFGS pairs kept, 0 = 10 */
  int mix_blocks;  /* > 1: learn a scalar mix of this many D-column blocks of the features */
} bc_logreg_opts;

typedef enum {
  BC_LOGREG_CONVERGED = 0, /* max |gradient| <= tol */
  BC_LOGREG_PRECISION = 1, /* no step decreases the objective any more in float arithmetic: the
                              gradient is at the noise level of the device's fp32 products */
  BC_LOGREG_MAX_ITER = 2   /* max_iter reached first */
} bc_logreg_stop;

typedef struct {
  int K;           /* classes (>= 2) */
  int D;           /* features the classifier sees (a block's width with a mix) */
  int in_dim;      /* columns of the raw features: D, or mix_blocks * D */
  int mix_blocks;  /* 0 or 1: no mix */
  float *mean;     /* (in_dim) standardisation */
  float *scale;    /* (in_dim) 1 / std */
  float *W;        /* (K == 2 ? 1 : K, D) in standardised units */
  float *b;        /* (K == 2 ? 1 : K) */
  float *mix;      /* (mix_blocks) softmax(s), or NULL */
  int iters;       /* L-BFGS iterations taken */
  int stop;        /* why it stopped: bc_logreg_stop */
  double grad_max; /* max |gradient| at the end */
  double loss;     /* final objective */
} bc_logreg;

/* Fits on X (N, in_dim) host floats, labels y (N) in [0, K). *out is filled (free with
 * bc_logreg_free). Errors: no rows, a label out of range, device failures. */
int bc_logreg_fit(bertcl_ctx *ctx, const float *X, const int32_t *y, size_t N, int in_dim, int K,
                  const bc_logreg_opts *opt, bc_logreg *out);
/* Class probabilities (N, K) of raw features X (N, in_dim), on the device. */
int bc_logreg_predict(bertcl_ctx *ctx, const bc_logreg *m, const float *X, size_t N,
                      float *probs);
void bc_logreg_free(bc_logreg *m);

/* The objective and its gradient at theta (W, b, then s with a mix, as the fit lays
 * them out) on already standardised features: for tests (finite differences). */
int bc_logreg_objective(bertcl_ctx *ctx, const float *Xs, const int32_t *y, size_t N, int in_dim,
                        int K, const bc_logreg_opts *opt, const double *theta, double *f,
                        double *grad);

/* The weights in raw-feature units, as a user would apply them to unstandardised features
 * (no mix): Wr (K' x in_dim), br (K'), K' = K == 2 ? 1 : K. */
int bc_logreg_raw_weights(const bc_logreg *m, float *Wr, float *br);

#endif
