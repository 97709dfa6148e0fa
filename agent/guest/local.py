"""Is this call local? Read from plain attributes and arguments only: never a property, never a call into
the SDK, never an exception, so that pipeline variables, mocks and None are simply not local.

Each `describe` function takes the SDK function and the arguments it was called with (the instance
first) and returns the `Call` when the call runs in local mode, else None. `call()` is the one place a
`Call` is made.
"""

from __future__ import annotations

import functools
import inspect

from .facts import Call

LOCAL_SESSIONS = {"LocalSession"}
PIPELINE_SESSIONS = {"PipelineSession", "LocalPipelineSession"}
"""A pipeline session's `fit`/`deploy` only builds step arguments: never a local run."""
LOCAL_CONTAINER = "LOCAL_CONTAINER"
"""The name of v3's (and v2 ModelTrainer's) `Mode.LOCAL_CONTAINER` member."""


def call(kind: str, class_name: str, instance_type=None, image=None, endpoint=None, **where_in_pipeline) -> Call:
    """The call as the report names it (`where_in_pipeline`: pipeline, step, step_type): anything that is not a
    plain string (a pipeline variable, a mock) is left out."""
    return Call(
        kind=kind,
        class_name=class_name,
        instance_type=_text(instance_type),
        images=[image] if _text(image) else [],
        endpoint=_text(endpoint),
        **{name: _text(value) for name, value in where_in_pipeline.items()},
    )


def method(kind: str):
    """The describe function of an SDK object's method (v2's estimators, models, predictors, transformers,
    processors; ModelTrainer; v3's ModelBuilder). Under a pipeline session a method only builds a step's
    arguments: never a local run."""
    local = {"train": _trainer, "serve": _builder}.get(kind) or functools.partial(_estimator, kind)

    def describe(original, args: tuple, kwargs: dict) -> Call | None:
        if class_names(instance_dict(args[0]).get("sagemaker_session")) & PIPELINE_SESSIONS:
            return None
        return local(original, args, kwargs)

    return describe


def _estimator(kind: str, original, args: tuple, kwargs: dict) -> Call | None:
    """v2's calls: local when the instance type (the call's own, for `deploy`) starts with `local`, or the
    session is a `LocalSession`."""
    obj = args[0]
    attributes = instance_dict(obj)
    if kind == "deploy":
        instance_type = _argument(original, args, kwargs, "instance_type")
        if instance_type is _REFUSED:
            return None
    else:
        instance_type = attributes.get("instance_type")
    local_session = class_names(attributes.get("sagemaker_session")) & LOCAL_SESSIONS
    if not (isinstance(instance_type, str) and str.startswith(instance_type, "local") or local_session):
        return None
    return call(kind, type(obj).__name__, instance_type, attributes.get("image_uri"), attributes.get("endpoint_name"))


def _trainer(original, args: tuple, kwargs: dict) -> Call | None:
    """`ModelTrainer.train`: local when its `training_mode` is the `Mode.LOCAL_CONTAINER` member (read from
    the enum member's own attributes: a pydantic model keeps its fields in the instance dict)."""
    attributes = instance_dict(args[0])
    if not _is_local_container(attributes.get("training_mode")):
        return None
    compute = instance_dict(attributes.get("compute"))
    return call("train", type(args[0]).__name__, compute.get("instance_type"), attributes.get("training_image"))


def _builder(original, args: tuple, kwargs: dict) -> Call | None:
    """v3 `ModelBuilder`: local when the call's `mode` argument, else the builder's, is `Mode.LOCAL_CONTAINER`."""
    mode = _argument(original, args, kwargs, "mode")
    if mode is _REFUSED or not _is_local_container(mode or instance_dict(args[0]).get("mode")):
        return None
    return call("serve", type(args[0]).__name__, image=instance_dict(args[0]).get("image_uri"))


def job(kind: str):
    """sagemaker-core's local client (v3's estimator path): every call of it is a local run."""

    def describe(original, args: tuple, kwargs: dict) -> Call:
        spec = kwargs.get("AlgorithmSpecification", kwargs.get("AppSpecification", {}))
        image = spec.get("TrainingImage") or spec.get("ImageUri") if isinstance(spec, dict) else None
        return call(kind, type(args[0]).__name__, image=image, endpoint=kwargs.get("EndpointName"))

    return describe


def pipeline(original, args: tuple, kwargs: dict) -> Call | None:
    """A local pipeline's execution (`LocalSagemakerClient.start_pipeline_execution`)."""
    name = _argument(original, args, kwargs, "PipelineName")
    if name is _REFUSED:
        return None
    return call("pipeline", "LocalPipelineSession", "local", pipeline=name, step=None)


def pipeline_step(original, args: tuple, kwargs: dict) -> Call | None:
    """One step of a local pipeline (`LocalPipelineExecutor._execute_step`): the report names the step."""
    execution = instance_dict(args[0]).get("execution")
    name = instance_dict(instance_dict(execution).get("pipeline")).get("name")
    step = _argument(original, args, kwargs, "step")
    if step is _REFUSED:
        return None
    return call(
        "pipeline", "LocalPipelineSession", "local", pipeline=name, step=instance_dict(step).get("name"),
        step_type=type(step).__name__,
    )  # fmt: skip


def container_root(obj) -> str | None:
    """The SDK object's own container root, where it has one (ModelTrainer's `local_container_root`)."""
    return _text(instance_dict(obj).get("local_container_root"))


def instance_dict(obj) -> dict:
    """The attributes set on the instance itself: no property, no `__getattr__` (mocks make up anything)."""
    try:
        attributes = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        return {}
    return attributes if isinstance(attributes, dict) else {}


_REFUSED = object()
"""Arguments the SDK itself refuses: its own error follows, the call is not described."""


def _argument(original, args: tuple, kwargs: dict, name: str):
    bound = arguments(original, args, kwargs)
    return _REFUSED if bound is None else bound.get(name)


def arguments(original, args: tuple, kwargs: dict) -> dict | None:
    """The call's arguments by name; None when the SDK itself refuses them (its own error follows)."""
    try:
        return inspect.signature(original).bind(*args, **kwargs).arguments
    except TypeError:
        return None


def _is_local_container(mode) -> bool:
    return instance_dict(mode).get("_name_") == LOCAL_CONTAINER


def class_names(obj) -> set[str]:
    return {cls.__name__ for cls in type(obj).__mro__}


def _text(value) -> str | None:
    return value if isinstance(value, str) and value else None
