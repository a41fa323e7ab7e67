"""Against sentence-transformers (run when it is installed; skipped otherwise): the embeddings
and token embeddings of all-MiniLM-L6-v2 at cosine >= 0.99999 per row, and the tokenizer's ids
equal to the model's own tokenizer."""
import numpy as np
import pytest

from test_encode import sentences

st = pytest.importorskip("sentence_transformers")


@pytest.fixture(scope="module")
def st_model(minilm_dir):
    return st.SentenceTransformer(minilm_dir, device="cpu")


def cosines(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def texts():
    return ["A man is eating food.", "A man is riding a white horse on an enclosed ground.",
            "naïve café in Zürich", "東京タワー 🎉", ""] + sentences(27, seed=11) + \
           [" ".join(["long"] * 400)]  # truncated to max_seq_length (256) on both sides


def test_encode_matches_sentence_transformers(minilm, st_model):
    t = texts()
    want = st_model.encode(t, batch_size=32)
    got = minilm.encode(t, batch_size=32)
    assert got.shape == want.shape and got.dtype == np.float32
    c = cosines(got, want)
    print(f"cosine min {c.min():.9f}, max |diff| {np.abs(got - want).max():.3g}")
    assert c.min() >= 0.99999
    # cosines cannot see a missing normalisation: the lengths must agree too
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), np.linalg.norm(want, axis=1),
                               atol=1e-5)


def test_token_embeddings_match_sentence_transformers(minilm, st_model):
    t = texts()[:12]
    want = st_model.encode(t, output_value="token_embeddings")
    got = minilm.encode(t, output_value="token_embeddings")
    for g, w in zip(got, want):
        w = w.cpu().numpy() if hasattr(w, "cpu") else np.asarray(w)
        assert g.shape == w.shape
        assert cosines(g, w).min() >= 0.99999
        np.testing.assert_allclose(np.linalg.norm(g, axis=1), np.linalg.norm(w, axis=1),
                                   rtol=1e-5)


def test_tokenize_matches_sentence_transformers(minilm, st_model):
    t = texts()
    want = st_model.tokenize(t)
    got = minilm.tokenize(t)
    for k in ("input_ids", "token_type_ids", "attention_mask"):
        assert np.array_equal(got[k], want[k].numpy()), k
