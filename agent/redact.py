"""One-way masking of secrets in everything smdiag prints or stores (logs, reports, compose files).

Two passes, both kept as data: patterns that recognise a secret by its shape, by the name it is assigned
to or by its place in a URL (`scheme://user:password@host`), and the literal values of the secrets this
process can see (secret-named environment variables, passwords inside URL-valued variables such as proxy
settings, the AWS shared credentials file), each also in the forms it travels in: URL-encoded and base64.
Masking happens once, where text leaves the process (stdout, stderr, the log file, a report file).
"""

from __future__ import annotations

import base64
import configparser
import functools
import os
import re
import urllib.parse
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
    # The user-info of a URL (proxy settings, registry mirrors): user and password alike.
    (("://",), re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@\[\]]+:[^/\s@]*@"), r"\1" + MASK + "@"),
)

_NAMED_VALUE = re.compile(
    r"""(?ix)
    (\b(?![\w.-]*(?:error|exception|warning)\b)               # not an exception (KeyError: x)
     [\w.-]*(?:secret|token|password|passwd|key)[\w.-]*["']?   # the name, maybe quoted
     \s*[:=]\s*["']?)                                           # separator, opening quote
    (?!\[redacted\])[^\s"',;}\]]+                              # the value
    """
)
"""A value assigned to a secret-named field, in every syntax (`key=v`, `"token": "v"`, `password: v`)."""
_SECRET_WORDS = ("secret", "token", "passw", "key")
"""What every secret name `_NAMED_VALUE` takes holds (lower case)."""
_NAME_WORD = re.compile("|".join(_SECRET_WORDS), re.IGNORECASE)
_NAME_TO_VALUE_END = re.compile(r"""[\w.-]*["']?\s*[:=]?\s*["']?[^\s"',;}\]]*""")
"""From a secret word to the end of what `_NAMED_VALUE` could take as that name's value."""
_WINDOW_MARGIN = len(MASK)
"""Text past that end a match's checks may read: `(?!\\[redacted\\])` looks this far ahead."""


def _mask_named_values(text: str) -> str:
    """`_NAMED_VALUE.sub(r"\\1" + MASK, text)`, tried only around the secret words: a match's name holds one,
    and starts in the run of name characters around it. Trying the pattern at every word of a long log
    instead takes seconds for 100,000 lines that mention a token once."""
    pieces, done = [], 0
    previous_word_start, previous_start = -1, 0
    for word_start in _secret_words(text):
        if word_start < done:
            continue
        start = word_start
        while start > done and _is_name_char(text[start - 1]):
            start -= 1
            if start == previous_word_start:  # the same run as the previous word's: each character read once
                start = max(previous_start, done)
                break
        previous_word_start, previous_start = word_start, start
        window_end = _NAME_TO_VALUE_END.match(text, word_start).end() + _WINDOW_MARGIN
        found = _NAMED_VALUE.search(text, start, window_end)
        if found is not None and found.end() > window_end - _WINDOW_MARGIN:  # the cut may matter: ask whole
            found = _NAMED_VALUE.search(text, start)
        if found is None:
            continue
        pieces += [text[done : found.start()], found.group(1), MASK]
        done = found.end()
    return "".join([*pieces, text[done:]])


def _secret_words(text: str) -> list[int]:
    """Where a secret word starts, in order: by `str.find` in the case-folded text when it keeps every
    position (several times faster than a case-insensitive regex over megabytes), else by that regex."""
    folded = text.casefold()
    if len(folded) != len(text):
        return [word.start() for word in _NAME_WORD.finditer(text)]
    starts = []
    for word in _SECRET_WORDS:
        at = folded.find(word)
        while at >= 0:
            starts.append(at)
            at = folded.find(word, at + 1)
    return sorted(starts)


def _is_name_char(char: str) -> bool:
    return char.isalnum() or char in "_.-"


class Redactor:
    """Masks secret-shaped text and the literal values of known secrets."""

    def __init__(self, known_secrets: Iterable[str] = ()) -> None:
        self._secrets = {s for s in known_secrets if len(s) >= _MIN_KNOWN_SECRET}
        forms = {form for secret in self._secrets for form in encoded_forms(secret)}
        # Longest first, so a secret that contains another is masked whole.
        self._known = sorted(forms, key=len, reverse=True)

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> Redactor:
        env = os.environ if env is None else env
        return cls(list(_secret_env_values(env)) + list(_shared_credentials_values(env)))

    def with_secrets(self, more: Iterable[str]) -> Redactor:
        """This redactor, also masking the literal values `more` (e.g. the keys a compose file carries)."""
        return Redactor([*self._secrets, *more])

    def text(self, text: str) -> str:
        for secret in self._known:
            if secret in text:
                text = text.replace(secret, MASK)
        lowered = text.lower()
        for hints, pattern, replacement in _PATTERNS:
            if any(h in lowered for h in hints):
                text = pattern.sub(replacement, text)
        return _mask_named_values(text)

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


def encoded_forms(secret: str) -> set[str]:
    """The ways a secret's bytes appear in text: as is, URL-encoded (`/` as %2F, `+` as %2B, both cases of
    hex), and base64 (standard and URL-safe, with and without padding)."""
    forms = {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret, safe="")}
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), form) for form in forms}
    raw = secret.encode()
    for encoded in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
        forms |= {encoded, encoded.rstrip("=")}
    return {form for form in forms if len(form) >= _MIN_KNOWN_SECRET}


_URL_USERINFO = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://([^/\s:@\[\]]+):([^/\s@]*)@")


def _secret_env_values(env: Mapping[str, str]) -> Iterable[str]:
    """Secret-named variables' values, and the user-info of URLs in any variable (a proxy's password, also
    decoded, and the `user:password` pair that HTTP basic authentication sends in base64)."""
    for name, value in env.items():
        if SECRET_NAME.search(name):
            yield value
        for user, password in _URL_USERINFO.findall(value):
            if password:
                yield password
                yield urllib.parse.unquote(password)
                yield f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}"


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
