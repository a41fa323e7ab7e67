/* A line chart as a standalone SVG file (no scripts, no external fonts or styles), readable in
 * any browser: the probe's score per layer, one line per pooling, with extra horizontal reference
 * lines for layer combinations. */
#ifndef BC_PROBE_PLOT_H
#define BC_PROBE_PLOT_H

#include <stddef.h>

#include "common.h"

typedef struct {
  const char *name;     /* legend text */
  const double *y;      /* (npoints) values; NaN = no point */
} bc_plot_series;

typedef struct {
  const char *name;     /* legend text, e.g. "last4 / mean: 0.912" */
  double y;
} bc_plot_hline;

typedef struct {
  const char *title;
  const char *x_label, *y_label;
  const char *const *x_ticks; /* (npoints) labels of the x positions */
  size_t npoints;
  const bc_plot_series *series;
  size_t nseries;
  const bc_plot_hline *hlines; /* dashed horizontal lines */
  size_t nhlines;
  int best_series, best_point; /* a marked point (-1: none) */
} bc_plot;

/* The SVG text of the chart (malloc'd, NUL-terminated). Every text is XML-escaped. */
int bc_plot_svg(bc_err *err, const bc_plot *p, char **svg);

#endif
