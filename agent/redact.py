"""One-way masking of secrets in everything smdiag prints or stores (logs, reports, compose files).

Two passes, both kept as data: patterns that recognise a secret by its shape or by the name it is
assigned to, and the literal values of the secrets this process can see (environment variables and the
AWS shared credentials file), which catches a secret wherever it turns up, named or not.
"""

from __future__ import annotations

import configparser
import functools
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

MASK = "[redacted]"

SECRET_NAME = re.compile(r"secret|token|password|passwd|key", re.IGNORECASE)
"""A variable, field or option whose name matches this holds a secret."""

_MIN_KNOWN_SECRET = 8
"""Shorter values (flags such as "1" or "true") are too common to mask by value."""

# (cheap lower-case substrings, one of which must occur for the pattern to be tried; pattern; replacement)
_PATTERNS: tuple[tuple[tuple[str, ...], re.Pattern[str], str], ...] = (
    (("akia", "asia"), re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), MASK),
    (
        ("secret", "token", "passw", "key"),
        re.compile(
            r"""(?ix)
            (\b(?![\w.-]*(?:error|exception|warning)\b)               # not an exception (KeyError: x)
             [\w.-]*(?:secret|token|password|passwd|key)[\w.-]*["']?   # the name, maybe quoted
             \s*[:=]\s*["']?)                                           # separator, opening quote
            (?!\[redacted\])[^\s"',;}\]]+                              # the value
            """
        ),
        r"\1" + MASK,
    ),
)


class Redactor:
    """Masks secret-shaped text and the literal values of known secrets."""

    def __init__(self, known_secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self._known = sorted({s for s in known_secrets if len(s) >= _MIN_KNOWN_SECRET}, key=len, reverse=True)

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> Redactor:
        env = os.environ if env is None else env
        return cls(list(_secret_env_values(env)) + list(_shared_credentials_values(env)))

    def with_secrets(self, more: Iterable[str]) -> Redactor:
        """This redactor, also masking the literal values `more` (e.g. the keys a compose file carries)."""
        return Redactor([*self._known, *more])

    def text(self, text: str) -> str:
        for secret in self._known:
            if secret in text:
                text = text.replace(secret, MASK)
        lowered = text.lower()
        for hints, pattern, replacement in _PATTERNS:
            if any(h in lowered for h in hints):
                text = pattern.sub(replacement, text)
        return text

    def value(self, obj: object) -> object:
        """Redact every string inside dicts, lists and tuples; values under secret-named keys entirely."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, Mapping):
            return {
                k: (
                    MASK if isinstance(k, str) and SECRET_NAME.search(k) and isinstance(v, str) and v else self.value(v)
                )
                for k, v in obj.items()
            }
        if isinstance(obj, (list, tuple)):
            return type(obj)(self.value(v) for v in obj)
        return obj


@functools.cache
def process_redactor() -> Redactor:
    """The redactor for this process's own environment, built once."""
    return Redactor.from_environment()


def _secret_env_values(env: Mapping[str, str]) -> Iterable[str]:
    return (value for name, value in env.items() if SECRET_NAME.search(name))


def _shared_credentials_values(env: Mapping[str, str]) -> Iterable[str]:
    path = Path(env.get("AWS_SHARED_CREDENTIALS_FILE") or Path(env.get("HOME") or Path.home()) / ".aws" / "credentials")
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (OSError, configparser.Error, UnicodeDecodeError):
        return ()
    return [
        value
        for section in parser.sections()
        for name, value in parser[section].items()
        if value and SECRET_NAME.search(name)
    ]
