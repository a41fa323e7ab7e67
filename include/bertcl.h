/* bertcl: BERT-family encoders on any OpenCL device.
 *
 * The one public header. Handles are opaque; a user needs no OpenCL types.
 * Every function that can fail returns a bertcl_status (0 = BERTCL_OK, negative = error) and
 * leaves a human-readable message in the handle it was given (bertcl_last_error(handle)), or in
 * a thread-local slot for functions that have no handle yet (bertcl_last_error(NULL)).
 * The library never calls exit() or abort(). Every _free(NULL) is a no-op.
 */
#ifndef BERTCL_H
#define BERTCL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BERTCL_VERSION_MAJOR 0
#define BERTCL_VERSION_MINOR 1
#define BERTCL_VERSION_PATCH 0
#define BERTCL_VERSION_STRING "0.1.0"

/* One table generates the status enum and its strings (libuv's UV_ERRNO_MAP idea). */
#define BERTCL_STATUS_MAP(X)                                                               \
  X(OK, 0, "success")                                                                      \
  X(ERR_INVALID_ARG, -1, "invalid argument")                                               \
  X(ERR_NOMEM, -2, "out of host memory")                                                   \
  X(ERR_IO, -3, "file input/output error")                                                 \
  X(ERR_NO_PLATFORM, -4, "no OpenCL platform found")                                       \
  X(ERR_NO_DEVICE, -5, "requested OpenCL device not found")                                \
  X(ERR_OPENCL, -6, "OpenCL call failed")                                                  \
  X(ERR_BUILD, -7, "OpenCL program build failed")                                          \
  X(ERR_CLBLAST, -8, "CLBlast call failed")                                                \
  X(ERR_DEVICE_OOM, -9, "device out of memory")                                            \
  X(ERR_FORMAT, -10, "invalid or corrupt file")                                            \
  X(ERR_UNSUPPORTED, -11, "unsupported model, file or option")                             \
  X(ERR_UTF8, -12, "invalid UTF-8 text")                                                   \
  X(ERR_MISSING, -13, "required file or tensor missing")                                   \
  X(ERR_SHAPE, -14, "tensor shape does not match the model configuration")                 \
  X(ERR_OVERFLOW, -15, "size arithmetic overflow")                                         \
  X(ERR_INTERNAL, -16, "internal error")                                                   \
  X(ERR_BUSY, -17, "in use by another process")

typedef enum {
#define BERTCL_STATUS_ENUM_(name, code, text) BERTCL_##name = code,
  BERTCL_STATUS_MAP(BERTCL_STATUS_ENUM_)
#undef BERTCL_STATUS_ENUM_
} bertcl_status;

/* Static text of a status ("invalid argument"); never NULL. */
const char *bertcl_status_str(int status);
/* Symbolic name of a status ("BERTCL_ERR_INVALID_ARG"); never NULL. */
const char *bertcl_status_name(int status);
/* Library version string, e.g. "0.1.0". */
const char *bertcl_version(void);

/* ------------------------------------------------------------------------------------------ */
/* Devices                                                                                    */

typedef enum {
  BERTCL_DEVICE_CPU = 1,
  BERTCL_DEVICE_GPU = 2,
  BERTCL_DEVICE_ACCELERATOR = 4,
  BERTCL_DEVICE_OTHER = 8
} bertcl_device_type;

typedef struct {
  int platform_index;        /* index of the platform in enumeration order */
  int device_index;          /* index of the device inside its platform */
  char platform_name[128];
  char platform_version[128];
  char name[128];
  char vendor[128];
  char version[128];         /* CL_DEVICE_VERSION, e.g. "OpenCL 3.0 CUDA" */
  char driver_version[128];
  bertcl_device_type type;
  uint32_t compute_units;
  uint32_t max_clock_mhz;    /* the driver's figure; for a CPU device that reports 0, the OS's */
  uint64_t global_mem_bytes;
  uint64_t max_alloc_bytes;
  uint64_t local_mem_bytes;
  size_t max_work_group_size;
  int fp16;                  /* cl_khr_fp16 */
  int subgroups;             /* cl_khr_subgroups, cl_intel_subgroups or OpenCL 3.0 subgroups */
  int is_default;            /* the device chosen when no selector is given */
  double fp32_peak_gflops;   /* theoretical fp32 peak, 0 when unknown; CPUs: from the OS */
  char peak_basis[256];      /* how the peak (and a CPU's clock, when the driver gives none)
                                was found */
  char platform_vendor[128]; /* CL_PLATFORM_VENDOR: "Intel(R) Corporation", "The pocl project" */
} bertcl_device_info;

/* Lists every device of every platform. *out is allocated by the library; release it with
 * bertcl_devices_free. With no platform at all this returns BERTCL_OK and *count = 0. */
int bertcl_devices_list(bertcl_device_info **out, size_t *count);
void bertcl_devices_free(bertcl_device_info *list);

/* Resolves a device selector to an index into the bertcl_devices_list() array.
 * selector: NULL or "" (then $BERTCL_DEVICE, then the default: first GPU, else first device);
 * "P:D" (platform P, device D); "N" (N-th device overall); "gpu" / "cpu" / "accelerator" (the
 * first device of that type); else text, compared case-insensitively in three steps, the first
 * step that matches any device deciding:
 *   1. the whole name or vendor of a platform or a device ("Intel(R) OpenCL");
 *   2. part of a platform's name, vendor or version ("intel", "nvidia", "pocl");
 *   3. part of a device's name or vendor ("xeon", "a100").
 * So "intel" means Intel's platform, not PoCL's CPU device whose name holds "Intel(R) Xeon".
 * When that step matches more than one device, nothing is chosen: BERTCL_ERR_NO_DEVICE with the
 * matches listed. Also BERTCL_ERR_NO_DEVICE when nothing matches, listing the devices that exist. */
int bertcl_device_select(const bertcl_device_info *list, size_t count, const char *selector,
                         size_t *index);

/* ------------------------------------------------------------------------------------------ */
/* Context: one device, its queue, its program cache                                          */

typedef struct bertcl_ctx bertcl_ctx;

typedef struct {
  const char *device;  /* selector as for bertcl_device_select; NULL = $BERTCL_DEVICE / default */
  int profiling;       /* non-zero: the queue records profiling events */
  const char *cache_dir; /* NULL: $BERTCL_CACHE_DIR, else $XDG_CACHE_HOME/bertcl, else
                            ~/.cache/bertcl; "off" disables the program cache */
  const char *gemm;      /* matrix-product backend: "auto", "clblast" or "blas"; NULL:
                            $BERTCL_GEMM, else "auto" (a host BLAS on CPU devices that can run
                            one, CLBlast elsewhere) */
} bertcl_ctx_options;

/* opt may be NULL for all defaults. On failure *out is NULL and bertcl_last_error(NULL) says why. */
int bertcl_ctx_create(bertcl_ctx **out, const bertcl_ctx_options *opt);
void bertcl_ctx_free(bertcl_ctx *ctx);
/* The device the context runs on. */
const bertcl_device_info *bertcl_ctx_device(const bertcl_ctx *ctx);

/* ------------------------------------------------------------------------------------------ */
/* Models: a Hugging Face model directory loaded to host memory                               */

typedef struct bertcl_model bertcl_model;

/* Loads config.json, model.safetensors (or a sharded index) and the sentence-transformers module
 * files of a model directory, validating everything. On failure *out is NULL and
 * bertcl_last_error(NULL) names the file and what is wrong. */
int bertcl_model_load(bertcl_model **out, const char *dir);
void bertcl_model_free(bertcl_model *model);

/* What bertcl_model_get_info reports about a loaded model. */
typedef struct {
  char model_type[32];      /* config.json model_type ("bert", "xlm-roberta", ...) */
  char hidden_act[32];      /* gelu (erf), gelu_new / gelu_pytorch_tanh (tanh form), relu */
  int vocab_size;
  int hidden_size;
  int num_layers;
  int num_heads;
  int intermediate_size;
  int max_position;         /* max_position_embeddings */
  int type_vocab_size;      /* 0: the family has no token types (DistilBERT, MPNet) */
  int pad_token_id;
  float layer_norm_eps;
  int has_pooler;           /* pooler.dense present */
  int num_labels;           /* classifier outputs; 0 without a classifier */
  char problem_type[64];    /* "" or single_label_classification / multi_label_... / regression */
  uint64_t num_params;      /* elements of all loaded weights */
  int num_files;            /* safetensors files read (shards) */
  int num_unused;           /* tensors on disk that the encoder does not use */
  char dtypes[64];          /* dtypes on disk of the loaded weights, e.g. "F32" or "BF16,F32" */
  char pooling[48];         /* sentence-transformers pooling ("mean", "cls", "cls+mean"), "" if
                               the directory has no Pooling module */
  int normalize;            /* sentence-transformers Normalize module present */
  int st_max_seq_length;    /* sentence_bert_config.json max_seq_length, 0 if none */
  int max_length;           /* effective maximum tokens per sequence (<= max_position) */
  int do_lower_case;        /* tokenizer lowercases: 1, 0, or -1 when not stated */
  int has_vocab_txt;        /* vocab.txt present */
  int has_tokenizer_json;   /* tokenizer.json present */
  char tokenizer_class[64]; /* tokenizer_config.json tokenizer_class, "" if none */
  char family[16];          /* the encoder family bertcl runs it as: "bert", "roberta" (also
                               xlm-roberta, camembert), "distilbert", "mpnet" */
} bertcl_model_info;

/* Fills *info from a loaded model. */
int bertcl_model_get_info(const bertcl_model *model, bertcl_model_info *info);
/* Name of classifier label id (config.json id2label), or NULL when there is none. */
const char *bertcl_model_label(const bertcl_model *model, int id);

/* Last error message of a handle (any bertcl handle pointer), or of the calling thread when
 * handle is NULL. Never NULL; "" when there was none. */
const char *bertcl_last_error(const void *handle);

/* ------------------------------------------------------------------------------------------ */
/* Tokenizer: Hugging Face's tokenizer.json pipeline, identical to the `tokenizers` library      */
/*
 * Settings come from the model directory: tokenizer.json, read as Hugging Face's `tokenizers`
 * reads it (normalizer, pre-tokenizer, model: WordPiece, Unigram, BPE or WordLevel,
 * post-processor, added tokens; see bertcl_tokenizer_describe), or vocab.txt +
 * tokenizer_config.json (BERT WordPiece) when there is no tokenizer.json. A tokenizer.json with
 * a component bertcl does not implement is refused (BERTCL_ERR_UNSUPPORTED, the message names
 * it). The tokenizer is read-only after loading: several threads may encode with it at once
 * (an error message then goes to the thread-local slot, bertcl_last_error(NULL)).
 *
 * Text is UTF-8. Invalid UTF-8 is never an error: each maximal ill-formed subsequence becomes
 * one U+FFFD, as Python's bytes.decode("utf-8", errors="replace") does (the BERT cleaner then
 * drops U+FFFD). Offsets count characters (code points) of that decoded text, which is what
 * transformers reports as offset_mapping (a character beyond the BMP counts as one; byte-level
 * BPE tokens that split a character each get the whole character).
 */
typedef struct bertcl_tokenizer bertcl_tokenizer;

typedef enum {
  BERTCL_TRUNC_LONGEST_FIRST = 0, /* transformers' "longest_first" */
  BERTCL_TRUNC_ONLY_FIRST = 1,
  BERTCL_TRUNC_ONLY_SECOND = 2,
  BERTCL_TRUNC_NONE = 3
} bertcl_truncation;

typedef struct {
  size_t max_length;            /* tokens including special tokens ([CLS]/[SEP], <s>/</s>);
                                   0 = bertcl_tokenizer_max_length */
  bertcl_truncation truncation; /* how to cut to max_length (default longest_first) */
  int no_special_tokens;        /* non-zero: no special tokens (the post-processor's template) */
  int split_special_tokens;     /* non-zero: a literal "[SEP]" in the text is plain text */
  int pad_to_max_length;        /* batches: T = max_length instead of the longest row */
} bertcl_tokenize_options;

/* One encoded text or pair. Arrays have n entries; tokens point into the tokenizer. */
typedef struct {
  size_t n;
  int32_t *ids;           /* (n) */
  int32_t *type_ids;      /* (n) token_type_ids */
  int32_t *word_ids;      /* (n) word index inside its own text; -1 for template tokens */
  int32_t *seq_ids;       /* (n) 0 = text, 1 = pair text, -1 for template tokens */
  int32_t *offsets;       /* (n, 2) [start, end) in characters of its text; (0,0) for template */
  const char **tokens;    /* (n) token strings, owned by the tokenizer */
  size_t overflow[2];     /* tokens truncated away from text and from pair text */
  size_t replaced[2];     /* invalid UTF-8 sequences replaced by U+FFFD in text / pair text */
} bertcl_encoding;

/* A padded batch for the encoder: row b holds lengths[b] tokens, then pad_id. */
typedef struct {
  size_t batch, seq;      /* B, T */
  int32_t *ids;           /* (B, T) */
  int32_t *mask;          /* (B, T) 1 for tokens, 0 for padding */
  int32_t *type_ids;      /* (B, T) */
  int32_t *word_ids;      /* (B, T) -1 for template tokens and padding */
  size_t *lengths;        /* (B) */
  size_t *overflow;       /* (B, 2) tokens truncated away from text / pair text */
  size_t *replaced;       /* (B, 2) invalid UTF-8 sequences replaced in text / pair text */
} bertcl_batch;

/* Loads the tokenizer of a model directory. On failure *out is NULL and bertcl_last_error(NULL)
 * names the file and what is wrong. */
int bertcl_tokenizer_load(bertcl_tokenizer **out, const char *dir);
void bertcl_tokenizer_free(bertcl_tokenizer *tok);
/* Default max_length: min(model_max_length, max_position_embeddings of config.json,
 * sentence-transformers' max_seq_length), each when present; SIZE_MAX when none is. */
size_t bertcl_tokenizer_max_length(const bertcl_tokenizer *tok);
size_t bertcl_tokenizer_vocab_size(const bertcl_tokenizer *tok);
/* One more than the largest token id the tokenizer can produce (vocabulary, added tokens and
 * any other id its model emits): every id of an encoding is below it. A model's word-embedding
 * table needs at least this many rows. */
size_t bertcl_tokenizer_id_bound(const bertcl_tokenizer *tok);
/* Token string of an id, NULL when out of range. */
const char *bertcl_tokenizer_id_to_token(const bertcl_tokenizer *tok, int32_t id);
/* Id of a vocabulary or added token, -1 when absent. */
int32_t bertcl_tokenizer_token_to_id(const bertcl_tokenizer *tok, const char *token);

/* Encodes text (text_len bytes) and, when pair is not NULL, the pair text. opt NULL = defaults.
 * An empty pair text (pair_len 0) means no pair, as in transformers (text_pair="" is falsy).
 * Fails (BERTCL_ERR_INVALID_ARG) where transformers raises: only_first/only_second when that
 * text is too short to remove enough tokens, only_second without a pair. A max_length below the
 * template's token count truncates nothing (as tokenizers, whose subtraction wraps). */
int bertcl_tokenizer_encode(const bertcl_tokenizer *tok, const char *text, size_t text_len,
                            const char *pair, size_t pair_len, const bertcl_tokenize_options *opt,
                            bertcl_encoding **out);
void bertcl_encoding_free(bertcl_encoding *enc);

/* Encodes n NUL-terminated texts (pairs NULL, or pairs[i] NULL for a single text) into padded
 * (B, T) arrays. */
int bertcl_tokenizer_encode_batch(const bertcl_tokenizer *tok, const char *const *texts,
                                  const char *const *pairs, size_t n,
                                  const bertcl_tokenize_options *opt, bertcl_batch **out);
void bertcl_batch_free(bertcl_batch *batch);

/* ------------------------------------------------------------------------------------------ */
/* Tokenizer pipeline: what a loaded tokenizer runs                                             */

typedef enum {
  BERTCL_STAGE_NORMALIZER = 0,     /* "Sequence[Precompiled(SentencePiece charsmap), ...]" */
  BERTCL_STAGE_PRE_TOKENIZER = 1,  /* "Metaspace(replacement='▁', prepend_scheme=always, ...)" */
  BERTCL_STAGE_MODEL = 2,          /* "Unigram(250002 pieces, unk='<unk>', byte_fallback=0)" */
  BERTCL_STAGE_POST_PROCESSOR = 3, /* "TemplateProcessing(single '<s> $A </s>', pair ...)" */
  BERTCL_STAGE_ADDED_TOKENS = 4    /* "5 (5 special): '<s>', ..., '<mask>'(lstrip)" */
} bertcl_tokenizer_stage;

/* One line describing a stage ("none" when the tokenizer has none); owned by the tokenizer.
 * NULL for a NULL tokenizer or an unknown stage. */
const char *bertcl_tokenizer_describe(const bertcl_tokenizer *tok, bertcl_tokenizer_stage stage);
/* The model: "WordPiece", "Unigram", "BPE" or "WordLevel". */
const char *bertcl_tokenizer_model_type(const bertcl_tokenizer *tok);

/* ------------------------------------------------------------------------------------------ */
/* Encoder: a model's weights on a context's device, and feature extraction                   */

typedef struct bertcl_encoder bertcl_encoder;

typedef enum {
  BERTCL_POOL_CLS = 1,   /* hidden state of the first token ([CLS]) */
  BERTCL_POOL_MEAN = 2,  /* mean over real tokens, as sentence-transformers */
  BERTCL_POOL_MAX = 4,   /* max over real tokens, as sentence-transformers */
  BERTCL_POOL_POOLER = 8 /* BertModel's pooler_output: tanh(dense([CLS] of the last layer)) */
} bertcl_pool;

typedef enum {
  BERTCL_COMBINE_CONCAT = 0, /* layers side by side: width nlayers * hidden */
  BERTCL_COMBINE_MEAN = 1,
  BERTCL_COMBINE_SUM = 2
} bertcl_combine;

typedef struct {
  bertcl_pool pool;       /* 0 = BERTCL_POOL_CLS */
  const int *layers;      /* hidden-state indices, 0 = embeddings .. L = last; negative counts
                             from the end (-1 = last); NULL = the last layer only */
  int nlayers;
  bertcl_combine combine; /* how several layers are joined */
  int normalize;          /* L2-normalise each output row */
  size_t batch_size;      /* rows per device batch; 0 = 32; halved on device out-of-memory */
  size_t max_length;      /* texts only: tokens per text incl. [CLS]/[SEP]; 0 = model maximum */
} bertcl_encode_options;

/* Uploads the model's weights to the context's device. The model may be freed afterwards. */
int bertcl_encoder_create(bertcl_encoder **out, bertcl_ctx *ctx, const bertcl_model *model);
void bertcl_encoder_free(bertcl_encoder *enc);
/* Floats per output row of bertcl_encode / bertcl_encode_ids for these options. */
size_t bertcl_encode_width(const bertcl_encoder *enc, const bertcl_encode_options *opt);

/* Sentence features of n texts (pairs NULL, or pairs[i] NULL for single texts), tokenized with
 * tok: out (n, width) row-major, out_len >= n * width floats. */
int bertcl_encode(bertcl_encoder *enc, const bertcl_tokenizer *tok, const char *const *texts,
                  const char *const *pairs, size_t n, const bertcl_encode_options *opt,
                  float *out, size_t out_len);
/* The same from token ids: ids, type_ids (NULL = all 0) and mask (NULL = all real; rows must be
 * right-padded) are (B, T) int32. */
int bertcl_encode_ids(bertcl_encoder *enc, const int32_t *ids, const int32_t *type_ids,
                      const int32_t *mask, size_t B, size_t T, const bertcl_encode_options *opt,
                      float *out, size_t out_len);
/* Every hidden state asked for, unpooled: out (nlayers, B, T, hidden) (padding rows included). */
int bertcl_encode_hidden(bertcl_encoder *enc, const int32_t *ids, const int32_t *type_ids,
                         const int32_t *mask, size_t B, size_t T, const int *layers, int nlayers,
                         float *out, size_t out_len);

/* ------------------------------------------------------------------------------------------ */
/* Fine-tuning and prediction (src/train)                                                     */
/*
 * bertcl_finetune trains a model directory's encoder plus a task head on the context's device,
 * as transformers' Trainer does (AdamW with the no-decay group, linear warm-up and decay,
 * clipping by global norm, gradient accumulation, dropout from config.json with a counter-based
 * RNG, so a seed reproduces a run bit for bit), evaluates, checkpoints, and exports a directory
 * that transformers' AutoModelFor*.from_pretrained loads:
 *   - sequence classification and regression (BertForSequenceClassification: pooler, dropout,
 *     linear) from JSONL {"text", "text_pair", "label"} or TSV/CSV with a header;
 *   - token classification (BertForTokenClassification: dropout and a linear layer on every
 *     token) from CoNLL column files or JSONL {"tokens": [...], "tags": [...]}, labels aligned
 *     to subwords as transformers' run_ner.py does, sentences longer than max_length split into
 *     windows (never cut), entity P/R/F1 as seqeval / conlleval.
 * bertcl_predict runs a fine-tuned directory over a file; bertcl_classifier is the same in
 * memory.
 */

typedef enum {
  BERTCL_TASK_AUTO = 0,           /* from the data: token classification for CoNLL files and
                                     JSONL with "tokens"; regression for float labels (or a
                                     regression model); classification otherwise */
  BERTCL_TASK_CLASSIFICATION = 1, /* one label per text (pair), cross-entropy */
  BERTCL_TASK_REGRESSION = 2,     /* one number per text (pair), num_labels 1, MSE */
  BERTCL_TASK_TOKEN_CLASSIFICATION = 3 /* one tag per word (NER, tagging), cross-entropy */
} bertcl_task;

/* Tag schemes of token classification. The entity metrics are seqeval's default mode (as
 * conlleval), which reads IOB1, IOB2 and IOBES alike; the scheme decides which tag prefixes are
 * valid, and NONE (tags without B-/I- prefixes: part-of-speech tags) means word accuracy is the
 * metric instead of entity F1. */
typedef enum {
  BERTCL_SCHEME_AUTO = 0,  /* detected from the training tags */
  BERTCL_SCHEME_IOB1 = 1,  /* I- starts an entity; B- only between two of one type (CoNLL-2003) */
  BERTCL_SCHEME_IOB2 = 2,  /* every entity starts with B- */
  BERTCL_SCHEME_IOBES = 3, /* B-, I-, E- (end), S- (single) */
  BERTCL_SCHEME_NONE = 4   /* plain tags: no entities */
} bertcl_tag_scheme;

typedef struct {
  const char *train_file;   /* required: JSONL, TSV, CSV, or CoNLL columns (token task) */
  const char *eval_file;    /* NULL: no evaluation (the last step is exported) */
  const char *output_dir;   /* required: the exported model and checkpoint.safetensors */
  const char *text_column;  /* NULL: "text" (TSV/CSV: "text", "sentence", the first column);
                               token JSONL: "tokens" */
  const char *pair_column;  /* NULL: "text_pair" when present */
  const char *label_column; /* NULL: "label"; token JSONL: "tags", else "ner_tags" */
  bertcl_task task;
  int num_labels;           /* 0: from the data; 1: regression; N > 1: N labels */
  int epochs;               /* default 3 */
  double lr;                /* peak learning rate, default 2e-5 */
  size_t batch_size;        /* examples per micro-batch, default 32 */
  int grad_accum;           /* micro-batches per optimizer step, default 1 */
  size_t max_length;        /* tokens per example with [CLS]/[SEP], default 128 */
  double warmup_ratio;      /* fraction of steps with linear warm-up, default 0 */
  double weight_decay;      /* AdamW weight decay, default 0 */
  double max_grad_norm;     /* clip the global gradient norm, default 1; 0 = off */
  uint64_t seed;            /* data order, dropout and head initialisation, default 42 */
  long eval_every;          /* evaluate every N optimizer steps; 0 = each epoch */
  long save_every;          /* checkpoint every N optimizer steps; 0 = each epoch */
  long log_every;           /* a BERTCL_EVENT_LOG every N steps, default 10 */
  int freeze_encoder;       /* train only the head (sequence tasks: encoder features cached) */
  int resume;               /* continue from output_dir/checkpoint.safetensors when present */
  /* token classification */
  int tag_column;           /* CoNLL: 0-based column of the tag (the word is 0); -1 = the last
                               (default) */
  int label_all_tokens;     /* label every subword of a word, not only the first (run_ner.py's
                               --label_all_tokens: B-X becomes I-X on the later subwords) */
  bertcl_tag_scheme scheme; /* default: detected */
} bertcl_finetune_options;

/* Fills *opt with the defaults above (what bertcl finetune uses); set the files after it. */
void bertcl_finetune_options_init(bertcl_finetune_options *opt);

/* Scores of one evaluation. Fields a task does not compute are NaN. */
typedef struct {
  size_t examples;          /* texts evaluated, or words for token classification */
  double accuracy;          /* classification: of texts; token classification: of words */
  double macro_f1, f1;      /* classification: macro-F1, and F1 of label 1 when binary */
  double mse, pearson, spearman;            /* regression */
  double precision, recall, entity_f1;     /* token classification: entity level, micro */
  int n_types;                              /* entity types, sorted by name */
  const char *const *type_names;            /* (n_types) */
  const double *type_precision, *type_recall, *type_f1; /* (n_types) */
  const size_t *type_support;               /* (n_types) gold entities of each type */
} bertcl_metrics;

typedef enum {
  BERTCL_EVENT_INFO = 1, /* a remark: the plan, a note, the windows of long sentences */
  BERTCL_EVENT_LOG = 2,  /* training progress, every log_every optimizer steps and the last */
  BERTCL_EVENT_EVAL = 3, /* an evaluation (metrics set) */
  BERTCL_EVENT_STEP = 4, /* every optimizer step, after its evaluation, export and checkpoint */
  BERTCL_EVENT_DONE = 5, /* the run is complete (metrics: the best evaluation, if any) */
  BERTCL_EVENT_WARNING = 6 /* a failure the run continues past (bertcl_bench: a grid point, a
                              backend, a device); bertcl prints it on stderr */
} bertcl_event;

typedef struct {
  bertcl_event event;
  const char *message;      /* one human-readable line (no newline), what bertcl prints */
  long step, total_steps;   /* optimizer steps done, planned */
  int epoch;                /* 1-based */
  double loss;              /* LOG: mean training loss since the previous LOG */
  double lr, grad_norm;     /* LOG: of the last step */
  double examples_per_s, eta_s; /* LOG */
  const bertcl_metrics *metrics; /* EVAL, DONE; NULL otherwise */
  int improved;             /* EVAL: the best so far (exported) */
} bertcl_progress;

/* Called on each event; return non-zero to stop after the current step (what is saved stays;
 * bertcl_finetune then returns BERTCL_OK with result->stopped set). */
typedef int (*bertcl_progress_fn)(const bertcl_progress *p, void *user);

typedef struct {
  bertcl_task task;         /* the task that was trained */
  int num_labels;
  long steps;               /* optimizer steps done in total (a resumed run counts all) */
  long best_step;           /* step of the exported evaluation, -1 without evaluation */
  double best_metric;       /* accuracy, MSE (regression) or entity F1 (token classification;
                               word accuracy under BERTCL_SCHEME_NONE); NaN without eval */
  int stopped;              /* the callback asked to stop */
} bertcl_finetune_result;

/* Fine-tunes model (loaded from a directory: its config.json and tokenizer files are copied
 * into the export) on opt->train_file. progress may be NULL; result may be NULL. Errors
 * (unreadable or inconsistent data with file and line, a checkpoint of another run, device
 * failures) go to bertcl_last_error(ctx). */
int bertcl_finetune(bertcl_ctx *ctx, const bertcl_model *model, const bertcl_tokenizer *tok,
                    const bertcl_finetune_options *opt, bertcl_progress_fn progress, void *user,
                    bertcl_finetune_result *result);

/* A fine-tuned classifier on a device: a BertForSequenceClassification (classification, or
 * regression when num_labels is 1) or BertForTokenClassification directory (config.json
 * "architectures"). */
typedef struct bertcl_classifier bertcl_classifier;

int bertcl_classifier_create(bertcl_classifier **out, bertcl_ctx *ctx, const bertcl_model *model);
void bertcl_classifier_free(bertcl_classifier *cls);
/* BERTCL_TASK_CLASSIFICATION, _REGRESSION or _TOKEN_CLASSIFICATION. */
bertcl_task bertcl_classifier_task(const bertcl_classifier *cls);
int bertcl_classifier_num_labels(const bertcl_classifier *cls);
/* id2label name of a label id ("LABEL_3" when the model names none); NULL out of range. */
const char *bertcl_classifier_label(const bertcl_classifier *cls, int id);

/* Sequence classifiers: out (n, K) probabilities (regression: (n, 1) scores); out_len >= n*K.
 * pairs NULL, or pairs[i] NULL for single texts. max_length 0 = the tokenizer's. */
int bertcl_classify(bertcl_classifier *cls, const bertcl_tokenizer *tok,
                    const char *const *texts, const char *const *pairs, size_t n,
                    size_t max_length, float *out, size_t out_len);

/* Token classifiers: the tag of every word of one sentence. A sentence longer than max_length
 * tokens (0 = the tokenizer's) runs in several windows; every word gets a tag. */
typedef struct {
  size_t n;              /* words */
  char **words;          /* (n) NUL-terminated UTF-8 */
  int32_t *offsets;      /* (n, 2) [start, end) in characters of the text; -1 for tag_words */
  int32_t *tags;         /* (n) label ids (bertcl_classifier_label) */
  float *probs;          /* (n) the tag's probability (softmax at the word's first subword) */
  size_t windows;        /* windows the sentence needed */
} bertcl_tagging;

/* Words as the tokenizer pre-tokenizes text (BERT: whitespace and punctuation). */
int bertcl_tag_text(bertcl_classifier *cls, const bertcl_tokenizer *tok, const char *text,
                    size_t text_len, size_t max_length, bertcl_tagging **out);
/* Words given (each non-empty); offsets are -1. */
int bertcl_tag_words(bertcl_classifier *cls, const bertcl_tokenizer *tok,
                     const char *const *words, size_t n, size_t max_length, bertcl_tagging **out);
void bertcl_tagging_free(bertcl_tagging *t);

typedef enum {
  BERTCL_INPUT_AUTO = 0,  /* by content: JSONL, TSV/CSV with a header, CoNLL columns (token
                             classifiers), else plain text one example a line */
  BERTCL_INPUT_TEXT = 1,  /* plain text, one example (sentence) a line */
  BERTCL_INPUT_CONLL = 2, /* token classifiers: CoNLL columns, the word first */
  BERTCL_INPUT_JSONL = 3  /* JSONL: "text" (and "text_pair"); token classifiers "tokens" or
                             "text" */
} bertcl_input_format;

typedef struct {
  const char *input_file;   /* required: JSONL, TSV/CSV with a header (as for fine-tuning; no
                               label needed), CoNLL (token classifiers), or plain text, one
                               text a line */
  const char *output_file;  /* NULL or "-": standard output; else written durably */
  const char *text_column, *pair_column; /* as for bertcl_finetune_options */
  bertcl_input_format format;
  size_t batch_size;        /* 0 = 32 */
  size_t max_length;        /* 0 = the tokenizer's */
} bertcl_predict_options;

/* Sequence classifiers: one JSON object a line, {"label": NAME, "probabilities": {NAME: p}}
 * (regression {"score": x}). Token classifiers: one JSON object a sentence (a non-empty line of
 * text input), {"words": [{"word", "tag", "probability", "start", "end"}, ...], "entities":
 * [{"type", "start", "end", "text"}]} (a word's start/end: characters of the line, text input
 * only; an entity's: its words, end exclusive), or for CoNLL input the input's lines with the
 * predicted tag appended (what conlleval reads). progress (may be NULL) gets one INFO event at
 * the end with the counts. */
int bertcl_predict(bertcl_ctx *ctx, const bertcl_model *model, const bertcl_tokenizer *tok,
                   const bertcl_predict_options *opt, bertcl_progress_fn progress, void *user);

/* ------------------------------------------------------------------------------------------ */
/* Extraction: the pipeline of `bertcl extract` on texts in memory                            */
/*
 * bertcl_extract runs n texts through the batch pipeline that `bertcl extract` runs over a file
 * (tokeniser threads; texts sorted by token count inside windows and batched up to a token
 * budget; features computed into device slots and read back on a second queue while the next
 * batch runs; input order restored) and keeps the features in memory instead of shard files.
 * The values are bit for bit those `bertcl extract` writes for the same texts and options: the
 * batches, and so the shapes of the matrix products, are the same. (bertcl_encode batches in
 * input order: where a matrix-product backend rounds differently for other shapes, as the host
 * BLAS does on CPU devices, its values differ in the last bits, ~2e-7 for all-MiniLM-L6-v2.
 * The pooler output is also never normalised here, as in bertcl extract.)
 * Several outputs come from one pass: pooled sentence features of any poolings, token features,
 * word features. A text with invalid UTF-8 gives a row of NaN sentence features and no tokens
 * or words (or, with strict, an error), as a bad input line does.
 */

/* pools: no sentence features at all (token or word features only) */
#define BERTCL_EXTRACT_NO_POOL 0x100u

typedef enum {
  BERTCL_NORMALIZE_AUTO = 0, /* the model's sentence-transformers Normalize module, else off */
  BERTCL_NORMALIZE_ON = 1,   /* L2-normalise every pooled row */
  BERTCL_NORMALIZE_OFF = 2
} bertcl_normalize;

/* Zero-initialised = bertcl extract's defaults. */
typedef struct {
  unsigned pools;             /* OR of bertcl_pool values, one output each; 0 = the model's
                                 sentence-transformers pooling, else CLS; or
                                 BERTCL_EXTRACT_NO_POOL */
  const int *layers;          /* hidden-state indices as in bertcl_encode_options (negative
                                 from the end); NULL = the last layer */
  int nlayers;
  bertcl_combine combine;     /* how several layers are joined */
  bertcl_normalize normalize; /* pooled rows (not the pooler output) */
  int tokens;                 /* non-zero: every real token's features (incl. [CLS]/[SEP]) */
  int words;                  /* 0 none, 1 first subword of each word, 2 mean of its subwords */
  size_t max_length;          /* tokens per text incl. [CLS]/[SEP]; 0 = the model's maximum */
  int stride;                 /* > 0: token/word features of longer texts from windows of
                                 max_length tokens overlapping by stride (bertcl extract
                                 --stride) */
  int f16;                    /* non-zero: features rounded to half precision on the device (half
                                 the bytes read back); returned widened to float */
  size_t batch_size;          /* most texts per batch; 0 = 128; halved on device out-of-memory */
  size_t max_tokens;          /* padded tokens per batch; 0 = 8192 */
  size_t window;              /* texts sorted by length together; 0 = 10000 */
  int no_bucket;              /* non-zero: batches of batch_size texts in input order */
  int threads;                /* tokeniser threads; 0 = half the CPUs, at most 4 */
  int strict;                 /* non-zero: a text with invalid UTF-8 is an error */
  int progress;               /* non-zero: progress (a bar on a terminal), warnings and nothing
                                 else on stderr, as bertcl extract prints them */
} bertcl_extract_options;

typedef struct {
  uint64_t rows, tokens;     /* texts, real tokens run through the encoder */
  uint64_t truncated, bad;   /* texts cut to max_length; texts with invalid UTF-8 */
  uint64_t windows_split;    /* texts run as several stride windows */
  uint64_t batches;          /* device batches */
  uint64_t readback_bytes;   /* features read back from the device */
  double seconds;            /* wall time of the pipeline */
} bertcl_extract_stats;

typedef struct bertcl_features bertcl_features;

/* Features of n texts (pairs NULL, or pairs[i] NULL or "" for a single text). On failure *out
 * is NULL and bertcl_last_error(enc) says why. One call at a time on an encoder (the pipeline
 * runs its own threads inside the call); the features outlive the encoder. */
int bertcl_extract(bertcl_encoder *enc, const bertcl_tokenizer *tok, const char *const *texts,
                   const char *const *pairs, size_t n, const bertcl_extract_options *opt,
                   bertcl_features **out);
void bertcl_features_free(bertcl_features *f);
/* Rows (texts) and the run's statistics. */
size_t bertcl_features_rows(const bertcl_features *f);
const bertcl_extract_stats *bertcl_features_stats(const bertcl_features *f);
/* Pooled sentence features of one pooling asked for (one bertcl_pool value): (rows, *width)
 * row-major, owned by f; NULL when that pooling was not asked for. */
const float *bertcl_features_pooled(const bertcl_features *f, bertcl_pool pool, size_t *width);
/* Token or word features: (*total, *width) row-major; *offsets (rows + 1): text i owns rows
 * offsets[i] .. offsets[i+1]-1. Owned by f; NULL when not asked for. */
const float *bertcl_features_tokens(const bertcl_features *f, const int64_t **offsets,
                                    size_t *total, size_t *width);
const float *bertcl_features_words(const bertcl_features *f, const int64_t **offsets,
                                   size_t *total, size_t *width);

/* ------------------------------------------------------------------------------------------ */
/* Matrix-product backend of a context (bertcl_ctx_options.gemm)                              */

/* The backend the context's matrix products run on: "clblast" (CLBlast's OpenCL kernels) or
 * "blas" (a host BLAS called from native-kernel commands, on CPU devices). Never NULL. */
const char *bertcl_ctx_gemm(const bertcl_ctx *ctx);
/* One line about it for reports: "blas: OpenBLAS 0.3.34 (scipy-openblas) (SkylakeX kernels),
 * 2 threads" or "clblast: CLBlast 1.5.3", plus why "auto" chose CLBlast on a CPU device. */
int bertcl_ctx_gemm_info(const bertcl_ctx *ctx, char *out, size_t n);

/* ------------------------------------------------------------------------------------------ */
/* Shape of bertcl's own kernels on a context's device (the kernel set)                       */

/* One line for reports: "cpu set (a work-item per row, 16-lane vector code)" or "gpu set (a
 * work-group per row)". $BERTCL_KERNEL_SET = auto (CPU devices: cpu, others: gpu), cpu or gpu
 * chooses at bertcl_ctx_create. BERTCL_ERR_INVALID_ARG for a NULL argument. */
int bertcl_ctx_kernels_info(const bertcl_ctx *ctx, char *out, size_t n);

/* ------------------------------------------------------------------------------------------ */
/* Probing: which layer and pooling serve a task (src/probe)                                  */
/*
 * bertcl_probe computes every requested layer's features of a labelled train and eval set in one
 * encoder pass (bertcl_extract's pipeline), then trains a separate linear classifier on each
 * (layer, pooling) cell and on layer combinations (the last four layers concatenated, the mean
 * of the layers, and a learnt scalar mix of them as ELMo defines it), and scores each on the eval
 * set: the table of the BERT paper's feature-based experiments, in one call.
 * The classifier is L2-regularised logistic regression (softmax over K classes, one sigmoid
 * output for two) on standardised features, trained full-batch by L-BFGS with its products on
 * the device; deterministic. Its objective is scikit-learn's LogisticRegression(C) divided by
 * C * N (N training rows): l2 = 1 / (C * N); the bias is not penalised.
 * Written to output_dir: probe.json (every figure), probe.svg (eval score per layer, one line per
 * pooling), and the best cell's classifier (probe.safetensors + probe_config.json), which
 * bertcl_probe_predict (and `bertcl predict -m DIR`) applies to new texts.
 */

typedef enum {
  BERTCL_PROBE_SEQUENCE = 0, /* one label per text (pair); features pooled over tokens */
  BERTCL_PROBE_TOKEN = 1     /* one tag per word (CoNLL, JSONL tokens/tags); word features */
} bertcl_probe_task;

/* Layer combinations probed besides single layers (bertcl_probe_options.combos). */
#define BERTCL_PROBE_LAST4 1u /* the last four requested layers side by side */
#define BERTCL_PROBE_MEAN 2u  /* the mean of all requested layers */
#define BERTCL_PROBE_MIX 4u   /* softmax(s)-weighted sum of all requested layers, s learnt */

#define BERTCL_PROBE_L2_DEFAULT (-1.0) /* l2 = 1 / N: scikit-learn's default C = 1 */
#define BERTCL_PROBE_L2_AUTO (-2.0)    /* per cell, the best of C in {0.001 .. 100} on a held-out
                                          tenth of train (every 10th row), then refit on all */

typedef struct {
  const char *train_file, *eval_file; /* required; sequence: JSONL / TSV / CSV as for
                                         bertcl_finetune; token: CoNLL columns or JSONL
                                         {"tokens": [...], "tags": [...]} */
  const char *output_dir;             /* required */
  bertcl_probe_task task;
  const char *text_column, *pair_column, *label_column; /* sequence, as bertcl_finetune's */
  const int *layers;        /* hidden-state indices (negative from the end); NULL: all 0..L */
  int nlayers;
  unsigned pools;           /* sequence: OR of bertcl_pool; 0 = CLS | MEAN */
  int words;                /* token: 1 first subword of each word (default), 2 mean */
  unsigned combos;          /* OR of BERTCL_PROBE_LAST4/MEAN/MIX (default all three) */
  int no_combos;            /* non-zero: single layers only */
  double l2;                /* >= 0, or BERTCL_PROBE_L2_DEFAULT / _AUTO */
  size_t max_length;        /* tokens per text with [CLS]/[SEP]; 0 = the model's maximum */
  size_t batch_size;        /* texts per device batch; 0 = extraction's default */
  int max_iter;             /* L-BFGS iterations per classifier; 0 = 1000 */
} bertcl_probe_options;

/* Fills *opt with the defaults above (what bertcl probe uses); set the files after it. */
void bertcl_probe_options_init(bertcl_probe_options *opt);

typedef struct {
  char row[16];             /* the features: hidden state "0".."L", "last4", "mean", "mix" */
  char col[16];             /* the pooling ("cls", "mean", "max", "pooler"), or for the token
                               task the word vector ("first", "mean") */
  double score;             /* eval: accuracy (sequence) or entity F1 (token) */
  double train_score;       /* the same on the training rows */
  bertcl_metrics metrics;   /* eval accuracy, macro-F1 and F1 (sequence; token: accuracy of
                               word tags, macro-F1 of tags) */
  double entity_precision, entity_recall, entity_f1; /* token task; NaN for sequence */
  double l2;                /* the penalty used (chosen, with BERTCL_PROBE_L2_AUTO) */
  int iters;                /* L-BFGS iterations */
  int converged;            /* the gradient reached its tolerance or fp32's noise floor */
} bertcl_probe_cell;

typedef struct {
  size_t ncells;
  bertcl_probe_cell *cells; /* (ncells), owned; bertcl_probe_result_free releases them */
  int best;                 /* index of the best eval score (ties: the earlier cell) */
  int num_labels;
  size_t train_rows, eval_rows;  /* examples (sequence) or words (token) */
  double extract_seconds, fit_seconds;
} bertcl_probe_result;

/* Runs the probe table. progress may be NULL (events INFO for the plan, EVAL per cell with
 * metrics, DONE). result may be NULL; else free it with bertcl_probe_result_free. Errors
 * (unreadable data with file and line, a label in eval that train lacks, device failures) go to
 * bertcl_last_error(ctx). */
int bertcl_probe(bertcl_ctx *ctx, const bertcl_model *model, const bertcl_tokenizer *tok,
                 const bertcl_probe_options *opt, bertcl_progress_fn progress, void *user,
                 bertcl_probe_result *result);
void bertcl_probe_result_free(bertcl_probe_result *result);

/* Non-zero when dir holds a probe written by bertcl_probe (probe_config.json). */
int bertcl_probe_dir_is_probe(const char *dir);
/* Applies the probe in probe_dir (its encoder is the model directory it names) to
 * opt->input_file: one JSON object a line, {"label": NAME, "probabilities": {NAME: p, ...}}
 * (sequence), as bertcl_predict writes. */
int bertcl_probe_predict(bertcl_ctx *ctx, const char *probe_dir, const bertcl_predict_options *opt,
                         bertcl_progress_fn progress, void *user);

/* ------------------------------------------------------------------------------------------ */
/* Benchmarks: what `bertcl bench` measures and prints (src/bench)                            */
/*
 * bertcl_bench measures each device: its facts (name, driver, OpenCL and CLBlast versions,
 * compute units, clock, memory, the fp32 peak where they give it), bandwidth (device copy; host
 * to device and back, pageable and pinned), SGEMM on the encoder's own products over a batch x
 * sequence grid (HGEMM on the largest FFN product where cl_khr_fp16 exists), the encoder's
 * forward pass (random weights of a named configuration, or a model directory) and one
 * fine-tuning step (BertForSequenceClassification, 2 labels, dropout 0.1, AdamW). Kernel times
 * come from OpenCL profiling events, pass times from the wall clock; after warm-up the median
 * and spread of the repeats are reported, first calls apart. CLBlast's defaults are measured
 * first, then the parameters stored by bertcl tune; on a CPU device that runs the host BLAS,
 * that backend too, first. (The automatic application of stored parameters is switched off
 * for the process during the call and restored after it.)
 */

#define BERTCL_BENCH_MAX_GRID 16 /* most batch sizes, and most sequence lengths */

typedef struct {
  const char *device;       /* selector as for bertcl_device_select, or "all": every device in
                               turn; NULL = $BERTCL_DEVICE / the default */
  const char *config;       /* random weights of "base", "large", "minilm" or "tiny"; NULL =
                               "base" unless model_dir is given (not both) */
  const char *model_dir;    /* a model directory instead (its weights, its configuration) */
  const int *batches;       /* (nbatches) batch sizes in [1, 65536]; NULL = 1, 8, 32, 128 */
  int nbatches;             /* 1 .. BERTCL_BENCH_MAX_GRID */
  const int *seqs;          /* (nseqs) sequence lengths in [1, 65536]; NULL = 128, 512. With
                               config, lengths above the model's positions are dropped (a
                               WARNING); none left: an error, or for the default grid the
                               model's maximum */
  int nseqs;                /* 1 .. BERTCL_BENCH_MAX_GRID */
  int warmup;               /* untimed runs before timing, default 2 */
  int repeat;               /* timed runs, default 10 */
  size_t bw_bytes;          /* bandwidth test size, default 64 MiB */
  int finetune_batch;       /* fine-tuning step shape, default 32 x 128 (the sequence capped by
                               the model's positions); finetune_batch 0: not measured */
  int finetune_seq;
  const char *gemm;         /* NULL or "auto": CLBlast, and the host BLAS too on CPU devices that
                               run it; "clblast"; "blas" */
  const char *cache_dir;    /* program cache and stored tuning, as bertcl_ctx_options.cache_dir */
  const char *command;      /* recorded as the report's "command"; NULL = "" */
} bertcl_bench_options;

/* Fills *opt with the defaults above (what bertcl bench uses). */
void bertcl_bench_options_init(bertcl_bench_options *opt);

/* Runs the benchmark. progress (may be NULL; its return value is ignored) gets every line of
 * bertcl bench's tables as a BERTCL_EVENT_INFO (message: one line without its newline, "" for a
 * blank line) and each failure the run continues past as a BERTCL_EVENT_WARNING.
 * *report_json (report_json may be NULL) receives the whole report as JSON text, schema
 * "bertcl-bench/1" (bench/bench.schema.json), what bertcl bench --json writes; release it with
 * free(). Returns BERTCL_OK when every device was measured. When a device failed: the status of
 * the first failure, and the report is still set (that device's entry holds "error"). Invalid
 * options (BERTCL_ERR_INVALID_ARG) or no device list: an error and no report (*report_json
 * NULL). The message of an error is in bertcl_last_error(NULL). */
int bertcl_bench(const bertcl_bench_options *opt, bertcl_progress_fn progress, void *user,
                 char **report_json);

/* Sets report_json (a bertcl_bench report) against an earlier report in baseline_file: for each
 * device of both (by name), the ratio of bandwidth, the fine-tuning step, every GEMM shape and
 * every encoder grid point (> 1: faster now), as BERTCL_EVENT_INFO lines (what bertcl bench
 * --compare prints). BERTCL_ERR_IO or BERTCL_ERR_FORMAT when the baseline cannot be read or is
 * not a bertcl-bench/1 report, BERTCL_ERR_INVALID_ARG for report_json; the message in
 * bertcl_last_error(NULL). */
int bertcl_bench_compare(const char *report_json, const char *baseline_file,
                         bertcl_progress_fn progress, void *user);

#ifdef __cplusplus
}
#endif
#endif /* BERTCL_H */
