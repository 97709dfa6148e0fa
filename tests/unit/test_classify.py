"""The pure classification of failure evidence into a category, a summary and a hint."""

import pytest

from agent.failures.catalog import CATALOG, REFUSALS, REMOTE
from agent.failures.classify import classify
from agent.failures.types import Evidence


def evidence(**changes):
    """The evidence, written as a report holds it."""
    base = {
        "call": {"kind": "fit"},
        "exception": {"type": "RuntimeError", "message": "Failed to run: [...]. Process exited with code: 1"},
        "docker": {},
        "pull_errors": [],
        "containers": [],
        "compose_output": [],
        "serving_failed": False,
    }
    return Evidence.from_dict({**base, **changes})


def container(logs, exit_code=1, oom=False, error=None):
    return {"name": "abc-algo-1-x", "exit_code": exit_code, "oom_killed": oom, "error": error, "logs": logs}


@pytest.mark.parametrize(
    "changes,category,in_summary",
    [
        (
            {"docker": {"error": "cannot reach the Docker engine: Connection refused"}},
            "daemon_down",
            "Connection refused",
        ),
        (
            {"exception": {"type": "ImportError", "message": "Docker Compose is not installed. Local Mode ..."}},
            "compose_missing",
            "Compose",
        ),
        (
            {"pull_errors": [{"image": "x", "error": "write /pad.bin: no space left on device"}]},
            "disk_full",
            "no space left on device",
        ),
        (
            {"containers": [container(["OSError: [Errno 28] No space left on device: '/tmp/x'"])]},
            "container_disk_full",
            "Errno 28",
        ),
        (
            {"pull_errors": [{"image": "x", "error": "Head https://1.dkr.ecr...: no basic auth credentials"}]},
            "pull_auth",
            "no basic auth credentials",
        ),
        (
            {"pull_errors": [{"image": "x", "error": "manifest unknown: manifest unknown"}]},
            "image_not_found",
            "unknown",
        ),
        (
            {"pull_errors": [{"image": "x", "error": "dial tcp 127.0.0.1:1: connect: connection refused"}]},
            "registry_unreachable",
            "connection refused",
        ),
        ({"containers": [container(["Killed"], exit_code=137)]}, "oom_killed", "exit 137"),
        (
            {
                "containers": [
                    container([], exit_code=None, error="listen tcp4 0.0.0.0:8080: bind: address already in use")
                ]
            },
            "port_in_use",
            "address already in use",
        ),
        ({"containers": [container(["training...", "segfault"], exit_code=139)]}, "script_error", "exit code 139"),
        ({}, "unknown", "Process exited with code: 1"),
    ],
)
def test_categories(changes, category, in_summary):
    diagnosis = classify(evidence(**changes))
    assert diagnosis.category == category and in_summary in diagnosis.summary and diagnosis.hint


def test_the_user_traceback_is_found_even_as_the_last_lines():
    logs = [
        "epoch 1 loss 3.2",
        "Traceback (most recent call last):",
        '  File "/opt/ml/code/train.py", line 12, in <module>',
        "    main()",
        '  File "/opt/ml/code/train.py", line 3, in main',
        "    from numpy.random import seeds",
        "ImportError: cannot import name 'seeds' from 'numpy.random'",
    ]
    diagnosis = classify(evidence(containers=[container(logs)]))
    assert diagnosis.category == "script_error"
    assert diagnosis.summary.endswith("ImportError: cannot import name 'seeds' from 'numpy.random' "
                                      "(/opt/ml/code/train.py, line 3)")  # fmt: skip


def test_a_deploy_whose_container_crashed_is_serving_crashed_with_the_cause():
    logs = ["Traceback (most recent call last):", '  File "/opt/ml/code/inference.py", line 9', "KeyError: 'model_fn'"]
    diagnosis = classify(
        evidence(
            call={"kind": "deploy"},
            exception={"type": "RuntimeError", "message": "Giving up, endpoint didn't launch correctly"},
            containers=[container(logs, exit_code=1)],
            serving_failed=True,
        )
    )
    assert diagnosis.category == "serving_crashed" and "KeyError: 'model_fn'" in diagnosis.summary


@pytest.mark.parametrize("kind", ["transform", "serve"])
def test_a_batch_transform_or_v3_model_server_that_crashed_is_serving_crashed(kind):
    logs = ["Traceback (most recent call last):", '  File "/opt/ml/code/inference.py", line 3', "ImportError: no model"]
    diagnosis = classify(
        evidence(
            call={"kind": kind},
            exception={"type": "RuntimeError", "message": "Failed to run: [...]. Process exited with code: 1"},
            containers=[container(logs, exit_code=1)],
        )
    )
    assert diagnosis.category == "serving_crashed" and "ImportError: no model" in diagnosis.summary


def test_disk_full_hint_names_the_commands_that_fix_it():
    hint = classify(evidence(pull_errors=[{"image": "x", "error": "no space left on device"}])).hint
    assert "smdiag diskguard once" in hint and "smdiag bootstrap" in hint


def named(name="abc-algo-1-x", logs=(), exit_code=1, status="exited", oom=False, error=None, limits=None):
    return {"name": name, "status": status, "exit_code": exit_code, "oom_killed": oom, "error": error,
            "limits": limits or {}, "logs": list(logs)}  # fmt: skip


def raised(kind, message, **more):
    return {"exception": {"type": kind, "message": message, **more}}


DEPLOY = {"call": {"kind": "deploy"}, "serving_failed": True}
GAVE_UP = raised("RuntimeError", "Giving up, endpoint didn't launch correctly")
MIB = 1024 * 1024

# The real texts of ../shared/FAILURES.md, each with the source it reaches smdiag through.
REAL_CASES = {
    "pull-nospace (sagemaker-python-sdk#1105)": (
        {"pull_errors": [{"image": "x", "error": "failed to register layer: Error processing tar file(exit status 1): "
                                                 "write /usr/lib/x.so: no space left on device"}]},
        "disk_full", "failed to register layer",
    ),
    "transform-nospace (amazon-sagemaker-local-mode#14)": (
        raised("OSError", "[Errno 28] No space left on device: '/tmp/tmpa1b2/output/data.out'", errno=28),
        "container_root_full", "No space left on device",
    ),
    "container's own layer full": (
        {"containers": [named(logs=["OSError: [Errno 28] No space left on device: '/scratch/x'"])],
         "disks": [{"role": "docker_root", "percent": 40.0}, {"role": "container_root", "percent": 10.0}]},
        "container_disk_full", "/scratch/x",
    ),
    "model written into a full container_root": (
        {"containers": [named(logs=["dd: error writing '/opt/ml/model/weights': No space left on device"])],
         "disks": [{"role": "docker_root", "percent": 40.0}, {"role": "container_root", "percent": 100.0}]},
        "container_root_full", "/opt/ml/model/weights",
    ),
    "data-root full under a running container": (
        {"containers": [named(logs=["write /var/log/x: no space left on device"])],
         "disks": [{"role": "docker_root", "percent": 99.0}, {"role": "container_root", "percent": 10.0}]},
        "disk_full", "data-root",
    ),
    "dataloader /dev/shm (pytorch)": (
        {"containers": [named(limits={"shm_size": 64 * MIB}, logs=[
            "RuntimeError: DataLoader worker (pid 42) is killed by signal: Bus error. It is possible that dataloader's "
            "workers are out of shared memory. Please try to raise your shared memory limit.",
            "ERROR: Unexpected bus error encountered in worker. This might be caused by insufficient shared memory "
            "(shm)."])]},
        "shm_too_small", "shm_size 64 MiB",
    ),
    "studio-no-docker-cli (amazon-sagemaker-mlflow-fargate#3)": (
        raised("FileNotFoundError", "[Errno 2] No such file or directory: 'docker'", errno=2),
        "docker_missing", "No such file or directory: 'docker'",
    ),
    "studio classic: no docker at all (sagemaker-python-sdk#1842)": (
        {**raised("ImportError", "Docker Compose is not installed. Local Mode features will not work properly."),
         "compose": {"command": None, "docker_cli": None, "plugin_version": None, "standalone": None}},
        "docker_missing", "no docker CLI",
    ),
    "engine-down (sagemaker-python-sdk#137)": (
        {"docker": {"error": "cannot reach the Docker engine at unix:///var/run/docker.sock: "
                             "No such file or directory"},
         **raised("RuntimeError", "Failed to run: ['docker-compose', ...]")},
        "daemon_down", "No such file or directory",
    ),
    "engine-down, compose's own line": (
        {"compose_output": ["Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                            "Is the docker daemon running?"]},
        "daemon_down", "Is the docker daemon running?",
    ),
    "socket permission": (
        {"docker": {"error": "cannot reach the Docker engine at unix:///var/run/docker.sock: Permission denied"}},
        "socket_permission", "Permission denied",
    ),
    "socket permission, compose's own line": (
        {"compose_output": ["permission denied while trying to connect to the Docker daemon socket at "
                            "unix:///var/run/docker.sock: Get \"http://%2Fvar%2Frun%2Fdocker.sock/v1.24/version\""]},
        "socket_permission", "docker.sock",
    ),
    "docker-py in the SDK, no permission (SDK v3)": (
        raised("DockerException", "Error while fetching server API version: ('Connection aborted.', "
                                  "PermissionError(13, 'Permission denied'))"),
        "socket_permission", "PermissionError(13",
    ),
    "docker-py in the SDK, no engine (SDK v3)": (
        raised("DockerException", "Error while fetching server API version: ('Connection aborted.', "
                                  "FileNotFoundError(2, 'No such file or directory'))"),
        "daemon_down", "FileNotFoundError(2",
    ),
    "compose-plugin-only (sagemaker-python-sdk#3225)": (
        {**raised("ImportError", "'docker-compose' is not installed. Local Mode features will not work properly."),
         "compose": {"command": None, "docker_cli": "/usr/bin/docker", "plugin_version": None, "standalone": None}},
        "compose_missing", "docker-compose",
    ),
    "compose-v5 (sagemaker-python-sdk#5739)": (
        {**raised("ImportError", "Docker Compose is not installed. Local Mode features will not work properly."),
         "compose": {"command": None, "docker_cli": "/usr/bin/docker",
                     "plugin_version": "Docker Compose version v5.0.1", "standalone": None}},
        "compose_unrecognised", "v5.0.1",
    ),
    "compose-no-v (sagemaker-python-sdk#4137)": (
        {**raised("ImportError", "Docker Compose is not installed. Local Mode features will not work properly."),
         "compose": {"command": None, "docker_cli": "/usr/bin/docker",
                     "plugin_version": "Docker Compose version 2.21.0", "standalone": None}},
        "compose_unrecognised", "2.21.0",
    ),
    "compose too old for deploy: (amazon-sagemaker-local-mode#36)": (
        {"compose_output": ["ERROR: The Compose file '/tmp/tmpx/docker-compose.yaml' is invalid because:",
                            "Unsupported config option for services.algo-1-xyzab: 'deploy'"]},
        "compose_too_old", "'deploy'",
    ),
    "network label (amazon-sagemaker-examples#4453)": (
        {"compose_output": ['network sagemaker-local was found but has incorrect label com.docker.compose.network '
                            'set to ""']},
        "network_conflict", "incorrect label",
    ),
    "image not found: the registry's line, not Pulling": (
        {"compose_output": ["Pulling algo-1-abcde (127.0.0.1:5000/x/absent:9)...",
                            "ERROR: manifest for 127.0.0.1:5000/x/absent:9 not found: manifest unknown: "
                            "manifest unknown"]},
        "image_not_found", "manifest unknown",
    ),
    "SDK v3 deploy_local without ECR login (sagemaker-python-sdk#5925)": (
        raised("ValueError", "Could not find image 763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.3"),
        "image_not_found", "Could not find image",
    ),
    "ecr-pull-denied (amazon-sagemaker-examples#858)": (
        {"pull_errors": [{"image": "x", "error": "Error response from daemon: pull access denied for "
                          "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner, repository does not exist or "
                          "may require 'docker login': denied: User: arn:aws:sts::1:assumed-role/r is not authorized "
                          "to perform: ecr:BatchGetImage"}]},
        "pull_auth", "pull access denied",
    ),
    "exec-format (deep-learning-containers#2144)": (
        {"containers": [named(logs=["exec /usr/local/bin/train: exec format error"])]},
        "wrong_architecture", "exec format error",
    ),
    "GPU without the NVIDIA runtime": (
        {"containers": [named(exit_code=None, status="created", error='could not select device driver "" with '
                              'capabilities: [[gpu]]')],
         "compose_output": ["ERROR: for algo-1-abcde  Cannot start service algo-1-abcde: could not select device "
                            'driver "" with capabilities: [[gpu]]']},
        "container_not_started", "could not select device driver",
    ),
    "refused mount (sagemaker-python-sdk#2022)": (
        {"compose_output": ["ERROR: for algo-1-abcde  Cannot start service algo-1-abcde: Mounts denied:",
                            "The path /opt/ml/metadata is not shared from the host and is not known to Docker."]},
        "container_not_started", "Mounts denied",
    ),
    "port held by another endpoint": (
        {**DEPLOY, **GAVE_UP, "containers": [named(exit_code=None, status="created", error="driver failed programming "
         "external connectivity on endpoint x: Bind for 0.0.0.0:8080 failed: port is already allocated")]},
        "port_in_use", "port is already allocated",
    ),
    "oom (sagemaker-python-sdk#1876)": (
        {"containers": [named(exit_code=137, oom=True, limits={"memory": 32 * MIB}, logs=["allocating"])]},
        "oom_killed", "memory limit 32 MiB",
    ),
    "serving crashed at start": (
        {**DEPLOY, **GAVE_UP, "containers": [named(exit_code=1, logs=[
            "Traceback (most recent call last):", '  File "/usr/local/bin/dockerd-entrypoint.py", line 21',
            "ImportError: libcuda.so.1: cannot open shared object file"])]},
        "serving_crashed", "libcuda.so.1",
    ),
    "model_fn failed inside MMS's log4j lines": (
        {**DEPLOY, **GAVE_UP, "containers": [named(status="running", exit_code=None, logs=[
            "2020-06-01 10:00:00,001 [INFO ] W-9000-model-stdout com.amazonaws.ml.mms.wlm.WorkerLifeCycle - "
            "Traceback (most recent call last):",
            '2020-06-01 10:00:00,002 [INFO ] W-9000-model-stdout com.amazonaws.ml.mms.wlm.WorkerLifeCycle -   '
            'File "/opt/ml/model/code/inference.py", line 14, in model_fn',
            "2020-06-01 10:00:00,003 [INFO ] W-9000-model-stdout com.amazonaws.ml.mms.wlm.WorkerLifeCycle - "
            "FileNotFoundError: [Errno 2] No such file or directory: '/opt/ml/model/model.pth'",
            "2020-06-01 10:00:00,004 [INFO ] W-9000-model com.amazonaws.ml.mms.wlm.WorkerThread - Backend response "
            "time: 0",
            "2020-06-01 10:00:00,005 [WARN ] W-9000-model com.amazonaws.ml.mms.wlm.WorkerLifeCycle - Worker died."])]},
        "model_fn_failed", "FileNotFoundError: [Errno 2] No such file or directory: '/opt/ml/model/model.pth'",
    ),
    "training-image-served (sagemaker-pytorch-training-toolkit#139)": (
        {**DEPLOY, **GAVE_UP, "containers": [named(logs=[
            "Traceback (most recent call last):", '  File "/usr/local/bin/serve", line 5, in <module>',
            "ModuleNotFoundError: No module named 'sagemaker_pytorch_container.serving'"])]},
        "training_image_served", "sagemaker_pytorch_container.serving",
    ),
    "training image served: no nginx (#144)": (
        {**DEPLOY, **GAVE_UP, "containers": [named(logs=[
            "FileNotFoundError: [Errno 2] No such file or directory: 'nginx': 'nginx'"])]},
        "training_image_served", "nginx",
    ),
    "serving slower than the SDK's 120 s": (
        {**DEPLOY, **GAVE_UP, "containers": [named(status="running", exit_code=None, logs=["loading a big model"])]},
        "serving_slow", "still starting",
    ),
    "user-script (amazon-sagemaker-examples#2208)": (
        {"containers": [named(exit_code=1, logs=[
            "2021-03-01 10:00:00,000 sagemaker-training-toolkit ERROR    Reporting training FAILURE",
            'ExecuteUserScriptError: Command "/usr/bin/python train-coach.py --RLCOACH_PRESET preset" '
            "exited with code 255"])]},
        "script_error", "exited with code 255",
    ),
    "requirements-install (sagemaker-training-toolkit#19)": (
        {"containers": [named(logs=[
            'InstallModuleError: Command "/usr/bin/python -m pip install -U . -r requirements.txt"'])]},
        "requirements_failed", "InstallModuleError",
    ),
    "in-container-403 (sagemaker-python-sdk#442)": (
        {"containers": [named(logs=[
            "Traceback (most recent call last):",
            '  File "/usr/local/lib/python3.8/site-packages/sagemaker_containers/_files.py", line 91, in s3_download',
            "botocore.exceptions.ClientError: An error occurred (403) when calling the HeadObject operation: "
            "Forbidden"])]},
        "container_credentials", "(403) when calling the HeadObject operation",
    ),
    "no credentials in the container": (
        {"containers": [named(logs=["botocore.exceptions.NoCredentialsError: Unable to locate credentials"])]},
        "container_credentials", "NoCredentialsError",
    ),
    "resourceconfig.json missing (sagemaker-training-toolkit#193)": (
        {"containers": [named(logs=[
            "Traceback (most recent call last):",
            '  File "/usr/local/lib/python3.6/site-packages/sagemaker_training/environment.py", line 96',
            "FileNotFoundError: [Errno 2] No such file or directory: '/opt/ml/input/config/resourceconfig.json'"])]},
        "sdk_container_mismatch", "resourceconfig.json",
    ),
    "execution-role (sagemaker-python-sdk#300)": (
        raised("ValueError", "The current AWS identity is not a role: arn:aws:iam::111111111111:user/me, therefore "
                             "it cannot be used as a SageMaker execution role"),
        "sdk_config", "is not a role",
    ),
    "local files without local_code": (
        raised("ValueError", "file:// output paths are only supported in Local Mode"),
        "sdk_config", "file://",
    ),
    "a hosted job used from a LocalSession (sagemaker-python-sdk#929)": (
        raised("ClientError", "An error occurred (ValidationException) when calling the describe_training_job "
                              "operation: Could not find local training job"),
        "not_supported_locally", "Could not find local training job",
    ),
    "cleanup-permission (sagemaker-python-sdk#2647)": (
        raised("PermissionError", "[Errno 13] Permission denied: '/tmp/tmpq1w2/output/data/model.bin'", errno=13,
               traceback='Traceback (most recent call last):\n  File "/env/lib/python3.11/site-packages/sagemaker/'
                         'local/utils.py", line 77, in move_to_destination\n    shutil.rmtree(path)\n'
                         "PermissionError: [Errno 13] Permission denied: '/tmp/tmpq1w2/output/data/model.bin'\n"),
        "host_permission", "sagemaker/local/utils.py, line 77",
    ),
    "cleanup-permission as shutil.Error (seen on the bed, SDK 2.257.7 copying artifacts out)": (
        raised("Error", "[('/tmp/tmpab/model/model.bin', '/tmp/out/model.bin', \"[Errno 13] Permission denied: "
               "'/tmp/tmpab/model/model.bin'\")]"),
        "host_permission", "Permission denied",
    ),
    "ECR login without AWS credentials (seen on the bed and by a first-time user, SDK 2.257.7)": (
        raised("NoCredentialsError", "Unable to locate credentials",
               traceback='  File "/env/lib/python3.11/site-packages/sagemaker/local/image.py", line 1210, in '
                         "_ecr_login_if_needed\nbotocore.exceptions.NoCredentialsError: Unable to locate credentials"),
        "aws_credentials", "to log in to ECR",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", REAL_CASES)
def test_the_real_failures_are_named_with_their_evidence_line(case):
    changes, category, quoted = REAL_CASES[case]
    diagnosis = classify(evidence(**changes))
    assert (diagnosis.category, quoted in diagnosis.summary) == (category, True), diagnosis.summary
    assert diagnosis.hint


def test_every_category_has_an_actionable_hint():
    categories = {category for _changes, category, _quoted in REAL_CASES.values()}
    studio_refusals = {refusal.category for refusal in REFUSALS}  # their real texts are in test_studio.py
    local = set(CATALOG) - studio_refusals - set(REMOTE)  # managed jobs' real texts: test_classify_remote.py
    assert categories | {"unknown", "image_not_found", "registry_unreachable"} == local


def test_a_scripts_permission_denied_or_401_is_the_scripts_not_the_registrys():
    logs = [
        "requests.exceptions.HTTPError: 401 Client Error: Unauthorized for url: https://api.example.com/data",
        "PermissionError: [Errno 13] Permission denied: '/opt/ml/model/weights.bin'",
    ]
    diagnosis = classify(evidence(containers=[named(logs=logs)]))
    assert diagnosis.category == "script_error" and "Permission denied: '/opt/ml/model" in diagnosis.summary
    streamed = evidence(compose_output=["Creating algo-1-x ... done"], containers=[named(logs=logs)])
    assert classify(streamed).category == "script_error"


def test_a_container_that_prints_manifest_unknown_is_not_an_image_not_found():
    diagnosis = classify(evidence(containers=[named(logs=["fetching weights: manifest unknown", "exit"])]))
    assert diagnosis.category == "script_error"


def test_a_traceback_ending_inside_a_library_is_not_blamed_on_the_script():
    logs = [
        "Traceback (most recent call last):",
        '  File "/opt/ml/code/train.py", line 30, in <module>',
        "    model.fit(x, y)",
        '  File "/usr/local/lib/python3.10/site-packages/sklearn/base.py", line 1151, in wrapper',
        "ValueError: Input X contains NaN.",
    ]
    diagnosis = classify(evidence(containers=[named(logs=logs)]))
    assert diagnosis.category == "script_error"
    assert "raised inside /usr/local/lib/python3.10/site-packages/sklearn/base.py, line 1151" in diagnosis.summary
    assert "called from /opt/ml/code/train.py, line 30" in diagnosis.summary
    assert "not on a line of your script" in diagnosis.hint


def test_a_model_servers_error_line_is_read_through_its_log4j_prefix():
    logs = [
        "2024-01-01T10:00:00,100 [INFO ] W-9000-model_1.0-stdout MODEL_LOG - Traceback (most recent call last):",
        '2024-01-01T10:00:00,101 [INFO ] W-9000-model_1.0-stdout MODEL_LOG -   File "/opt/ml/model/code/'
        'inference.py", line 3, in <module>',
        "2024-01-01T10:00:00,102 [INFO ] W-9000-model_1.0-stdout MODEL_LOG - ModuleNotFoundError: No module named "
        "'transformers'",
        "2024-01-01T10:00:00,200 [INFO ] epollEventLoopGroup-5-1 org.pytorch.serve.wlm.WorkerThread - 9000 Worker "
        "disconnected. WORKER_STARTED",
    ]
    diagnosis = classify(evidence(**DEPLOY, **GAVE_UP, containers=[named(logs=logs)]))
    assert diagnosis.category == "serving_crashed"
    assert "ModuleNotFoundError: No module named 'transformers' (/opt/ml/model/code/inference.py, line 3)" in (
        diagnosis.summary
    )


def test_the_scripts_traceback_is_told_not_the_toolkits_that_follows_it():
    logs = [
        "Traceback (most recent call last):",
        '  File "/opt/ml/code/train.py", line 7, in <module>',
        "ZeroDivisionError: division by zero",
        "Traceback (most recent call last):",
        '  File "/usr/local/lib/python3.10/site-packages/sagemaker_training/trainer.py", line 88, in train',
        'sagemaker_training.errors.ExecuteUserScriptError: ExecuteUserScriptError: Command "/usr/bin/python train.py"',
    ]
    diagnosis = classify(evidence(containers=[named(logs=logs)]))
    assert diagnosis.summary.endswith("ZeroDivisionError: division by zero (/opt/ml/code/train.py, line 7)")


def test_a_script_whose_own_port_is_taken_is_the_scripts_error_not_the_serving_port():
    logs = ["RuntimeError: The server socket has failed to listen on any local network address. port: 29500, "
            "useIpv6: 0, code: -98, name: EADDRINUSE, message: address already in use"]  # fmt: skip
    assert classify(evidence(containers=[named(logs=logs)])).category == "script_error"


ENGINE_DOWN = {"error": "cannot reach the Docker engine at unix:///var/run/docker.sock: Connection refused"}


def test_the_sdks_own_docker_cli_call_on_a_stopped_engine_is_daemon_down():
    """SDK v2 asks the docker CLI whether it has an ECR image before it logs in (`docker images -q`); with the
    engine down its `_check_output` raises a bare Exception (seen on the bed, health --mode local): the call
    went to the engine, so the engine's state is the cause."""
    image = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
    exception = {"type": "Exception", "message": f"Failed to run docker,images,-q,{image}"}
    diagnosis = classify(evidence(call={"kind": "fit", "sdk": "v2"}, exception=exception, docker=ENGINE_DOWN))
    assert diagnosis.category == "daemon_down" and diagnosis.remedy.to_dict() == {"name": "start_engine"}


@pytest.mark.parametrize(
    "call, exception",
    [
        ({"kind": "fit", "sdk": "v2"}, {"type": "KeyError", "message": "'InstanceType'"}),  # instance_groups in v2
        ({"kind": "serve", "sdk": "v3"},
         {"type": "ValueError", "message": "Cannot detect required model or inference spec"}),  # ModelBuilder.build
    ],
)  # fmt: skip
def test_an_sdk_error_raised_before_the_engine_is_the_sdks_whatever_the_engines_state(call, exception):
    """Issue 30: the engine being down is evidence beside the diagnosis, not the cause of an error the SDK
    raised before it went to the engine."""
    diagnosis = classify(evidence(call=call, exception=exception, docker=ENGINE_DOWN))
    assert diagnosis.category == "sdk_config" and exception["message"] in diagnosis.summary
    assert diagnosis.remedy is None and "start" not in diagnosis.hint


@pytest.mark.parametrize(
    "exception",
    [
        {"type": "RuntimeError", "message": "Failed to run: ['docker-compose', '-f', '/tmp/x/docker-compose.yaml', "
                                            "'up', '--build', '--abort-on-container-exit']"},
        {"type": "RuntimeError", "message": "Docker is not available or not running. Please ensure Docker is "
                                            "installed and running. Error: Error while fetching server API version: "
                                            "('Connection aborted.', ConnectionRefusedError(111, 'Connection "
                                            "refused'))"},  # v3's ModelBuilder
        {"type": "CalledProcessError",
         "message": "Command '['docker', 'pull', 'x:1']' returned non-zero exit status 1."},  # v2's pull
    ],
)  # fmt: skip
def test_a_call_that_went_to_a_down_engine_is_daemon_down(exception):
    diagnosis = classify(evidence(exception=exception, docker=ENGINE_DOWN))
    assert diagnosis.category == "daemon_down" and "Connection refused" in diagnosis.summary
    assert diagnosis.remedy.name == "start_engine"


BIND_REFUSED = (
    "driver failed programming external connectivity on endpoint tmpx-algo-1-ab (3f2a): "
    "Bind for 0.0.0.0:8080 failed: port is already allocated"
)
"""The engine's State.Error for a serving container whose port an earlier endpoint holds."""


def test_a_deploy_answered_by_another_endpoint_names_the_holder_and_its_own_container():
    """Issue 30: the SDK called the deploy a success; the report says whose endpoint answered, and which
    container of this call could not start."""
    own = named(name="tmpx-algo-1-ab", status="created", exit_code=None, error=BIND_REFUSED)
    answered = {"call": {"kind": "deploy", "sdk": "v2"}, "exception": {"type": "", "message": "deploy() returned"},
                "containers": [own], "answered_by": ["tmpy-algo-1-cd"]}  # fmt: skip
    diagnosis = classify(evidence(**answered))
    assert diagnosis.category == "port_in_use" and diagnosis.remedy.to_dict() == {"name": "leftover_containers",
                                                                                  "port": 8080}  # fmt: skip
    assert "answered by tmpy-algo-1-cd" in diagnosis.summary and "container tmpx-algo-1-ab" in diagnosis.summary
    refused = classify(evidence(call={"kind": "deploy", "sdk": "v2"}, containers=[own]))
    assert refused.summary == f"the serving port is taken: {BIND_REFUSED}"


ECR_LOGIN_TRACEBACK = """Traceback (most recent call last):
  File "/opt/conda/lib/python3.10/site-packages/sagemaker/local/image.py", line 1210, in _ecr_login_if_needed
    auth = ecr.get_authorization_token(registryIds=[image.split(".")[0]])
  File "/opt/conda/lib/python3.10/site-packages/botocore/auth.py", line 418, in add_auth
    raise NoCredentialsError()
botocore.exceptions.NoCredentialsError: Unable to locate credentials
"""


def test_no_credentials_for_the_sdks_ecr_login_is_aws_credentials_naming_the_image():
    """A local fit of an ECR image the engine does not have, in a kernel without AWS credentials: the SDK's
    own ECR login fails before any container (seen by a first-time user: it was `unknown`)."""
    image = "111111111111.dkr.ecr.us-east-1.amazonaws.com/smdiag/train:1"
    diagnosis = classify(evidence(
        call={"kind": "fit", "sdk": "v2", "images": [image]},
        exception={"type": "NoCredentialsError", "message": "Unable to locate credentials",
                   "traceback": ECR_LOGIN_TRACEBACK},
    ))  # fmt: skip
    assert diagnosis.category == "aws_credentials" and diagnosis.remedy is None
    assert f"to log in to ECR and pull {image}: NoCredentialsError: Unable to locate credentials" in diagnosis.summary
    assert "execution role" in diagnosis.hint and "images build" in diagnosis.hint
