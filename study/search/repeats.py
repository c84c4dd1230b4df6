"""Repeats: after the search, train the configurations the report compares again with other seeds, via Ray.

    python -m study run ... --repeats 2                                   # right after the search
    python -m study resume --storage-path P --name N [--repeats 2]        # continues them, or adds them

What is repeated: the members of every Pareto front and the best trial of each architecture (chosen by
``study.analysis`` on the search's own finished trials), each trained ``R`` more times with the seeds
``seed + 1 .. seed + R`` for the number of epochs the original trial ran, so a repeat costs what its
original cost. Why a second Tune experiment (``<experiment>/repeats/``, see ``study/experiment.py``): the
search's searcher hands out exactly K trials per space and saves that count with Tune's state; repeats
in their own experiment never enter that count, have their own ``trials.json`` and Tune state (so
``resume`` continues them from their checkpoints), and ``repeats/plan.json``, written before the first
repeat starts, fixes which trials they repeat even if the study crashes and comes back.
"""
from __future__ import annotations

import pickle

from ray import tune
from ray.tune.search import Searcher

from study import experiment
from study.analysis import pareto
from study.analysis.results import trials_frame
from study.analysis.table import best_per_arch, trials_table
from study.train.config import TrainConfig

DEFAULT_SEED = TrainConfig.__dataclass_fields__["seed"].default


def chosen_trials(search: "pd.DataFrame") -> list[str]:  # noqa: F821 (pandas, through study.analysis)
    """Trial ids worth repeating: every front member (all cost axes) and each architecture's best."""
    t = trials_table(search)
    ids = [i for front in pareto.all_fronts(t).values() for i in front]
    ids += list(best_per_arch(t)["trial_id"])
    return list(dict.fromkeys(ids))


def make_plan(search: "pd.DataFrame", configs: dict[str, dict], repeats: int) -> list[dict]:  # noqa: F821
    """[{repeat_of, config}]: each chosen trial's config with seed + k (k = 1..R) and the epochs it ran."""
    epochs = dict(zip(search["trial_id"].astype(str), search["epochs"]))
    plan = []
    for trial_id in chosen_trials(search):
        config = dict(configs[trial_id])
        base = int(config.get("seed", DEFAULT_SEED))
        for k in range(1, repeats + 1):
            plan.append({"repeat_of": trial_id,
                         "config": {**config, "seed": base + k, "epochs": int(epochs[trial_id])}})
    return plan


class PlannedConfigs(Searcher):
    """Hands out the plan's configs in order, once each; its position is saved with Tune's state."""

    def __init__(self, configs: list[dict]):
        super().__init__(metric="val_acc", mode="max")
        self.configs, self.next = configs, 0

    def suggest(self, trial_id: str):
        if self.next >= len(self.configs):
            return Searcher.FINISHED
        self.next += 1
        return dict(self.configs[self.next - 1])

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        pass

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as handle:
            pickle.dump(self.__dict__, handle)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as handle:
            self.__dict__.update(pickle.load(handle))


def planned(path: str, repeats: int) -> list[dict]:
    """The plan in ``repeats/plan.json``; made from the search's finished trials on first use."""
    file = f"{path}/{experiment.REPEATS_DIR}/{experiment.PLAN_FILE}"
    plan = experiment.read_json(file)
    if plan is not None:
        return plan
    data = experiment.read_json(f"{path}/{experiment.TRIALS_FILE}") or {"trials": []}
    configs = {str(t["trial_id"]): t.get("config") or {} for t in data["trials"]}
    search = trials_frame(path)
    plan = make_plan(search[search["repeat_of"].isna()], configs, repeats) if len(search) else []
    experiment.write_json(file, plan)
    return plan


def fit_repeats(path: str, launch: dict, trainable, callbacks) -> None:
    """Train the plan's repeats (or continue them) as the Tune experiment ``<path>/repeats``.
    ``callbacks(folder, total)`` gives the progress and trials.json callbacks for that folder."""
    from study.search.command import trial_dirname

    plan = planned(path, int(launch["repeats"]))
    folder = f"{path}/{experiment.REPEATS_DIR}"
    if not plan:
        print("repeats: no finished trial to repeat", flush=True)
        return
    chosen = len({p["repeat_of"] for p in plan})
    print(f"repeats: {len(plan)} runs ({chosen} trials x {launch['repeats']} seeds) -> {folder}", flush=True)
    if tune.Tuner.can_restore(folder):
        tuner = tune.Tuner.restore(folder, trainable, resume_unfinished=True, resume_errored=True)
    else:
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=PlannedConfigs([p["config"] for p in plan]),
                                        num_samples=len(plan), reuse_actors=True,
                                        max_concurrent_trials=launch.get("max_concurrent"),
                                        trial_dirname_creator=trial_dirname, trial_name_creator=trial_dirname),
            run_config=tune.RunConfig(
                name=experiment.REPEATS_DIR, storage_path=path, verbose=0,
                callbacks=callbacks(folder, len(plan)),
                failure_config=tune.FailureConfig(max_failures=launch.get("max_failures", 1)),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))
    tuner.fit()
