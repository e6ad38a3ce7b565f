"""Imported first by every script: finds the nexy package and refuses a bare Python politely.

``python3 server/scripts/grpc_smoke.py`` with a Python that lacks the project's dependencies
would otherwise die in a traceback about ``grpc``. Instead it prints one line on stderr,

    run with .venv/bin/python (make test sets it up): missing module grpc

and exits with 2, the toolkit's "usage error" code. Only the standard library is used here, so
this runs under whatever Python the user typed.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

SERVER = Path(__file__).resolve().parents[1]
EXIT_USAGE = 2  # nexy.toolkit.results.EXIT_USAGE, which cannot be imported yet
MIN_PYTHON = (3, 11)

sys.path.insert(0, str(SERVER))  # the nexy package, also from a plain checkout without install


def _say(en: str, ru: str) -> str:
    """nexy.toolkit.lang.say, loaded by path: importing the package would need grpc."""
    spec = importlib.util.spec_from_file_location("_nexy_lang", SERVER / "nexy/toolkit/lang.py")
    if spec is None or spec.loader is None:
        return en
    lang = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lang)
    return str(lang.say(en, ru))


def _refuse(en: str, ru: str) -> None:
    hint = _say(
        "run with .venv/bin/python (make test sets it up)",
        "запустите через .venv/bin/python (его создаёт make test)",
    )
    print(f"{hint}: {_say(en, ru)}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


def require_project_python() -> None:
    """Exit 2 with a one-line hint unless this Python can import the toolkit."""
    if sys.version_info < MIN_PYTHON:
        version = ".".join(map(str, sys.version_info[:2]))
        _refuse(f"Python {version} is older than 3.11", f"Python {version} старше 3.11")
    # grpc first, as the most telling name; then the toolkit, which pulls in protobuf, aiohttp
    # and the rest of what the scripts use: the first one missing is named.
    for module in ("grpc", "nexy.toolkit"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            missing = exc.name or str(exc)
            _refuse(f"missing module {missing}", f"нет модуля {missing}")


require_project_python()
