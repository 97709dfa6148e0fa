"""The guest: smdiag inside a user's Python process, where failures of the SageMaker SDK (v2 and v3) explain
themselves: local-mode calls, and managed (remote) jobs and endpoints.

`install()` (agent.guest.install; `import agent.autowrap` and `%load_ext agent` call it, the kernel hook
calls it at the first `import sagemaker`) patches, now or when the SDK is imported, what the installed SDK's
major has (agent.guest.patches). A local call that fails, including before any container runs, raises the
SDK's exception unchanged in type, with a one-line diagnosis as a note, a short summary on stderr, and a
report under `<state>/failures/` written by the recorder (agent.guest.handover). A managed call that fails
(a training, processing, transform or tuning job, an endpoint) gets the same, and there the guest only
watches the exception leave: what it hands over is read from the SDK object afterwards. Outside these, and
at any moment once `SMDIAG_DISABLE=1` is set (or the kernel hook disabled), every patched function calls
the SDK's original and nothing else; an error of ours is logged, never raised.

The modules, along the way of a call:
- `config`: whether the guest is on, where it reports, and how an error of its own is kept;
- `local`: is this call local? (plain attributes and arguments only); `remote`: else, is it a managed job's,
  and what does the SDK object hold of it once it raised; `calls`: the one wrapper of an SDK entry point;
  `capture`: what a captured call keeps, and the `FailureFacts` it becomes (`facts`);
- `taps_v2`: the SDK's compose-based local mode (v2's `sagemaker.local`, v3's `sagemaker.core.local`);
  `taps_v3`: v3's docker-py model servers;
- `patches`: the patch table per SDK major and the import hook; `install`: the one call that installs;
- `handover`: the hand-over to the recorder; `kernel_hook`: the stdlib-only loader the `.pth` imports.

What the guest may import: the standard library; the SDK's own dependencies, lazily where they are used
(docker-py for v3's model servers, urllib3 for the SDK's /ping, PyYAML for its config file); and, relatively,
`agent.container_logs` (standard library at module level). `smdiag kernels enable` copies this package with
those two modules of the agent into environments that do not have smdiag installed, so nothing else of the
agent may be imported here (`agent.statedir`, lazily, only where `import agent.autowrap` got us: see
`config.state_dir`). No module acts on import; only `install()` patches.
"""
