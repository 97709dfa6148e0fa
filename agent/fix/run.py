"""`smdiag fix`: the remedy a failure report's diagnosis chose (`report["remedy"]`), planned, confirmed,
carried out in one journaled run, and verified. The remedy is read, never chosen again here."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path

from agent import fileops
from agent.engine import Engine
from agent.errors import BadInput, Failed, SmdiagError
from agent.failures import store
from agent.fix.history import history, lock, open_journal
from agent.fix.registry import REMEDIES
from agent.fix.remedy import Confirm, Context, FixOptions, Plan, Remedy, Step
from agent.guard.plan import parse_duration
from agent.log import get_logger
from agent.settings import Settings

NOTHING_TO_FIX = 3
"""`smdiag fix`'s exit code when the report's cause has no automatic remedy."""
NO_REMEDY = "no automatic remedy for this cause"
NOT_RECORDED = (
    "no automatic remedy recorded with this report (it was recorded before smdiag named remedies): "
    "`smdiag doctor --fix` checks this host and repairs what it can"
)


def run_fix(
    settings: Settings, engine: Engine, report: dict, options: FixOptions, confirm: Confirm
) -> tuple[int, dict]:
    """Repair the cause a report names. (exit code, result): 0 fixed and verified, 1 not, 3 no remedy."""
    chosen = report.get("remedy")
    result = {"report": report.get("id"), "category": report.get("category"), "summary": report.get("summary"),
              "remedy": chosen["name"] if chosen else None, "actions": [], "verified": False,
              "dry_run": options.dry_run}  # fmt: skip
    if not chosen:
        result.update(hint=report.get("hint"), detail=NO_REMEDY if "remedy" in report else NOT_RECORDED)
        return NOTHING_TO_FIX, result
    remedy = REMEDIES.get(chosen["name"])
    if remedy is None:
        raise Failed(f"report {report.get('id')} names remedy {chosen['name']!r}, which this smdiag does not know",
                     "upgrade smdiag, or run `smdiag doctor --fix`")  # fmt: skip
    arguments = {key: value for key, value in chosen.items() if key != "name"}
    outcome = apply_remedy(Context(settings, engine, options, report, arguments), remedy, confirm)
    result.update(outcome)
    return (0 if result["verified"] or (options.dry_run and not outcome.get("blocked")) else 1), result


def load_report(state_dir: Path, report_id: str | None) -> tuple[Path, dict]:
    """The report to fix: the one named, else the newest. Bad input for a name that is no report; Failed
    when none was recorded."""
    if report_id is None:
        return store.last_report(state_dir)
    path = store.failures_dir(state_dir) / report_id
    if "/" in report_id or not (path / "report.json").is_file():
        raise BadInput(f"there is no failure report {report_id!r}", "list them with `smdiag failures list`")
    try:
        return path, json.loads((path / "report.json").read_text())
    except (OSError, ValueError) as exc:
        raise BadInput(f"report {report_id} is unreadable: {exc}", "pick another with `smdiag failures list`") from None


def apply_remedy(ctx: Context, remedy: Remedy, confirm: Confirm) -> dict:
    """Gather, plan, confirm, act (journaled), verify: {actions, blocked, verified, detail}."""
    with fileops.exclusive_lock(lock(ctx.settings)):
        plan = remedy.plan(remedy.gather(ctx))
        outcome = {"actions": [{**asdict(a), "done": False} for a in plan.actions], "blocked": plan.blocked,
                   "verified": False, "detail": plan.blocked, "dry_run": ctx.options.dry_run}  # fmt: skip
        if plan.blocked or ctx.options.dry_run:
            return outcome
        changes = [a for a in plan.actions if a.changes]
        if changes and not confirm(plan):
            outcome["detail"] = "not confirmed: nothing changed"
            return outcome
        if changes and not _act(ctx, remedy, plan, outcome):
            return outcome
        outcome["verified"], outcome["detail"] = remedy.verify(ctx)
    return outcome


def _act(ctx: Context, remedy: Remedy, plan: Plan, outcome: dict) -> bool:
    """Carry out the plan's changes in one journaled run, kept in the history whether it ends well, fails
    or is interrupted (a failed step leaves the earlier ones done: `--undo` takes them back). Whether all
    steps were done."""
    journal = open_journal(ctx.settings)
    run = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}"
    report_id = ctx.report.get("id") if ctx.report else None
    journal.begin(run=run, time=time.time(), report=report_id, remedy=remedy.name, actions=[])
    try:
        for entry, action in zip(outcome["actions"], plan.actions, strict=True):
            if not action.changes:
                continue
            step = Step(journal, action)
            try:
                entry["result"] = remedy.act(ctx, action, step)
            except Exception as exc:  # noqa: BLE001 - one failed step ends the fix, said as such, not as a traceback
                get_logger("fix").exception("fix.action_failed", kind=action.kind, target=action.target)
                problem = exc.one_line() if isinstance(exc, SmdiagError) else f"{type(exc).__name__}: {exc}"
                entry["result"] = f"failed: {problem}"
                outcome["detail"] = f"{action.detail}: failed: {problem}"
                return False
            step.note(done=True)
            entry["done"] = True
    finally:
        journal.commit(history(ctx.settings))
    return True


def check_options(options: FixOptions) -> None:
    """Bad input before any work."""
    if not options.bin_dir.is_absolute():
        raise BadInput(
            f"--bin-dir {options.bin_dir} is not an absolute path", "give the full path, e.g. /usr/local/bin"
        )
    parse_duration(options.min_age, "--min-age")
