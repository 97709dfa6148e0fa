"""What `smdiag fix`, `smdiag fix --undo` and `smdiag doctor --fix` print (their `--json` is the result itself)."""

from __future__ import annotations

from agent.fix.run import NO_REMEDY


def format_fix(result: dict) -> str:
    lines = [f"report {result['report']}: {result['category']}: {result.get('summary') or ''}".rstrip()]
    if result["remedy"] is None:
        said = "no automatic remedy" if result["detail"] == NO_REMEDY else result["detail"]
        return "\n".join([*lines, f"{said}; what to do:", f"  {result.get('hint')}"])
    lines += _format_outcome(result["remedy"], result)
    return "\n".join(lines)


def format_doctor_fix(result: dict) -> str:
    lines = []
    for outcome in result["remedies"]:
        lines += _format_outcome(outcome["remedy"], outcome)
    lines += [f"suggested: {s}" for s in result["suggestions"]]
    if not result["remedies"]:
        lines.append("nothing to repair automatically")
    if result["problems"]:
        lines += ["", "still a problem:"] + [
            f"  {p['check']}: {p['problem']}\n    fix: {p['fix']}" for p in result["problems"]
        ]
    elif not result["dry_run"]:
        lines.append("no problem left" + ("" if result["healthy"] else " in the checks repaired"))
    return "\n".join(lines)


def _format_outcome(remedy: str, outcome: dict) -> list[str]:
    lines = [f"remedy: {remedy}" + (" (dry run: nothing changed)" if outcome.get("dry_run") else "")]
    for action in outcome["actions"]:
        mark = "done" if action["done"] else ("left" if action["kind"] == "leave" else "todo")
        lines.append(f"  [{mark}] {action['detail']}" + (f": {action['result']}" if action.get("result") else ""))
    if not outcome["actions"] and not outcome.get("blocked"):
        lines.append("  nothing to change")
    if outcome.get("blocked"):
        lines.append(f"  cannot repair: {outcome['blocked']}")
    elif not outcome.get("dry_run"):
        lines.append(f"  {'verified' if outcome['verified'] else 'NOT fixed'}: {outcome.get('detail')}")
    return lines


def format_undo(result: dict) -> str:
    return "\n".join([f"undid fix {result['run']}", *(f"  {u}" for u in result["undone"]),
                      *(f"  {k}" for k in result["not_undoable"])])  # fmt: skip
