"""Dev-time trainer of the fastText-style sentiment network (torch, CPU, one thread, fixed seed).

The network reads the runtime's own hashed features (chalicelib.sentiment.features): a weighted sum of
embedding rows (an embedding bag over word 1-2-grams and character 2-5-grams), dropout, one ReLU hidden
layer, three logits. Unlike the linear model it can learn feature interactions (negation x polarity,
sarcasm cues) and shares statistical strength between n-grams through the low-rank embedding.
Inference is reimplemented in numpy in chalicelib.sentiment.bundled; only training needs torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold

from chalicelib.sentiment.features import featurise

SEED = 20240607
FOLDS = 5
DEFAULTS: dict[str, Any] = {
    "dim": 32,
    "hidden": 64,
    "dropout": 0.3,  # on the bag vector and on the hidden layer
    "feature_dropout": 0.2,  # fraction of a text's n-grams dropped per step (a cheap augmentation)
    "lr": 0.005,
    "emb_lr": 0.03,
    "batch": 512,  # large batches: SparseAdam's per-step cost dominates at small ones
    "epochs": 6,
    "init": 0.05,
}


class Bag(torch.nn.Module):
    """Embedding bag -> dropout -> hidden ReLU layer -> dropout -> 3 logits."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.cfg = cfg
        self.emb = torch.nn.EmbeddingBag(1 << cfg["table_bits"], cfg["dim"], mode="sum", sparse=True)
        torch.nn.init.uniform_(self.emb.weight, -cfg["init"], cfg["init"])
        self.drop = torch.nn.Dropout(cfg["dropout"])
        if cfg["hidden"]:
            self.hidden: torch.nn.Module = torch.nn.Sequential(
                torch.nn.Linear(cfg["dim"], cfg["hidden"]), torch.nn.ReLU(), torch.nn.Dropout(cfg["dropout"]))
            self.out = torch.nn.Linear(cfg["hidden"], 3)
        else:
            self.hidden = torch.nn.Identity()
            self.out = torch.nn.Linear(cfg["dim"], 3)

    def forward(self, idx: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        bag = self.emb(idx, offsets, per_sample_weights=weights)
        return self.out(self.hidden(self.drop(bag)))


class Rows:
    """Sparse feature rows (CSR-like) of a list of texts: the runtime's (doc, bucket, value) triples."""

    def __init__(self, doc: np.ndarray, bucket: np.ndarray, value: np.ndarray, count: int) -> None:
        self.bucket = bucket.astype(np.int64)
        self.value = value.astype(np.float32)
        self.start = np.searchsorted(doc, np.arange(count + 1))

    @classmethod
    def of(cls, texts: list[str], cfg: dict[str, Any]) -> Rows:
        """Featurise texts with the runtime's extractor and settings."""
        return cls(*featurise(texts, cfg), len(texts))

    def batch(self, rows: np.ndarray, drop: float, rng: np.random.Generator | None) -> tuple[torch.Tensor, ...]:
        """(indices, offsets, weights) of some rows; with rng, each n-gram is dropped with probability drop."""
        spans = [np.arange(self.start[r], self.start[r + 1]) for r in rows]
        lengths = np.array([len(s) for s in spans])
        at = np.concatenate(spans) if len(spans) else np.zeros(0, np.int64)
        weights = self.value[at]
        if rng is not None and drop > 0:
            weights = weights * (rng.random(len(at)) >= drop) / (1 - drop)
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        return (torch.from_numpy(self.bucket[at]), torch.from_numpy(offsets.astype(np.int64)),
                torch.from_numpy(weights.astype(np.float32)))


def class_weights(y: np.ndarray) -> torch.Tensor:
    """Balanced weights n / (k * count): macro recall rewards the minority classes."""
    counts = np.bincount(y, minlength=3).astype(np.float64)
    return torch.tensor(len(y) / (3 * np.maximum(counts, 1)), dtype=torch.float32)


def predict(model: Bag, rows: Rows, index: np.ndarray) -> np.ndarray:
    """Log-probabilities of the given rows."""
    model.eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(index), 1024):
            out.append(torch.log_softmax(model(*rows.batch(index[s : s + 1024], 0.0, None)), 1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 3))


def train(rows: Rows, y: np.ndarray, index: np.ndarray, cfg: dict[str, Any], seed: int,
          on_epoch: Any = None) -> Bag:
    """Fit one network on rows[index]; on_epoch(epoch, model) is called after each epoch."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = Bag(cfg)
    dense = [p for n, p in model.named_parameters() if not n.startswith("emb.")]
    if cfg.get("emb_opt", "adam") == "sgd":  # plain sparse SGD: only touched rows cost anything
        opt_sparse: torch.optim.Optimizer = torch.optim.SGD(list(model.emb.parameters()), lr=cfg["emb_lr"])
    else:
        opt_sparse = torch.optim.SparseAdam(list(model.emb.parameters()), lr=cfg["emb_lr"])
    opt_dense = torch.optim.Adam(dense, lr=cfg["lr"])
    loss_fn = torch.nn.CrossEntropyLoss(weight=class_weights(y[index]))
    targets = torch.from_numpy(y.astype(np.int64))
    for epoch in range(1, cfg["epochs"] + 1):
        model.train()
        order = index[rng.permutation(len(index))]
        for s in range(0, len(order), cfg["batch"]):
            rows_b = order[s : s + cfg["batch"]]
            opt_sparse.zero_grad()
            opt_dense.zero_grad()
            loss = loss_fn(model(*rows.batch(rows_b, cfg["feature_dropout"], rng)), targets[rows_b])
            loss.backward()
            opt_sparse.step()
            opt_dense.step()
        if on_epoch is not None:
            on_epoch(epoch, model)
    return model


def out_of_fold(rows: Rows, y: np.ndarray, cfg: dict[str, Any], lang: str = "", seed: int = SEED) -> list[np.ndarray]:
    """Per epoch, out-of-fold log-probabilities from FOLDS-fold stratified CV (same folds as the linear model);
    fold k's network is initialised and shuffled with seed + k."""
    torch.set_num_threads(1)
    per_epoch = [np.zeros((len(y), 3)) for _ in range(cfg["epochs"])]
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=SEED).split(np.zeros(len(y)), y)
    for k, (tr, te) in enumerate(folds):
        def on_epoch(epoch: int, model: Bag, te: np.ndarray = te) -> None:
            per_epoch[epoch - 1][te] = predict(model, rows, te)

        train(rows, y, tr, cfg, seed + k, on_epoch)
        print(f"[{lang}] network fold {k + 1}/{FOLDS} done", flush=True)
    return per_epoch


def dense_layers(model: Bag) -> dict[str, np.ndarray]:
    """The trained weights in the runtime's layout: emb (rows x dim), w1 (dim x hidden), b1, w2 (hidden x 3), b2."""
    state = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    if not model.cfg["hidden"]:
        raise ValueError("the runtime needs a hidden layer (hidden > 0)")
    return {"emb": state["emb.weight"], "w1": state["hidden.0.weight"].T.copy(), "b1": state["hidden.0.bias"],
            "w2": state["out.weight"].T.copy(), "b2": state["out.bias"]}
