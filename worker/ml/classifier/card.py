"""MODEL_CARD.md for a trained classifier: command, data, hyper-parameters, dev metrics,
calibration, and the teacher of a distilled student."""

from __future__ import annotations

import os
import platform

import torch


def hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA), torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    return f"CPU {cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def _metrics_table(report: dict) -> list[str]:
    lines = ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for label, m in report["per_class"].items():
        lines.append(f"| {label} | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} | {m['support']} |")
    return lines


def _confusion_table(report: dict) -> list[str]:
    labels = report["labels"]
    lines = ["| gold \\ predicted | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for label, row in zip(labels, report["confusion"], strict=True):
        lines.append(f"| {label} | " + " | ".join(str(n) for n in row) + " |")
    return lines


def _calibration(t: dict) -> list[str]:
    c = t.get("calibration")
    if not c:
        return ["- Not calibrated: scores are the model's raw probabilities (temperature 1)."]
    return [
        f"- Temperature **{c['temperature']}**, fitted on dev by minimising the negative log-likelihood",
        f"- Expected calibration error (15 bins): {c['ece_before']:.4f} before, **{c['ece_after']:.4f}** after",
        f"- Dev NLL: {c['nll_before']:.4f} before, {c['nll_after']:.4f} after (accuracy is unchanged: argmax is)",
    ]


def _distillation(t: dict) -> list[str]:
    d = t.get("distillation")
    if not d:
        return []
    extra = (
        f"{d['extra_rows']} extra unlabelled texts from {', '.join(d['extra_files'])}"
        if d["extra_files"]
        else "no extra texts"
    )
    return [
        "## Teacher",
        "",
        f"- Distilled from `{d['teacher']}` version `{d['teacher_version']}` (dev accuracy {d['teacher_dev_accuracy']:.4f})",
        f"- Distillation temperature {d['temperature']}, alpha {d['alpha']} (the teacher's share of the loss); {extra}",
        f"- Agreement with the teacher on dev: **{d['dev_agreement']:.4f}**",
        "",
    ]


def _reliability_table(report: dict) -> list[str]:
    lines = ["| confidence | rows | mean confidence | accuracy |", "|---|---|---|---|"]
    for b in report["calibration"]["bins"]:
        lines.append(
            f"| {b['lower']:.3f}-{b['upper']:.3f} | {b['count']} | {b['confidence']:.4f} | {b['accuracy']:.4f} |"
        )
    return lines


def render_card(name: str, version: str, config: dict, report: dict, member_acc: list[float]) -> str:
    t = config["training"]
    hp = ", ".join(f"{k}={v}" for k, v in t["hyperparameters"].items())
    lines = [
        f"# Model card: `{name}`",
        "",
        f"- Version id: `{version}`; kind: classifier; labels: {', '.join(config['labels'])}",
        f"- Architecture: {config['architecture']}",
        f"- Max tokens: {config['max_tokens']} (longer texts are truncated and flagged `truncated`)",
        "",
        "## How it was made",
        "",
        "```",
        t["command"],
        "```",
        "",
        f"- Train: `{t['train_file']}`, {t['train_rows']} rows {t['train_counts']}, fingerprint `{t['data_fingerprint']}`",
        f"- Dev: `{t['dev_file']}`, {t['dev_rows']} rows {t['dev_counts']}",
        f"- Hyper-parameters: {hp}",
        f"- Training time: {t['seconds']:.0f} s on {t['hardware']}",
        "",
        "## Dev metrics",
        "",
        f"- Accuracy **{report['accuracy']:.4f}**, macro-F1 **{report['macro_f1']:.4f}** ({report['rows']} rows)",
        f"- Best dev accuracy of each ensemble member alone: {', '.join(f'{a:.4f}' for a in member_acc)}",
        "",
        *_metrics_table(report),
        "",
        "Confusion matrix:",
        "",
        *_confusion_table(report),
        "",
        *_distillation(t),
        "## Calibration",
        "",
        *_calibration(t),
        "",
        "Reliability on dev (top score):",
        "",
        *_reliability_table(report),
        "",
    ]
    return "\n".join(lines)
