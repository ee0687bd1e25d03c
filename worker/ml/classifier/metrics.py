"""Classification metrics from gold and predicted label names (pure Python)."""

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


def summary(report: dict) -> dict:
    """The few numbers stored in config.json metrics."""
    out = {"accuracy": round(report["accuracy"], 5), "macro_f1": round(report["macro_f1"], 5), "rows": report["rows"]}
    out["f1"] = {k: round(v["f1"], 5) for k, v in report["per_class"].items()}
    return out
