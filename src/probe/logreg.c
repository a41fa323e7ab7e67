/* L2 logistic regression by L-BFGS; see logreg.h.
 *
 * Each evaluation of the objective runs, on the device,
 *   Z_j (N, KW) = X_j (N, D) @ W^T          for every block j (one block without a mix)
 * and, when the gradient is wanted,
 *   GW (KW, D)  = sum_j gamma a_j G^T X_j   with G (N, KW) = dLoss/dlogits,
 * where KW = 1 for two classes (one sigmoid output) else K. The rest (softmax or sigmoid,
 * the loss, G, the bias, mix and L-BFGS vectors) is O(N K + K D) host work in double. */
#define _POSIX_C_SOURCE 200809L
#include "probe/logreg.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm/gemm.h"

typedef struct {
  bertcl_ctx *ctx;
  size_t N;
  int D, J, K, KW;
  double l2;
  const int32_t *y; /* (N) */
  cl_mem X;         /* (N, J*D) standardised features */
  cl_mem W;         /* (KW, D) */
  cl_mem Z;         /* (J, N, KW) */
  cl_mem G;         /* (N, KW) */
  cl_mem GW;        /* (KW, D) */
  float *wf;        /* (KW * D) staging of W as floats */
  float *z;         /* (J * N * KW) */
  float *g;         /* (N * KW) */
  float *gw;        /* (KW * D) */
} problem;

/* Parameter vector layout: W (KW*D), b (KW), then with a mix s (J). */
static size_t nparams(const problem *p) {
  return (size_t)p->KW * p->D + p->KW + (p->J > 1 ? (size_t)p->J : 0);
}

static int upload(problem *p, cl_mem dst, const void *src, size_t bytes) {
  int st = BERTCL_OK;
  BC_CL(&p->ctx->err,
        clEnqueueWriteBuffer(p->ctx->queue, dst, CL_TRUE, 0, bytes, src, 0, NULL, NULL));
fail:
  return st;
}

static int download(problem *p, cl_mem src, void *dst, size_t bytes) {
  int st = BERTCL_OK;
  BC_CL(&p->ctx->err,
        clEnqueueReadBuffer(p->ctx->queue, src, CL_TRUE, 0, bytes, dst, 0, NULL, NULL));
fail:
  return st;
}

/* Z_j = X_j W^T for every block, read back into p->z. */
static int block_logits(problem *p, const double *w) {
  size_t nw = (size_t)p->KW * p->D;
  for (size_t i = 0; i < nw; i++) p->wf[i] = (float)w[i];
  int st = upload(p, p->W, p->wf, nw * sizeof(float));
  for (int j = 0; j < p->J && st == BERTCL_OK; j++) {
    bc_gemm_args g = {.trans_a = 0, .trans_b = 1, .m = p->N, .n = (size_t)p->KW,
                      .k = (size_t)p->D, .alpha = 1.0f, .beta = 0.0f,
                      .a = p->X, .a_off = (size_t)j * p->D, .lda = (size_t)p->J * p->D,
                      .b = p->W, .ldb = (size_t)p->D,
                      .c = p->Z, .c_off = (size_t)j * p->N * p->KW, .ldc = (size_t)p->KW,
                      .batch = 1};
    st = bc_gemm(p->ctx, &g);
  }
  if (st == BERTCL_OK) st = download(p, p->Z, p->z, (size_t)p->J * p->N * p->KW * sizeof(float));
  return st;
}

static void softmax_d(const double *s, int n, double *a) {
  double mx = -DBL_MAX, sum = 0;
  for (int i = 0; i < n; i++) mx = s[i] > mx ? s[i] : mx;
  for (int i = 0; i < n; i++) sum += a[i] = exp(s[i] - mx);
  for (int i = 0; i < n; i++) a[i] /= sum;
}

/* f(theta), and its gradient when grad is not NULL. */
static int evaluate(problem *p, const double *theta, double *f, double *grad) {
  const int KW = p->KW, D = p->D, J = p->J;
  const size_t N = p->N, nw = (size_t)KW * D;
  const double *b = theta + nw;
  double a[256], da[256] = {0};
  if (J > 1)
    softmax_d(theta + nw + KW, J, a);
  else
    a[0] = 1.0;
  int st = block_logits(p, theta);
  if (st != BERTCL_OK) return st;
  double loss = 0;
  double *gb = grad ? grad + nw : NULL;
  if (gb) memset(gb, 0, (size_t)KW * sizeof *gb);
  double logit[512];
  for (size_t n = 0; n < N; n++) {
    for (int k = 0; k < KW; k++) {
      double v = 0;
      for (int j = 0; j < J; j++) v += a[j] * p->z[((size_t)j * N + n) * KW + k];
      logit[k] = v + b[k];
    }
    int yn = p->y[n];
    double gk[512];
    if (KW == 1) {
      double z = logit[0], t = yn == 1 ? 1.0 : 0.0;
      loss += log1p(exp(-fabs(z))) + (z > 0 ? z : 0) - t * z;
      gk[0] = 1.0 / (1.0 + exp(-z)) - t;
    } else {
      double mx = -DBL_MAX, sum = 0;
      for (int k = 0; k < KW; k++) mx = logit[k] > mx ? logit[k] : mx;
      for (int k = 0; k < KW; k++) sum += exp(logit[k] - mx);
      loss += log(sum) + mx - logit[yn];
      for (int k = 0; k < KW; k++) gk[k] = exp(logit[k] - mx) / sum - (k == yn ? 1.0 : 0.0);
    }
    if (!grad) continue;
    for (int k = 0; k < KW; k++) {
      double g = gk[k] / (double)N;
      p->g[n * KW + k] = (float)g;
      gb[k] += g;
      for (int j = 0; j < J && J > 1; j++) da[j] += g * p->z[((size_t)j * N + n) * KW + k];
    }
  }
  double reg = 0;
  for (size_t i = 0; i < nw; i++) reg += theta[i] * theta[i];
  *f = loss / (double)N + 0.5 * p->l2 * reg;
  if (!grad) return BERTCL_OK;
  /* GW = sum_j a_j G^T X_j */
  st = upload(p, p->G, p->g, N * KW * sizeof(float));
  for (int j = 0; j < J && st == BERTCL_OK; j++) {
    bc_gemm_args g = {.trans_a = 1, .trans_b = 0, .m = (size_t)KW, .n = (size_t)D, .k = N,
                      .alpha = (float)a[j], .beta = j ? 1.0f : 0.0f,
                      .a = p->G, .lda = (size_t)KW,
                      .b = p->X, .b_off = (size_t)j * D, .ldb = (size_t)J * D,
                      .c = p->GW, .ldc = (size_t)D, .batch = 1};
    st = bc_gemm(p->ctx, &g);
  }
  if (st == BERTCL_OK) st = download(p, p->GW, p->gw, nw * sizeof(float));
  if (st != BERTCL_OK) return st;
  for (size_t i = 0; i < nw; i++) grad[i] = p->gw[i] + p->l2 * theta[i];
  if (J > 1) {
    double dot = 0;
    for (int j = 0; j < J; j++) dot += a[j] * da[j];
    for (int j = 0; j < J; j++) grad[nw + KW + j] = a[j] * (da[j] - dot);
  }
  return BERTCL_OK;
}

static double dot(const double *a, const double *b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

static double max_abs(const double *a, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) m = fabs(a[i]) > m ? fabs(a[i]) : m;
  return m;
}

/* L-BFGS (Nocedal & Wright, algorithm 7.4: two-loop recursion) with a backtracking Armijo line
 * search; a pair is kept only when s.y > 0, so the implied Hessian stays positive definite. */
static int lbfgs(problem *p, double *x, const bc_logreg_opts *o, bc_logreg *res) {
  size_t n = nparams(p);
  int m = o->memory > 0 ? o->memory : 10, max_iter = o->max_iter > 0 ? o->max_iter : 1000;
  double tol = o->tol > 0 ? o->tol : 1e-6;
  int st = BERTCL_OK;
  double *mem = calloc((size_t)(2 * m + 5) * n + (size_t)m * 2, sizeof(double));
  if (!mem) return bc_fail(&p->ctx->err, BERTCL_ERR_NOMEM, "out of memory");
  double *S = mem, *Y = S + (size_t)m * n, *g = Y + (size_t)m * n, *d = g + n, *xn = d + n,
         *gn = xn + n, *q = gn + n, *rho = q + n, *alpha = rho + m;
  int count = 0, head = 0, stall = 0;
  double f = 0, fn = 0;
  res->stop = BC_LOGREG_MAX_ITER;
  BC_TRY(evaluate(p, x, &f, g));
  int it = 0;
  for (; it < max_iter; it++) {
    if (max_abs(g, n) <= tol) break;
    /* two-loop recursion: d = -H g */
    memcpy(q, g, n * sizeof *q);
    for (int i = 0; i < count; i++) {
      int k = (head - 1 - i + m) % m;
      alpha[k] = rho[k] * dot(S + (size_t)k * n, q, n);
      for (size_t t = 0; t < n; t++) q[t] -= alpha[k] * Y[(size_t)k * n + t];
    }
    double gamma0 = 1.0;
    if (count > 0) {
      int k = (head - 1 + m) % m;
      gamma0 = dot(S + (size_t)k * n, Y + (size_t)k * n, n) /
               dot(Y + (size_t)k * n, Y + (size_t)k * n, n);
    }
    for (size_t t = 0; t < n; t++) q[t] *= gamma0;
    for (int i = count - 1; i >= 0; i--) {
      int k = (head - 1 - i + m) % m;
      double beta = rho[k] * dot(Y + (size_t)k * n, q, n);
      for (size_t t = 0; t < n; t++) q[t] += (alpha[k] - beta) * S[(size_t)k * n + t];
    }
    for (size_t t = 0; t < n; t++) d[t] = -q[t];
    double gd = dot(g, d, n);
    if (!(gd < 0)) { /* not a descent direction: restart from steepest descent */
      count = 0;
      for (size_t t = 0; t < n; t++) d[t] = -g[t];
      gd = dot(g, d, n);
    }
    double step = count == 0 ? 1.0 / sqrt(dot(g, g, n)) : 1.0;
    if (count == 0 && step > 1.0) step = 1.0;
    /* Armijo's sufficient decrease, or Hager and Zhang's approximate Wolfe conditions, which
     * read the slope instead of f and so still work where f's change drowns in float rounding
     * of the device products (near the optimum) */
    int accepted = 0;
    for (int ls = 0; ls < 60; ls++) {
      for (size_t t = 0; t < n; t++) xn[t] = x[t] + step * d[t];
      BC_TRY(evaluate(p, xn, &fn, gn)); /* the first trial is nearly always accepted */
      double slope = dot(gn, d, n);
      int armijo = isfinite(fn) && fn <= f + 1e-4 * step * gd;
      int approx_wolfe = isfinite(fn) && slope >= 0.9 * gd && slope <= (2e-4 - 1.0) * gd &&
                         fn <= f + 1e-9 * fabs(f);
      if (armijo || approx_wolfe) {
        accepted = 1;
        break;
      }
      step *= 0.5;
    }
    if (!accepted) {
      res->stop = BC_LOGREG_PRECISION;
      break;
    }
    double *sk = S + (size_t)head * n, *yk = Y + (size_t)head * n;
    for (size_t t = 0; t < n; t++) sk[t] = xn[t] - x[t], yk[t] = gn[t] - g[t];
    double sy = dot(sk, yk, n);
    if (sy > 1e-12 * sqrt(dot(sk, sk, n) * dot(yk, yk, n))) {
      rho[head] = 1.0 / sy;
      head = (head + 1) % m;
      if (count < m) count++;
    }
    stall = fabs(f - fn) <= 1e-12 * (fabs(f) > 1 ? fabs(f) : 1) ? stall + 1 : 0;
    memcpy(x, xn, n * sizeof *x);
    memcpy(g, gn, n * sizeof *g);
    f = fn;
    if (stall >= 5) {
      res->stop = BC_LOGREG_PRECISION;
      break;
    }
  }
  res->grad_max = max_abs(g, n);
  if (res->grad_max <= tol) res->stop = BC_LOGREG_CONVERGED;
  res->iters = it;
  res->loss = f;
fail:
  free(mem);
  return st;
}

static void problem_free(problem *p) {
  cl_mem ms[] = {p->X, p->W, p->Z, p->G, p->GW};
  for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
    if (ms[i]) clReleaseMemObject(ms[i]);
  free(p->wf);
  free(p->z);
  free(p->g);
  free(p->gw);
}

/* Device buffers for N rows; X (N, J*D) uploaded from xs. */
static int problem_init(problem *p, bertcl_ctx *ctx, const float *xs, size_t N, int J, int D,
                        int K) {
  memset(p, 0, sizeof *p);
  p->ctx = ctx;
  p->N = N, p->J = J, p->D = D, p->K = K, p->KW = K == 2 ? 1 : K;
  int st = BERTCL_OK;
  size_t nx = 0, nz = 0;
  if (bc_mul_size(N, (size_t)J * D, &nx) || bc_mul_size(N * (size_t)J, (size_t)p->KW, &nz))
    return bc_fail(&ctx->err, BERTCL_ERR_OVERFLOW, "probe features: %zu x %d x %d", N, J, D);
  p->X = bc_buffer_create(ctx, nx * sizeof(float), xs, &st);
  if (st == BERTCL_OK) p->W = bc_buffer_create(ctx, (size_t)p->KW * D * sizeof(float), NULL, &st);
  if (st == BERTCL_OK) p->Z = bc_buffer_create(ctx, nz * sizeof(float), NULL, &st);
  if (st == BERTCL_OK) p->G = bc_buffer_create(ctx, N * p->KW * sizeof(float), NULL, &st);
  if (st == BERTCL_OK) p->GW = bc_buffer_create(ctx, (size_t)p->KW * D * sizeof(float), NULL, &st);
  if (st != BERTCL_OK) return st;
  p->wf = malloc((size_t)p->KW * D * sizeof(float));
  p->z = malloc(nz * sizeof(float));
  p->g = malloc(N * p->KW * sizeof(float));
  p->gw = malloc((size_t)p->KW * D * sizeof(float));
  if (!p->wf || !p->z || !p->g || !p->gw) return bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory");
  return BERTCL_OK;
}

/* (x - mean) * scale, column by column, into a new array. */
static float *standardise(const bc_logreg *m, const float *X, size_t N) {
  float *xs = malloc(N * (size_t)m->in_dim * sizeof *xs);
  if (!xs) return NULL;
  for (size_t n = 0; n < N; n++)
    for (int c = 0; c < m->in_dim; c++) {
      size_t i = n * (size_t)m->in_dim + (size_t)c;
      xs[i] = (X[i] - m->mean[c]) * m->scale[c];
    }
  return xs;
}

void bc_logreg_free(bc_logreg *m) {
  if (!m) return;
  free(m->mean);
  free(m->scale);
  free(m->W);
  free(m->b);
  free(m->mix);
  memset(m, 0, sizeof *m);
}

int bc_logreg_fit(bertcl_ctx *ctx, const float *X, const int32_t *y, size_t N, int in_dim, int K,
                  const bc_logreg_opts *opt, bc_logreg *out) {
  memset(out, 0, sizeof *out);
  bc_logreg_opts defaults = {0};
  if (!opt) opt = &defaults;
  int J = opt->mix_blocks > 1 ? opt->mix_blocks : 1;
  if (!ctx || !X || !y || N == 0 || in_dim <= 0 || K < 2 || K > 512 || J > 256 ||
      in_dim % J != 0 || opt->l2 < 0)
    return bc_fail(ctx ? &ctx->err : NULL, BERTCL_ERR_INVALID_ARG,
                   "logistic regression: %zu rows, %d features, %d classes, %d mix blocks, "
                   "l2 %g", N, in_dim, K, J, opt->l2);
  for (size_t n = 0; n < N; n++)
    if (y[n] < 0 || y[n] >= K)
      return bc_fail(&ctx->err, BERTCL_ERR_INVALID_ARG, "label %d of row %zu is not in [0, %d)",
                     (int)y[n], n, K);
  int st = BERTCL_OK;
  problem p = {0};
  double *theta = NULL;
  float *xs = NULL;
  out->K = K, out->in_dim = in_dim, out->D = in_dim / J, out->mix_blocks = J > 1 ? J : 0;
  int KW = K == 2 ? 1 : K, D = out->D;
  out->mean = calloc((size_t)in_dim, sizeof(float));
  out->scale = calloc((size_t)in_dim, sizeof(float));
  out->W = calloc((size_t)KW * D, sizeof(float));
  out->b = calloc((size_t)KW, sizeof(float));
  if (J > 1) out->mix = calloc((size_t)J, sizeof(float));
  double *acc = calloc(2 * (size_t)in_dim, sizeof *acc);
  if (!out->mean || !out->scale || !out->W || !out->b || (J > 1 && !out->mix) || !acc) {
    free(acc);
    st = bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory");
    goto fail;
  }
  /* two-pass mean and population variance per column, in double */
  for (size_t n = 0; n < N; n++)
    for (int c = 0; c < in_dim; c++) acc[c] += X[n * (size_t)in_dim + (size_t)c];
  for (int c = 0; c < in_dim; c++) acc[c] /= (double)N;
  for (size_t n = 0; n < N; n++)
    for (int c = 0; c < in_dim; c++) {
      double v = X[n * (size_t)in_dim + (size_t)c] - acc[c];
      acc[in_dim + c] += v * v;
    }
  for (int c = 0; c < in_dim; c++) {
    double sd = sqrt(acc[in_dim + c] / (double)N);
    out->mean[c] = (float)acc[c];
    out->scale[c] = sd > 1e-12 * (fabs(acc[c]) > 1 ? fabs(acc[c]) : 1) ? (float)(1.0 / sd) : 1.0f;
  }
  free(acc);
  xs = standardise(out, X, N);
  if (!xs) {
    st = bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory");
    goto fail;
  }
  BC_TRY(problem_init(&p, ctx, xs, N, J, D, K));
  free(xs);
  xs = NULL;
  p.l2 = opt->l2;
  p.y = y;
  size_t np = nparams(&p);
  theta = calloc(np, sizeof *theta);
  if (!theta) {
    st = bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory");
    goto fail;
  }
  BC_TRY(lbfgs(&p, theta, opt, out));
  size_t nw = (size_t)KW * D;
  for (size_t i = 0; i < nw; i++) out->W[i] = (float)theta[i];
  for (int k = 0; k < KW; k++) out->b[k] = (float)theta[nw + k];
  if (J > 1) {
    double a[256];
    softmax_d(theta + nw + KW, J, a);
    for (int j = 0; j < J; j++) out->mix[j] = (float)a[j];
  }
  free(theta);
  problem_free(&p);
  return BERTCL_OK;
fail:
  free(theta);
  free(xs);
  problem_free(&p);
  bc_logreg_free(out);
  return st;
}

int bc_logreg_objective(bertcl_ctx *ctx, const float *Xs, const int32_t *y, size_t N, int in_dim,
                        int K, const bc_logreg_opts *opt, const double *theta, double *f,
                        double *grad) {
  int J = opt->mix_blocks > 1 ? opt->mix_blocks : 1;
  problem p = {0};
  int st = problem_init(&p, ctx, Xs, N, J, in_dim / J, K);
  p.l2 = opt->l2;
  p.y = y;
  if (st == BERTCL_OK) st = evaluate(&p, theta, f, grad);
  problem_free(&p);
  return st;
}

int bc_logreg_predict(bertcl_ctx *ctx, const bc_logreg *m, const float *X, size_t N,
                      float *probs) {
  if (!ctx || !m || !m->W || !X || !probs)
    return bc_fail(ctx ? &ctx->err : NULL, BERTCL_ERR_INVALID_ARG, "NULL argument");
  if (N == 0) return BERTCL_OK;
  int J = m->mix_blocks > 1 ? m->mix_blocks : 1, KW = m->K == 2 ? 1 : m->K, D = m->D;
  problem p = {0};
  int st = BERTCL_OK;
  double *theta = NULL;
  float *xs = standardise(m, X, N);
  if (!xs) return bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory");
  BC_TRY(problem_init(&p, ctx, xs, N, J, D, m->K));
  size_t nw = (size_t)KW * D;
  theta = calloc(nw, sizeof *theta);
  if (!theta) {
    st = bc_fail(&ctx->err, BERTCL_ERR_NOMEM, "out of memory");
    goto fail;
  }
  for (size_t i = 0; i < nw; i++) theta[i] = m->W[i];
  BC_TRY(block_logits(&p, theta));
  for (size_t n = 0; n < N; n++) {
    double logit[512], mx = -DBL_MAX, sum = 0;
    for (int k = 0; k < KW; k++) {
      double v = 0;
      for (int j = 0; j < J; j++) v += (J > 1 ? m->mix[j] : 1.0) * p.z[((size_t)j * N + n) * KW + k];
      logit[k] = v + m->b[k];
    }
    float *pr = probs + n * (size_t)m->K;
    if (KW == 1) {
      double p1 = 1.0 / (1.0 + exp(-logit[0]));
      pr[0] = (float)(1.0 - p1), pr[1] = (float)p1;
      continue;
    }
    for (int k = 0; k < KW; k++) mx = logit[k] > mx ? logit[k] : mx;
    for (int k = 0; k < KW; k++) sum += exp(logit[k] - mx);
    for (int k = 0; k < KW; k++) pr[k] = (float)(exp(logit[k] - mx) / sum);
  }
fail:
  free(theta);
  free(xs);
  problem_free(&p);
  return st;
}

int bc_logreg_raw_weights(const bc_logreg *m, float *Wr, float *br) {
  if (!m || !Wr || !br || m->mix_blocks > 1) return BERTCL_ERR_INVALID_ARG;
  int KW = m->K == 2 ? 1 : m->K, D = m->D;
  /* w . ((x - mean) * scale) + b = (w * scale) . x + (b - sum w * scale * mean) */
  for (int k = 0; k < KW; k++) {
    double bk = m->b[k];
    for (int c = 0; c < D; c++) {
      double w = (double)m->W[(size_t)k * D + c] * m->scale[c];
      Wr[(size_t)k * D + c] = (float)w;
      bk -= w * m->mean[c];
    }
    br[k] = (float)bk;
  }
  return BERTCL_OK;
}
