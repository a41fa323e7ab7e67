/* bertcl extract: sentence, token and word features from any layers, in one pass.
 * This first version reads the whole input into memory and writes one file; streaming, sharding
 * and resumable jobs over large corpora are the batch-job work (issue 7). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bertcl.h"
#include "cli.h"
#include "encoder/encoder.h"
#include "io/writers.h"
#include "model/model.h"

void bc_cmd_extract_usage(FILE *out) {
  fprintf(out,
          "usage: bertcl extract -m MODEL_DIR -i INPUT -o OUTPUT [options]\n\n"
          "Runs the encoder over every text of INPUT and writes the features asked for.\n"
          "Row i of every output belongs to input line i.\n\n"
          "input:\n"
          "  -i FILE             plain text (one text a line), JSONL ({\"text\": .., \"text_pair\": ..})\n"
          "                      when FILE ends in .jsonl, TSV when --column is given; - = stdin\n"
          "  --column NAME|N     TSV column holding the text (name from the header line, or a\n"
          "                      0-based index; with a name the first line is the header)\n"
          "features (several at once are written as separately named tensors):\n"
          "  --pool LIST         cls,mean,max,pooler or none (default: the model directory's\n"
          "                      sentence-transformers pooling, else cls)\n"
          "  --layers SPEC       last (default), all, -4: (last four), 0,6,12, 2:5; 0 = embeddings\n"
          "  --combine MODE      concat (default), mean or sum: how several layers are joined\n"
          "  --normalize         L2-normalise sentence vectors (default: on when the model\n"
          "                      directory has a Normalize module); --no-normalize turns it off\n"
          "  --tokens            also write every real token's vector (ragged: values + offsets)\n"
          "  --words first|mean  also write word vectors from WordPiece word ids\n"
          "run:\n"
          "  --device D          OpenCL device (see bertcl devices); default $BERTCL_DEVICE or\n"
          "                      the first GPU, else the first device\n"
          "  --batch-size N      texts per batch (default 32); halved automatically when the\n"
          "                      device runs out of memory\n"
          "  --max-len N         truncate to N tokens (default: the model's maximum)\n"
          "  --format F          npy (one output only), safetensors (default) or jsonl\n"
          "  --quiet             no progress on stderr\n");
}

typedef struct {
  const char *model, *input, *output, *device, *column, *pool, *layers, *combine, *format,
      *words;
  int normalize; /* -1 = model default */
  int tokens, quiet;
  int batch, max_len;
} opts;

/* ---- input ------------------------------------------------------------------------------ */

typedef struct {
  char **text, **pair;
  size_t n, cap;
} texts;

static int push(texts *t, char *text, char *pair) {
  if (t->n == t->cap) {
    size_t nc = t->cap ? t->cap * 2 : 256;
    char **a = realloc(t->text, nc * sizeof *a);
    if (!a) return -1;
    t->text = a;
    char **b = realloc(t->pair, nc * sizeof *b);
    if (!b) return -1;
    t->pair = b;
    t->cap = nc;
  }
  t->text[t->n] = text;
  t->pair[t->n] = pair;
  t->n++;
  return 0;
}

static void texts_free(texts *t) {
  for (size_t i = 0; i < t->n; i++) {
    free(t->text[i]);
    free(t->pair[i]);
  }
  free(t->text);
  free(t->pair);
}

static int ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && strcmp(s + a - b, suf) == 0;
}

static char *tsv_field(char *line, int col) {
  char *p = line;
  for (int i = 0; i < col; i++) {
    p = strchr(p, '\t');
    if (!p) return NULL;
    p++;
  }
  char *end = strchr(p, '\t');
  size_t n = end ? (size_t)(end - p) : strlen(p);
  char *s = malloc(n + 1);
  if (s) {
    memcpy(s, p, n);
    s[n] = '\0';
  }
  return s;
}

static int read_input(const opts *o, texts *t) {
  FILE *f = strcmp(o->input, "-") == 0 ? stdin : fopen(o->input, "rb");
  if (!f) {
    bc_cli_error("cannot open %s: %s", o->input, strerror(errno));
    return 1;
  }
  int jsonl = ends_with(o->input, ".jsonl") && !o->column;
  int col = -1, header = 0;
  if (o->column) {
    char *endp;
    long v = strtol(o->column, &endp, 10);
    if (*endp == '\0' && v >= 0) col = (int)v; else header = 1;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  size_t lineno = 0;
  int rc = 0;
  while ((len = getline(&line, &cap, f)) >= 0) {
    lineno++;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
    if (header) {
      header = 0;
      for (int i = 0;; i++) {
        char *name = tsv_field(line, i);
        if (!name) break;
        int hit = strcmp(name, o->column) == 0;
        free(name);
        if (hit) {
          col = i;
          break;
        }
      }
      if (col < 0) {
        bc_cli_error("%s: no column named '%s' in the header line", o->input, o->column);
        rc = 1;
        break;
      }
      continue;
    }
    char *text = NULL, *pair = NULL;
    if (jsonl) {
      json_error_t je;
      json_t *obj = json_loadb(line, (size_t)len, 0, &je);
      const char *tx = obj ? json_string_value(json_object_get(obj, "text")) : NULL;
      if (!tx) {
        bc_cli_error("%s:%zu: not a JSON object with a \"text\" string%s%s", o->input, lineno,
                     obj ? "" : ": ", obj ? "" : je.text);
        json_decref(obj);
        rc = 1;
        break;
      }
      text = strdup(tx);
      const char *px = json_string_value(json_object_get(obj, "text_pair"));
      if (px) pair = strdup(px);
      json_decref(obj);
    } else if (col >= 0) {
      text = tsv_field(line, col);
      if (!text) {
        bc_cli_error("%s:%zu: has no column %d", o->input, lineno, col);
        rc = 1;
        break;
      }
    } else {
      text = strdup(line);
    }
    if (!text || push(t, text, pair) != 0) {
      bc_cli_error("out of memory reading %s", o->input);
      free(text);
      free(pair);
      rc = 1;
      break;
    }
  }
  free(line);
  if (f != stdin) fclose(f);
  return rc;
}

/* ---- layer spec ------------------------------------------------------------------------- */

/* "last", "all", "-4:", "0,6,12", "2:5", "-1"; indices 0..L (0 = embeddings). */
static int parse_layers(const char *spec, int L, int *out, int *n) {
  *n = 0;
  if (!spec || !strcmp(spec, "last")) {
    out[(*n)++] = L;
    return 0;
  }
  if (!strcmp(spec, "all")) {
    for (int l = 0; l <= L; l++) out[(*n)++] = l;
    return 0;
  }
  char buf[256];
  snprintf(buf, sizeof buf, "%s", spec);
  for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
    char *colon = strchr(tok, ':');
    if (colon) {
      *colon = '\0';
      int a = *tok ? atoi(tok) : 0, b = colon[1] ? atoi(colon + 1) : L + 1;
      if (a < 0) a += L + 1;
      if (b < 0) b += L + 1;
      if (a < 0 || b > L + 1 || a >= b) return -1;
      for (int l = a; l < b && *n < 64; l++) out[(*n)++] = l;
    } else {
      char *end;
      long v = strtol(tok, &end, 10);
      if (*end) return -1;
      if (v < 0) v += L + 1;
      if (v < 0 || v > L || *n >= 64) return -1;
      out[(*n)++] = (int)v;
    }
  }
  return *n > 0 ? 0 : -1;
}

/* ---- main ------------------------------------------------------------------------------- */

enum { P_CLS = 0, P_MEAN, P_MAX, P_POOLER, NPOOL };
static const char *pool_names[NPOOL] = {"cls", "mean", "max", "pooler"};
static const int pool_modes[NPOOL] = {BC_POOL_CLS, BC_POOL_MEAN, BC_POOL_MAX, BC_POOL_POOLER};

static int arg_value(int argc, char **argv, int *i, const char *name, const char **out) {
  size_t n = strlen(name);
  if (!strcmp(argv[*i], name)) {
    if (*i + 1 >= argc) {
      bc_cli_error("extract: %s needs a value", name);
      return -1;
    }
    *out = argv[++*i];
    return 1;
  }
  if (!strncmp(argv[*i], name, n) && argv[*i][n] == '=') {
    *out = argv[*i] + n + 1;
    return 1;
  }
  return 0;
}

int bc_cmd_extract(int argc, char **argv) {
  opts o = {.normalize = -1, .batch = 32, .format = "safetensors", .combine = "concat"};
  const char *v = NULL;
  for (int i = 1; i < argc; i++) {
    int r;
#define OPT(flag, field)                                        \
  if ((r = arg_value(argc, argv, &i, flag, &v)) != 0) {         \
    if (r < 0) return 2;                                        \
    o.field = v;                                                \
    continue;                                                   \
  }
    OPT("-m", model) OPT("--model", model) OPT("-i", input) OPT("--input", input)
    OPT("-o", output) OPT("--output", output) OPT("--device", device) OPT("--column", column)
    OPT("--pool", pool) OPT("--layers", layers) OPT("--combine", combine)
    OPT("--format", format) OPT("--words", words)
#undef OPT
    if ((r = arg_value(argc, argv, &i, "--batch-size", &v)) != 0) {
      if (r < 0 || (o.batch = atoi(v)) <= 0) return bc_cli_error("extract: bad --batch-size"), 2;
      continue;
    }
    if ((r = arg_value(argc, argv, &i, "--max-len", &v)) != 0) {
      if (r < 0 || (o.max_len = atoi(v)) <= 2) return bc_cli_error("extract: bad --max-len"), 2;
      continue;
    }
    if (!strcmp(argv[i], "--normalize")) o.normalize = 1;
    else if (!strcmp(argv[i], "--no-normalize")) o.normalize = 0;
    else if (!strcmp(argv[i], "--tokens")) o.tokens = 1;
    else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) o.quiet = 1;
    else {
      bc_cli_error("extract: unknown option '%s' (see bertcl extract --help)", argv[i]);
      return 2;
    }
  }
  if (!o.model || !o.input || !o.output) {
    bc_cli_error("extract: -m MODEL_DIR, -i INPUT and -o OUTPUT are required "
                 "(see bertcl extract --help)");
    return 2;
  }
  int combine = !strcmp(o.combine, "concat") ? BC_COMBINE_CONCAT
                : !strcmp(o.combine, "mean") ? BC_COMBINE_MEAN
                : !strcmp(o.combine, "sum")  ? BC_COMBINE_SUM
                                             : -1;
  if (combine < 0) return bc_cli_error("extract: --combine must be concat, mean or sum"), 2;
  int words_mode = 0; /* 0 none, 1 first, 2 mean */
  if (o.words) {
    if (!strcmp(o.words, "first")) words_mode = 1;
    else if (!strcmp(o.words, "mean")) words_mode = 2;
    else return bc_cli_error("extract: --words must be first or mean"), 2;
  }
  int fmt = !strcmp(o.format, "safetensors") ? 0 : !strcmp(o.format, "npy") ? 1
            : !strcmp(o.format, "jsonl")     ? 2 : -1;
  if (fmt < 0) return bc_cli_error("extract: --format must be npy, safetensors or jsonl"), 2;

  int rc = 1;
  bertcl_model *model = NULL;
  bertcl_tokenizer *tok = NULL;
  bertcl_ctx *ctx = NULL;
  bc_encoder *enc = NULL;
  texts in = {0};
  float *outs[NPOOL] = {0}, *tokv = NULL, *wordv = NULL, *hbuf = NULL;
  size_t *tok_off = NULL, *word_off = NULL;
  if (bertcl_model_load(&model, o.model) != BERTCL_OK ||
      bertcl_tokenizer_load(&tok, o.model) != BERTCL_OK) {
    bc_cli_error("%s", bertcl_last_error(NULL));
    goto done;
  }
  const bc_config *cfg = bc_model_config(model);
  int C = cfg->hidden_size, L = cfg->num_layers;
  /* defaults from the model directory */
  int want[NPOOL] = {0};
  if (o.pool) {
    if (strcmp(o.pool, "none") != 0) {
      char buf[128];
      snprintf(buf, sizeof buf, "%s", o.pool);
      for (char *p = strtok(buf, ","); p; p = strtok(NULL, ",")) {
        int k = 0;
        while (k < NPOOL && strcmp(p, pool_names[k])) k++;
        if (k == NPOOL) {
          bc_cli_error("extract: unknown pooling '%s' (cls, mean, max, pooler, none)", p);
          rc = 2;
          goto done;
        }
        want[k] = 1;
      }
    }
  } else if (cfg->st_pooling) {
    for (int k = 0; k < NPOOL; k++) want[k] = (cfg->st_pooling & pool_modes[k]) != 0;
  } else {
    want[P_CLS] = 1;
  }
  int normalize = o.normalize >= 0 ? o.normalize : cfg->st_normalize;
  int layers[64], nl = 0;
  if (parse_layers(o.layers, L, layers, &nl) != 0) {
    bc_cli_error("extract: bad --layers '%s' (last, all, -4:, 0,6,12; 0..%d)", o.layers, L);
    rc = 2;
    goto done;
  }
  if (fmt == 1 && (want[0] + want[1] + want[2] + want[3] + o.tokens + (words_mode > 0)) != 1) {
    bc_cli_error("extract: --format npy holds one array; ask for one output or use "
                 "--format safetensors");
    rc = 2;
    goto done;
  }
  if (fmt == 1 && (o.tokens || words_mode)) {
    bc_cli_error("extract: token and word features are ragged; use --format safetensors or jsonl");
    rc = 2;
    goto done;
  }
  if (read_input(&o, &in) != 0) goto done;
  bertcl_ctx_options copt = {.device = o.device};
  if (bertcl_ctx_create(&ctx, &copt) != BERTCL_OK) {
    bc_cli_error("%s", bertcl_last_error(NULL));
    goto done;
  }
  if (!o.quiet)
    fprintf(stderr, "bertcl: %zu texts, device %s, layers %d..%d (%d)\n", in.n,
            bertcl_ctx_device(ctx)->name, layers[0], layers[nl - 1], nl);
  if (bc_encoder_create(ctx, model, &enc) != BERTCL_OK) {
    bc_cli_error("%s", bertcl_last_error(ctx));
    goto done;
  }
  size_t N = in.n;
  int width = combine == BC_COMBINE_CONCAT ? nl * C : C;
  for (int k = 0; k < NPOOL; k++)
    if (want[k]) {
      size_t w = k == P_POOLER ? (size_t)C : (size_t)width;
      outs[k] = malloc((N ? N : 1) * w * sizeof(float));
      if (!outs[k]) {
        bc_cli_error("out of memory for %zu x %zu outputs", N, w);
        goto done;
      }
    }
  size_t ntok = 0, ncap = 0, nword = 0, wcap = 0;
  tok_off = calloc(N + 1, sizeof *tok_off);
  word_off = calloc(N + 1, sizeof *word_off);
  if (!tok_off || !word_off) goto done;
  bertcl_tokenize_options topt = {.max_length = (size_t)o.max_len};
  size_t done_rows = 0, truncated = 0;
  int bs = o.batch;
  while (done_rows < N) {
    size_t nb = N - done_rows < (size_t)bs ? N - done_rows : (size_t)bs;
    bertcl_batch *b = NULL;
    if (bertcl_tokenizer_encode_batch(tok, (const char *const *)in.text + done_rows,
                                      (const char *const *)in.pair + done_rows, nb, &topt,
                                      &b) != BERTCL_OK) {
      bc_cli_error("%s", bertcl_last_error(NULL));
      goto done;
    }
    int B = (int)b->batch, T = (int)b->seq;
    int st = bc_encoder_forward(enc, b->ids, b->type_ids, b->mask, B, T, layers, nl);
    if (st == BERTCL_ERR_DEVICE_OOM && bs > 1) {
      bs /= 2;
      if (!o.quiet)
        fprintf(stderr, "bertcl: device out of memory at batch %d; retrying with %d\n", bs * 2,
                bs);
      bertcl_batch_free(b);
      continue;
    }
    if (st != BERTCL_OK) {
      bc_cli_error("%s", bertcl_last_error(ctx));
      bertcl_batch_free(b);
      goto done;
    }
    for (int k = 0; k < NPOOL && st == BERTCL_OK; k++) {
      if (!want[k]) continue;
      if (k == P_POOLER)
        st = bc_encoder_read_pooler(enc, outs[k] + done_rows * C);
      else
        st = bc_encoder_read_pooled(enc, pool_modes[k], combine, normalize,
                                    outs[k] + done_rows * (size_t)width);
    }
    if (st == BERTCL_OK && (o.tokens || words_mode)) {
      /* token/word features of the combined layers, real tokens only (host-side gather) */
      size_t bt = (size_t)B * T * C;
      float *nh = realloc(hbuf, bt * (size_t)(nl + 1) * sizeof(float));
      if (!nh) st = BERTCL_ERR_NOMEM; else hbuf = nh;
      for (int j = 0; j < nl && st == BERTCL_OK; j++)
        st = bc_encoder_read_hidden(enc, j, hbuf + (size_t)j * bt);
      for (int bi = 0; bi < B && st == BERTCL_OK; bi++) {
        size_t len = b->lengths[bi], row = done_rows + (size_t)bi;
        int maxw = -1;
        for (size_t t = 0; t < len; t++)
          if (b->word_ids[(size_t)bi * T + t] > maxw) maxw = b->word_ids[(size_t)bi * T + t];
        if (ntok + len > ncap || nword + (size_t)(maxw + 1) > wcap) {
          ncap = (ntok + len) * 2 + 64;
          wcap = (nword + (size_t)maxw + 1) * 2 + 64;
          float *a = realloc(tokv, ncap * (size_t)width * sizeof(float));
          if (a) tokv = a;
          float *w = realloc(wordv, wcap * (size_t)width * sizeof(float));
          if (w) wordv = w;
          if (!a || !w) { st = BERTCL_ERR_NOMEM; break; }
        }
        float *cnt = calloc((size_t)maxw + 2, sizeof(float));
        if (!cnt) { st = BERTCL_ERR_NOMEM; break; }
        memset(wordv + nword * (size_t)width, 0, ((size_t)maxw + 1) * width * sizeof(float));
        for (size_t t = 0; t < len; t++) {
          float *dst = tokv + (ntok + t) * (size_t)width;
          for (int c = 0; c < width; c++) {
            float val = 0.0f;
            if (combine == BC_COMBINE_CONCAT) {
              val = hbuf[(size_t)(c / C) * bt + ((size_t)bi * T + t) * C + (size_t)(c % C)];
            } else {
              for (int j = 0; j < nl; j++) val += hbuf[(size_t)j * bt + ((size_t)bi * T + t) * C + c];
              if (combine == BC_COMBINE_MEAN) val /= (float)nl;
            }
            dst[c] = val;
          }
          int wid = b->word_ids[(size_t)bi * T + t];
          if (wid >= 0 && (words_mode == 2 || cnt[wid] == 0)) {
            float *wd = wordv + (nword + (size_t)wid) * (size_t)width;
            for (int c = 0; c < width; c++) wd[c] += dst[c];
            cnt[wid] += 1.0f;
          }
        }
        for (int w = 0; w <= maxw; w++)
          if (cnt[w] > 1)
            for (int c = 0; c < width; c++) wordv[(nword + (size_t)w) * width + c] /= cnt[w];
        free(cnt);
        ntok += len;
        nword += (size_t)(maxw + 1);
        tok_off[row + 1] = ntok;
        word_off[row + 1] = nword;
      }
    }
    if (st != BERTCL_OK) {
      bc_cli_error("%s", st == BERTCL_ERR_NOMEM ? "out of host memory" : bertcl_last_error(ctx));
      bertcl_batch_free(b);
      goto done;
    }
    for (int bi = 0; bi < B; bi++)
      if (b->overflow[2 * bi] + b->overflow[2 * bi + 1] > 0) truncated++;
    bertcl_batch_free(b);
    done_rows += nb;
    if (!o.quiet) fprintf(stderr, "\rbertcl: %zu/%zu texts", done_rows, N);
  }
  if (!o.quiet) fprintf(stderr, "\n");
  /* ---- write ---- */
  bc_err err = {0};
  char layers_text[512] = "";
  for (int j = 0; j < nl; j++) {
    size_t l = strlen(layers_text);
    snprintf(layers_text + l, sizeof layers_text - l, "%s%d", j ? "," : "", layers[j]);
  }
  if (fmt == 1) {
    for (int k = 0; k < NPOOL; k++)
      if (want[k]) {
        size_t shape[2] = {N, k == P_POOLER ? (size_t)C : (size_t)width};
        if (bc_npy_write(&err, o.output, outs[k], 2, shape, BC_OUT_F32, 0) != BERTCL_OK) {
          bc_cli_error("%s", err.msg);
          goto done;
        }
      }
  } else if (fmt == 0) {
    bc_st_out_tensor ts[NPOOL + 4];
    size_t nt = 0;
    static size_t dummy;
    float *toff_f = NULL, *woff_f = NULL;
    for (int k = 0; k < NPOOL; k++)
      if (want[k])
        ts[nt++] = (bc_st_out_tensor){.name = pool_names[k], .data = outs[k], .ndim = 2,
                                      .shape = {N, k == P_POOLER ? (size_t)C : (size_t)width}};
    if (o.tokens || words_mode) {
      toff_f = malloc((N + 1) * sizeof(float));
      woff_f = malloc((N + 1) * sizeof(float));
      if (!toff_f || !woff_f) { free(toff_f); free(woff_f); goto done; }
      /* offsets stored as F32 (exact up to 2^24 rows of tokens) */
      for (size_t i = 0; i <= N; i++) toff_f[i] = (float)tok_off[i], woff_f[i] = (float)word_off[i];
      if (o.tokens) {
        ts[nt++] = (bc_st_out_tensor){.name = "tokens", .data = tokv ? tokv : (float *)&dummy,
                                      .ndim = 2, .shape = {ntok, (size_t)width}};
        ts[nt++] = (bc_st_out_tensor){.name = "tokens.offsets", .data = toff_f, .ndim = 1,
                                      .shape = {N + 1}};
      }
      if (words_mode) {
        ts[nt++] = (bc_st_out_tensor){.name = "words", .data = wordv ? wordv : (float *)&dummy,
                                      .ndim = 2, .shape = {nword, (size_t)width}};
        ts[nt++] = (bc_st_out_tensor){.name = "words.offsets", .data = woff_f, .ndim = 1,
                                      .shape = {N + 1}};
      }
    }
    char pools[64] = "";
    for (int k = 0; k < NPOOL; k++)
      if (want[k]) {
        size_t l = strlen(pools);
        snprintf(pools + l, sizeof pools - l, "%s%s", l ? "," : "", pool_names[k]);
      }
    bc_st_meta meta[] = {{"model", o.model},      {"pooling", pools[0] ? pools : "none"},
                         {"layers", layers_text}, {"combine", o.combine},
                         {"normalize", normalize ? "true" : "false"},
                         {"generator", "bertcl " BERTCL_VERSION_STRING}};
    int wst = bc_st_write(&err, o.output, ts, nt, meta, sizeof meta / sizeof meta[0]);
    free(toff_f);
    free(woff_f);
    if (wst != BERTCL_OK) {
      bc_cli_error("%s", err.msg);
      goto done;
    }
  } else {
    /* JSONL: one object per text, written to a temporary file and renamed */
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    if (!buf) goto done;
    for (size_t i = 0; i < N; i++) {
      json_t *obj = json_object();
      for (int k = 0; k < NPOOL; k++)
        if (want[k]) {
          size_t w = k == P_POOLER ? (size_t)C : (size_t)width;
          json_t *arr = json_array();
          for (size_t c = 0; c < w; c++) json_array_append_new(arr, json_real(outs[k][i * w + c]));
          json_object_set_new(obj, pool_names[k], arr);
        }
      if (o.tokens || words_mode) {
        const char *keys[2] = {"tokens", "words"};
        float *vals[2] = {tokv, wordv};
        size_t *offs[2] = {tok_off, word_off};
        for (int q = 0; q < 2; q++) {
          if ((q == 0 && !o.tokens) || (q == 1 && !words_mode)) continue;
          json_t *rows = json_array();
          for (size_t r = offs[q][i]; r < offs[q][i + 1]; r++) {
            json_t *arr = json_array();
            for (int c = 0; c < width; c++)
              json_array_append_new(arr, json_real(vals[q][r * (size_t)width + c]));
            json_array_append_new(rows, arr);
          }
          json_object_set_new(obj, keys[q], rows);
        }
      }
      char *s = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(9));
      json_decref(obj);
      if (!s) { free(buf); goto done; }
      size_t sl = strlen(s);
      while (len + sl + 2 > cap) {
        char *nb = realloc(buf, cap * 2);
        if (!nb) { free(s); free(buf); goto done; }
        buf = nb;
        cap *= 2;
      }
      memcpy(buf + len, s, sl);
      len += sl;
      buf[len++] = '\n';
      free(s);
    }
    int wst = bc_write_file_atomic(&err, o.output, buf, len);
    free(buf);
    if (wst != BERTCL_OK) {
      bc_cli_error("%s", err.msg);
      goto done;
    }
  }
  if (!o.quiet)
    fprintf(stderr, "bertcl: wrote %s: %zu rows (%zu truncated to the maximum length)\n",
            o.output, N, truncated);
  rc = 0;
done:
  for (int k = 0; k < NPOOL; k++) free(outs[k]);
  free(tokv);
  free(wordv);
  free(hbuf);
  free(tok_off);
  free(word_off);
  texts_free(&in);
  bc_encoder_free(enc);
  bertcl_ctx_free(ctx);
  bertcl_tokenizer_free(tok);
  bertcl_model_free(model);
  return rc;
}
