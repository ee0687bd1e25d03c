"""Classification metrics from gold and predicted label names, and how far the scores can be
trusted (expected calibration error, reliability table). Pure Python."""

from __future__ import annotations

from collections.abc import Sequence


def confusion(gold: Sequence[str], pred: Sequence[str | None], labels: Sequence[str]) -> list[list[int]]:
    """matrix[i][j] = rows with gold labels[i] predicted labels[j]; unpredicted rows count nowhere."""
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for g, p in zip(gold, pred, strict=True):
        if g in index and p in index:
            matrix[index[g]][index[p]] += 1
    return matrix


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def classification_report(gold: Sequence[str], pred: Sequence[str | None], labels: Sequence[str]) -> dict:
    """accuracy, macro_f1, per-class precision/recall/f1/support, confusion matrix, counts."""
    matrix = confusion(gold, pred, labels)
    per_class = {}
    for i, label in enumerate(labels):
        tp = matrix[i][i]
        predicted = sum(row[i] for row in matrix)
        support = sum(1 for g in gold if g == label)
        precision, recall = _ratio(tp, predicted), _ratio(tp, support)
        per_class[label] = {
            "precision": precision,
            "recall": recall,
            "f1": _ratio(2 * precision * recall, precision + recall),
            "support": support,
        }
    correct = sum(1 for g, p in zip(gold, pred, strict=True) if g == p)
    return {
        "rows": len(gold),
        "accuracy": _ratio(correct, len(gold)),
        "macro_f1": _ratio(sum(c["f1"] for c in per_class.values()), len(per_class)),
        "per_class": per_class,
        "labels": list(labels),
        "confusion": matrix,
        "unlabelled_gold": sum(1 for g in gold if g not in set(labels)),
        "failed": sum(1 for p in pred if p is None),
    }


ECE_BINS = 15  # equal-width confidence bins, as in Guo et al. 2017 ("On Calibration of Modern Neural Networks")


def reliability(confidence: Sequence[float], correct: Sequence[bool], bins: int = ECE_BINS) -> dict:
    """``ece``: the count-weighted mean |accuracy - mean confidence| over equal-width bins of
    the top score; ``bins``: the non-empty ones (lower, upper, count, confidence, accuracy)."""
    filled: dict[int, list] = {}
    for c, ok in zip(confidence, correct, strict=True):
        filled.setdefault(min(int(c * bins), bins - 1), []).append((c, ok))
    table = [_bin(b, bins, rows) for b, rows in sorted(filled.items())]
    total = sum(row["count"] for row in table)
    ece = sum(row["count"] * abs(row["accuracy"] - row["confidence"]) for row in table)
    return {"ece": _ratio(ece, total), "bins": table}


def _bin(index: int, bins: int, rows: list[tuple[float, bool]]) -> dict:
    return {
        "lower": index / bins,
        "upper": (index + 1) / bins,
        "count": len(rows),
        "confidence": sum(c for c, _ in rows) / len(rows),
        "accuracy": sum(1 for _, ok in rows if ok) / len(rows),
    }


def calibration_report(gold: Sequence[str], labels: Sequence[str], probs: Sequence[Sequence[float] | None]) -> dict:
    """``reliability`` of the top score of each row that has probabilities (in ``labels`` order)."""
    confidence, correct = [], []
    for g, p in zip(gold, probs, strict=True):
        if p is not None:
            top = max(range(len(p)), key=p.__getitem__)
            confidence.append(p[top])
            correct.append(labels[top] == g)
    return reliability(confidence, correct)


def summary(report: dict) -> dict:
    """The few numbers stored in config.json metrics."""
    out = {"accuracy": round(report["accuracy"], 5), "macro_f1": round(report["macro_f1"], 5), "rows": report["rows"]}
    out["f1"] = {k: round(v["f1"], 5) for k, v in report["per_class"].items()}
    if "calibration" in report:
        out["ece"] = round(report["calibration"]["ece"], 5)
    return out
