"""The top-level zoo config and its schema.

``ZooConfig`` is the static base (fields typed by the base classes); :func:`config_class`
builds, from the current registries, the subclass whose ``model`` and ``data`` fields are
discriminated unions over every registered architecture (tag ``arch``) and data set (tag
``dataset``). ``ZooConfig.model_validate`` and ``ZooConfig.model_json_schema`` delegate
to that subclass, so a newly registered architecture validates with no change to acezoo.
"""
from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field, create_model, field_validator, model_validator

from acezoo import registry
from acezoo.config.base import ArchSpec, DatasetSpec, StrictModel
from acezoo.config.constraints import ConstraintBudget
from acezoo.config.train import TrainConfig

__all__ = ["ZooConfig", "config_class", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1


class ZooConfig(StrictModel):
    """A complete, validated experiment: architecture, constraint budget, data, training."""

    schema_version: int = Field(SCHEMA_VERSION, description="Version of the config schema.")
    name: str = Field(..., min_length=1, description="Run name; also names the checkpoint directory.")
    seed: int = Field(0, ge=0, description="Seed of model initialisation and data order.")
    imports: list[str] = Field(
        default_factory=list,
        description="Python modules to import before the config is validated, e.g. `[mymod]` for an architecture "
        "or data set registered in mymod.py (looked up on sys.path, in the current folder and next to the config). "
        "Kept in the run's stored config, so that eval, resume and load import them again; `--import MODULE` on "
        "the command line adds to it.",
    )
    model: ArchSpec = Field(..., description="The architecture (discriminated by `arch`).")
    constraints: ConstraintBudget = Field(default_factory=ConstraintBudget, description="Constraint budget.")
    data: DatasetSpec = Field(..., description="The data set (discriminated by `dataset`).")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Trainer settings.")

    @field_validator("imports")
    @classmethod
    def _module_names(cls, names: list[str]) -> list[str]:
        from acezoo.plugins import MODULE_NAME

        bad = [n for n in names if not MODULE_NAME.match(n)]
        if bad:
            raise ValueError(f"not module names: {', '.join(map(repr, bad))} (e.g. mymod or pkg.models)")
        return list(dict.fromkeys(names))

    @model_validator(mode="after")
    def _frames_agree(self) -> "ZooConfig":
        """A model that predicts ``frames`` future frames (e.g. EGNO) needs a data set that gives as many
        (``data.frames``; 1 for a data set without the field)."""
        model_frames = getattr(self.model, "frames", None)
        if model_frames is not None and model_frames != getattr(self.data, "frames", 1):
            raise ValueError(f"model.frames ({model_frames}) must equal data.frames "
                             f"({getattr(self.data, 'frames', '1, the data set gives one frame')}): the model "
                             "predicts as many frames as the data set's targets hold")
        return self

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> "ZooConfig":  # type: ignore[override]
        if cls is ZooConfig:
            return config_class().model_validate(obj, **kwargs)
        return super().model_validate(obj, **kwargs)

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        if cls is ZooConfig:
            return config_class().model_json_schema(*args, **kwargs)
        return super().model_json_schema(*args, **kwargs)


_CACHE: dict[int, type[ZooConfig]] = {}


def _union(specs: list[type], tag: str) -> Any:
    return Annotated[Union[tuple(specs)], Field(discriminator=tag)]  # type: ignore[return-value]


def config_class() -> type[ZooConfig]:
    """The ``ZooConfig`` subclass that knows every currently registered arch and data set."""
    version = registry.registry_version()
    if version not in _CACHE:
        archs = [entry.spec for entry in registry.architectures().values()]
        sets = [entry.spec for entry in registry.datasets().values()]
        model_field = ZooConfig.model_fields["model"]
        data_field = ZooConfig.model_fields["data"]
        _CACHE.clear()
        _CACHE[version] = create_model(
            "ZooConfig",
            __base__=ZooConfig,
            __module__=__name__,
            model=(_union(archs, "arch"), Field(..., description=model_field.description)),
            data=(_union(sets, "dataset"), Field(..., description=data_field.description)),
        )
    return _CACHE[version]
