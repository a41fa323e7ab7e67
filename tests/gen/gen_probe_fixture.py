#!/usr/bin/env python3
"""Fixture for tests/test_probe.c: scikit-learn's LogisticRegression (lbfgs, L2) on standardised
features, binary and 3-class, written to tests/data/probe-sklearn.safetensors.

bertcl's probe minimises mean log-loss + l2/2 |W|^2 (bias unpenalised), which is sklearn's
objective divided by C*N: l2 = 1/(C*N). Run: python3 tests/gen/gen_probe_fixture.py"""
import os
import numpy as np
import sklearn
from safetensors.numpy import save_file
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

rng = np.random.default_rng(1234)
out = {}
meta = {"sklearn": sklearn.__version__}
for name, K, N, D, C in (("bin", 2, 300, 24, 0.3), ("multi", 3, 400, 17, 0.05)):
    # a noisy linear teacher on features of different scales and offsets
    X = rng.normal(size=(N, D)) * rng.uniform(0.1, 5.0, size=D) + rng.uniform(-3, 3, size=D)
    T = rng.normal(size=(D, K))
    logits = (X - X.mean(0)) / X.std(0) @ T + rng.gumbel(size=(N, K)) * 1.5
    y = logits.argmax(1).astype(np.int32)
    Xs = StandardScaler().fit_transform(X)
    clf = LogisticRegression(C=C, tol=1e-12, max_iter=100000).fit(Xs, y)
    out[f"{name}.X"] = np.ascontiguousarray(X, dtype=np.float32)
    out[f"{name}.y"] = y
    # ascontiguousarray: coef_ is Fortran-ordered, and safetensors writes the memory as it lies
    out[f"{name}.coef"] = np.ascontiguousarray(clf.coef_, dtype=np.float32)  # (1, D) or (K, D)
    out[f"{name}.intercept"] = clf.intercept_.astype(np.float32)
    out[f"{name}.proba"] = np.ascontiguousarray(clf.predict_proba(Xs), dtype=np.float32)
    out[f"{name}.l2"] = np.array([1.0 / (C * N)], dtype=np.float32)
    meta[f"{name}.accuracy"] = str(float((clf.predict(Xs) == y).mean()))
path = os.path.join(os.path.dirname(__file__), "..", "data", "probe-sklearn.safetensors")
save_file(out, path, metadata=meta)
print("wrote", os.path.normpath(path), meta)
