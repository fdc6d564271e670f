"""MLflow for a study: a parent run per study, a child run per trial (tag ``mlflow.parentRunId``).

The parent run's id is kept in the study's storage, so running the study again (to resume
it) adds the remaining trials under the same parent. Tracking follows the trials' zoo
config (``train.tracking``, ``train.tracking_uri``, ``train.experiment``); an unusable
tracking server stops the study before any trial starts.
"""
from __future__ import annotations

from typing import Any

from acezoo.config.schema import ZooConfig
from acezoo.studies.loader import Study
from acezoo.studies.storage import Storage

__all__ = ["open_parent_run", "close_parent_run", "child_tags", "PARENT_FILE"]

PARENT_FILE = "acezoo_parent_run.json"


def open_parent_run(study: Study, config: ZooConfig, storage: Storage) -> dict[str, str] | None:
    """The study's parent MLflow run (created, or reopened when an earlier run of the study made
    one on the same server); None when the trials are not tracked."""
    if not config.train.tracking:
        return None
    from acezoo.hub import store
    from acezoo.hub.tracking import check_server

    check_server(config)
    uri = store.tracking_uri(config.train.tracking_uri)
    client = store.client(uri)
    saved = storage.read_json(PARENT_FILE)
    if saved and saved.get("uri") == uri:
        client.update_run(saved["run_id"], status="RUNNING")
        return saved
    spec = study.spec
    with store.store_lock(uri):
        experiment = store.experiment_id(client, config.train.experiment)
        run = client.create_run(experiment, run_name=f"study {spec.name}",
                                tags={"acezoo.study": spec.name, "acezoo.study_file": str(study.source)})
    run_id = run.info.run_id
    params = {"base": spec.base, "common": " ".join(spec.common)[:6000], "seeds": str(spec.seeds),
              "contenders": ", ".join(c.name for c in spec.contenders)[:6000], "selection": spec.selection}
    for key, value in params.items():
        client.log_param(run_id, key, value)
    parent = {"uri": uri, "run_id": run_id, "experiment": config.train.experiment}
    storage.write_json(PARENT_FILE, parent)
    return parent


def child_tags(study: Study, parent: dict[str, str] | None, key: str) -> dict[str, str]:
    """Tags of a trial's MLflow run: its parent, the study and the trial."""
    if parent is None:
        return {}
    return {"mlflow.parentRunId": parent["run_id"], "acezoo.study": study.spec.name, "acezoo.trial": key}


def close_parent_run(parent: dict[str, str] | None, summary_markdown: str | None, status: str) -> None:
    """Attach the study's tables to its parent run and end it with ``status`` (FINISHED, KILLED or FAILED)."""
    if parent is None:
        return
    from acezoo.hub import store

    client = store.client(parent["uri"])
    if summary_markdown:
        client.log_text(parent["run_id"], summary_markdown, "results.md")
    client.set_terminated(parent["run_id"], status=status)
