"""Quantization-aware knowledge distillation, QKD (Kim et al. 2019; algorithms.md §8).

Three phases on a prepared (fake-quantized) student and a float teacher:

1. SS, self-studying: the student trains alone with cross-entropy (a good quantized start);
2. CS, co-studying: teacher and student train together, each distilling from the other's
   detached soft outputs, so the teacher becomes quantization-friendly;
3. TU, tutoring: the teacher is frozen and the student trains with CE + KD.

Loss: (1 - alpha) CE(y, z_S) + alpha T^2 KL(softmax(z_T / T) || softmax(z_S / T)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..format.errors import SpecError
from .train import make_optimizer


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    target: torch.Tensor,
    temperature: float = 2.0,
    alpha: float = 0.5,
) -> torch.Tensor:
    """(1 - alpha) CE + alpha T^2 KL(teacher_T || student_T); teacher logits are detached."""
    if temperature <= 0 or not 0.0 <= alpha <= 1.0:
        raise SpecError("kd_loss needs temperature > 0 and 0 <= alpha <= 1")
    t = temperature
    ce = F.cross_entropy(student_logits, target)
    kl = F.kl_div(
        F.log_softmax(student_logits / t, dim=1),
        F.log_softmax(teacher_logits.detach() / t, dim=1),
        reduction="batchmean",
        log_target=True,
    )
    return (1.0 - alpha) * ce + alpha * t * t * kl


@dataclass
class QKDResult:
    """Mean student loss per epoch, per phase name ("ss", "cs", "tu")."""

    losses: dict[str, list[float]] = field(default_factory=dict)


def qkd_train(
    student: nn.Module,
    teacher: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    phases: tuple[int, int, int] = (5, 5, 5),
    temperature: float = 2.0,
    alpha: float = 0.5,
    lr: float = 1e-3,
    range_lr: float | None = None,
    teacher_lr: float | None = None,
    batch_size: int = 64,
    seed: int = 0,
) -> QKDResult:
    """Run the SS, CS and TU phases for ``phases`` = (ss, cs, tu) epochs on classification data
    (x, y int64). Trains ``student`` (prepared) and, during CS, ``teacher`` in place."""
    if len(phases) != 3 or any(int(p) < 0 for p in phases):
        raise SpecError("phases must be three non-negative epoch counts (ss, cs, tu)")
    opt_s = make_optimizer(student, lr, range_lr)
    opt_t = torch.optim.Adam(teacher.parameters(), lr=teacher_lr or lr)
    gen = torch.Generator().manual_seed(seed)
    n = x.shape[0]
    res = QKDResult()
    for phase, epochs in zip(("ss", "cs", "tu"), phases, strict=True):
        res.losses[phase] = []
        teacher.train(phase == "cs")
        for _ in range(int(epochs)):
            perm = torch.randperm(n, generator=gen)
            total = 0.0
            for i in range(0, n, batch_size):
                idx = perm[i : i + batch_size]
                xb, yb = x[idx], y[idx]
                zs = student(xb)
                if phase == "ss":
                    loss = F.cross_entropy(zs, yb)
                else:
                    if phase == "cs":
                        zt = teacher(xb)
                        opt_t.zero_grad()
                        kd_loss(zt, zs.detach(), yb, temperature, alpha).backward()
                        opt_t.step()
                        zt = zt.detach()
                    else:
                        with torch.no_grad():
                            zt = teacher(xb)
                    loss = kd_loss(zs, zt, yb, temperature, alpha)
                opt_s.zero_grad()
                loss.backward()
                opt_s.step()
                total += float(loss.detach()) * len(idx)
            res.losses[phase].append(total / n)
    return res
