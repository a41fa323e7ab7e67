/* Tuned CLBlast GEMM parameters, stored per device and driver under the cache directory.
 *
 * bertcl tune (src/encoder/tune.c) searches CLBlast's GEMM kernel parameters for a device and
 * writes the best set to <cache_dir>/tuning/clblast-<key>.json, where <key> hashes the platform,
 * device, driver and CLBlast versions. bc_gemm calls bc_tuning_ensure before its first product,
 * which applies that file (CLBlastOverrideParameters) once per device per process. CLBlast keeps
 * overrides per device for the whole process, so this state is per process too.
 * An unusable file never fails a run: it is ignored and the reason is kept (bc_tuning_status),
 * shown by bertcl bench and bertcl tune. BERTCL_TUNING=off disables applying stored parameters.
 */
#ifndef BC_TUNING_H
#define BC_TUNING_H

#include "runtime/runtime.h"

#define BC_XGEMM_NPARAMS 16
#define BC_XGEMM_DIRECT_NPARAMS 10
/* CLBlast 1.5's parameter names of its "Xgemm" and "XgemmDirect" kernels (all are required by
 * CLBlastOverrideParameters), and of the "GemmRoutine" switch between them. */
extern const char *const bc_xgemm_names[BC_XGEMM_NPARAMS];
extern const char *const bc_xgemm_direct_names[BC_XGEMM_DIRECT_NPARAMS];
#define BC_GEMM_ROUTINE_NAME "XGEMM_MIN_INDIRECT_SIZE"

/* One complete choice of GEMM parameters; a kernel whose has_ flag is 0 keeps CLBlast's
 * defaults for the device. */
typedef struct {
  int has_xgemm, has_direct, has_routine;
  size_t xgemm[BC_XGEMM_NPARAMS];         /* in bc_xgemm_names order */
  size_t direct[BC_XGEMM_DIRECT_NPARAMS]; /* in bc_xgemm_direct_names order */
  size_t min_indirect;                    /* XGEMM_MIN_INDIRECT_SIZE: m*n*k below its cube runs
                                             the direct kernel */
} bc_gemm_params;

/* Human-readable form: "Xgemm{MWG=64 ...} XgemmDirect{...} GemmRoutine{...}" or "defaults". */
void bc_gemm_params_str(const bc_gemm_params *p, char *out, size_t n);

/* CLBlastOverrideParameters for every kernel p sets, single precision. */
int bc_tuning_override(bertcl_ctx *ctx, const bc_gemm_params *p);

/* CLBlast version this program was built against ("1.5.3", or "unknown"). */
const char *bc_clblast_version(void);

/* The parameter file and the tuner's progress file of ctx's device. Fails (BERTCL_ERR_IO)
 * when the cache is disabled. */
int bc_tuning_paths(bertcl_ctx *ctx, char *params, size_t np, char *progress, size_t nq);

/* What the parameter file records besides the parameters. */
typedef struct {
  char config[32]; /* model configuration tuned for */
  int batch, seq;
  double baseline_ms, best_ms; /* encoder GEMM time per layer, defaults and best */
  int evaluated;               /* candidates measured */
  char date[32];
} bc_tuning_meta;

/* Reads a parameter file and checks it belongs to ctx's device, driver and CLBlast. */
int bc_tuning_load(bertcl_ctx *ctx, const char *path, bc_gemm_params *p, bc_tuning_meta *meta);
/* Writes it (temporary file, then rename). */
int bc_tuning_save(bertcl_ctx *ctx, const char *path, const bc_gemm_params *p,
                   const bc_tuning_meta *meta);

typedef enum {
  BC_TUNING_UNCHECKED = 0, /* no GEMM has run on this device yet in this process */
  BC_TUNING_NONE,          /* no parameter file for this device */
  BC_TUNING_APPLIED,       /* the file's parameters are in effect */
  BC_TUNING_DEFAULTS_BEST, /* the file says CLBlast's defaults were fastest: nothing applied */
  BC_TUNING_REJECTED,      /* the file could not be used (reason) */
  BC_TUNING_DISABLED       /* BERTCL_TUNING=off, cache disabled, or automatic apply switched off */
} bc_tuning_state;

typedef struct {
  bc_tuning_state state;
  char path[1024];
  char reason[512];
  bc_gemm_params params;
  bc_tuning_meta meta;
} bc_tuning_status;

const char *bc_tuning_state_name(bc_tuning_state s);

/* Applies the stored parameters of ctx's device unless that was done (or tried) already in this
 * process. Never fails a run: problems end up in bc_tuning_status. */
void bc_tuning_ensure(bertcl_ctx *ctx);
/* Switches the automatic apply of bc_tuning_ensure off (0) or on (1) for this process and
 * returns the previous setting; bertcl_bench switches it off to measure CLBlast's defaults
 * first, then calls bc_tuning_apply_stored. */
int bc_tuning_set_auto(int on);
/* Loads and applies the stored file now (whatever was applied before); returns BERTCL_OK when
 * parameters were applied or the file says defaults are best, an error with a message else. */
int bc_tuning_apply_stored(bertcl_ctx *ctx);
/* The state of ctx's device in this process. */
void bc_tuning_status_get(const bertcl_ctx *ctx, bc_tuning_status *out);

#endif
