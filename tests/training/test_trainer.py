import io

import numpy as np
import pytest
import torch
from training_problem import make_tiny_problem, tiny_model_settings, tiny_training_settings

from mmrec.errors import CheckpointError, ConfigError
from mmrec.evaluation.full_ranking import full_ranking
from mmrec.models.two_tower import TwoTowerModel
from mmrec.training.seeding import seed_everything
from mmrec.training.trainer import Trainer, monitor_key


def make_trainer(problem, model_cfg=None, train_cfg=None, seed=0):
    model_cfg = model_cfg or tiny_model_settings()
    train_cfg = train_cfg or tiny_training_settings()
    seed_everything(seed)
    model = TwoTowerModel(model_cfg, problem.dims)
    return Trainer(model, problem.data, problem.catalogue, model_cfg, train_cfg, torch.device("cpu"), k_values=[5, 10])


def popularity_ndcg(problem) -> float:
    counts = problem.data.item_counts
    result = full_ranking(lambda rows: counts.expand(len(rows), -1).clone(), problem.data.val_relevant,
                          problem.data.val_exclude, [10])
    return result.metrics["ndcg@10"]


def test_training_beats_popularity_and_records_history(tiny_problem):
    trainer = make_trainer(tiny_problem, train_cfg=tiny_training_settings(epochs=6))
    history = trainer.fit()
    assert len(history) == 6 and all(np.isfinite(r.loss) for r in history)
    assert history[-1].loss < history[0].loss
    assert {"ndcg@10", "recall@5", "mrr"} <= set(history[0].val)
    assert trainer.stopper.best > popularity_ndcg(tiny_problem) + 0.1
    assert all(r.interactions_per_s > 0 and r.seconds > 0 for r in history)


@pytest.mark.parametrize("overrides", [
    dict(loss="bpr"), dict(negatives="popularity"), dict(negatives="uniform", logq_correction=False),
    dict(fusion="concat", use_contrastive=True), dict(score="cosine", user_history_length=0),
    dict(negatives="full"), dict(negatives="full", use_contrastive=True),
    dict(history_dropout=0.5, user_ids=False),
])
def test_loss_and_model_variants_train(tiny_problem, overrides):
    trainer = make_trainer(tiny_problem, tiny_model_settings(**overrides), tiny_training_settings(epochs=1))
    record = trainer.fit()[0]
    assert np.isfinite(record.loss) and 0 <= record.monitored <= 1


def test_full_softmax_is_the_in_batch_softmax_over_a_batch_holding_every_item(tiny_problem):
    """negatives=full ranks each positive against the whole catalogue: on a batch whose positives are
    every catalogue item once, in-batch softmax (no log-Q) sees the same candidates, so the same loss;
    on an ordinary batch the full softmax has more competitors, so a higher loss."""
    plain = dict(id_dropout=0.0, dropout=0.0, logq_correction=False, distill_temperature=0.5)  # same teacher term
    full = make_trainer(tiny_problem, tiny_model_settings(negatives="full", **plain))
    in_batch = make_trainer(tiny_problem, tiny_model_settings(negatives="in_batch", **plain))
    n = tiny_problem.catalogue.n
    users = torch.randint(1, tiny_problem.dims.n_user_ids, (n,), generator=torch.Generator().manual_seed(0))
    everything = torch.stack([users, torch.randperm(n, generator=torch.Generator().manual_seed(1))], dim=1)
    torch.testing.assert_close(full.batch_loss(everything), in_batch.batch_loss(everything))
    few = everything[:5]
    assert full.batch_loss(few) > in_batch.batch_loss(few)


def test_history_dropout_hides_history_items_in_training_only(tiny_problem, monkeypatch):
    """Each training example sees its history (target removed) with items hidden at history_dropout."""
    seen = []
    trainer = make_trainer(tiny_problem, tiny_model_settings(history_dropout=0.5, id_dropout=0.0))
    forward = trainer.model.forward

    def spy(users, history, *args, **kwargs):
        seen.append(history.clone())
        return forward(users, history, *args, **kwargs)

    monkeypatch.setattr(trainer.model, "forward", spy)
    batch = tiny_problem.data.pairs[:32]
    trainer.batch_loss(batch, torch.Generator().manual_seed(0))
    full = tiny_problem.data.histories[batch[:, 0]]
    full = full.masked_fill(full == batch[:, 1:], -1)
    kept, present = (seen[0] >= 0).sum().item(), (full >= 0).sum().item()
    assert ((seen[0] == full) | (seen[0] == -1)).all()  # only hides, never adds or moves
    assert 0.3 * present < kept < 0.7 * present
    # Scoring (validation, evaluate, recommend) always reads the whole history.
    scorer_history = trainer.scorer().histories
    assert torch.equal(scorer_history, tiny_problem.data.histories)


def test_distillation_pulls_the_logits_toward_the_item_item_teacher(tiny_problem):
    """model.distill_weight: the teacher is the item-item model of the training pairs; the extra loss is
    the soft cross-entropy from its standardised, tempered distribution over the batch's candidates,
    smallest when the student's logits are that distribution's logits."""
    from mmrec.models.item_item import ItemItemModel

    plain = dict(id_dropout=0.0, dropout=0.0)
    trainer = make_trainer(tiny_problem, tiny_model_settings(distill_weight=2.0, distill_temperature=0.5, **plain))
    assert isinstance(trainer.teacher, ItemItemModel)
    assert trainer.teacher.interactions.nnz == len(torch.unique(tiny_problem.data.pairs, dim=0))
    users, candidates = torch.tensor([1, 2, 3]), torch.tensor([0, 4, 7, 9])
    teacher = trainer.teacher.scores(users)[:, candidates]  # all of x_u B, then the candidates' columns
    torch.testing.assert_close(trainer._teacher_scores(users, candidates), teacher)
    ideal = (teacher - teacher.mean(1, keepdim=True)) / teacher.std(1, keepdim=True, correction=0) / 0.5
    target = torch.softmax(ideal, 1)
    entropy = -(target * target.log()).sum(1).mean()
    torch.testing.assert_close(trainer._distill_loss(users, candidates, ideal + 3.0), entropy)  # shift-free
    assert trainer._distill_loss(users, candidates, ideal.flip(1)) > entropy + 0.01
    batch = tiny_problem.data.pairs[:16]
    base = make_trainer(tiny_problem, tiny_model_settings(distill_weight=0.0, **plain))
    assert trainer.batch_loss(batch) > base.batch_loss(batch)  # same weights (seed), plus the distillation term
    assert np.isfinite(trainer.fit()[0].loss)
    for other in (dict(loss="bpr"), dict(negatives="full")):  # every loss path adds the same term
        with_teacher = make_trainer(tiny_problem, tiny_model_settings(distill_weight=1.0, **plain, **other))
        without = make_trainer(tiny_problem, tiny_model_settings(distill_weight=0.0, **plain, **other))
        same_negatives = [torch.Generator().manual_seed(3) for _ in range(2)]
        assert with_teacher.batch_loss(batch, same_negatives[0]) > without.batch_loss(batch, same_negatives[1])
    with pytest.raises(ConfigError, match="distill_weight"):
        make_trainer(tiny_problem, tiny_model_settings(distill_weight=1.0, item_item_max_items=3))


def test_the_teacher_table_gives_what_each_step_would_compute(tiny_problem, monkeypatch):
    """The teacher's scores of every training user are precomputed when they fit: a step gathers the same
    [b, c] block (repeated users and candidates included) it computes from the profiles above the budget."""
    import mmrec.training.trainer as trainer_module

    settings = tiny_model_settings(distill_weight=1.0, id_dropout=0.0, dropout=0.0)
    tabled = make_trainer(tiny_problem, settings)
    assert tabled._teacher_table is not None
    assert tabled._teacher_table.shape == tabled.teacher.interactions.shape
    monkeypatch.setattr(trainer_module, "TEACHER_TABLE_MAX_ELEMENTS", tabled._teacher_table.numel() - 1)
    direct = make_trainer(tiny_problem, settings)
    assert direct._teacher_table is None
    users, candidates = torch.tensor([3, 1, 3, 0]), torch.tensor([9, 0, 4, 4, 7])
    torch.testing.assert_close(tabled._teacher_scores(users, candidates), direct._teacher_scores(users, candidates))
    torch.testing.assert_close(direct._teacher_scores(users, candidates),
                               tabled.teacher.scores(users)[:, candidates])
    batch = tiny_problem.data.pairs[:16]
    torch.testing.assert_close(tabled.batch_loss(batch), direct.batch_loss(batch))


def test_distillation_is_on_by_default_unless_validation_ranks_cold_items(tiny_problem):
    from mmrec.training.trainer import distill_weight

    model = tiny_model_settings()
    assert model.distill_weight is None
    assert distill_weight(model, tiny_training_settings()) == 1.0
    assert distill_weight(model, tiny_training_settings(validate_on="cold_items")) == 0.0
    assert distill_weight(tiny_model_settings(distill_weight=0.3), tiny_training_settings(validate_on="cold_items")) == 0.3
    assert make_trainer(tiny_problem).teacher is not None
    assert make_trainer(tiny_problem, tiny_model_settings(distill_weight=0.0)).teacher is None
    # The temperature: 0.5 over a batch's candidates, 2 over the whole catalogue, unless set.
    assert make_trainer(tiny_problem).distill_temperature == 0.5
    assert make_trainer(tiny_problem, tiny_model_settings(negatives="full")).distill_temperature == 2.0
    assert make_trainer(tiny_problem, tiny_model_settings(negatives="full", distill_temperature=1.0)
                        ).distill_temperature == 1.0


def test_full_softmax_refuses_a_catalogue_too_large(tiny_problem, monkeypatch):
    import mmrec.training.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "FULL_SOFTMAX_MAX_ITEMS", tiny_problem.catalogue.n - 1)
    with pytest.raises(ConfigError, match="model.negatives=full"):
        make_trainer(tiny_problem, tiny_model_settings(negatives="full"))


def test_same_seed_same_result_and_epoch_shuffles_do_not_depend_on_history(tiny_problem):
    first = [r.monitored for r in make_trainer(tiny_problem).fit()]
    second = [r.monitored for r in make_trainer(tiny_problem).fit()]
    assert first == second


def test_state_dict_roundtrip_resumes_exactly(tiny_problem):
    reference = make_trainer(tiny_problem, train_cfg=tiny_training_settings(epochs=3, scheduler="plateau"))
    expected = [(r.loss, r.monitored) for r in reference.fit()]

    interrupted = make_trainer(tiny_problem, train_cfg=tiny_training_settings(epochs=1, scheduler="plateau"))
    interrupted.fit()
    buffer = io.BytesIO()
    torch.save(interrupted.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)  # plain tensors/containers only
    torch.manual_seed(1234)  # the global RNG is disturbed; the restored state must win

    resumed = make_trainer(tiny_problem, train_cfg=tiny_training_settings(epochs=3, scheduler="plateau"), seed=99)
    resumed.load_state_dict(state)
    got = [(r.loss, r.monitored) for r in resumed.fit()]
    assert got == expected


def test_weights_only_state_cannot_resume(tiny_problem):
    trainer = make_trainer(tiny_problem)
    with pytest.raises(CheckpointError, match="cannot be resumed"):
        trainer.load_state_dict({"model": trainer.module.state_dict(), "epoch": 1})


def test_an_optimizer_state_from_another_process_count_names_the_counts(tiny_problem):
    dense = make_trainer(tiny_problem, train_cfg=tiny_training_settings(sparse_embeddings=False))
    state = {**dense.state_dict(), "world_size": 2}  # torchrun keeps the id tables dense
    with pytest.raises(CheckpointError, match=r"trained by 2 process\(es\) and this run has 1") as info:
        make_trainer(tiny_problem).load_state_dict(state)
    assert "torchrun --nproc_per_node 2" in info.value.hint


def test_early_stopping_stops_after_patience(tiny_problem):
    trainer = make_trainer(tiny_problem, train_cfg=tiny_training_settings(epochs=20, patience=1, learning_rate=1e-9))
    history = trainer.fit()
    assert trainer.stopped_early and len(history) < 20
    assert trainer.stopper.bad_epochs == 1


def test_a_resumed_early_stopped_run_continues_only_with_more_patience(tiny_problem):
    stopped = make_trainer(tiny_problem, train_cfg=tiny_training_settings(epochs=20, patience=1, learning_rate=1e-9))
    stopped.fit()
    state = stopped.state_dict()
    same = make_trainer(tiny_problem, train_cfg=tiny_training_settings(epochs=20, patience=1, learning_rate=1e-9))
    same.load_state_dict(state)
    assert same.stopped_early and len(same.fit()) == len(stopped.history)  # nothing left to do
    patient = make_trainer(tiny_problem, train_cfg=tiny_training_settings(epochs=20, patience=3, learning_rate=1e-9))
    patient.load_state_dict(state)
    assert not patient.stopped_early
    assert len(patient.fit()) > len(stopped.history)


def test_diverging_loss_is_a_clear_error(tiny_problem):
    trainer = make_trainer(tiny_problem)
    with torch.no_grad():
        trainer.module.item_tower.output.weight.fill_(float("nan"))
    with pytest.raises(ConfigError, match="loss became"):
        trainer.train_epoch()


def test_monitor_key():
    assert monitor_key("ndcg@10") == "ndcg@10" and monitor_key("mrr") == "mrr"
    with pytest.raises(ConfigError):
        monitor_key("recall")


def test_unseen_validation_user_is_scored_without_error():
    problem = make_tiny_problem()
    problem.data.val_users[0] = 0  # as if the user had no training interactions
    metrics = make_trainer(problem).validate()
    assert 0 <= metrics["ndcg@10"] <= 1


def test_history_table_is_refreshed_every_n_steps_and_every_epoch(tiny_problem):
    trainer = make_trainer(tiny_problem, train_cfg=tiny_training_settings(history_refresh_steps=2, batch_size=4096))
    first = trainer.history_table()
    batch = tiny_problem.data.pairs[:32]
    trainer.train_step(batch)
    assert trainer.history_table() is first  # one step: still the same detached table
    trainer.train_step(batch)
    refreshed = trainer.history_table()
    assert refreshed is not first and not refreshed.requires_grad
    trainer.module.eval()
    # Items in some user's history get their current vectors; the table is never read elsewhere.
    rows = trainer.history_rows
    histories = tiny_problem.data.histories
    assert set(rows.tolist()) == set(histories[histories >= 0].tolist()) and len(rows) < tiny_problem.catalogue.n
    torch.testing.assert_close(refreshed[rows], trainer.module.item_vectors(tiny_problem.catalogue)[rows])
    trainer.train_epoch()
    assert trainer._history_table is not refreshed  # rebuilt at the epoch start


def test_detached_history_gives_the_same_loss_as_encoding_history_with_grad(tiny_problem):
    model_cfg = tiny_model_settings(id_dropout=0.0)  # dropout 0: train-mode and eval-mode vectors agree
    fast = make_trainer(tiny_problem, model_cfg, tiny_training_settings(history_refresh_steps=5))
    slow = make_trainer(tiny_problem, model_cfg, tiny_training_settings(history_refresh_steps=0))
    assert slow.history_table() is None
    batch = tiny_problem.data.pairs[:32]
    fast.model.train(), slow.model.train()
    torch.testing.assert_close(fast.batch_loss(batch), slow.batch_loss(batch))


def cold_problem():
    """The tiny problem with items i0..i7 removed from train: validation on them is cold start."""
    from training_problem import TinyProblem

    from mmrec.training.data import build_training_data

    problem = make_tiny_problem()
    cold = {f"i{j}" for j in range(8)}
    train = problem.train[~problem.train.item_id.isin(cold)].reset_index(drop=True)
    val = problem.val[problem.val.item_id.isin(cold)].reset_index(drop=True)
    data = build_training_data(train, val, problem.items.item_id.tolist(), problem.users, 4)
    return TinyProblem(problem.items, train, val, problem.users, problem.item_encoder, problem.catalogue, data,
                       problem.dims), np.arange(8)


def test_validate_on_cold_items_ranks_only_items_without_train_interactions():
    problem, cold_rows = cold_problem()
    trainer = make_trainer(problem, train_cfg=tiny_training_settings(validate_on="cold_items"))
    assert sorted(trainer.val_candidates.tolist()) == cold_rows.tolist()
    got = trainer.validate()
    module = trainer.module.eval()
    items = module.item_vectors(problem.catalogue)

    def score_fn(rows):
        users = problem.data.val_users[torch.as_tensor(rows)]
        return module.scores(module.user_vectors(users, problem.data.histories[users], items, problem.catalogue), items)

    expected = full_ranking(score_fn, problem.data.val_relevant, problem.data.val_exclude, [5, 10],
                            candidate_items=cold_rows).metrics
    assert got == pytest.approx(expected)
    everything = make_trainer(problem).validate()
    assert got["ndcg@10"] > everything["ndcg@10"]  # 8 candidates instead of 48


def test_validate_on_cold_items_without_cold_items_is_a_clear_error(tiny_problem):
    with pytest.raises(ConfigError, match="cold_items"):
        make_trainer(tiny_problem, train_cfg=tiny_training_settings(validate_on="cold_items"))


def test_history_refresh_interval_grows_with_the_history_items(tiny_problem):
    from mmrec.training.trainer import EXAMPLES_PER_HISTORY_ENCODING as per_item

    big = make_trainer(tiny_problem, train_cfg=tiny_training_settings(history_refresh_steps=2, batch_size=4096))
    assert big.history_refresh_interval == 2  # large batches: the configured steps
    tiny = make_trainer(tiny_problem, train_cfg=tiny_training_settings(history_refresh_steps=2, batch_size=1))
    # A rebuild encodes each history item once: per_item examples per encoded item between rebuilds.
    n_rows = len(tiny.history_rows)
    assert tiny.history_refresh_interval == per_item * n_rows > 2
    batch = tiny_problem.data.pairs[:1]
    first = tiny.history_table()
    for _ in range(per_item * n_rows - 1):
        tiny.train_step(batch)
        assert tiny.history_table() is first
    tiny.train_step(batch)
    assert tiny.history_table() is not first


def test_validate_many_equals_validating_each_scorer_alone(tiny_problem):
    """A blend grid in one pass (shared components scored once per chunk) gives each scorer's own metrics;
    the un-blended scorer first must not leak its masked scores into the blends after it."""
    import scipy.sparse as sp

    from mmrec.models.item_item import ItemItemModel

    trainer = make_trainer(tiny_problem, train_cfg=tiny_training_settings(batch_size=32))
    trainer.train_epoch()
    pairs = tiny_problem.data.pairs.numpy()
    n_rows = int(pairs[:, 0].max()) + 1
    profiles = sp.csr_matrix((np.ones(len(pairs), dtype=np.float32), (pairs[:, 0], pairs[:, 1])),
                             shape=(n_rows, tiny_problem.catalogue.n))
    profiles.data[:] = 1.0
    item_item = ItemItemModel.fit(profiles, [], l2=5.0, content_weight=0.0)
    base = trainer.scorer()
    scorers = [base, base.with_item_item(item_item, 0.5), base.with_item_item(item_item, 1.0),
               base.with_item_item(item_item.with_profiles(profiles * 2), 0.25)]
    together = trainer.validate_many(scorers)
    alone = [trainer.validate(scorer) for scorer in scorers]
    assert together == alone
    assert together[0] != together[2]  # the grid really differs


def test_a_batch_too_large_for_the_free_memory_is_refused_before_training(tiny_problem, monkeypatch):
    import mmrec.training.trainer as trainer_module

    # 2 GB free: the default batch needs a few MB; every training pair in one batch of in-batch negatives
    # needs batch^2 scores. The tiny problem's pairs stand in for a large train split.
    monkeypatch.setattr(trainer_module, "available_memory_bytes", lambda device: 2 * 10**9)
    make_trainer(tiny_problem, train_cfg=tiny_training_settings(batch_size=512))
    monkeypatch.setattr(trainer_module, "STEP_BYTES_PER_SCORE", 10**6)  # as if each score took a megabyte
    with pytest.raises(ConfigError, match=r"grows with the square of the batch\), more than the 2.0 GB free") as info:
        make_trainer(tiny_problem, train_cfg=tiny_training_settings(batch_size=64))
    assert "--batch-size" in info.value.hint
    with pytest.raises(ConfigError, match="it grows with the batch"):  # full softmax: batch x catalogue
        make_trainer(tiny_problem, tiny_model_settings(negatives="full"), tiny_training_settings(batch_size=64))
    monkeypatch.setattr(trainer_module, "available_memory_bytes", lambda device: None)  # unknown: no check
    make_trainer(tiny_problem, train_cfg=tiny_training_settings(batch_size=64))


def test_available_memory_is_read_on_linux():
    from mmrec.device import available_memory_bytes

    free = available_memory_bytes(torch.device("cpu"))
    assert free is None or free > 0


def test_the_teacher_table_budget_follows_the_free_memory(monkeypatch):
    """At most 2 GiB of floats and an eighth of the memory free on the device; 512 MiB when that is unknown."""
    import mmrec.training.trainer as trainer_module

    cpu = torch.device("cpu")
    monkeypatch.setattr(trainer_module, "available_memory_bytes", lambda device: 64 * 2**30)
    assert trainer_module.teacher_table_budget(cpu) == 2**29  # the cap
    monkeypatch.setattr(trainer_module, "available_memory_bytes", lambda device: 2 * 2**30)
    assert trainer_module.teacher_table_budget(cpu) == 2**26  # 256 MiB of floats: an eighth of 2 GiB
    monkeypatch.setattr(trainer_module, "available_memory_bytes", lambda device: None)
    assert trainer_module.teacher_table_budget(cpu) == 2**27


def test_validation_flat_at_every_epoch_or_an_item_split_is_a_note_naming_validate_on():
    from mmrec.pipeline.train import _validation_note
    from mmrec.training.trainer import EpochRecord

    def run(*values):
        return [EpochRecord(i + 1, 1.0, {"ndcg@10": v}, v, i == 0, 1.0, 1.0, 0.01) for i, v in enumerate(values)]

    note = _validation_note(run(0.0, 0.0, 0.0), "ndcg@10", True, "item", "all")
    assert note.startswith("Validation ndcg@10 was 0.0000 at every one of the 3 epochs") and "cold_items" in note
    assert "cold_items" not in _validation_note(run(0.0, 0.0), "ndcg@10", True, "stratified", "all")
    assert _validation_note(run(0.1, 0.2), "ndcg@10", True, "stratified", "all") is None  # it moved
    assert _validation_note(run(0.0), "ndcg@10", True, "stratified", "all") is None  # one epoch: nothing to compare
    # An item split that validation moved on still says what validate_on: cold_items is for (a fashion shop's cold
    # test NDCG@10 rose 13% with it, and nothing had named it).
    for ran in (run(0.1, 0.2), run(0.0)):
        assert _validation_note(ran, "ndcg@10", True, "item", "all").startswith(
            "Every validation item of this item split is cold")
    assert _validation_note(run(0.1, 0.2), "ndcg@10", True, "item", "cold_items") is None
    assert _validation_note(run(0.0, 0.0), "ndcg@10", False, "item", "all") is None  # no validation rows
