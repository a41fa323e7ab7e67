#!/usr/bin/env python3
"""The transformers side of bench/finetune_ner.sh: run_ner.py's recipe (transformers'
examples/pytorch/token-classification) on CoNLL files, fp32 on the CPU, then the entity scores
of the eval file as one JSON line.

As run_ner.py: the label list is the sorted set of the training tags; AutoConfig with
num_labels, label2id / id2label; AutoModelForTokenClassification (the classifier initialised
after set_seed(seed)); the fast tokenizer with is_split_into_words=True, truncation to
max_length; the first subword of each word labelled, the others -100 (--label-all-tokens: the
word's tag, B-X mapped to I-X); DataCollatorForTokenClassification; transformers.Trainer with
TrainingArguments (linear schedule, warm-up and weight decay as given, max_grad_norm 1.0, AdamW
with the no-decay group, dropout from config.json), no evaluation or checkpoints during
training. Evaluation after training: the argmax at every labelled position (the first subword
of each word), seqeval's default mode (what run_ner's evaluate("seqeval") reports: micro
precision, recall, F1, and accuracy), per-type F1. Words cut away by the truncation are not
scored (run_ner's behaviour); their count is reported.

Usage: finetune_ner_hf.py [--threads 2] [--label-all-tokens] MODEL_DIR TRAIN.conll EVAL.conll
  EPOCHS LR BATCH MAX_LEN SEED [WARMUP_RATIO] [WEIGHT_DECAY]
CoNLL: the word first, the tag last, blank lines between sentences, -DOCSTART- lines skipped."""
import argparse, contextlib, json, sys, tempfile, time

import torch
from seqeval.metrics import accuracy_score, classification_report
from transformers import (AutoConfig, AutoModelForTokenClassification, AutoTokenizer,
                          DataCollatorForTokenClassification, Trainer, TrainingArguments,
                          set_seed)


def read_conll(path):
    sents, words, tags = [], [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            cols = line.split()
            if not cols or cols[0] == "-DOCSTART-":
                if words:
                    sents.append((words, tags))
                    words, tags = [], []
                continue
            words.append(cols[0])
            tags.append(cols[-1])
    if words:
        sents.append((words, tags))
    return sents


class Examples(torch.utils.data.Dataset):
    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


def align(tok, sents, label_to_id, b_to_i, max_len, all_tokens):
    """run_ner.py's tokenize_and_align_labels, one sentence at a time."""
    rows, cut = [], 0
    for words, tags in sents:
        enc = tok(words, is_split_into_words=True, truncation=True, max_length=max_len)
        labels, prev = [], None
        for w in enc.word_ids():
            if w is None:
                labels.append(-100)
            elif w != prev:
                labels.append(label_to_id[tags[w]])
            else:
                labels.append(b_to_i[label_to_id[tags[w]]] if all_tokens else -100)
            prev = w
        seen = {w for w in enc.word_ids() if w is not None}
        cut += len(words) - len(seen)
        rows.append({"input_ids": enc["input_ids"], "token_type_ids": enc["token_type_ids"],
                     "attention_mask": enc["attention_mask"], "labels": labels})
    return rows, cut


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--label-all-tokens", action="store_true")
    for n, t in (("model_dir", str), ("train", str), ("eval", str), ("epochs", int),
                 ("lr", float), ("batch", int), ("max_len", int), ("seed", int)):
        p.add_argument(n, type=t)
    p.add_argument("warmup_ratio", type=float, nargs="?", default=0.0)
    p.add_argument("weight_decay", type=float, nargs="?", default=0.0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    train, dev = read_conll(a.train), read_conll(a.eval)
    label_list = sorted({t for _, tags in train for t in tags})
    label_to_id = {l: i for i, l in enumerate(label_list)}
    b_to_i = [label_list.index("I-" + l[2:]) if l.startswith("B-") and "I-" + l[2:] in label_list
              else i for i, l in enumerate(label_list)]
    set_seed(a.seed)
    config = AutoConfig.from_pretrained(a.model_dir, num_labels=len(label_list))
    config.label2id = dict(label_to_id)
    config.id2label = dict(enumerate(label_list))
    tok = AutoTokenizer.from_pretrained(a.model_dir)
    model = AutoModelForTokenClassification.from_pretrained(a.model_dir, config=config)
    train_rows, train_cut = align(tok, train, label_to_id, b_to_i, a.max_len, a.label_all_tokens)
    dev_rows, dev_cut = align(tok, dev, label_to_id, b_to_i, a.max_len, False)
    collator = DataCollatorForTokenClassification(tok)
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="finetune_ner_hf_") as out:
        args = TrainingArguments(
            output_dir=out, num_train_epochs=a.epochs, learning_rate=a.lr,
            per_device_train_batch_size=a.batch, per_device_eval_batch_size=64, seed=a.seed,
            # transformers 5: a float warmup_steps below 1 is the ratio of the steps
            warmup_steps=a.warmup_ratio, weight_decay=a.weight_decay, max_grad_norm=1.0,
            lr_scheduler_type="linear", eval_strategy="no", save_strategy="no",
            logging_strategy="no", report_to="none", use_cpu=True, dataloader_num_workers=0,
            disable_tqdm=True)
        trainer = Trainer(model=model, args=args, train_dataset=Examples(train_rows),
                          data_collator=collator)
        with contextlib.redirect_stdout(sys.stderr):
            res = trainer.train()
    train_s = time.time() - t0
    # evaluation: argmax at each labelled position (the first subword of every kept word)
    model.eval()
    gold, pred = [], []
    t1 = time.time()
    with torch.no_grad():
        for s in range(0, len(dev_rows), 64):
            chunk = dev_rows[s:s + 64]
            batch = collator([{k: v for k, v in r.items()} for r in chunk])
            labels = batch.pop("labels")
            logits = model(**batch).logits
            best = logits.argmax(-1)
            for i in range(len(chunk)):
                g = [label_list[int(l)] for l in labels[i] if l != -100]
                q = [label_list[int(b)] for b, l in zip(best[i], labels[i]) if l != -100]
                gold.append(g)
                pred.append(q)
    eval_s = time.time() - t1
    rep = classification_report(gold, pred, output_dict=True, zero_division=0)
    micro = rep["micro avg"]
    types = {k: round(v["f1-score"], 4) for k, v in sorted(rep.items())
             if k not in ("micro avg", "macro avg", "weighted avg")}
    print(json.dumps({
        "impl": "transformers-trainer", "torch": torch.__version__, "seed": a.seed,
        "train_sentences": len(train), "eval_sentences": len(dev), "labels": len(label_list),
        "precision": round(micro["precision"], 4), "recall": round(micro["recall"], 4),
        "f1": round(micro["f1-score"], 4), "accuracy": round(accuracy_score(gold, pred), 4),
        "type_f1": types, "eval_words_cut": dev_cut, "train_words_cut": train_cut,
        "steps": res.global_step, "train_loss": round(res.training_loss, 4),
        "train_seconds": round(train_s, 1), "eval_seconds": round(eval_s, 1),
        "sentences_per_s": round(len(train) * a.epochs / train_s, 2),
        "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
