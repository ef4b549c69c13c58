"""Runner: a whole study (tasks × methods × seeds) from one experiment file.

Modules: :mod:`.experiment` (the pydantic schema), :mod:`.experiment_file` (reading and checking
YAML files), :mod:`.job`, :mod:`.plan` (jobs and shards), :mod:`.status` (on-disk state),
:mod:`.dispatch` (one job to the stage APIs), :mod:`.executors` (local, Ray), :mod:`.stages`
(analysis, weights, figures, report), :mod:`.original_layout` (import of the original study's
tree), :mod:`.study` (:func:`make_plan`, :func:`execute`, :func:`run_experiment`).
"""

from repdrift.runner.experiment import Experiment
from repdrift.runner.experiment_file import load_experiment, parse_experiment
from repdrift.runner.job import Job
from repdrift.runner.study import Executor, Plan, RunResult, execute, make_plan, run_experiment

__all__ = [
    "Executor",
    "Experiment",
    "Job",
    "Plan",
    "RunResult",
    "execute",
    "load_experiment",
    "make_plan",
    "parse_experiment",
    "run_experiment",
]
