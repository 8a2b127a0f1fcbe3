"""Dev-time trainer of the Kim (2014)-style sentiment CNN over hashed word embeddings (torch, CPU, one
thread, fixed seed), and its cross-validation experiment (train files only; never reads dev).

Tokens are the runtime's (chalicelib.sentiment.features.tokens: text.normalise_many -> text.tokenise, with
the 'neg_' marks), each hashed to one of 2^bits embedding rows by the word-unigram hash (row 0 is padding).
A text is [PAD] + tokens + [PAD], right-padded to the widest filter; convolutions of widths 2-4, ReLU,
max over the text's windows (windows reaching into another text's padding are masked to 0, which a
max of ReLU outputs ignores), dropout, 3 logits; balanced cross-entropy, Adam, trained from scratch.
Inference is reimplemented in numpy in chalicelib.sentiment.bundled.cnn_logits (one flat sequence per
batch); only training needs torch.
Out-of-fold log-probabilities after every epoch, on the training script's 5 folds, are cached in the
format of tools/sentiment_cv.py ((epochs, n, 3), name '{lang}[_idf]_{name}_s{seed}.npy') so that
`python -m tools.sentiment_cv --lang en --mix NAME --net cnn` mixes them; tools/sentiment_mix.py mixes
them three ways with the Hebrew network.

Usage: nice -n 19 python -m tools.sentiment_cnn --lang en [--cfg JSON] [--name cnn] [--seed 0]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402

from chalicelib.sentiment.features import tokens  # noqa: E402

SEED = 20240607
FOLDS = 5
DEFAULTS: dict[str, Any] = {
    "bits": 16,  # embedding rows 2^bits (int8 at run time: 2^16 x 32 = 2.1 MB)
    "dim": 32,
    "widths": [2, 3, 4],
    "filters": 64,
    "emb_dropout": 0.2,
    "dropout": 0.5,
    "lr": 0.002,
    "batch": 64,
    "epochs": 4,  # the most tried; the count used is chosen by CV (2 for English)
    "weight_decay": 0.0,
}
RUNTIME_KEYS = ("bits", "widths", "filters")
"""The settings the numpy run time needs (stored in the artefact's config)."""


def token_ids(texts: list[str], bits: int) -> list[np.ndarray]:
    """Per text, the embedding rows (1 .. 2^bits - 1; 0 is padding) of its tokens, as the run time
    computes them (in chunks of 2,000 texts)."""
    out: list[np.ndarray] = []
    for i in range(0, len(texts), 2000):
        rows, counts = tokens(texts[i : i + 2000], bits)
        out += np.split(rows, np.cumsum(counts)[:-1])
    return out


def padded(ids: list[np.ndarray], rows: np.ndarray, min_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch x length) ids as [PAD] + tokens + [PAD] right-padded with 0, and each text's length with its
    two pads (at least min_len)."""
    lengths = np.array([max(len(ids[r]) + 2, min_len) for r in rows])
    out = np.zeros((len(rows), int(lengths.max())), np.int64)
    for i, r in enumerate(rows):
        out[i, 1 : 1 + len(ids[r])] = ids[r]
    return torch.from_numpy(out), torch.from_numpy(lengths)


class CNN(torch.nn.Module):
    """Embedding -> dropout -> conv widths 2-4 -> ReLU -> masked max over time -> dropout -> 3 logits."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.cfg = cfg
        self.emb = torch.nn.Embedding(1 << cfg["bits"], cfg["dim"], padding_idx=0)
        torch.nn.init.uniform_(self.emb.weight, -0.1, 0.1)
        with torch.no_grad():
            self.emb.weight[0] = 0.0
        self.convs = torch.nn.ModuleList(torch.nn.Conv1d(cfg["dim"], cfg["filters"], w) for w in cfg["widths"])
        self.emb_drop = torch.nn.Dropout(cfg["emb_dropout"])
        self.drop = torch.nn.Dropout(cfg["dropout"])
        self.out = torch.nn.Linear(cfg["filters"] * len(cfg["widths"]), 3)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.emb_drop(self.emb(ids)).transpose(1, 2)  # batch x dim x length
        pooled = []
        for w, conv in zip(self.cfg["widths"], self.convs, strict=True):
            h = torch.relu(conv(x))  # batch x filters x (length - w + 1)
            valid = torch.arange(h.shape[2])[None, :] <= (lengths[:, None] - w)
            pooled.append((h * valid[:, None, :]).amax(dim=2))
        return self.out(self.drop(torch.cat(pooled, 1)))


def predict(model: CNN, ids: list[np.ndarray], index: np.ndarray) -> np.ndarray:
    model.eval()
    out = []
    with torch.no_grad():
        order = index[np.argsort([len(ids[r]) for r in index], kind="stable")]
        for s in range(0, len(order), 512):
            rows = order[s : s + 512]
            out.append(torch.log_softmax(model(*padded(ids, rows, max(model.cfg["widths"]))), 1).numpy())
    res = np.zeros((len(index), 3))
    pos = {r: i for i, r in enumerate(index)}
    res[[pos[r] for r in order]] = np.concatenate(out)
    return res


def train(ids: list[np.ndarray], y: np.ndarray, index: np.ndarray, cfg: dict[str, Any], seed: int,
          on_epoch: Any = None) -> CNN:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = CNN(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    counts = np.bincount(y[index], minlength=3).astype(np.float64)
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor(len(index) / (3 * counts), dtype=torch.float32))
    targets = torch.from_numpy(y.astype(np.int64))
    # batches of similar lengths (less padding), in random order
    for epoch in range(1, cfg["epochs"] + 1):
        model.train()
        order = index[rng.permutation(len(index))]
        chunks = [order[s : s + 50 * cfg["batch"]] for s in range(0, len(order), 50 * cfg["batch"])]
        batches = []
        for chunk in chunks:
            chunk = chunk[np.argsort([len(ids[r]) for r in chunk], kind="stable")]
            batches += [chunk[s : s + cfg["batch"]] for s in range(0, len(chunk), cfg["batch"])]
        for b in rng.permutation(len(batches)):
            rows = batches[b]
            opt.zero_grad()
            loss = loss_fn(model(*padded(ids, rows, max(cfg["widths"]))), targets[rows])
            loss.backward()
            opt.step()
            with torch.no_grad():
                model.emb.weight[0] = 0.0
        if on_epoch is not None:
            on_epoch(epoch, model)
    return model


def export(model: CNN) -> dict[str, np.ndarray]:
    """The trained weights in the run time's layout: cnn_emb (rows x dim), cnn_w (dim x sum(widths) *
    filters: per width, one block of `filters` columns per filter offset), cnn_b, cnn_out (3 * filters x 3),
    cnn_out_b."""
    blocks, biases = [], []
    for conv in model.convs:
        assert isinstance(conv, torch.nn.Conv1d) and conv.bias is not None
        weight = conv.weight.detach().numpy()  # filters x dim x width
        blocks += [weight[:, :, k].T for k in range(weight.shape[2])]
        biases.append(conv.bias.detach().numpy())
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in {
        "cnn_emb": model.emb.weight.detach().numpy(), "cnn_w": np.concatenate(blocks, 1),
        "cnn_b": np.concatenate(biases), "cnn_out": model.out.weight.detach().numpy().T,
        "cnn_out_b": model.out.bias.detach().numpy()}.items()}


def out_of_fold(ids: list[np.ndarray], y: np.ndarray, cfg: dict[str, Any], seed: int, lang: str,
                folds: int = FOLDS) -> np.ndarray:
    """Per epoch, out-of-fold log-probabilities (epochs x n x 3) on the training script's folds; fold k's
    network is initialised and shuffled with seed + k."""
    torch.set_num_threads(1)
    per_epoch = np.zeros((cfg["epochs"], len(y), 3))
    split = StratifiedKFold(FOLDS, shuffle=True, random_state=SEED).split(np.zeros(len(y)), y)
    for k, (tr, te) in enumerate(split):
        if k >= folds:
            break
        t0 = time.perf_counter()

        def on_epoch(epoch: int, model: CNN, te: np.ndarray = te, k: int = k, t0: float = t0) -> None:
            per_epoch[epoch - 1][te] = predict(model, ids, te)
            accuracy = float((per_epoch[epoch - 1][te].argmax(1) == y[te]).mean())
            print(f"[{lang}] CNN fold {k + 1}/{FOLDS} epoch {epoch}: accuracy {accuracy:.4f} "
                  f"({time.perf_counter() - t0:.0f}s)", flush=True)

        train(ids, y, tr, cfg, seed + k, on_epoch)
    return per_epoch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lang", required=True)
    parser.add_argument("--cfg", default="{}")
    parser.add_argument("--name", default="cnn")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=FOLDS, help="fewer for a quick timing run")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/sentcv"))
    args = parser.parse_args()
    from tools import train_sentiment as ts

    lang = args.lang
    cfg = {**DEFAULTS, **json.loads(args.cfg)}
    texts, y = ts.load(ts.DEFAULT_DATA / f"{lang}_train.jsonl")
    ids = token_ids(texts, cfg["bits"])
    print(f"[{lang}] {len(texts)} texts, {sum(map(len, ids))} tokens, cfg {cfg}", flush=True)
    oof = out_of_fold(ids, y, cfg, SEED + 1000 * args.seed, lang, args.folds)
    if args.folds < FOLDS:
        return
    tag = f"{lang}{'_idf' if ts.FEATURES[lang]['idf'] else ''}"
    np.save(args.cache / f"{tag}_{args.name}_s{args.seed}.npy", oof)
    for e, per in enumerate(oof):
        offsets, best = ts.tune_offsets(lang, per, y)
        m = ts.metrics(y, (per + offsets).argmax(1))
        print(f"[{lang}] {args.name} epoch {e + 1}: CV objective {best:.4f} {m}", flush=True)


if __name__ == "__main__":
    main()
