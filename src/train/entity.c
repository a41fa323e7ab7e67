/* seqeval's default-mode entity metrics. See entity.h. The chunk rules are seqeval's
 * end_of_chunk / start_of_chunk (from conlleval), line for line. */
#include "train/entity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/data.h"

void bc_tag_split(const char *tag, char *prefix, const char **type, size_t *type_len) {
  /* seqeval: tag = chunk[0]; type = chunk[1:].split('-', maxsplit=1)[-1] or '_' */
  *prefix = tag[0];
  const char *rest = tag[0] ? tag + 1 : tag;
  const char *dash = strchr(rest, '-');
  *type = dash ? dash + 1 : rest;
  *type_len = strlen(*type);
}

static int end_of_chunk(char prev_tag, char tag, int same_type) {
  int end = 0;
  if (prev_tag == 'E') end = 1;
  if (prev_tag == 'S') end = 1;
  if (prev_tag == 'B' && tag == 'B') end = 1;
  if (prev_tag == 'B' && tag == 'S') end = 1;
  if (prev_tag == 'B' && tag == 'O') end = 1;
  if (prev_tag == 'I' && tag == 'B') end = 1;
  if (prev_tag == 'I' && tag == 'S') end = 1;
  if (prev_tag == 'I' && tag == 'O') end = 1;
  if (prev_tag != 'O' && prev_tag != '.' && !same_type) end = 1;
  return end;
}

static int start_of_chunk(char prev_tag, char tag, int same_type) {
  int start = 0;
  if (tag == 'B') start = 1;
  if (tag == 'S') start = 1;
  if (prev_tag == 'E' && tag == 'E') start = 1;
  if (prev_tag == 'E' && tag == 'I') start = 1;
  if (prev_tag == 'S' && tag == 'E') start = 1;
  if (prev_tag == 'S' && tag == 'I') start = 1;
  if (prev_tag == 'O' && tag == 'E') start = 1;
  if (prev_tag == 'O' && tag == 'I') start = 1;
  if (tag != 'O' && tag != '.' && !same_type) start = 1;
  return start;
}

/* Index of type (t, len) in *types, added when new; -1 when out of memory. The empty type is
 * seqeval's '_'. */
static int intern(const char *t, size_t len, char ***types, int *ntypes) {
  if (!len) t = "_", len = 1;
  for (int i = 0; i < *ntypes; i++)
    if (strlen((*types)[i]) == len && !memcmp((*types)[i], t, len)) return i;
  char **nt = realloc(*types, (size_t)(*ntypes + 1) * sizeof *nt);
  if (!nt) return -1;
  *types = nt;
  char *c = malloc(len + 1);
  if (!c) return -1;
  memcpy(c, t, len);
  c[len] = 0;
  nt[*ntypes] = c;
  return (*ntypes)++;
}

int bc_entities(const char *const *tags, size_t n, bc_entity **out, size_t *count, size_t *cap,
                char ***types, int *ntypes) {
  char prev_tag = 'O';
  const char *prev_type = "";
  size_t prev_len = 0, begin = 0;
  /* the sequence plus a final "O", as seqeval appends */
  for (size_t i = 0; i <= n; i++) {
    char tag;
    const char *type;
    size_t tlen;
    bc_tag_split(i < n ? tags[i] : "O", &tag, &type, &tlen);
    /* "" and "_" are both seqeval's '_' */
    const char *a = tlen ? type : "_", *b = prev_len ? prev_type : "_";
    size_t al = tlen ? tlen : 1, bl = prev_len ? prev_len : 1;
    int same = al == bl && !memcmp(a, b, al);
    if (end_of_chunk(prev_tag, tag, same)) {
      int ti = intern(prev_type, prev_len, types, ntypes);
      if (ti < 0) return BERTCL_ERR_NOMEM;
      if (*count == *cap) {
        size_t nc = *cap ? 2 * *cap : 64;
        bc_entity *ne = realloc(*out, nc * sizeof *ne);
        if (!ne) return BERTCL_ERR_NOMEM;
        *out = ne;
        *cap = nc;
      }
      (*out)[(*count)++] = (bc_entity){ti, begin, i - 1};
    }
    if (start_of_chunk(prev_tag, tag, same)) begin = i;
    prev_tag = tag;
    prev_type = type;
    prev_len = tlen;
  }
  return BERTCL_OK;
}

void bc_entity_report_free(bc_entity_report *r) {
  if (!r) return;
  for (int i = 0; i < r->ntypes; i++) free(r->types[i]);
  free(r->types);
  free(r->type_p), free(r->type_r), free(r->type_f1);
  free(r->type_support), free(r->type_pred), free(r->type_correct);
  memset(r, 0, sizeof *r);
}

static int cmp_entity(const void *a, const void *b) {
  const bc_entity *x = a, *y = b;
  if (x->type != y->type) return x->type < y->type ? -1 : 1;
  if (x->start != y->start) return x->start < y->start ? -1 : 1;
  return x->end < y->end ? -1 : x->end > y->end;
}

static int cmp_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static double ratio(size_t a, size_t b) { return b ? (double)a / (double)b : 0.0; }
static double f1_of(double p, double r) { return p + r > 0 ? 2 * p * r / (p + r) : 0.0; }

int bc_entity_score(bc_err *err, const char *const *gold, const char *const *pred,
                    const size_t *start, size_t nsent, bc_entity_report *r) {
  memset(r, 0, sizeof *r);
  bc_entity *ge = NULL, *pe = NULL;
  size_t gn = 0, gc = 0, pn = 0, pc = 0;
  char **types = NULL;
  int ntypes = 0, st = BERTCL_OK;
  size_t ok_words = 0, words = 0;
  for (size_t s = 0; s < nsent && st == BERTCL_OK; s++) {
    size_t a = start[s], n = start[s + 1] - a;
    /* entities of each sentence, positions global (seqeval joins sentences with an "O") */
    size_t g0 = gn, p0 = pn;
    st = bc_entities(gold + a, n, &ge, &gn, &gc, &types, &ntypes);
    if (st == BERTCL_OK) st = bc_entities(pred + a, n, &pe, &pn, &pc, &types, &ntypes);
    for (size_t i = g0; i < gn; i++) ge[i].start += a + s, ge[i].end += a + s;
    for (size_t i = p0; i < pn; i++) pe[i].start += a + s, pe[i].end += a + s;
    for (size_t i = 0; i < n; i++) ok_words += !strcmp(gold[a + i], pred[a + i]);
    words += n;
  }
  if (st != BERTCL_OK) goto oom;
  /* per type: gold, predicted and matching entities (both lists sorted: a merge) */
  size_t nt = (size_t)ntypes + 1;
  size_t *sup = calloc(nt, sizeof *sup), *npred = calloc(nt, sizeof *npred),
         *corr = calloc(nt, sizeof *corr);
  if (!sup || !npred || !corr) {
    free(sup), free(npred), free(corr);
    goto oom;
  }
  if (gn) qsort(ge, gn, sizeof *ge, cmp_entity);
  if (pn) qsort(pe, pn, sizeof *pe, cmp_entity);
  for (size_t i = 0; i < gn; i++) sup[ge[i].type]++;
  for (size_t i = 0; i < pn; i++) npred[pe[i].type]++;
  for (size_t i = 0, j = 0; i < gn && j < pn;) {
    int c = cmp_entity(&ge[i], &pe[j]);
    if (c == 0) corr[ge[i].type]++, i++, j++;
    else if (c < 0) i++;
    else j++;
  }
  /* the report: types with a gold or predicted entity, sorted by name (seqeval's order) */
  int *order = malloc((size_t)(ntypes ? ntypes : 1) * sizeof *order);
  char **names = malloc((size_t)(ntypes ? ntypes : 1) * sizeof *names);
  r->types = calloc((size_t)(ntypes ? ntypes : 1), sizeof *r->types);
  r->type_p = calloc((size_t)(ntypes ? ntypes : 1), sizeof(double));
  r->type_r = calloc((size_t)(ntypes ? ntypes : 1), sizeof(double));
  r->type_f1 = calloc((size_t)(ntypes ? ntypes : 1), sizeof(double));
  r->type_support = calloc((size_t)(ntypes ? ntypes : 1), sizeof(size_t));
  r->type_pred = calloc((size_t)(ntypes ? ntypes : 1), sizeof(size_t));
  r->type_correct = calloc((size_t)(ntypes ? ntypes : 1), sizeof(size_t));
  if (!order || !names || !r->types || !r->type_p || !r->type_r || !r->type_f1 ||
      !r->type_support || !r->type_pred || !r->type_correct) {
    free(order), free(names), free(sup), free(npred), free(corr);
    goto oom;
  }
  int m = 0;
  for (int t = 0; t < ntypes; t++)
    if (sup[t] || npred[t]) names[m++] = types[t];
  qsort(names, (size_t)m, sizeof *names, cmp_name);
  for (int i = 0; i < m; i++) {
    int t = 0;
    while (types[t] != names[i]) t++;
    r->types[i] = bc_strdup(types[t]);
    if (!r->types[i]) {
      r->ntypes = i;
      free(order), free(names), free(sup), free(npred), free(corr);
      goto oom;
    }
    r->type_support[i] = sup[t];
    r->type_pred[i] = npred[t];
    r->type_correct[i] = corr[t];
    r->type_p[i] = ratio(corr[t], npred[t]);
    r->type_r[i] = ratio(corr[t], sup[t]);
    r->type_f1[i] = f1_of(r->type_p[i], r->type_r[i]);
    r->correct += corr[t];
  }
  r->ntypes = m;
  r->gold_entities = gn;
  r->pred_entities = pn;
  r->precision = ratio(r->correct, pn);
  r->recall = ratio(r->correct, gn);
  r->f1 = f1_of(r->precision, r->recall);
  r->words = words;
  r->accuracy = ratio(ok_words, words);
  free(order), free(names), free(sup), free(npred), free(corr);
  goto done;
oom:
  bc_entity_report_free(r);
  st = bc_fail(err, BERTCL_ERR_NOMEM, "out of memory scoring entities");
done:
  for (int i = 0; i < ntypes; i++) free(types[i]);
  free(types);
  free(ge), free(pe);
  return st;
}

void bc_entity_report_to_metrics(const bc_entity_report *r, bertcl_metrics *m) {
  m->examples = r->words;
  m->accuracy = r->accuracy;
  m->precision = r->precision;
  m->recall = r->recall;
  m->entity_f1 = r->f1;
  m->n_types = r->ntypes;
  m->type_names = (const char *const *)r->types;
  m->type_precision = r->type_p;
  m->type_recall = r->type_r;
  m->type_f1 = r->type_f1;
  m->type_support = r->type_support;
}

char *bc_entity_report_table(const bc_entity_report *r) {
  size_t cap = 256 + (size_t)(r->ntypes + 2) * 128, len = 0;
  for (int i = 0; i < r->ntypes; i++) cap += strlen(r->types[i]);
  char *s = malloc(cap);
  if (!s) return NULL;
  int w = 9;
  for (int i = 0; i < r->ntypes; i++)
    if ((int)strlen(r->types[i]) > w) w = (int)strlen(r->types[i]);
  len += (size_t)snprintf(s + len, cap - len, "%*s %9s %9s %9s %9s\n", w, "", "precision",
                          "recall", "f1-score", "support");
  for (int i = 0; i < r->ntypes; i++)
    len += (size_t)snprintf(s + len, cap - len, "%*s %9.4f %9.4f %9.4f %9zu\n", w, r->types[i],
                            r->type_p[i], r->type_r[i], r->type_f1[i], r->type_support[i]);
  snprintf(s + len, cap - len, "%*s %9.4f %9.4f %9.4f %9zu", w, "micro avg", r->precision,
           r->recall, r->f1, r->gold_entities);
  return s;
}

const char *bc_scheme_name(bertcl_tag_scheme s) {
  switch (s) {
    case BERTCL_SCHEME_IOB1: return "IOB1";
    case BERTCL_SCHEME_IOB2: return "IOB2";
    case BERTCL_SCHEME_IOBES: return "IOBES";
    case BERTCL_SCHEME_NONE: return "none (plain tags)";
    default: return "auto";
  }
}

static int has_prefix(const char *t, const char *prefixes) {
  return t[0] && strchr(prefixes, t[0]) && t[1] == '-' && t[2];
}

bertcl_tag_scheme bc_detect_scheme(const char *const *tags, const size_t *start, size_t nsent) {
  int iobes = 0, iob1 = 0;
  size_t nw = start[nsent];
  for (size_t i = 0; i < nw; i++) {
    const char *t = tags[i];
    if (!strcmp(t, "O")) continue;
    if (!has_prefix(t, "BIES")) return BERTCL_SCHEME_NONE;
    if (t[0] == 'E' || t[0] == 'S') iobes = 1;
  }
  if (iobes) return BERTCL_SCHEME_IOBES;
  for (size_t s = 0; s < nsent && !iob1; s++)
    for (size_t i = start[s]; i < start[s + 1]; i++) {
      const char *t = tags[i];
      if (t[0] != 'I') continue;
      const char *p = i > start[s] ? tags[i - 1] : "O";
      /* I-X after O, or after a tag of another type: an entity that starts with I- */
      if (!strcmp(p, "O") || strcmp(p + 2, t + 2)) {
        iob1 = 1;
        break;
      }
    }
  return iob1 ? BERTCL_SCHEME_IOB1 : BERTCL_SCHEME_IOB2;
}

int bc_tags_fit_scheme(const char *const *tags, size_t n, bertcl_tag_scheme scheme, size_t *bad) {
  if (scheme == BERTCL_SCHEME_NONE || scheme == BERTCL_SCHEME_AUTO) return 1;
  const char *ok = scheme == BERTCL_SCHEME_IOBES ? "BIES" : "BI";
  for (size_t i = 0; i < n; i++)
    if (strcmp(tags[i], "O") && !has_prefix(tags[i], ok)) {
      *bad = i;
      return 0;
    }
  return 1;
}
