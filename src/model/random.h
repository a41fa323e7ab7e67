/* Models of a named BERT configuration with random weights, built in memory without any file
 * (for benchmarks: speed does not depend on the weights' values). */
#ifndef BC_RANDOM_MODEL_H
#define BC_RANDOM_MODEL_H

#include <stdint.h>

#include "model/model.h"

/* The configurations bertcl bench and bertcl tune know by name (NULL-terminated list):
 * base (BERT-base: 12 layers, 768 hidden, 12 heads, 3072), large (24, 1024, 16, 4096),
 * minilm (all-MiniLM-L6-v2: 6, 384, 12, 1536), tiny (2, 32, 4, 64; vocabulary 1000, 64
 * positions). */
extern const char *const bc_random_config_names[];

/* Fills *cfg with the named configuration; BERTCL_ERR_INVALID_ARG naming the known ones else. */
int bc_random_config(bc_err *err, const char *name, bc_config *cfg);

/* Builds the named configuration with weights drawn from a fixed-seed generator (uniform in
 * [-0.05, 0.05], LayerNorm weight 1 and bias 0), stored as F16 and converted by the loader like a
 * real checkpoint. */
int bc_model_random(bc_err *err, const char *name, uint64_t seed, struct bertcl_model **out);

#endif
