/* SVG line chart; see plot.h. */
#define _POSIX_C_SOURCE 200809L
#include "probe/plot.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  char *s;
  size_t len, cap;
  int oom;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...) {
  if (b->oom) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->oom = 1;
      return;
    }
    if ((size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    size_t ncap = (b->cap + (size_t)n + 1) * 2;
    char *ns = realloc(b->s, ncap);
    if (!ns) {
      b->oom = 1;
      return;
    }
    b->s = ns;
    b->cap = ncap;
  }
}

/* XML text with &, <, >, " escaped. */
static void put_text(sbuf *b, const char *t) {
  for (; t && *t; t++) {
    switch (*t) {
      case '&': put(b, "&amp;"); break;
      case '<': put(b, "&lt;"); break;
      case '>': put(b, "&gt;"); break;
      case '"': put(b, "&quot;"); break;
      default: put(b, "%c", *t);
    }
  }
}

/* A tick step of 1, 2 or 5 times a power of ten giving about `want` intervals over span. */
static double nice_step(double span, int want) {
  double raw = span / want, p = pow(10, floor(log10(raw))), f = raw / p;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

static const char *const palette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                      "#E69F00", "#56B4E9", "#7F7F00", "#000000"};
static const char *const dashes[] = {"6 4", "2 3", "10 3 2 3", "1 2"};

int bc_plot_svg(bc_err *err, const bc_plot *p, char **svg) {
  *svg = NULL;
  if (!p || p->npoints == 0)
    return bc_fail(err, BERTCL_ERR_INVALID_ARG, "a plot needs at least one x position");
  const double W = 760, H = 460, ml = 70, mr = 250, mt = 56, mb = 64;
  double pw = W - ml - mr, ph = H - mt - mb;
  double lo = INFINITY, hi = -INFINITY;
  for (size_t s = 0; s < p->nseries; s++)
    for (size_t i = 0; i < p->npoints; i++) {
      double v = p->series[s].y[i];
      if (isnan(v)) continue;
      lo = v < lo ? v : lo;
      hi = v > hi ? v : hi;
    }
  for (size_t h = 0; h < p->nhlines; h++) {
    if (isnan(p->hlines[h].y)) continue;
    lo = p->hlines[h].y < lo ? p->hlines[h].y : lo;
    hi = p->hlines[h].y > hi ? p->hlines[h].y : hi;
  }
  if (!isfinite(lo)) lo = 0, hi = 1;
  if (hi - lo < 1e-9) lo -= 0.05, hi += 0.05;
  double step = nice_step(hi - lo, 5);
  lo = floor(lo / step) * step;
  hi = ceil(hi / step) * step;
  sbuf b = {0};
#define X(i) (ml + (p->npoints > 1 ? pw * (double)(i) / (double)(p->npoints - 1) : pw / 2))
#define Y(v) (mt + ph * (1.0 - ((v) - lo) / (hi - lo)))
  put(&b,
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
      "viewBox=\"0 0 %.0f %.0f\" font-family=\"Helvetica, Arial, sans-serif\" "
      "font-size=\"13\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
      W, H, W, H);
  put(&b, "<text x=\"%.1f\" y=\"28\" font-size=\"16\" font-weight=\"bold\">", ml);
  put_text(&b, p->title);
  put(&b, "</text>\n");
  /* grid and y ticks */
  for (double v = lo; v <= hi + step * 1e-6; v += step) {
    put(&b,
        "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#dddddd\"/>\n"
        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.*f</text>\n",
        ml, ml + pw, Y(v), Y(v), ml - 8, Y(v) + 4, step < 0.01 ? 3 : step < 0.1 ? 2 : 1, v);
  }
  for (size_t i = 0; i < p->npoints; i++) {
    put(&b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#999999\"/>\n", X(i),
        X(i), mt + ph, mt + ph + 5);
    put(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", X(i), mt + ph + 20);
    put_text(&b, p->x_ticks ? p->x_ticks[i] : "");
    put(&b, "</text>\n");
  }
  put(&b,
      "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
      "stroke=\"#333333\"/>\n",
      ml, mt, pw, ph);
  put(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", ml + pw / 2, H - 18);
  put_text(&b, p->x_label);
  put(&b, "</text>\n<text transform=\"translate(18 %.1f) rotate(-90)\" text-anchor=\"middle\">",
      mt + ph / 2);
  put_text(&b, p->y_label);
  put(&b, "</text>\n");
  /* reference lines, then series */
  double ly = mt + 8;
  for (size_t h = 0; h < p->nhlines; h++, ly += 22) {
    const char *dash = dashes[h % 4];
    if (!isnan(p->hlines[h].y))
      put(&b,
          "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#555555\" "
          "stroke-width=\"1.5\" stroke-dasharray=\"%s\"/>\n",
          ml, ml + pw, Y(p->hlines[h].y), Y(p->hlines[h].y), dash);
    put(&b,
        "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#555555\" "
        "stroke-width=\"1.5\" stroke-dasharray=\"%s\"/>\n<text x=\"%.1f\" y=\"%.1f\">",
        ml + pw + 16, ml + pw + 44, ly, ly, dash, ml + pw + 52, ly + 4);
    put_text(&b, p->hlines[h].name);
    put(&b, "</text>\n");
  }
  for (size_t s = 0; s < p->nseries; s++, ly += 22) {
    const char *col = palette[s % 8];
    put(&b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", col);
    for (size_t i = 0; i < p->npoints; i++)
      if (!isnan(p->series[s].y[i])) put(&b, "%.1f,%.1f ", X(i), Y(p->series[s].y[i]));
    put(&b, "\"/>\n");
    for (size_t i = 0; i < p->npoints; i++)
      if (!isnan(p->series[s].y[i]))
        put(&b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n", X(i),
            Y(p->series[s].y[i]), col);
    put(&b,
        "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
        "stroke-width=\"2\"/>\n<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n"
        "<text x=\"%.1f\" y=\"%.1f\">",
        ml + pw + 16, ml + pw + 44, ly, ly, col, ml + pw + 30, ly, col, ml + pw + 52, ly + 4);
    put_text(&b, p->series[s].name);
    put(&b, "</text>\n");
  }
  if (p->best_series >= 0 && (size_t)p->best_series < p->nseries && p->best_point >= 0 &&
      (size_t)p->best_point < p->npoints && !isnan(p->series[p->best_series].y[p->best_point])) {
    double bx = X(p->best_point), by = Y(p->series[p->best_series].y[p->best_point]);
    put(&b,
        "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"8\" fill=\"none\" stroke=\"#000000\" "
        "stroke-width=\"1.5\"/>\n<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
        "font-weight=\"bold\">best</text>\n",
        bx, by, bx, by - 13);
  }
  put(&b, "</svg>\n");
#undef X
#undef Y
  if (b.oom) {
    free(b.s);
    return bc_fail(err, BERTCL_ERR_NOMEM, "out of memory");
  }
  *svg = b.s;
  return BERTCL_OK;
}
