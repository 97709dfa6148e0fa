"""`smdiag health` (train, deploy and test the seed's three experiments) and `smdiag data` (their dataset)."""

from __future__ import annotations

import contextlib
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from agent.cli.base_command import Outcome, command_group, execute
from agent.cli.cmdoptions import FrameworksOption, JsonFlag, NewPathOption
from agent.cli.inputs import chosen_frameworks
from agent.cli.progress_bars import health_progress
from agent.errors import Failed

if TYPE_CHECKING:
    from agent.settings import Settings

# Library modules are imported inside the commands: start-up time (see agent.cli.commands).


PlotOption = NewPathOption("--plot", "FILE.png", "Draw the data and each model's line to FILE.png.")


def health(
    ctx: typer.Context,
    framework: FrameworksOption = "all",
    mode: Annotated[
        str, typer.Option("--mode", metavar="MODE", help="auto, native (no Docker, no AWS) or local (the SDK).")
    ] = "auto",
    sdk: Annotated[
        str,
        typer.Option("--sdk", metavar="MAJOR", help="Local mode's SDK: v2, v3 or auto (the one installed here)."),
    ] = "auto",
    quick: Annotated[bool, typer.Option("--quick", help="Few epochs, quick bar (RMSE <= 400).")] = False,
    plot: PlotOption = None,
    scripts: Annotated[
        Path | None,
        typer.Option("--scripts", metavar="DIR", help="Run your copies of the entry scripts from this directory."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Train, deploy and test the seed's three experiments (TensorFlow, PyTorch, scikit-learn).

    Exit 0 when every framework meets the bar, 1 otherwise, 2 on bad input.
    """

    def action(settings: Settings) -> Outcome:
        from agent.engine import Engine
        from agent.experiments.health import ENGINE_TIMEOUT_S, format_health, run_health

        chosen = chosen_frameworks(framework)
        engine = Engine.for_settings(settings, timeout=ENGINE_TIMEOUT_S)
        with _interrupted_by_sigterm(), health_progress(chosen) as progress, engine:
            report = run_health(chosen, mode, quick, scripts, settings, engine, plot, progress, sdk)
        return (0 if report["passed"] else 1), report, format_health(report)

    execute(ctx, as_json, action)


@contextlib.contextmanager
def _interrupted_by_sigterm() -> Iterator[None]:
    """SIGTERM ends the command as Ctrl-C does, so that its cleanup runs (no work directory left behind)."""

    def interrupt(_signum, _frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


data_app = command_group("The seed's synthetic dataset.")
OutOption = NewPathOption("--out", "DIR", "Directory for the four CSV files.")


@data_app.command("generate", short_help="Write the dataset's four CSV files")
def data_generate(
    ctx: typer.Context,
    out: OutOption,
    as_json: JsonFlag = False,
) -> None:
    """Write all_data, training_data, validation_data and test_data CSVs (y, x; no header). Exit 0."""

    def action(settings: Settings) -> Outcome:
        from agent.experiments import data
        from agent.inputs import output_dir, packages

        packages("data generate", data.MODULES)
        output_dir(out, "--out")
        rows = data.write(out)
        return 0, {"out": str(out), "rows": rows}, "\n".join(f"{out / name}: {n} rows" for name, n in rows.items())

    execute(ctx, as_json, action)


@data_app.command("upload", short_help="Generate the dataset and upload it to S3")
def data_upload(
    ctx: typer.Context,
    bucket: Annotated[str, typer.Option("--bucket", metavar="BUCKET", help="S3 bucket.")],
    prefix: Annotated[
        str, typer.Option("--prefix", metavar="PREFIX", help="Key prefix; files go to PREFIX/synthetic/.")
    ] = "chapter03",
    endpoint_url: Annotated[
        str | None, typer.Option("--endpoint-url", metavar="URL", help="S3-compatible endpoint.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Generate the dataset and upload it to s3://BUCKET/PREFIX/synthetic/. Exit 0, 1 when S3 refuses."""

    def action(settings: Settings) -> Outcome:
        from botocore.exceptions import BotoCoreError, ClientError

        from agent.experiments import data
        from agent.inputs import packages

        data.check_destination(bucket, endpoint_url)
        packages("data upload", data.MODULES)
        with tempfile.TemporaryDirectory() as work:
            data.write(Path(work))
            try:
                uris = data.upload(Path(work), bucket, prefix, endpoint_url)
            except (BotoCoreError, ClientError) as exc:
                raise Failed(
                    f"uploading to s3://{bucket}/{prefix} failed: {exc}", "check the bucket and your AWS credentials"
                ) from None
        return 0, {"uploaded": uris}, "\n".join(uris)

    execute(ctx, as_json, action)
