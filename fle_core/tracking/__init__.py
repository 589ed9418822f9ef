"""Weights & Biases tracking: job runs, sweep summaries and analysis logging.

Three promises, because tracking is a side channel and must never hurt the
work it observes:

* **Never raises into the caller.** Any W&B failure (bad key, no network, a
  bad directory, a wandb bug) is logged as a warning and the function returns
  ``None``. A job's success never depends on W&B.
* **Offline without a key.** With no ``WANDB_API_KEY`` and no netrc login for
  the W&B host, runs are written in offline mode to ``<dir>/wandb/offline-run-*``
  and can be uploaded later with ``wandb sync``. An explicit ``mode`` or
  ``WANDB_MODE`` is respected.
* **No secrets.** Config holds only the values passed in; URL passwords and
  secret-looking keys in ``params`` are masked; console capture, code saving,
  git and machine metadata collection are off (they could capture command
  lines, environment or output that carry secrets).

Modules: ``_wandb`` (mode, init, tags, config scrubbing), ``jobs`` (the
runner's per-job and per-sweep runs), ``logger`` (``WandBLogger``, ``WandBSweepLogger``), ``offline``
(``read_offline_run``). Every key is documented in ``docs/wandb.md``. ``read_offline_run`` decodes an
offline run's ``.wandb`` file so tests (and users) can check what was logged
without uploading it.
"""

from fle_core.tracking._wandb import DEFAULT_PROJECT, has_api_key, resolve_mode, safe_config, to_wandb_table
from fle_core.tracking.jobs import log_job_run, log_sweep_summary
from fle_core.tracking.logger import WandBLogger, WandBSweepLogger
from fle_core.tracking.offline import OfflineRun, read_offline_run

__all__ = [
    "DEFAULT_PROJECT",
    "OfflineRun",
    "WandBLogger",
    "WandBSweepLogger",
    "has_api_key",
    "log_job_run",
    "log_sweep_summary",
    "read_offline_run",
    "resolve_mode",
    "safe_config",
    "to_wandb_table",
]
