/* Entity-level evaluation of tag sequences as seqeval's default mode computes it (which is
 * conlleval's): entities are read with conlleval's chunk rules, which accept IOB1, IOB2 and
 * IOBES alike; precision, recall and F1 are micro averages over (type, start, end) matches;
 * the per-type table is seqeval's classification_report. Also the tagging scheme of a tag set. */
#ifndef BC_TRAIN_ENTITY_H
#define BC_TRAIN_ENTITY_H

#include <stddef.h>

#include "bertcl.h"
#include "common.h"

/* One entity: type (an index into the caller's type names), words [start, end]. */
typedef struct {
  int type;
  size_t start, end; /* inclusive, positions in the sequence */
} bc_entity;

/* seqeval's tag and type of a tag: the first byte ('B', 'I', 'E', 'S', 'O', ...) and the text
 * after its first '-' ("" when there is none: seqeval's '_'). type points into tag. */
void bc_tag_split(const char *tag, char *prefix, const char **type, size_t *type_len);

/* Entities of n tags (one sentence, or sentences joined with an "O" between them) with
 * seqeval's get_entities: appended to *out (capacity *cap, grown), *count updated. Types are
 * interned into *types / *ntypes (malloc'd copies). Returns BERTCL_OK or BERTCL_ERR_NOMEM. */
int bc_entities(const char *const *tags, size_t n, bc_entity **out, size_t *count, size_t *cap,
                char ***types, int *ntypes);

/* The scores of predicted against gold tags of the same sentences (start (nsent + 1) word
 * offsets into gold and pred): micro precision, recall and F1 (0 where a denominator is 0, as
 * seqeval's zero_division), word accuracy, and the per-type table sorted by type name. */
typedef struct {
  double precision, recall, f1, accuracy;
  size_t words, gold_entities, pred_entities, correct;
  int ntypes;
  char **types;                  /* (ntypes) sorted */
  double *type_p, *type_r, *type_f1;
  size_t *type_support, *type_pred, *type_correct;
} bc_entity_report;

int bc_entity_score(bc_err *err, const char *const *gold, const char *const *pred,
                    const size_t *start, size_t nsent, bc_entity_report *out);
void bc_entity_report_free(bc_entity_report *r);
/* Points m's entity fields at r (which must outlive m's use). */
void bc_entity_report_to_metrics(const bc_entity_report *r, bertcl_metrics *m);
/* The per-type table as text lines (seqeval's classification_report layout), malloc'd. */
char *bc_entity_report_table(const bc_entity_report *r);

/* The scheme a tag set uses: BERTCL_SCHEME_IOBES when a tag starts with E- or S-, IOB1 when an
 * entity starts with I- (after O or another type), else IOB2; BERTCL_SCHEME_NONE when a tag
 * other than O lacks a B-/I-/E-/S- prefix (plain tagging: POS, chunks without IOB). Sentences
 * as for bc_entity_score. */
bertcl_tag_scheme bc_detect_scheme(const char *const *tags, const size_t *start, size_t nsent);
/* Checks tags against a scheme: every tag O or prefixed with one the scheme has (B-, I-, and
 * E-, S- for IOBES; any tag for NONE). The first offender's index in *bad. */
int bc_tags_fit_scheme(const char *const *tags, size_t n, bertcl_tag_scheme scheme, size_t *bad);
const char *bc_scheme_name(bertcl_tag_scheme s);

#endif
