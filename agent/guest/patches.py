"""What the guest patches, per SDK major, and the import hook that patches an SDK module as it is imported.

Each entry names an SDK module and the function that patches it; each patch replaces one attribute with a
wrapper marked `__smdiag_wrapped__` (never twice). A patch that does not fit the installed SDK is logged
and skipped: the SDK must import even so.
"""

from __future__ import annotations

import functools
import importlib.abc
import inspect
import sys
from importlib import metadata

from . import local, remote, taps_v2, taps_v3
from .calls import wrapping
from .config import disabled, guarded

WRAPPED = "__smdiag_wrapped__"


def sdk_major() -> int | None:
    """The major version of the installed `sagemaker` distribution (metadata only: nothing is imported)."""
    try:
        version = metadata.version("sagemaker")
    except metadata.PackageNotFoundError:
        return None
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else None


def _replace(owner, name: str, make) -> None:
    original = inspect.getattr_static(owner, name, None)
    if original is not None and not getattr(original, WRAPPED, False):
        replacement = make(original)
        setattr(replacement, WRAPPED, True)
        setattr(owner, name, replacement)


def _method(owner_name: str, name: str, kind: str):
    """An SDK object's entry point: local (agent.guest.local), or managed too where `remote.KINDS` has its kind."""
    describe = remote.method(kind) if kind in remote.KINDS else local.method(kind)
    return lambda module: _replace(getattr(module, owner_name), name, wrapping(describe))


def _patch_image(module) -> None:
    _patch_local_container(module)
    hosting = getattr(module, "_HostingContainer", None)
    if hosting is not None:
        _replace(hosting, "start", taps_v2.serving_start)


def _patch_entities(module) -> None:
    _replace(module, "_wait_for_serving_container", functools.partial(taps_v2.wait_for_serving, module))


def _patch_local_container(module) -> None:
    """ModelTrainer's training container took the SDK's steps by name (`from ... import`): replace them there."""
    _replace(module, "_stream_output", taps_v2.stream_output)
    _replace(module, "_pull_image", taps_v2.pull_image)


def _patch_processors(module) -> None:
    """`Processor.run` and every processor of the module that defines its own `run` (Script, Framework)."""
    for owner in vars(module).values():
        if isinstance(owner, type) and issubclass(owner, module.Processor) and "run" in vars(owner):
            _replace(owner, "run", wrapping(remote.method("process")))


def _patch_local_pipeline(module) -> None:
    _replace(module.LocalPipelineExecutor, "_execute_step", wrapping(local.pipeline_step, inside="pipeline"))


def _patch_local_client(module, jobs: bool) -> None:
    """A local pipeline's start, and (v3, `jobs`) the local jobs and endpoints of sagemaker-core, v3's
    estimator path."""
    _replace(module.LocalSagemakerClient, "start_pipeline_execution", wrapping(local.pipeline))
    for name, kind in LOCAL_CLIENT_CALLS.items() if jobs else ():
        _replace(module.LocalSagemakerClient, name, wrapping(local.job(kind)))


def _patch_model_builder(module) -> None:
    for name in ("build", "deploy_local"):
        _replace(module.ModelBuilder, name, wrapping(local.method("serve")))
    _replace(module.ModelBuilder, "deploy", wrapping(remote.method("serve")))


def _patch_resources(module) -> None:
    """sagemaker-core's waits, called by a user on a job or endpoint (inside an SDK call they are its own)."""
    for owner, name, resource, name_field in RESOURCE_WAITS:
        _replace(getattr(module, owner), name, wrapping(remote.resource_wait(resource, name_field)))


def _patch_local_container_mode(module) -> None:
    _replace(module.LocalContainerMode, "create_server", functools.partial(taps_v3.create_server, module))
    _replace(module.LocalContainerMode, "_pull_image", taps_v3.server_pull)
    _replace(module, "_get_docker_client", taps_v3.docker_client)


LOCAL_CLIENT_CALLS = {
    "create_training_job": "fit",
    "create_processing_job": "process",
    "create_transform_job": "transform",
    "create_endpoint": "deploy",
}
RESOURCE_WAITS = (
    ("TrainingJob", "wait", "training", "training_job_name"),
    ("ProcessingJob", "wait", "processing", "processing_job_name"),
    ("TransformJob", "wait", "transform", "transform_job_name"),
    ("HyperParameterTuningJob", "wait", "tuning", "hyper_parameter_tuning_job_name"),
    ("Endpoint", "wait_for_status", "endpoint", "endpoint_name"),
)
PATCHES_BY_MAJOR = {
    2: {
        "sagemaker.estimator": _method("EstimatorBase", "fit", "fit"),
        "sagemaker.model": _method("Model", "deploy", "deploy"),
        "sagemaker.base_predictor": _method("Predictor", "predict", "predict"),
        "sagemaker.transformer": _method("Transformer", "transform", "transform"),
        "sagemaker.tuner": _method("HyperparameterTuner", "fit", "tune"),
        "sagemaker.processing": _patch_processors,
        "sagemaker.modules.train.model_trainer": _method("ModelTrainer", "train", "train"),
        "sagemaker.modules.local_core.local_container": _patch_local_container,
        "sagemaker.local.image": _patch_image,
        "sagemaker.local.entities": _patch_entities,
        "sagemaker.local.local_session": functools.partial(_patch_local_client, jobs=False),
        "sagemaker.local.pipeline": _patch_local_pipeline,
    },
    3: {
        "sagemaker.train.model_trainer": _method("ModelTrainer", "train", "train"),
        "sagemaker.train.local.local_container": _patch_local_container,
        "sagemaker.serve.model_builder": _patch_model_builder,
        "sagemaker.serve.mode.local_container_mode": _patch_local_container_mode,
        "sagemaker.core.local.image": _patch_image,
        "sagemaker.core.local.entities": _patch_entities,
        "sagemaker.core.local.local_session": functools.partial(_patch_local_client, jobs=True),
        "sagemaker.core.resources": _patch_resources,
    },
}


class PatchOnImport(importlib.abc.MetaPathFinder):
    """Patches the table's SDK modules right after they are executed, whenever the user imports them."""

    def __init__(self, patches: dict) -> None:
        self.patches = patches

    def patch_imported(self) -> None:
        """The table's modules the user imported already."""
        for name in self.patches:
            module = sys.modules.get(name)
            if module is not None:
                self.patch(module)

    def patch(self, module) -> None:
        """The SDK must import even if our patch does not fit it."""
        guarded(f"patch {module.__name__}", self.patches[module.__name__], module)

    def find_spec(self, name, path, target=None):
        if name not in self.patches or disabled():
            return None
        return guarded("import", self._patching_spec, name, path, target)

    def _patching_spec(self, name, path, target):
        """The spec the finders after this one give, its loader wrapped (None: the import goes on as ever)."""
        for finder in sys.meta_path[sys.meta_path.index(self) + 1 :]:
            spec = getattr(finder, "find_spec", lambda *_: None)(name, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None:
            spec.loader = _PatchingLoader(spec.loader, self)
        return spec


class _PatchingLoader(importlib.abc.Loader):
    """The module's own loader, which patches after executing and then hands the module back to it."""

    def __init__(self, loader, finder: PatchOnImport) -> None:
        self.loader = loader
        self.finder = finder

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        module.__loader__ = module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        self.finder.patch(module)
