"""`smdiag doctor --fix`: the remedies doctor's problem records name, applied in a fixed order, then doctor
asked again. Which remedy a problem calls for is doctor's finding (its record's `remedy`), not decided here.
Also what doctor --fix would repair, for doctor's verdict and for `smdiag fix` when it has nothing to fix."""

from __future__ import annotations

from agent.engine import Engine
from agent.errors import BadInput, Failed
from agent.fix.registry import REMEDIES
from agent.fix.remedy import Confirm, Context, FixOptions
from agent.fix.run import NOTHING_TO_FIX, apply_remedy, check_options, load_report, run_fix
from agent.host.doctor import check_name, run_doctor
from agent.settings import Settings

DOCTOR_CHECKS = ("compose", "engine", "network", "docker_root")
"""The checks `doctor --fix` repairs (`--only`), in the order it repairs them."""
NETWORK_PROBE = "stale_network"
"""Doctor has no check of its own for the `sagemaker-local` network: whenever the engine answers, this
remedy looks (its plan is empty when the network is Compose's own or absent)."""
DOCTOR_FIX = "sudo smdiag doctor --fix"
"""The command a user runs to repair what doctor found (its remedies write where only root may)."""


def doctor_remedies(report: dict, only: set[str] | None, yes: bool) -> tuple[list[str], list[str]]:
    """(remedies to apply, suggestions) for what doctor found; `only` limits them to those checks; a remedy
    that restarts Docker is applied only with `yes`, else suggested. Pure."""
    found = {p["check"]: p["remedy"] for p in report["problems"] if p.get("remedy")}
    if report["engine"]["reachable"]:
        found["network"] = NETWORK_PROBE
    remedies, suggestions = [], []
    for check in DOCTOR_CHECKS:
        name = found.get(check)
        if name is None or (only is not None and check not in only):
            continue
        suggestion = REMEDIES[name].needs_yes
        if suggestion and not yes:
            suggestions.append(suggestion)
        else:
            remedies.append(name)
    return remedies, suggestions


def verdict(report: dict) -> dict:
    """Whether the host is ready for local mode, and how many of its problems `doctor --fix` repairs, with
    the command that does (--yes when one of them restarts Docker: it is applied only then). Pure."""
    repairable = [p for p in report["problems"] if p.get("remedy") and p["check"] in DOCTOR_CHECKS]
    restarts = any(REMEDIES[p["remedy"]].needs_yes for p in repairable)
    return {
        "ready": not report["problems"],
        "problems": len(report["problems"]),
        "repairable": len(repairable),
        "fix_command": (DOCTOR_FIX + (" --yes" if restarts else "")) if repairable else None,
        "restarts_docker": restarts,
        "repairs": [p["check"] for p in repairable],
    }


def doctor_offer(report: dict) -> str | None:
    """What `doctor --fix` would repair on this host, in a sentence; None when nothing. Pure."""
    found = verdict(report)
    if not found["repairable"]:
        return None
    count = found["repairable"]
    return (
        f"`{found['fix_command']}` repairs {count} problem{'s' if count > 1 else ''} `smdiag doctor` found "
        f"on this host: {', '.join(map(check_name, found['repairs']))}"
    )


def fix_or_offer(
    settings: Settings, engine: Engine, report_id: str | None, options: FixOptions, confirm: Confirm
) -> tuple[int, dict]:
    """`smdiag fix`: the remedy a report names (agent.fix.run). Where it has nothing to fix (no report
    recorded, or no automatic remedy for its cause), it says what `doctor --fix` would repair here."""
    check_options(options)
    try:
        _path, report = load_report(settings.state_dir, report_id)
    except Failed as none_recorded:  # load_report's only Failed: an unknown REPORT_ID is bad input
        offer = doctor_offer(run_doctor(settings, engine))
        if offer is None:
            raise
        raise Failed(none_recorded.problem, f"{none_recorded.fix}; meanwhile {offer}") from None
    code, result = run_fix(settings, engine, report, options, confirm)
    if code == NOTHING_TO_FIX:
        result["doctor_fix"] = doctor_offer(run_doctor(settings, engine))
    return code, result


def run_doctor_fix(
    settings: Settings, engine: Engine, options: FixOptions, only: set[str] | None, confirm: Confirm, yes: bool
) -> tuple[int, dict]:
    """Apply the remedies for what doctor finds, then ask doctor again. Exit 0 when no problem in scope
    remains (or, dry, when every remedy could run), 1 otherwise."""
    check_options(options)
    if only and not only <= set(DOCTOR_CHECKS):
        raise BadInput(f"--only {','.join(sorted(only))}: unknown check", f"choose from {', '.join(DOCTOR_CHECKS)}")
    before = run_doctor(settings, engine)
    remedies, suggestions = doctor_remedies(before, only, yes)
    applied = []
    for name in remedies:
        outcome = apply_remedy(Context(settings, engine, options), REMEDIES[name], confirm)
        if outcome["actions"] or outcome["blocked"]:
            applied.append({"remedy": name, **outcome})
    after = before if options.dry_run else run_doctor(settings, engine)
    remaining = [p for p in after["problems"] if only is None or p["check"] in only]
    result = {"healthy": after["healthy"], "remedies": applied, "suggestions": suggestions,
              "problems": remaining, "dry_run": options.dry_run}  # fmt: skip
    failed = any(not r["verified"] for r in applied if not options.dry_run) or any(r["blocked"] for r in applied)
    code = 1 if failed or (remaining and not options.dry_run) else 0
    return code, result
