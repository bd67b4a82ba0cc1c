"""The training loop: seeded epochs, sampled-softmax/BPR steps, per-epoch validation, early stopping."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mmrec.device import available_memory_bytes
from mmrec.errors import CheckpointError, ConfigError, DivergedError
from mmrec.evaluation.full_ranking import RankingResult, full_ranking_variants, relevant_among
from mmrec.models.inputs import ItemInputs
from mmrec.models.item_item import (L2_GRID, ItemItemModel, fit_profiles, interaction_csr, item_item_content,
                                    item_item_fit_key, item_item_neighbours, item_item_search)
from mmrec.models.losses import NegativeSampler, bpr_loss, info_nce_loss, sampled_softmax_loss
from mmrec.models.scoring import Scorer, matrices_per_chunk, score_variants
from mmrec.models.two_tower import TwoTowerModel
from mmrec.progress import ProgressCallback, ProgressEvent, null_progress
from mmrec.settings import ModelSettings, TrainingSettings, parse_metric
from mmrec.training.data import TrainingData
from mmrec.training.distributed import DistContext, all_gather_objects, all_reduce_mean, broadcast_floats, shard
from mmrec.training.optim import build_optimizer, clip_gradients
from mmrec.training.schedule import EarlyStopping, LRSchedule
from mmrec.training.seeding import capture_rng_state, epoch_generator, restore_rng_state
from mmrec.training.tracking import NullTracker, Tracker

log = logging.getLogger(__name__)

FULL_SOFTMAX_MAX_ITEMS = 100_000  # model.negatives=full encodes the whole catalogue every step


@dataclass
class EpochRecord:
    """One epoch's numbers (plain types: stored in checkpoints and sidecars)."""

    epoch: int  # 1-based
    loss: float
    val: dict[str, float]
    monitored: float
    is_best: bool
    seconds: float
    interactions_per_s: float
    lr: float


# Training examples per history item encoded between history-table rebuilds (see history_refresh_interval).
# On MovieLens validation a table rebuilt once per epoch (60 steps instead of 10) was within seed noise
# (bench/README.md, two-tower levers), so the staleness this allows at large catalogues is tolerated.
EXAMPLES_PER_HISTORY_ENCODING = 5

# The distillation teacher's scores x_u B of every training user are computed once when they fit in this
# many floats (2 GiB) and in TEACHER_TABLE_FREE_SHARE of the memory free on the device (512 MiB when that is
# unknown): a step then gathers its [b, c] block instead of multiplying b profiles by B's candidate columns
# (bench/README.md, "mmrec: training speed"). Above it each step computes its block.
TEACHER_TABLE_MAX_ELEMENTS = 2**29
TEACHER_TABLE_FREE_SHARE = 0.125
TEACHER_TABLE_UNKNOWN_FREE_ELEMENTS = 2**27


def teacher_table_budget(device: torch.device) -> int:
    """Floats the teacher's score table may hold on `device`."""
    free = available_memory_bytes(device)
    if free is None:
        return min(TEACHER_TABLE_MAX_ELEMENTS, TEACHER_TABLE_UNKNOWN_FREE_ELEMENTS)
    return min(TEACHER_TABLE_MAX_ELEMENTS, int(TEACHER_TABLE_FREE_SHARE * free) // 4)


def monitor_key(monitor: str) -> str:
    """`ndcg@10` -> the full_ranking metric key; `mrr` has no cut-off."""
    name, k = parse_metric(monitor)
    if name == "mrr":
        return "mrr"
    if k is None:
        raise ConfigError(f"training.monitor {monitor!r} needs a cut-off.", hint=f"Use e.g. {name}@10.")
    return f"{name}@{k}"


def distill_weight(model_cfg: ModelSettings, cfg: TrainingSettings) -> float:
    """model.distill_weight, with null resolved: 1 when validation ranks every item, 0 for cold items."""
    if model_cfg.distill_weight is not None:
        return model_cfg.distill_weight
    return 1.0 if cfg.validate_on == "all" else 0.0


def distill_temperature(model_cfg: ModelSettings) -> float:
    """model.distill_temperature, with null resolved: 2 when the candidates are the whole catalogue, else 0.5."""
    if model_cfg.distill_temperature is not None:
        return model_cfg.distill_temperature
    return 2.0 if model_cfg.negatives == "full" else 0.5


STEP_BYTES_PER_SCORE = 32  # a step's tensors per (user, candidate) score: logits, masks, softmax, grads, teacher


def check_step_memory(batch: int, model_cfg: ModelSettings, n_items: int, device: torch.device) -> None:
    """A ConfigError when one training step's [batch, candidates] score tensors would not fit in the memory
    free on `device`: with in-batch negatives they grow with the square of training.batch_size."""
    if model_cfg.loss == "bpr":
        candidates = 2 * batch
    elif model_cfg.negatives == "full":
        candidates = n_items
    else:
        candidates = batch + model_cfg.num_negatives
    need = STEP_BYTES_PER_SCORE * batch * candidates
    free = available_memory_bytes(device)
    if free is not None and need > 0.8 * free:
        grows = "grows with the square of the batch" if candidates != n_items else "grows with the batch"
        raise ConfigError(
            f"training.batch_size {batch:,} needs about {need / 1e9:.1f} GB per training step ({batch:,} users x "
            f"{candidates:,} candidate items, scored, masked and differentiated; it {grows}), more than the "
            f"{free / 1e9:.1f} GB free on {device}.",
            hint="Lower training.batch_size (--batch-size; the default 512 needs a few MB).",
        )



def check_training_state(state: dict[str, Any]) -> None:
    """CheckpointError unless `state` holds what a resume restores (a last_model.pth does; a best one does not)."""
    missing = [key for key in ("optimizer", "schedule", "stopper", "rng") if key not in state]
    if missing:
        raise CheckpointError(
            f"This checkpoint holds no training state ({', '.join(missing)} missing); it cannot be resumed.",
            hint="Resume from last_model.pth, which keeps the optimizer and RNG states.",
        )

def rank_rng_state(state: dict[str, Any], ctx: DistContext) -> dict[str, Any]:
    """The RNG state this rank resumes from: its own when the run had as many processes, else rank 0's."""
    ranks = state.get("rng_ranks")
    if ctx.rank > 0 and ranks is not None and len(ranks) == ctx.world_size:
        return ranks[ctx.rank]
    return state["rng"]


class Trainer:
    """Trains a TwoTowerModel on TrainingData; state_dict()/load_state_dict() make resume exact."""

    def __init__(
        self,
        model: TwoTowerModel,
        data: TrainingData,
        catalogue: ItemInputs,
        model_cfg: ModelSettings,
        cfg: TrainingSettings,
        device: torch.device,
        *,
        k_values: Sequence[int] = (10,),
        eval_batch_size: int = 1024,
        dist_ctx: DistContext | None = None,
        progress: ProgressCallback = null_progress,
        tracker: Tracker | None = None,
    ) -> None:
        self.module = model.to(device)
        self.data, self.catalogue, self.model_cfg, self.cfg, self.device = data, catalogue, model_cfg, cfg, device
        self.dist = dist_ctx or DistContext()
        self.progress, self.tracker = progress, tracker or NullTracker()
        self.model: torch.nn.Module = model
        if self.dist.enabled:
            device_ids = [device.index] if device.type == "cuda" else None
            self.model = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
        self.monitor = monitor_key(cfg.monitor)
        k_needed = [int(self.monitor.split("@")[1])] if "@" in self.monitor else []
        self.k_values = sorted(set(k_values) | set(k_needed))
        self.eval_batch_size = eval_batch_size
        self.optimizer = build_optimizer(model, cfg, self.dist.world_size)
        per_rank = len(data.pairs) // self.dist.world_size
        self.steps_per_epoch = max(1, math.ceil(per_rank / cfg.batch_size))
        check_step_memory(min(cfg.batch_size, max(per_rank, 1)), model_cfg, catalogue.n, device)
        self.schedule = LRSchedule(self.optimizer, cfg, self.steps_per_epoch)
        self.stopper = EarlyStopping(cfg.patience)
        self.epoch = 0  # completed epochs
        self.global_step = 0
        self.history: list[EpochRecord] = []
        self.stopped_early = False
        self._rank_rng: list[dict[str, Any]] | None = None  # under torchrun: every rank's RNG state after an epoch
        self.use_bf16 = cfg.bf16 and device.type == "cuda"
        self.total_interactions = float(data.item_counts.sum().item())
        self.val_candidates = self._validation_candidates()
        # Detached item vectors the user tower reads history from (None = stale; rebuilt on demand).
        self._history_table: torch.Tensor | None = None
        self._history_rows: torch.Tensor | None = None
        self._steps_since_refresh = 0
        if model_cfg.negatives == "full" and catalogue.n > FULL_SOFTMAX_MAX_ITEMS:
            raise ConfigError(
                f"model.negatives=full runs the item tower over all {catalogue.n:,} items every step; it is meant "
                f"for catalogues up to {FULL_SOFTMAX_MAX_ITEMS:,} items.",
                hint="Use model.negatives=in_batch (log-Q corrected) or uniform/popularity with model.num_negatives.",
            )
        self.distill_weight = distill_weight(model_cfg, cfg)
        self.distill_temperature = distill_temperature(model_cfg)
        self.teacher_key = ""  # item_item_fit_key of the teacher's fit
        self.teacher_seconds = 0.0  # its fit time (the blend step reuses the fit and reports this time)
        # B^T at the lambda search's other values, solved with the teacher in one pass (neighbourhood solver).
        self.teacher_l2_fits: dict[float, torch.Tensor] = {}
        self.teacher = self._teacher() if self.distill_weight > 0 else None
        self._teacher_table = self._all_teacher_scores() if self.teacher is not None else None
        self.sampler: NegativeSampler | None = None
        if model_cfg.loss == "bpr" or (model_cfg.negatives in ("uniform", "popularity") and model_cfg.num_negatives > 0):
            kind = "popularity" if model_cfg.negatives == "popularity" else "uniform"
            self.sampler = NegativeSampler(kind, data.item_counts)

    def _teacher(self) -> ItemItemModel:
        """The item-item model of the training pairs (profile row = user index), for model.distill_weight."""
        cfg = self.model_cfg
        n = self.catalogue.n
        if n > cfg.item_item_max_items:
            raise ConfigError(f"model.distill_weight needs the item-item model, which model.item_item_max_items "
                              f"({cfg.item_item_max_items:,}) turns off for these {n:,} items.",
                              hint="Set model.distill_weight: 0, or raise model.item_item_max_items.")
        pairs = self.data.pairs.cpu().numpy()
        profiles = interaction_csr(pairs[:, 0], pairs[:, 1], int(self.data.histories.shape[0]), n)
        # The blend step after training fits this same model first; the key lets it reuse this fit.
        self.teacher_key = item_item_fit_key(profiles, item_item_content(cfg, self.catalogue), cfg)
        start = time.perf_counter()

        def announce(text: str) -> None:
            self.progress(ProgressEvent("teacher", message=f"{text}: the distillation teacher (model.distill_weight), "
                                                           "before the first epoch."))

        grid = self._teacher_l2_grid()
        if grid:  # the neighbourhood solver's lambda search after training shares this fit's neighbour search
            announce(f"Fitting the item-item model of {profiles.nnz:,} interactions x {n:,} items at lambda "
                     f"{', '.join(f'{l2:g}' for l2 in grid)} in one pass (the other lambdas are validated after "
                     "training)")
            fits = dict(zip(grid, ItemItemModel.fit_l2_path(
                profiles, item_item_content(cfg, self.catalogue), grid, cfg.item_item_content_weight, self.device,
                item_item_neighbours(cfg, n), item_item_search(cfg, n))))
            teacher = fits.pop(cfg.item_item_l2)
            self.teacher_l2_fits = {l2: model.weights for l2, model in fits.items()}
        else:
            teacher = fit_profiles(profiles, self.catalogue, cfg, self.device, announce=announce)
        self.teacher_seconds = time.perf_counter() - start
        return teacher

    def _teacher_l2_grid(self) -> list[float]:
        """The lambdas `mmrec train`'s item-item search will try when the teacher can solve them with its own fit
        (the neighbourhood solver, the search on, validation rows present); else []."""
        cfg = self.model_cfg
        if (not cfg.item_item or not cfg.item_item_l2_search or self.data.val_relevant.nnz == 0
                or item_item_neighbours(cfg, self.catalogue.n) is None):
            return []
        return [cfg.item_item_l2 * factor for factor in L2_GRID]

    def _validation_candidates(self) -> Any:
        """Catalogue rows validation ranks (None = all); cold_items = rows with no train interaction."""
        if self.cfg.validate_on == "all":
            return None
        cold = torch.nonzero(self.data.item_counts == 0).flatten().cpu().numpy()
        if len(cold) == 0:
            raise ConfigError(
                "training.validate_on is cold_items, but every catalogue item has training interactions.",
                hint="Use training.validate_on=all, or a split that holds items out (e.g. --strategy item).",
            )
        return cold

    # ---- one step ---------------------------------------------------------------------------
    @property
    def history_refresh_interval(self) -> int:
        """Steps between history-table rebuilds: training.history_refresh_steps, but at least
        EXAMPLES_PER_HISTORY_ENCODING training examples per item a rebuild encodes (the items some
        history holds). A rebuild then costs at most 1/EXAMPLES_PER_HISTORY_ENCODING item encodings per
        example trained on, the same share of training at 2k and at 200k items."""
        examples = EXAMPLES_PER_HISTORY_ENCODING * len(self.history_rows)
        return max(self.cfg.history_refresh_steps, math.ceil(examples / self.cfg.batch_size))

    def history_table(self) -> torch.Tensor | None:
        """[n_items, d] detached item vectors for user histories, or None (history encoded with grad).

        Rebuilt in eval mode without grad (no dropout, no RNG draws) at each epoch start and every
        `history_refresh_interval` steps, so a resumed run recomputes exactly the same table.
        """
        if self.model_cfg.user_history_length == 0 or self.cfg.history_refresh_steps == 0:
            return None
        if self._history_table is None or self._steps_since_refresh >= self.history_refresh_interval:
            was_training = self.module.training
            self.module.eval()
            rows = self.history_rows
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=self.use_bf16):
                vectors = self.module.item_vectors(self.catalogue, rows).float()  # only rows a history reads
            if len(rows) < self.catalogue.n:  # rows are sorted and unique: all of them means every row in order
                vectors = vectors.new_zeros((self.catalogue.n, vectors.shape[1])).index_copy_(0, rows, vectors)
            self._history_table = vectors
            self.module.train(was_training)
            self._steps_since_refresh = 0
        return self._history_table

    @property
    def history_rows(self) -> torch.Tensor:
        """Catalogue rows that appear in some user's history (the rows the history table is read at)."""
        if self._history_rows is None:
            histories = self.data.histories
            self._history_rows = torch.unique(histories[histories >= 0])
        return self._history_rows

    def batch_loss(self, batch: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Loss of one batch of (user index, catalogue row) pairs [b, 2]."""
        users, positives = batch[:, 0], batch[:, 1]
        history = self.data.histories.index_select(0, users)
        # The target must not sit in its own history, or the model learns to copy instead of predict.
        history = history.masked_fill(history == positives.unsqueeze(1), -1)
        cfg, b = self.model_cfg, len(batch)
        if cfg.history_dropout > 0:  # denoising: predict the target from a random part of the history
            hidden = torch.rand(history.shape, device=history.device, generator=generator) < cfg.history_dropout
            history = history.masked_fill(hidden, -1)
        table = self.history_table()
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=self.use_bf16):
            if cfg.loss == "bpr":
                assert self.sampler is not None
                negatives = self.sampler.sample(b, generator).to(self.device)
                candidates = torch.cat([positives, negatives])
                out = self.model(users, history, candidates, self.catalogue, table)
                logits = self.module.scores(out.users, out.items).float()  # [b, 2b]
                loss = bpr_loss(logits.diagonal(), logits[:, b:].diagonal().unsqueeze(1))
            elif cfg.negatives == "full":  # exact softmax over the catalogue
                candidates = torch.arange(self.catalogue.n, device=self.device)
                out = self.model(users, history, candidates, self.catalogue, table)
                logits = self.module.scores(out.users, out.items).float()
                loss = F.cross_entropy(logits, positives)
                # Image-text alignment over the batch's items, not the catalogue (a [n, n] InfoNCE).
                out.vision, out.text = self.module.contrastive_pairs(self.catalogue, positives)
            else:
                candidates, log_q = positives, None
                if cfg.logq_correction:
                    log_q = torch.log(b * self.data.item_counts[positives] / self.total_interactions)
                if self.sampler is not None:
                    k = cfg.num_negatives
                    negatives = self.sampler.sample(k, generator).to(self.device)
                    candidates = torch.cat([positives, negatives])
                    if log_q is not None:
                        log_q = torch.cat([log_q, self.sampler.log_expected_count(negatives, k)])
                out = self.model(users, history, candidates, self.catalogue, table)
                logits = self.module.scores(out.users, out.items).float()
                loss = sampled_softmax_loss(logits, positives, candidates, log_q)
            if self.teacher is not None:
                loss = loss + self.distill_weight * self._distill_loss(users, candidates, logits)
            if cfg.use_contrastive:
                loss = loss + cfg.contrastive_weight * info_nce_loss(
                    out.vision.float(), out.text.float(), cfg.contrastive_temperature
                )
        return loss

    def _distill_loss(self, users: torch.Tensor, candidates: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Soft cross-entropy from the teacher's distribution over the candidates (its scores standardised
        per user, / model.distill_temperature) to the two-tower model's logits over the same candidates."""
        assert self.teacher is not None
        with torch.no_grad():
            teacher = self._teacher_scores(users, candidates).to(logits.device)
            teacher = teacher - teacher.mean(1, keepdim=True)
            # Standardised per user (population std, written out: Tensor.std is ~10x slower on CPU).
            spread = teacher.square().mean(1, keepdim=True).sqrt().clamp_min(1e-6)  # one candidate: 0, not NaN
            teacher = teacher / spread
            target = torch.softmax(teacher / self.distill_temperature, dim=1)
        return -(target * torch.log_softmax(logits, dim=1)).sum(1).mean()

    def _all_teacher_scores(self) -> torch.Tensor | None:
        """[n_users, n] x_u B of every profile row, on the teacher's device; None above `teacher_table_budget`."""
        assert self.teacher is not None
        n_users, n = self.teacher.interactions.shape
        if n_users * n > teacher_table_budget(self.teacher.weights.device):
            return None
        rows = torch.arange(n_users)
        return torch.cat([self.teacher.scores(rows[start : start + 1024]) for start in range(0, n_users, 1024)])

    def _teacher_scores(self, users: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """[b, c] the teacher's scores x_u B[:, candidates]: gathered from the precomputed table when it fits."""
        table = self._teacher_table
        if table is None:
            assert self.teacher is not None
            return self.teacher.scores(users, candidates)
        return table.index_select(0, users.to(table.device)).index_select(1, candidates.to(table.device))

    def train_step(self, batch: torch.Tensor, generator: torch.Generator | None = None) -> float:
        """Forward, backward (all-reduced under DDP), clip, optimizer + lr step; returns the loss."""
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.batch_loss(batch, generator)
        if not torch.isfinite(loss):
            raise DivergedError(
                f"Training loss became {loss.item()} at step {self.global_step}.",
                hint="Lower training.learning_rate, raise model.temperature, or keep training.grad_clip on.",
            )
        loss.backward()
        if self.cfg.grad_clip:
            clip_gradients(self.module.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        self.schedule.step()
        self.global_step += 1
        self._steps_since_refresh += 1
        return float(loss.item())

    # ---- epochs -----------------------------------------------------------------------------
    def train_epoch(self) -> tuple[float, float, int]:
        """One pass over this rank's shard; returns (mean loss over ranks, seconds, interactions seen)."""
        order = shard(torch.randperm(len(self.data.pairs), generator=epoch_generator(self.cfg.seed, self.epoch)),
                      self.dist)
        negatives = epoch_generator(self.cfg.seed, self.epoch, salt=1 + self.dist.rank)
        if self.device.type == "cuda":
            negatives = torch.Generator(self.device).manual_seed(int(negatives.initial_seed()))
        order = order.to(self.device)
        self._history_table = None  # every epoch starts from fresh item vectors (resume-exact)
        total, start = 0.0, time.perf_counter()
        bs, steps = self.cfg.batch_size, self.steps_per_epoch
        label = f"epoch {self.epoch + 1}/{self.cfg.epochs}"
        for step in range(steps):
            loss = self.train_step(self.data.pairs[order[step * bs : (step + 1) * bs]], negatives)
            total += loss
            elapsed = time.perf_counter() - start
            rate = min((step + 1) * bs, len(order)) * self.dist.world_size / max(elapsed, 1e-9)
            self.progress(ProgressEvent("train", step + 1, steps, label, {"loss": loss, "inter/s": rate}))
            if (step + 1) % self.cfg.log_every == 0 or step == 0:
                log.debug("%s step %d/%d loss %.4f lr %.2e %.0f inter/s", label, step + 1, steps, loss,
                          self.schedule.current_lr(), rate)
            if self.dist.is_main:
                self.tracker.log({"train/loss": loss, "train/lr": self.schedule.current_lr()}, self.global_step)
        seconds = time.perf_counter() - start
        mean = all_reduce_mean(total / steps, self.dist, self.device)
        return mean, seconds, len(order) * self.dist.world_size

    def scorer(self) -> Scorer:
        """The scoring path (mmrec.models.scoring) over the catalogue with the current weights."""
        return Scorer(self.module, self.catalogue, self.data.histories, fallback=torch.log1p(self.data.item_counts))

    def validate(self, scorer: Scorer | None = None) -> dict[str, float]:
        """Full-ranking metrics on the validation split (train items masked); never touches test.

        Scores come from `scorer` (default: the two-tower model with the current weights); pass
        `self.scorer().with_item_item(model, weight)` to validate a blend with the item-item model
        (its profile rows indexed by user index, like `data.histories`).
        """
        return self.validate_many([scorer or self.scorer()])[0]

    def validate_many(self, scorers: Sequence[Scorer]) -> list[dict[str, float]]:
        """`validate` of each scorer, in one pass over the validation users: components the scorers share
        (e.g. a grid of blend weights over one model) are scored once per chunk (models.scoring)."""
        return [result.metrics for result in self._rank_validation(scorers)]

    def validation_per_user(self, scorer: Scorer) -> np.ndarray | None:
        """The monitored metric of each validation user under `scorer` (validation users in row order,
        the same for every run on this split), or None without validation data. Its mean is what
        `validate` reports for the monitor."""
        return self.validate_paired([scorer])[0][1]

    def validate_paired(self, scorers: Sequence[Scorer], candidates: np.ndarray | None = None
                        ) -> list[tuple[dict[str, float], np.ndarray | None]]:
        """`validate_many` plus each scorer's monitored metric per validation user (same user order for
        every scorer, so differences are paired), in one pass. `candidates`: rank only these catalogue rows
        (validation users with a relevant one among them), instead of those training.validate_on says."""
        return [(result.metrics, result.per_user.get(self.monitor))
                for result in self._rank_validation(scorers, per_user=True, candidates=candidates)]

    def _rank_validation(self, scorers: Sequence[Scorer], per_user: bool = False,
                         candidates: np.ndarray | None = None) -> list[RankingResult]:
        """Full ranking of the validation users by each scorer (empty results without validation data), among
        `candidates` or else the rows training.validate_on says."""
        data = self.data
        if data.val_relevant.nnz == 0:
            return [RankingResult(metrics={}, n_users=0) for _ in scorers]

        def score_fn(rows: Any) -> Iterator[torch.Tensor]:
            users = data.val_users[torch.as_tensor(rows, device=self.device)]
            return score_variants(scorers, users, users)

        candidates = self.val_candidates if candidates is None else candidates
        return full_ranking_variants(score_fn, len(scorers), relevant_among(data.val_relevant, candidates),
                                     data.val_exclude,
                                     self.k_values, self.eval_batch_size, self.device, candidate_items=candidates,
                                     return_per_user=per_user, matrices_per_chunk=matrices_per_chunk(scorers))

    def fit(self, on_epoch_end: Callable[[EpochRecord, Trainer], None] | None = None) -> list[EpochRecord]:
        """Train until training.epochs or early stopping; `on_epoch_end` runs on rank 0 (checkpoints)."""
        while self.epoch < self.cfg.epochs and not self.stopped_early:
            loss, seconds, seen = self.train_epoch()
            metrics = self.validate() if self.dist.is_main else {}
            # No validation data: fall back to the (negated) training loss, so selection still works.
            monitored = metrics.get(self.monitor, -loss) if self.dist.is_main else 0.0
            (monitored,) = broadcast_floats([monitored], self.dist, self.device)
            is_best = self.stopper.update(monitored, self.epoch + 1)
            self.schedule.epoch_end(monitored)
            self.epoch += 1
            self.gather_rank_rng()
            self.stopped_early = self.stopper.should_stop and self.epoch < self.cfg.epochs
            record = EpochRecord(self.epoch, loss, metrics, monitored, is_best, seconds, seen / max(seconds, 1e-9),
                                 self.schedule.current_lr())
            self.history.append(record)
            if self.dist.is_main:
                self.tracker.log({"epoch": self.epoch, "train/epoch_loss": loss,
                                  **{f"val/{k}": v for k, v in metrics.items()}}, self.global_step)
                if on_epoch_end is not None:
                    on_epoch_end(record, self)
            monitored_name = f"val {self.cfg.monitor}" if metrics else "-loss (no validation)"
            self.progress(ProgressEvent(
                "epochs", self.epoch, self.cfg.epochs, "epochs", {"loss": loss, self.cfg.monitor: monitored},
                message=f"epoch {self.epoch}: loss {loss:.4f}  {monitored_name} {monitored:.4f}"
                + ("  (best)" if is_best else "") + f"  {record.interactions_per_s:,.0f} inter/s",
            ))
        self.progress(ProgressEvent("train", self.steps_per_epoch, self.steps_per_epoch, "train", done=True))
        self.progress(ProgressEvent("epochs", self.epoch, self.cfg.epochs, "epochs", done=True))
        return self.history

    # ---- resume -----------------------------------------------------------------------------
    def gather_rank_rng(self) -> None:
        """Under torchrun, keep every rank's RNG state (its own dropout stream) for the next checkpoint, so a
        resume continues each rank exactly; all ranks call this together."""
        if self.dist.enabled:
            self._rank_rng = all_gather_objects(capture_rng_state(), self.dist)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: weights, optimizer, schedule, stopper, RNG states."""
        return {
            "model": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "stopper": self.stopper.state_dict(),
            "epoch": self.epoch,
            "global_step": self.global_step,
            "stopped_early": self.stopped_early,
            "history": [asdict(record) for record in self.history],
            "rng": capture_rng_state(),
            "world_size": self.dist.world_size,
            **({"rng_ranks": self._rank_rng} if self._rank_rng is not None else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_training_state(state)
        self.module.load_state_dict(state["model"])
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except (KeyError, ValueError) as exc:
            trained_by = int(state.get("world_size", 1))
            if trained_by != self.dist.world_size:  # multi-process training keeps the id tables dense (DDP)
                raise CheckpointError(
                    f"This checkpoint was trained by {trained_by} process(es) and this run has "
                    f"{self.dist.world_size}: its optimizer state does not carry over (one process updates the "
                    f"id tables sparsely, several under torchrun densely).",
                    hint=(f"Resume with torchrun --nproc_per_node {trained_by}." if trained_by > 1 else
                          "Resume without torchrun, as the run was trained."),
                ) from exc
            raise CheckpointError(
                f"This checkpoint's optimizer state does not fit the configured optimizer ({exc}).",
                hint="Resume with the training.optimizer and training.sparse_embeddings the run started with.",
            ) from exc
        self.schedule.load_state_dict(state["schedule"])
        self.stopper.load_state_dict(state["stopper"])
        self.epoch = int(state["epoch"])
        self.global_step = int(state["global_step"])
        # From the restored stopper and today's settings: a raised training.patience (or epochs) lets a run
        # that stopped early continue.
        self.stopped_early = self.stopper.should_stop and self.epoch < self.cfg.epochs
        self.history = [EpochRecord(**record) for record in state["history"]]
        restore_rng_state(rank_rng_state(state, self.dist))
