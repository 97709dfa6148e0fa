"""`smdiag images build`: the frameworks' contract images for local mode, built offline."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from agent.cli.base_command import Outcome, command_group, execute
from agent.cli.cmdoptions import DockerHostOption, FrameworksOption, JsonFlag
from agent.cli.inputs import chosen_frameworks
from agent.cli.progress_bars import steps

if TYPE_CHECKING:
    from agent.settings import Settings

# Library modules are imported inside the commands: start-up time (see agent.cli.commands).

images_app = command_group(
    "SageMaker framework images for local mode, built offline (no registry) and tagged with the ECR URIs."
)


@images_app.command("build", short_help="Build the three frameworks' images, tagged for local mode")
def images_build(
    ctx: typer.Context,
    framework: FrameworksOption = "all",
    region: Annotated[
        str | None,
        typer.Option(
            "--region",
            metavar="REGION",
            help="Tag with this region's URIs (default: env AWS_DEFAULT_REGION, else us-east-1).",
        ),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Retag a URI that names an image smdiag did not build.")
    ] = False,
    docker_host: DockerHostOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Build the three frameworks' contract images (Debian python3 + the framework + `train`/`serve`), tagged
    with the exact URIs SDK v2 local mode resolves, so it never pulls. A no-op when they are current.

    Exit 0 when every image is ready, 1 when a build failed, 2 on bad input.
    """

    def action(settings: Settings) -> Outcome:
        from agent import frameworks, images
        from agent.engine import Engine

        chosen = chosen_frameworks(framework)
        engine = Engine.for_settings(settings.replace(docker_host=docker_host), timeout=images.ENGINE_TIMEOUT_S)
        with steps("images build") as step, engine:
            result = images.build(
                engine,
                chosen,
                region or frameworks.region(),
                settings.cache_dir / "images",
                replace,
                step,
            )
        return 0, result, images.format_result(result)

    execute(ctx, as_json, action)
