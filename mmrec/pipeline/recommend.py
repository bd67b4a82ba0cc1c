"""run_recommend: top-K recommendations for chosen users, optional MMR diversity, JSON output."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmrec.data.ids import catalogue_reason, mangled_ids_notes, typed_ids, unicode_forms_note, unicode_matches
from mmrec.errors import ConfigError
from mmrec.fileio import atomic_write_json, read_text_file, text_lines
from mmrec.inference.diversity import (
    SimilarityFn,
    embedding_similarity,
    interaction_similarity,
    intra_list_diversity,
    mmr_rerank,
)
from mmrec.inference.reasons import reasons_for
from mmrec.inference.topk import reserve_new_items, rows_per_chunk
from mmrec.pipeline.serving import Serving, load_serving
from mmrec.progress import ProgressCallback, ProgressEvent, null_progress
from mmrec.recommenders.base import Recommender
from mmrec.recommenders.knn import binary_matrix
from mmrec.settings import Settings

_MMR_POOL = 5  # MMR re-ranks the top (pool x K) candidates


@dataclass
class UserRecommendations:
    user_id: str
    items: list[dict[str, Any]]  # rank, item_id, title, score, reason
    fallback: str | None = None  # e.g. "popularity" when the model does not know the user
    diversity_before: float | None = None  # intra-list diversity of the plain top-K
    diversity_after: float | None = None  # ... after MMR re-ranking
    # What MMR did to the plain top-K: "other items", "reordered" (the same items) or "unchanged"
    mmr_change: str | None = None


@dataclass
class RecommendResult:
    recommender: str
    top_k: int
    users: list[UserRecommendations]
    diversity_lambda: float | None = None
    output: Path | None = None
    notes: list[str] = field(default_factory=list)
    checkpoint: dict[str, Any] | None = None  # the checkpoint the lists come from (checkpoint_provenance)

    @property
    def n_fallback_users(self) -> int:
        return sum(1 for u in self.users if u.fallback)

    def mean_diversity(self, which: str) -> float | None:
        values = [
            getattr(u, f"diversity_{which}")
            for u in self.users
            if getattr(u, f"diversity_{which}") is not None
        ]
        return float(np.mean(values)) if values else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "recommender": self.recommender,
            "checkpoint": self.checkpoint,
            "top_k": self.top_k,
            "diversity_lambda": self.diversity_lambda,
            "mean_diversity_before": self.mean_diversity("before"),
            "mean_diversity_after": self.mean_diversity("after"),
            "fallback_users": self.n_fallback_users,
            "notes": self.notes,
            "users": [asdict(u) for u in self.users],
        }


# What --new-items reserves places for: items no interaction names, which are new ones or ones nobody chose.
NO_INTERACTIONS = "no interactions yet (a new item, or one nobody has chosen)"


def new_item_reason(model: Any, item: int) -> dict[str, str]:
    """Why a new item (no interaction yet) is in a list: no co-interactions explain it, so name the content the
    model ranked it from (what it reads of that item), or chance for the random recommender."""
    if model.name == "random":
        return {"why": f"{NO_INTERACTIONS}: placed at random"}
    parts = model.content_of(item) if hasattr(model, "content_of") else []
    if not parts:
        return {"why": f"{NO_INTERACTIONS}, and nothing the model reads of it (no image, text or "
                       "metadata): its place carries no signal"}
    named = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
    return {"why": f"{NO_INTERACTIONS}: ranked from its {named}"}


HEADER_NAMES = ("user_id", "userid", "user id", "user", "users", "uid")
TABLE_SEPARATORS = (",", "\t", ";", "|")


def _user_column_of_table(header: str, lines: list[str], names: set[str],
                          user_file: Path) -> tuple[list[str], str] | None:
    """A user file exported from a table: (the user-id column's value on each of `lines`, the note saying so) when
    `header` names that column among others (e.g. user_id,segment); None for a plain file of ids. A table whose
    header names no user-id column is refused: every line would be served as one unknown user."""
    for separator in TABLE_SEPARATORS:
        fields = [field.strip().strip('"').lower() for field in header.split(separator)]
        if len(fields) < 2:
            continue
        column = next((i for i, f in enumerate(fields) if f in names), None)
        if column is None:
            if lines and all(separator in line for line in lines):
                raise ConfigError(
                    f"User file {user_file} has a {separator!r} in every line, like a table, but its first line "
                    f"({header.strip()!r}) names no user id column: each line would be served as one unknown user.",
                    hint="Add a header line naming the user id column (user_id, or data.user_id_column), or write "
                         "one user id per line.")
            continue
        rows = list(csv.reader(lines, delimiter=separator))
        values = [row[column].strip() if len(row) > column else "" for row in rows]
        empty = sum(not value for value in values)
        return values, (f"it is a table ({separator!r}-separated, header {header.strip()!r}): its {fields[column]!r} "
                        "column was read" + (f"; {empty:,} row(s) without a value there skipped" if empty else ""))
    return None


def requested_users(users: Sequence[str] | None, user_file: Path | None,
                    user_column: str = "user_id") -> tuple[list[str], list[str]]:
    """(the users named explicitly, then those of the user file, notes). The file is read now, before any model
    loads, so a missing one is refused at once; its blank lines, lines starting with `#` (comments) and a first
    line that is a column header (`user_id`, the configured data.user_id_column, ...: a file exported from a
    table) are no user and are counted in the notes; a header naming that column among others makes the file a
    table whose column is read. Ids are stripped of surrounding spaces wherever they come from, as preprocess
    strips them."""
    named = typed_ids(users or [])
    notes: list[str] = []
    if blank := len(users or []) - len(named):
        notes.append(f"{blank:,} empty --users value(s) skipped.")
    if user_file is not None:
        text = read_text_file(user_file, "User file", hint="Pass a text file with one user id per line.")
        lines = text_lines(text)
        comments = sum(line.strip().startswith("#") for line in lines)
        blank = sum(not line.strip() for line in lines)
        # Kept as written for a table: an empty first cell ("\tvalue") must not be stripped into another column.
        raw = [line for line in lines if line.strip() and not line.strip().startswith("#")]
        ids = [line.strip() for line in raw]
        names = {*HEADER_NAMES, user_column.strip().lower()}
        table = _user_column_of_table(raw[0], raw[1:], names, user_file) if raw else None
        header = table is None and bool(ids) and ids[0].lower() in names
        from_file = typed_ids(table[0] if table is not None else ids[header:])
        if not from_file:
            rows = f"{len(raw) - 1:,} row(s) without a user id" if table is not None and len(raw) > 1 else ""
            held = [f"{n:,} {what}" for n, what in ((comments, "comment line(s)"), (blank, "blank line(s)")) if n]
            held += ([f"the column header {ids[0]!r}"] if raw else []) + ([rows] if rows else [])
            raise ConfigError(f"User file {user_file} holds no user id" + (f" ({', '.join(held)})." if held else
                                                                            " (it is empty)."),
                              hint="Write one user id per line (or a table whose header names its user id column).")
        named += from_file
        if table is not None:
            notes.append(f"User file {user_file}: {table[1]}.")
        skipped = [f"{n:,} {what}" for n, what in ((comments, "comment line(s) starting with #"),
                                                   (blank, "blank line(s)"),
                                                   (int(header), f"column header {ids[0]!r}" if header else "")) if n]
        if skipped:
            notes.append(f"User file {user_file}: {' and '.join(skipped)} skipped"
                         + (" (an id that starts with # can be passed with --users)." if comments else
                            " (a user with that id can be passed with --users)." if header else "."))
    # preprocess rejects user ids with control characters, so no user has one; printed, they would reach the
    # terminal as escape codes.
    unusable = {user for user in named if catalogue_reason(user) is not None}
    if unusable:
        named = [user for user in named if user not in unusable]
        notes.append(f"{len(unusable):,} requested user id(s) hold control characters (e.g. {min(unusable)!r}) and were "
                     "skipped: preprocess rejects such ids, so no user has one.")
    return named, notes


def select_users(
    known_users: Sequence[str],
    named: Sequence[str],
    sample_users: int | None,
    seed: int,
    said: Sequence[str] = (),
    unknown_users: str = "fallback",
    data_users: Sequence[str] | None = None,
    gone_since: Callable[[Sequence[str]], list[str]] | None = None,
) -> tuple[list[str], list[str]]:
    """(requested users in order, without duplicates: the `named` ones (requested_users), then a seeded
    sample; notes). `said`: requested_users' notes, which say why none is left when none is.
    `unknown_users` (inference.unknown_users): "error" refuses any named user the data do not know
    (`data_users`, else `known_users`: users who only rated below the threshold are known, and served the
    fallback), "auto" refuses when none of them is known and nothing is sampled, "fallback" refuses none.
    `gone_since`: which of some users the checkpoint knows though the data no longer do (Serving.gone_since)."""
    notes: list[str] = []
    known = set(known_users)
    unknown = [u for u in dict.fromkeys(named) if u not in known]
    if unknown and (matched := unicode_matches(unknown, known_users)):  # 'é' typed, 'e' + U+0301 stored
        notes.append(unicode_forms_note(matched, None, "the requested users", "known users'"))
        named = [matched.get(u, u) for u in named]
        unknown = [u for u in unknown if u not in matched]
    chosen = list(named)
    counts = Counter(named)
    if repeated := sum(1 for count in counts.values() if count > 1):
        notes.append(f"{repeated:,} user id(s) were named more than once ({len(named) - len(counts):,} repeats); each "
                     "user gets one list.")
    notes += [note.replace("catalogue ids", "known user ids") for note in
              mangled_ids_notes(unknown, known_users, "the requested users")]
    joined = [u for u in dict.fromkeys(named) if u not in known and "," in u and u.replace(",", "").strip()
              and all(part.strip() in known for part in u.split(",") if part.strip())]
    if joined:
        notes.append(f"{joined[0]!r} is no user, but its comma-separated parts are: ids are separated by spaces "
                     "(--users u1 u2), so it was served as one unknown user.")
    rows = [u for u in dict.fromkeys(named) if u not in known and u not in joined
            and any(sep in u and u.split(sep, 1)[0].strip() in known for sep in TABLE_SEPARATORS)]
    if rows:
        notes.append(f"{len(rows):,} requested id(s) are no user but start with one, like rows of a table (e.g. "
                     f"{rows[0]!r}): each was served as one unknown user. Give one user id per --users value or "
                     "per line of --user-file (or a table whose header names its user id column).")
    if named and (unknown_users == "error" or (unknown_users == "auto" and not sample_users)):
        _refuse_unknown(named, set(known_users if data_users is None else data_users), unknown_users == "auto", notes,
                        gone_since)
    if sample_users:
        rng = np.random.default_rng(seed)
        already = set(chosen)  # sample beyond the explicitly named users
        pool = np.asarray(sorted(u for u in known_users if u not in already), dtype=object)
        if sample_users > len(pool):
            besides = " besides the users named" if already else ""
            notes.append(f"--sample-users {sample_users:,}: there are only {len(pool):,} known users{besides}, "
                         "so all of them are included.")
        chosen += list(rng.choice(pool, size=min(sample_users, len(pool)), replace=False))
    if not chosen:
        why = [note for note in said if "skipped" in note]
        raise ConfigError("No users to recommend for." + "".join(f" {note}" for note in why),
                          hint="Pass --users, --user-file or --sample-users N.")
    return list(dict.fromkeys(chosen)), notes


def _refuse_unknown(named: Sequence[str], known: set[str], only_when_all: bool, notes: Sequence[str],
                    gone_since: Callable[[Sequence[str]], list[str]] | None = None) -> None:
    """ConfigError naming the `named` users not in `known` when there are any (`only_when_all`: when no named
    user is known), with the notes that say what the ids look like (`notes`: select_users' so far)."""
    unknown = [user for user in dict.fromkeys(named) if user not in known]
    if not unknown or (only_when_all and len(unknown) < len(dict.fromkeys(named))):
        return
    listed = ", ".join(map(repr, unknown[:5])) + (f" and {len(unknown) - 5:,} more" if len(unknown) > 5 else "")
    what = (f"None of the {len(unknown):,} requested user(s) is known" if only_when_all else
            f"{len(unknown):,} requested user(s) are unknown")
    gone = gone_since(unknown) if gone_since is not None else []
    said = [f"{'All' if len(gone) == len(unknown) else f'{len(gone):,}'} of them (e.g. {gone[0]!r}) are in the "
            "checkpoint, so their ids are right: their interactions left the processed data since training (deleted, "
            "or dropped by `mmrec preprocess` as on items no longer in the catalogue: its report counts those)."
            ] if gone else []
    fallback = ("To serve users without a history the fallback list (a service's new visitors), pass --unknown-users "
                "fallback (inference.unknown_users).")
    raise ConfigError(
        f"{what} ({listed}): no interaction of theirs is in the processed data, so each would get the same fallback "
        "list." + "".join(f" {note}" for note in [*said, *notes]),
        hint=(fallback if len(gone) == len(unknown) else f"Check the ids and that -c names the config of their data. "
              f"{fallback}"))


def short_list_note(n_short: int, k: int, serving: Serving) -> str | None:
    """The note for users who got fewer than k items (None when there are none): why their lists are short."""
    if not n_short:
        return None
    if k >= serving.n_items:  # a user with anything seen cannot get k
        why = f"the catalogue has only {serving.n_items:,} items" + (
            ", less the ones each user has seen" if serving.exclude_seen else "")
    else:
        why = (f"they have seen more than {serving.n_items - k:,} of the {serving.n_items:,} items, and seen items "
               "are left out (--include-seen keeps them)" if serving.exclude_seen else "some items got no score")
    if serving.index is not None:
        why += " (or the approximate pool held too few unseen items)"
    return f"{n_short:,} user(s) got fewer than {k:,} items: {why}."


def count_new_items(serving: Serving, lists: Sequence[np.ndarray]) -> tuple[int, int]:
    """(lists holding a new item, new items in all) of these lists of catalogue rows."""
    if serving.is_new is None or not serving.new_slots:
        return 0, 0
    counts = [int(serving.is_new[idx].sum()) for idx in lists]
    return sum(c > 0 for c in counts), sum(counts)


def new_items_placed_note(serving: Serving, holding: int, n_lists: int, n_new: int) -> str | None:
    """With --new-items on and new items in the catalogue: how many lists hold them."""
    if not serving.new_slots or serving.is_new is None or not serving.is_new.any():
        return None
    return f"{holding:,} of {n_lists:,} lists hold new items ({n_new:,} in all)."


def _similarity_fn(
    model: Recommender, interactions: pd.DataFrame, item_index: dict[str, int]
) -> SimilarityFn:
    """Item similarity for MMR: the model's item vectors when it has them, else co-interaction cosine."""
    if hasattr(model, "item_embeddings"):
        return embedding_similarity(model.item_embeddings())
    users = {u: i for i, u in enumerate(pd.unique(interactions["user_id"]))}
    cols = interactions["item_id"].map(item_index)
    keep = cols.notna().to_numpy()
    rows = interactions["user_id"].map(users).to_numpy()[keep]
    return interaction_similarity(
        binary_matrix(rows, cols[keep].to_numpy(np.int64), (len(users), len(item_index)))
    )


def run_recommend(
    settings: Settings,
    users: Sequence[str] | None = None,
    user_file: Path | None = None,
    sample_users: int | None = None,
    recommender_type: str = "multimodal",
    output: Path | None = None,
    progress: ProgressCallback = null_progress,
) -> RecommendResult:
    """Recommend settings.inference.top_k unseen items (unless exclude_seen is off) to each user.

    Models are fitted on every processed interaction (a user's whole known history). Users the model
    does not know get the evaluation.cold_user_fallback scores, flagged as `fallback` in the output.
    """
    inference = settings.inference
    named, file_notes = requested_users(users, user_file, settings.data.user_id_column)
    progress(ProgressEvent(task="recommend", description=f"loading {recommender_type}"))
    serving = load_serving(settings, recommender_type, progress)
    model, item_ids, titles = serving.model, serving.item_ids, serving.titles
    chosen, selection_notes = select_users(serving.seen.users, named, sample_users, settings.evaluation.seed,
                                           file_notes, inference.unknown_users, serving.users, serving.gone_since)
    selection_notes = [*file_notes, *selection_notes]
    for note in (serving.joined_since_note(chosen), serving.gone_since_note(chosen)):
        selection_notes += [note] if note else []
    if serving.index is not None:
        selection_notes.append(f"Candidates come from the approximate {inference.ann} index (inference.ann), so a "
                               "list can differ from exact scoring; `--all-users --ann-check N` measures its recall.")
    item_index = {item: j for j, item in enumerate(item_ids)}
    similarity = _similarity_fn(model, serving.interactions, item_index) if inference.use_diversity else None
    pool = inference.top_k * (_MMR_POOL if inference.use_diversity else 1)

    result = RecommendResult(
        recommender_type,
        inference.top_k,
        [],
        inference.diversity_lambda if inference.use_diversity else None,
        output,
        notes=[*serving.notes, *selection_notes],
        checkpoint=getattr(serving.model, "checkpoint", None),
    )
    batch = rows_per_chunk(settings.evaluation.batch_size, len(item_ids))
    for start in range(0, len(chosen), batch):
        block = chosen[start : start + batch]
        lists, is_fallback = serving.top_k(block, pool)
        for row, (idx, val) in enumerate(lists):
            user = block[row]
            fallback_name = serving.fallback_name if is_fallback[row] else None
            entry = UserRecommendations(user, [], fallback_name)

            def served(order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                """The list of these pool places, with its new items (--new-items) kept: MMR may leave them out."""
                picked, scores = idx[order], val[order]
                if serving.new_slots and serving.is_new is not None and not fallback_name:
                    pool_new = serving.is_new[idx]
                    picked, scores = reserve_new_items(picked, scores, idx[pool_new], val[pool_new],
                                                       min(serving.new_slots, inference.top_k), serving.is_new)
                return picked, scores

            plain = served(np.arange(min(inference.top_k, len(idx))))
            picked, scores = plain
            if similarity is not None and len(idx):
                sims, place = similarity(idx), {int(j): p for p, j in enumerate(idx)}
                picked, scores = served(mmr_rerank(val, sims, inference.top_k, inference.diversity_lambda))
                # Both of the lists served, the plain one and MMR's, new items and all.
                entry.diversity_before, entry.diversity_after = (
                    intra_list_diversity(sims[np.ix_(at, at)]) for at in
                    ([place[int(j)] for j in items] for items in (plain[0], picked)))
                entry.mmr_change = ("unchanged" if np.array_equal(picked, plain[0]) else
                                    "reordered" if set(picked.tolist()) == set(plain[0].tolist()) else "other items")
            reasons = reasons_for(model, user, picked, serving.seen.of(user), item_ids, titles, fallback_name)
            if not fallback_name and serving.is_new is not None:  # no history to point at: say what ranked it
                # (unless the cold items' own order put it there, by its likeness to an item the user had)
                reasons = [new_item_reason(model, j) | {"source": reason.get("source", model.name)}
                           if serving.is_new[j] and not (reason.get("component") == "cold" and "similar_to" in reason)
                           else reason for j, reason in zip(picked, reasons)]
            entry.items = [
                {
                    "rank": r + 1,
                    "item_id": item_ids[j],
                    "title": titles[j],
                    "score": round(float(score), 6),
                    "reason": reason,
                    **({"new": bool(serving.is_new[j])} if serving.new_slots else {}),
                }
                for r, (j, score, reason) in enumerate(zip(picked, scores, reasons))
            ]
            result.users.append(entry)
        progress(
            ProgressEvent(
                task="recommend",
                completed=min(start + batch, len(chosen)),
                total=len(chosen),
                description="recommending",
            )
        )
    progress(ProgressEvent(task="recommend", completed=len(chosen), total=len(chosen), done=True))
    if result.n_fallback_users:
        result.notes.append(serving.fallback_note(result.n_fallback_users))
    if note := short_list_note(sum(len(u.items) < inference.top_k for u in result.users), inference.top_k, serving):
        result.notes.append(note)
    holding, n_new = count_new_items(serving, [np.asarray([item_index[i["item_id"]] for i in u.items], dtype=np.int64)
                                               for u in result.users])
    if note := new_items_placed_note(serving, holding, len(result.users), n_new):
        result.notes.append(note)
    if output is not None:
        atomic_write_json(output, result.to_dict())
    return result
