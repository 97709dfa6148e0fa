"""Managed (remote) calls: which calls of a wrapped entry point run, or wait for, a SageMaker job or endpoint,
and what the guest reads of it once it raised.

A `describe` here returns the local `Call` when agent.guest.local says the call is local, a `Remote` when
it is a managed job's (or endpoint's, or tuning job's), else None: under a pipeline or local session, on a
mock, or with a pipeline variable where the SDK wants a plain value, the call is the SDK's alone. For a
managed call the guest only watches the exception leave: the `RemoteCall` is read afterwards, when the SDK
object holds the job's name, from plain attributes only (`local.instance_dict`; a pydantic model's private
attributes from their slot), never a property, never a call into the SDK or AWS. A name is the job's only
when the call made it: an attribute still holding what it held before the call names an earlier job.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from . import local
from .capture import Remote
from .facts import Call, RemoteCall
from .local import LOCAL_SESSIONS, PIPELINE_SESSIONS, instance_dict

SDK_PACKAGES = {"sagemaker", "sagemaker_core"}


@dataclass(frozen=True)
class Kind:
    """How one entry point's SDK object holds a managed call."""

    resource: str
    held: Callable[[object], object]
    """What holds the job the call makes (read before and after the call): its name once it is new."""
    name: Callable[[object], str | None]
    parameters: Callable[[object, dict], dict]
    """From the SDK object and the call's arguments, after the call raised."""
    managed: Callable[[object, dict], bool] = lambda obj, arguments: True
    """Beyond a real session: whether this object's call runs as a managed job (v3's modes)."""
    instance_type: Callable[[object, dict], object] = lambda obj, arguments: instance_dict(obj).get("instance_type")
    session: Callable[[object], object] = lambda obj: instance_dict(obj).get("sagemaker_session")
    named_by: str | None = None
    """The call's argument that names what it makes, when given (an endpoint's name)."""
    named_in_frame: tuple[tuple[str, ...], ...] = ()
    """Where the entry point's own frame holds the name of the job it created (a local variable, a key of a
    dict in one), for a call that raised before its SDK object kept the job: sagemaker-core's
    `TrainingJob.create` describes the job it just created, and that Describe may fail."""


def method(kind: str):
    """The describe function of an SDK object's entry point that runs locally or as a managed job."""
    local_call, shape = local.method(kind), KINDS[kind]

    def describe(original, args: tuple, kwargs: dict) -> Call | Remote | None:
        described = local_call(original, args, kwargs)
        if described is not None:
            return described
        obj, arguments = args[0], local.arguments(original, args, kwargs)
        if arguments is None or not _managed(shape, obj, arguments):
            return None
        before = shape.held(obj)

        def read(exc: BaseException | None = None) -> RemoteCall:
            held = shape.held(obj)
            name = _text(arguments.get(shape.named_by)) or (shape.name(held) if held is not before else None)
            name = name or _named_in_frame(exc, original, shape.named_in_frame)
            parameters = _present(shape.parameters(obj, arguments))
            session = shape.session(obj)
            boto_session = instance_dict(session).get("boto_session")
            return RemoteCall(shape.resource, name, _region(session), parameters, _profile(boto_session))

        image = _text(instance_dict(obj).get("image_uri")) or _text(instance_dict(obj).get("training_image"))
        call = local.call(kind, type(obj).__name__, shape.instance_type(obj, arguments), image)
        return Remote(call, shape.resource, read)

    return describe


def resource_wait(resource: str, name_field: str):
    """The describe function of a sagemaker-core resource's wait (`TrainingJob.wait`, `Endpoint.wait_for_status`):
    the resource names itself; its region is the one it was created or loaded with."""

    def describe(original, args: tuple, kwargs: dict) -> Remote | None:
        job = args[0]
        if not _from_sdk(job):
            return None

        def read(exc: BaseException | None = None) -> RemoteCall:
            held = instance_dict(job)
            private = _private(job)
            region = _text(private.get("_region")) or _boto_region(private.get("_session"))
            parameters = _present(_resource_parameters(job))
            return RemoteCall(
                resource, _text(held.get(name_field)), region, parameters, _profile(private.get("_session"))
            )

        return Remote(local.call("wait", type(job).__name__), resource, read)

    return describe


def _managed(shape: Kind, obj, arguments: dict) -> bool:
    """The SDK's own object, with the SDK's own session (or none yet: the SDK makes one), a plain instance type
    (or none: serverless), and what else this kind needs."""
    instance_type = shape.instance_type(obj, arguments)
    return (
        _from_sdk(obj)
        and _real_session(shape.session(obj))
        and (instance_type is None or _text(instance_type) is not None)
        and shape.managed(obj, arguments)
    )


def _named_in_frame(exc: BaseException | None, original, paths: tuple[tuple[str, ...], ...]) -> str | None:
    """The job's name as the entry point's own frame held it when `exc` left it, read from the finished frame's
    plain dicts (no call into the SDK). None when the exception is the Create's refusal: then no job exists."""
    if exc is None or not paths or str(getattr(exc, "operation_name", "")).startswith("Create"):
        return None
    code = getattr(inspect.unwrap(original), "__code__", None)
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code is not code:
        tb = tb.tb_next
    if tb is None:
        return None
    local_names = dict(tb.tb_frame.f_locals)  # a plain dict (Python 3.13 gives a proxy)
    for path in paths:
        value = local_names
        for key in path:
            value = value.get(key) if type(value) is dict else None
        if _text(value):
            return value
    return None


def _real_session(session) -> bool:
    if session is None:
        return True
    names = local.class_names(session)
    sdk_session = any(cls.__name__ == "Session" and _sdk_class(cls) for cls in type(session).__mro__)
    return sdk_session and not names & (LOCAL_SESSIONS | PIPELINE_SESSIONS)


def _from_sdk(obj) -> bool:
    return any(_sdk_class(cls) for cls in type(obj).__mro__)


def _sdk_class(cls) -> bool:
    return str(getattr(cls, "__module__", "")).partition(".")[0] in SDK_PACKAGES


# ------------------------------------------------------------------------------------------ reading plain values


def _path(obj, *names: str):
    """`obj.a.b...` through instance dicts only (a dict's keys too); None where a step is missing."""
    for name in names:
        obj = obj.get(name) if isinstance(obj, dict) else instance_dict(obj).get(name)
    return obj


def _private(obj) -> dict:
    """A pydantic model's private attributes, from the slot pydantic keeps them in (not a property)."""
    slot = inspect.getattr_static(type(obj), "__pydantic_private__", None)
    if type(slot).__name__ != "member_descriptor":
        return {}
    try:
        private = slot.__get__(obj, type(obj))
    except AttributeError:
        return {}
    return private if isinstance(private, dict) else {}


def _text(value) -> str | None:
    return value if type(value) is str and value else None


def _given(*values):
    """The first value that is not None (never asks a value for its truth: a pipeline variable may refuse)."""
    return next((value for value in values if value is not None), None)


def _plain(value):
    """A value the report can hold as it is: text, a number, a flag, a list of texts; else None (a pipeline
    variable, a mock, sagemaker-core's `Unassigned`)."""
    if type(value) in (bool, int, float):
        return value
    if isinstance(value, (list, tuple)):
        texts = [_text(item) for item in value]
        return texts if texts and None not in texts else None
    if isinstance(value, dict):
        entries = {key: _text(item) for key, item in value.items() if type(key) is str}
        return entries if entries and None not in entries.values() else None
    return _text(value)


def _present(values: dict) -> dict:
    return {key: plain for key, value in values.items() if (plain := _plain(value)) is not None}


def _region(session) -> str | None:
    """The SDK session's region (v2's and v3's `Session` keep it in `_region_name`), else its boto session's."""
    return _text(instance_dict(session).get("_region_name")) or _boto_region(instance_dict(session).get("boto_session"))


def _boto_region(boto_session) -> str | None:
    """A boto3 session's region where it was given (`boto3.Session(region_name=...)`); None: the default
    chain's (environment, profile), which the recorder resolves the same way."""
    return _session_variable(boto_session, "region")


def _profile(boto_session) -> str | None:
    """The profile a boto3 session was made with (`boto3.Session(profile_name=...)`), by name."""
    return _session_variable(boto_session, "profile")


def _session_variable(boto_session, name: str) -> str | None:
    """A value given to a boto3 session when it was made (botocore keeps those apart from what it resolved)."""
    variables = _path(boto_session, "_session", "_session_instance_vars")
    return _text(variables.get(name)) if isinstance(variables, dict) else None


# ------------------------------------------------------------------------------------ each entry point's facts


def _estimator(obj, arguments: dict) -> dict:
    """v2's estimators (`EstimatorBase`)."""
    return {
        **_attributes(obj, "instance_type", "instance_count", "entry_point", "source_dir", "image_uri", "role",
                      "checkpoint_s3_uri", "subnets", "security_group_ids", "volume_kms_key", "output_kms_key",
                      volume_size_gb="volume_size", max_run_s="max_run", max_wait_s="max_wait",
                      spot="use_spot_instances"),
        "inputs": _channels(arguments.get("inputs"), "training"),
    }  # fmt: skip


def _attributes(obj, *names: str, **renamed: str) -> dict:
    """The object's attributes `names`, and each of `renamed` (the report's name = the object's)."""
    held = instance_dict(obj)
    return {**{name: held.get(name) for name in names}, **{key: held.get(name) for key, name in renamed.items()}}


def _channels(inputs, single: str) -> dict:
    """`{channel: uri}` of inputs given as plain strings (one string is the SDK's `single` channel)."""
    if _text(inputs):
        return {single: inputs}
    return {name: uri for name, uri in inputs.items() if _text(name) and _text(uri)} if isinstance(inputs, dict) else {}


def _named_inputs(inputs, name: str, uri: str) -> dict:
    """`{name: uri}` of a list of input objects (processing's, ModelTrainer's) whose two fields are plain strings."""
    pairs = ((_path(each, name), _path(each, uri)) for each in (inputs if isinstance(inputs, (list, tuple)) else ()))
    return {key: value for key, value in pairs if _text(key) and _text(value)}


def _processor(obj, arguments: dict) -> dict:
    """v2's processors (`Processor.run` and its subclasses' own)."""
    return {
        **_attributes(obj, "instance_type", "instance_count", "image_uri", "role", "volume_kms_key", "output_kms_key",
                      volume_size_gb="volume_size_in_gb", max_run_s="max_runtime_in_seconds"),
        "subnets": _path(obj, "network_config", "subnets"),
        "security_group_ids": _path(obj, "network_config", "security_group_ids"),
        "entry_point": arguments.get("code"),
        "source_dir": arguments.get("source_dir"),
        "inputs": _named_inputs(arguments.get("inputs"), "input_name", "source"),
    }  # fmt: skip


def _transformer(obj, arguments: dict) -> dict:
    return {
        **_attributes(obj, "instance_type", "instance_count", "volume_kms_key", "output_kms_key"),
        "inputs": _channels(arguments.get("data"), "data"),
    }


def _model(obj, arguments: dict) -> dict:
    """v2's `Model.deploy` (and `Estimator.deploy`, which deploys a model)."""
    held = instance_dict(obj)
    return {
        "instance_type": arguments.get("instance_type"),
        "instance_count": arguments.get("initial_instance_count"),
        "image_uri": held.get("image_uri"),
        "role": held.get("role"),
        "subnets": _path(held, "vpc_config", "Subnets"),
        "security_group_ids": _path(held, "vpc_config", "SecurityGroupIds"),
        "volume_kms_key": arguments.get("kms_key"),
    }


def _tuner(obj, arguments: dict) -> dict:
    """v2's `HyperparameterTuner.fit`: its (first) estimator's training parameters, and its parallelism."""
    return {
        **_estimator(_tuned_estimator(obj), arguments),
        "max_parallel_jobs": instance_dict(obj).get("max_parallel_jobs"),
    }


def _tuned_estimator(tuner):
    """The tuner's estimator, or the first of its estimators by name."""
    held = instance_dict(tuner)
    estimators = held.get("estimator_dict")
    if held.get("estimator") is not None or not isinstance(estimators, dict):
        return held.get("estimator")
    return next(iter(estimators.values()), None)


def _trainer(obj, arguments: dict) -> dict:
    """`ModelTrainer.train` (v3's, and v2's `sagemaker.modules`) as a training job."""
    held = instance_dict(obj)
    return {
        **_resource_config(held.get("compute")),
        "spot": _path(held, "compute", "enable_managed_spot_training"),
        "max_run_s": _path(held, "stopping_condition", "max_runtime_in_seconds"),
        "max_wait_s": _path(held, "stopping_condition", "max_wait_time_in_seconds"),
        "checkpoint_s3_uri": _path(held, "checkpoint_config", "s3_uri"),
        "entry_point": _path(held, "source_code", "entry_script"),
        "source_dir": _path(held, "source_code", "source_dir"),
        "image_uri": held.get("training_image"),
        "role": held.get("role"),
        "subnets": _path(held, "networking", "subnets"),
        "security_group_ids": _path(held, "networking", "security_group_ids"),
        "output_kms_key": _path(held, "output_data_config", "kms_key_id"),
        "inputs": _named_inputs(arguments.get("input_data_config"), "channel_name", "data_source"),
    }


def _resource_config(config) -> dict:
    """sagemaker-core's `ResourceConfig` (v3's `Compute`) and processing's `ClusterConfig`."""
    return _attributes(config, "instance_type", "instance_count", volume_size_gb="volume_size_in_gb",
                       volume_kms_key="volume_kms_key_id")  # fmt: skip


def _builder(obj, arguments: dict) -> dict:
    """v3's `ModelBuilder.deploy` to an endpoint."""
    held = instance_dict(obj)
    return {
        "instance_type": _given(arguments.get("instance_type"), held.get("instance_type")),
        "instance_count": arguments.get("initial_instance_count"),
        "image_uri": held.get("image_uri"),
        "role": _given(arguments.get("role"), held.get("role_arn")),
    }


def _resource_parameters(job) -> dict:
    """A sagemaker-core resource as its wait last refreshed it."""
    held = instance_dict(job)
    configs = (held.get("resource_config"), _path(held, "processing_resources", "cluster_config"),
               held.get("transform_resources"))  # fmt: skip
    return {
        **_resource_config(next((config for config in configs if instance_dict(config)), None)),
        "max_run_s": _path(held, "stopping_condition", "max_runtime_in_seconds"),
        "role": held.get("role_arn"),
    }


def _mode_is(name: str, field: str):
    return lambda obj, arguments: instance_dict(instance_dict(obj).get(field)).get("_name_") == name


def _to_endpoint(obj, arguments: dict) -> bool:
    """v3's `ModelBuilder.deploy` in `SAGEMAKER_ENDPOINT` mode (a batch transform config makes a transform job)."""
    transform = type(arguments.get("inference_config")).__name__ == "BatchTransformInferenceConfig"
    return _mode_is("SAGEMAKER_ENDPOINT", "mode")(obj, arguments) and not transform


def _attribute(name: str):
    return lambda obj: instance_dict(obj).get(name)


def _argument_or_attribute(name: str):
    return lambda obj, arguments: _given(arguments.get(name), instance_dict(obj).get(name))


def _job_name(job) -> str | None:
    return _text(instance_dict(job).get("job_name"))


def _training_job_name(job) -> str | None:
    return _text(instance_dict(job).get("training_job_name"))


KINDS = {
    "fit": Kind("training", _attribute("latest_training_job"), _job_name, _estimator),
    "process": Kind("processing", _attribute("latest_job"), _job_name, _processor),
    "transform": Kind("transform", _attribute("latest_transform_job"), _job_name, _transformer),
    "deploy": Kind("endpoint", _attribute("endpoint_name"), _text, _model, named_by="endpoint_name",
                   instance_type=lambda obj, arguments: arguments.get("instance_type")),
    "tune": Kind("tuning", _attribute("latest_tuning_job"), _job_name, _tuner,
                 instance_type=lambda obj, arguments: instance_dict(_tuned_estimator(obj)).get("instance_type"),
                 session=lambda obj: instance_dict(_tuned_estimator(obj)).get("sagemaker_session")),
    "train": Kind("training", lambda obj: _private(obj).get("_latest_training_job"), _training_job_name, _trainer,
                  managed=_mode_is("SAGEMAKER_TRAINING_JOB", "training_mode"),
                  named_in_frame=(("training_request", "training_job_name"), ("args", "training_job_name")),
                  instance_type=lambda obj, arguments: _path(obj, "compute", "instance_type")),
    "serve": Kind("endpoint", _attribute("endpoint_name"), _text, _builder, named_by="endpoint_name",
                  managed=_to_endpoint, instance_type=_argument_or_attribute("instance_type")),
}  # fmt: skip
"""The entry points that run as managed jobs, by their kind (agent.guest.patches); `predict` is not one."""
