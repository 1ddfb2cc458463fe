"""The Synthesizer's training loop: weighted maximum likelihood, a cosine schedule, best validation state.

A mixin of :class:`~microplex.synthesis.Synthesizer`; :meth:`_Training._train` fits its
``model_`` and sets ``history_``.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterator

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .._errors import ConvergenceError
from .._random import holdout_split
from ._schedule import BATCH_SIZE, LEARNING_RATE

__all__: list[str] = []

logger = logging.getLogger(__name__)



@contextlib.contextmanager
def torch_fit_mode() -> Iterator[None]:
    """The torch settings a fit trains under, whatever the caller's: gradients on (a fit called inside
    ``torch.no_grad()`` or ``torch.inference_mode()``, an evaluation loop's, stopped at ``backward`` with
    PyTorch's own ``RuntimeError``) and float32 as the default dtype (after ``torch.set_default_dtype(torch.float64)``
    the networks were built in float64 for float32 data, "mat1 and mat2 must have the same dtype"). The caller's
    settings are restored after.
    """
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        with torch.inference_mode(False), torch.enable_grad():
            yield
    finally:
        torch.set_default_dtype(previous)


class _Training:
    """The training loop (a Synthesizer mixin)."""

    def _train(self, data, c, pattern, heap, w, rng, epochs, seed) -> None:
        """Adam on the weighted negative log-likelihood.

        The learning rate decays to 0 along a cosine over ``epochs``. With a validation split, the
        pattern head, the heap heads and the flow (disjoint parameters, separate loss terms) are
        scored on it every epoch. The flow keeps its best state, so a small data set that starts to
        over-fit keeps the state before it did (on 2,700 records the final flow state is 0.3-0.5
        nats per record worse on validation). The discrete heads keep their final, converged state
        unless their best one is *significantly* better (see :func:`_overfits`): the best
        validation state of a head otherwise fits the validation split's own shares (0.05 off on
        300 validation records). With ``patience`` (an int) the earlier schedule runs instead: the
        learning rate halves when the validation loss stalls, training stops when no part has
        improved for ``patience`` epochs and every part keeps its best state.
        """
        # validation_fraction < 0.5: the training part keeps a record of positive weight (fit checked one is held)
        order, n_val = holdout_split(w, self.validation_fraction, rng)
        val_idx, train_idx = torch.as_tensor(order[:n_val]), torch.as_tensor(order[n_val:])
        c_t, p_t, h_t = torch.as_tensor(c), torch.as_tensor(pattern), torch.as_tensor(heap)
        w_t = torch.as_tensor(w / w.mean(), dtype=torch.float32)
        dequantize = any(self.encoders_[v].integer for v in self.continuous_vars_)
        u_t = torch.as_tensor(self._encode_continuous(data, None), dtype=torch.float32)
        u_val = u_t[val_idx]

        model = self.model_
        parts = {"head": model.head, "heaps": model.heaps, "flow": model.flow}
        parts = {k: m for k, m in parts.items() if m is not None}
        lr = LEARNING_RATE if self.learning_rate is None else self.learning_rate
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=self.weight_decay)
        batch_size = BATCH_SIZE if self.batch_size is None else int(self.batch_size)
        early_stopping = bool(n_val) and self.patience is not None
        if early_stopping:
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=max(self.patience // 3, 1))
        else:
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
        gen = torch.Generator().manual_seed(seed)
        best = {k: (np.inf, copy.deepcopy(m.state_dict()), 0) for k, m in parts.items()} if n_val else {}
        best_lp: dict[str, torch.Tensor] = {}  # per-record validation log-probs of each best state
        history = []
        # the bar stays as the fit's final line; early stopping shortens it to the epochs run
        bar = tqdm(total=epochs, desc="fit", unit="epoch", disable=not self.verbose, leave=True)
        for epoch in range(epochs):
            if dequantize:
                u_t = torch.as_tensor(self._encode_continuous(data, rng), dtype=torch.float32)
            model.train()
            perm = train_idx[torch.randperm(len(train_idx), generator=gen)]
            total, weight = 0.0, 0.0
            for start in range(0, len(perm), batch_size):
                b = perm[start : start + batch_size]
                wb = w_t[b]
                if not float(wb.sum()) > 0:  # a batch of zero-weight records carries no likelihood
                    continue
                loss = -(wb * model.log_prob(c_t[b], p_t[b], u_t[b], h_t[b], ruled=False)).sum() / wb.sum()
                opt.zero_grad()
                loss.backward()
                try:
                    opt.step()
                except RuntimeError as exc:  # e.g. a step that overflows float32
                    bar.close()
                    raise ConvergenceError(
                        f"Training failed at epoch {epoch + 1}: {exc}; lower 'learning_rate' (now "
                        f"{lr!r}) or rescale extreme values."
                    ) from exc
                total += loss.item() * float(wb.sum())
                weight += float(wb.sum())
            train_loss = total / weight
            if not np.isfinite(train_loss):
                bar.close()
                raise ConvergenceError(
                    f"The training loss became non-finite ({train_loss}) at epoch {epoch + 1}; lower "
                    f"'learning_rate' (now {lr!r}) or rescale extreme values."
                )
            val_loss = np.nan
            if not n_val:
                history.append((epoch + 1, train_loss, val_loss))
                bar.set_postfix(train=f"{train_loss:.4f}", refresh=False)
                bar.update(1)
                sched.step()
                continue
            model.eval()
            with torch.no_grad():
                lps = dict(zip(("head", "heaps", "flow"),
                               model.log_prob_parts(c_t[val_idx], p_t[val_idx], u_val, h_t[val_idx], ruled=False), strict=True))
            wv = w_t[val_idx] / w_t[val_idx].sum()
            scores = {k: -float((wv * lp).sum()) for k, lp in lps.items()}
            val_loss = sum(scores.values())
            history.append((epoch + 1, train_loss, val_loss))
            bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}", refresh=False)
            bar.update(1)
            for k, m in parts.items():
                score, state, stale = best[k]
                if scores[k] < score - 1e-4:
                    best[k] = (scores[k], copy.deepcopy(m.state_dict()), 0)
                    best_lp[k] = lps[k]
                else:
                    best[k] = (score, state, stale + 1)
            if not early_stopping:
                sched.step()
                continue
            sched.step(val_loss)
            if all(stale >= self.patience for _, _, stale in best.values()):
                logger.info("Early stopping after %d epochs.", epoch + 1)
                bar.total = epoch + 1
                bar.set_description("fit (stopped early)")
                break
        bar.close()
        if n_val:
            for k, m in parts.items():
                if early_stopping or k == "flow" or k not in best_lp or _overfits(best_lp[k], lps[k], wv):
                    m.load_state_dict(best[k][1])
        model.eval()
        self.history_ = pd.DataFrame(history, columns=["epoch", "train_loss", "val_loss"])


def _overfits(best: torch.Tensor, final: torch.Tensor, w: torch.Tensor, z: float = 2.0) -> bool:
    """Whether a part's best validation state beats its final state by more than ``z`` standard
    errors of the paired, weighted mean difference of per-record validation log-probabilities
    (``w`` sums to 1). A difference within the noise of the validation split is not over-fitting,
    and the converged final state is kept.

    Examples
    --------
    >>> w = torch.full((4,), 0.25)
    >>> _overfits(torch.tensor([-1.0, -1.1, -0.9, -1.0]), torch.tensor([-2.0, -2.1, -1.9, -2.0]), w)
    True
    >>> _overfits(torch.tensor([-1.0, -1.1, -0.9, -1.0]), torch.tensor([-1.1, -1.0, -1.0, -0.9]), w)
    False
    """
    d = (best - final).double()
    w = w.double()
    mean = float((w * d).sum())
    se = float(torch.sqrt((w.square() * (d - mean).square()).sum()))
    return mean > z * se
