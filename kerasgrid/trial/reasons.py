"""Why a trial did not finish ok, in one line: the exception, its message cut to a line, and the
file and line of the user's code that raised it, e.g. "KeyError: 'mometum' (model.py:21)".

A trial's reason is derived once, as it fails or diverges (`reason`), and kept in its record and in
the leaderboard's `reason` column, so that the console, the plots and the web page all say it in
the same words (`shown`). The whole error stays in the record's `error`, the traceback in the
trial's log (logs/trials/<id>.log).
"""

import re

from kerasgrid.errors import user_line

# Characters of an error's message kept in a reason: a line on a console or beside a bar.
WIDTH = 100
# A terminal's colour or bold codes, which Keras puts in some of its messages ("\x1b[1m...\x1b[0m"):
# on a console line, in a plot or a web page they would read as stray characters.
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def one_line(text: str, width: int = WIDTH) -> str:
    """The first non-blank line of `text`, its spaces squeezed and terminal codes dropped, cut to
    `width` characters; "…" where something was left out (a longer line, or the lines after it)."""
    lines = [" ".join(line.split()) for line in ANSI.sub("", str(text)).splitlines()]
    lines = [line for line in lines if line] or [""]
    first = lines[0]
    if len(first) > width:
        return first[: width - 1] + "…"
    return first + " …" * (len(lines) > 1)


def user_frame(exc: BaseException) -> str | None:
    """`file:line` of the innermost frame of an exception's traceback that is in the user's own
    files (kerasgrid.errors.user_line); None if none is."""
    found = user_line(exc)
    return f"{found[0]}:{found[1]}" if found else None


def reason(exc: BaseException, error: str | None = None) -> str:
    """A failed trial's reason: `error` (default: "<exception>: <message>") cut to one line, then
    the user's file and line that raised it, if any: "KeyError: 'mometum' (model.py:21)"."""
    text = one_line(error or f"{type(exc).__name__}: {exc}".strip())
    where = user_frame(exc)
    return f"{text} ({where})" if where else text


def shown(status: str, why: str | None = None, error: str | None = None) -> str:
    """A trial's status as the console, the plots and the web page say it: "ok", or the status and
    why: "failed: KeyError: 'mometum' (model.py:21)", "diverged: loss became NaN or infinite in
    epoch 3; training stopped there". `why`: its reason; without one (a record written before
    kerasgrid kept one), the first line of the `error`."""
    why = why or (one_line(error) if error else "")
    return f"{status}: {why}" if why and status != "ok" else status


def of_record(record: dict) -> str | None:
    """A record's reason: the one it keeps, or else its error's first line; None for a trial without
    an error."""
    if record.get("reason"):
        return record["reason"]
    return one_line(record["error"]) if record.get("error") else None


def of_row(row: dict) -> str:
    """`shown` of a leaderboard row (results/leaderboard.tsv as `read_leaderboard` reads it)."""
    return shown(row["status"], row.get("reason"), row.get("error"))
