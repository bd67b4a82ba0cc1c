"""run_demo: the whole job on synthetic data — synth, preprocess, split, cache, train, evaluate, recommend."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from mmrec.evaluation.report import EvaluationReport
from mmrec.pipeline.recommend import RecommendResult
from mmrec.progress import ProgressCallback, ProgressEvent, null_progress
from mmrec.registry import RECOMMENDERS
from mmrec.settings import Settings

STAGES = ("synth", "preprocess", "split", "cache", "train", "evaluate", "recommend")


@dataclass
class DemoResult:
    """Every stage's seconds, the comparison report and the sample recommendations."""

    evaluation: EvaluationReport
    recommendations: RecommendResult
    recommendations_path: Path
    best_checkpoint: Path | None
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def total_seconds(self) -> float:
        return sum(self.stage_seconds.values())


def run_demo(
    settings: Settings,
    users: int = 300,
    items: int = 400,
    recommend_users: int = 3,
    progress: ProgressCallback = null_progress,
) -> DemoResult:
    """Run every stage with `settings` (mmrec/configs/demo.yaml puts everything under demo/)."""
    from mmrec.pipeline.cache import run_cache_precompute
    from mmrec.pipeline.data import run_synth
    from mmrec.pipeline.evaluate import run_evaluate
    from mmrec.pipeline.preprocess import run_preprocess
    from mmrec.pipeline.recommend import run_recommend
    from mmrec.pipeline.split import run_split
    from mmrec.pipeline.train import run_train

    imported = [m for m in ("vision", "text") if getattr(settings.features, f"{m}_backbone") == "imported"]
    if imported:
        from mmrec.errors import ConfigError

        raise ConfigError(
            f"The demo computes its features from a synthetic catalogue, but features.{imported[0]}_backbone is "
            "`imported` (vectors you bring with `mmrec cache import`), and there are none for that catalogue.",
            hint="Run the demo without this config, or set the demo's backbones to ones that compute features "
                 "(`mmrec cache backbones` lists them).")
    seconds: dict[str, float] = {}

    def stage(name: str, fn):
        progress(
            ProgressEvent(
                task="demo", completed=STAGES.index(name), total=len(STAGES), description=f"demo: {name}"
            )
        )
        started = time.perf_counter()
        value = fn()
        seconds[name] = round(time.perf_counter() - started, 2)
        progress(ProgressEvent(task="demo", message=f"{name} done in {seconds[name]:.1f}s"))
        return value

    stage(
        "synth",
        lambda: run_synth(settings, users=users, items=items, seed=settings.split.seed, progress=progress),
    )
    stage("preprocess", lambda: run_preprocess(settings, force=True, progress=progress))
    stage("split", lambda: run_split(settings, progress=progress))
    stage("cache", lambda: run_cache_precompute(settings, progress=progress))
    trained = stage("train", lambda: run_train(settings, progress=progress))
    report = stage("evaluate", lambda: run_evaluate(settings, list(RECOMMENDERS), progress=progress))
    recommendations_path = Path(settings.paths.results_dir) / "recommendations.json"
    diverse = settings.model_copy(
        update={"inference": settings.inference.model_copy(update={"use_diversity": True})}
    )
    recs = stage(
        "recommend",
        lambda: run_recommend(
            diverse,
            sample_users=recommend_users,
            recommender_type="multimodal",
            output=recommendations_path,
            progress=progress,
        ),
    )
    progress(
        ProgressEvent(
            task="demo", completed=len(STAGES), total=len(STAGES), description="demo: done", done=True
        )
    )
    return DemoResult(report, recs, recommendations_path, trained.best_path, seconds)
