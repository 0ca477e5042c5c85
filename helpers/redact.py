"""Hide secrets in anything the kit shows: URLs, headers, query strings, bodies, free text.

One helper for every module that prints or records a request (wire, display, recorder, doctor,
the CLI, classroom mode), so they all agree on what a secret looks like. It only ever changes
what is *shown*: the bytes a request sends are never touched.

Standard library only, so `python -m helpers doctor` can use it in a broken environment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "****"

# THE list, shared by every output of the kit (text, HTML, curl, HAR, logs, the CLI).
# A header, query parameter or JSON field whose name contains one of these is a secret:
# Authorization, X-Auth-Token, Private-Token, X-Databricks-Token, ?apikey=, ?client_secret=,
# ?jwt=, X-Amz-Signature, {"password": ...}, {"password_list": [...]}. Matched on the name with
# "-", "_", "." and spaces removed and lower-cased.
_SECRET_PARTS = ("auth", "token", "secret", "passw", "pwd", "apikey", "cookie", "credential",
                 "session", "signature", "privatekey", "accesskey", "jwt")
# Names too short to match as a part (they would hit ordinary words): secrets only when they are
# the whole name. `sig` is an Azure SAS signature (?sv=...&sig=...).
_SECRET_NAMES = frozenset({"sig", "pass", "pw"})
# Names that contain a secret-looking part but carry no secret: MLflow's pagination cursors.
_NOT_SECRET = frozenset({"pagetoken", "nextpagetoken", "author"})


def is_secret_name(name: str) -> bool:
    """True for a header, query parameter or JSON field name that holds a secret."""
    flat = re.sub(r"[-_\s.]", "", name).lower()
    if flat in _NOT_SECRET:
        return False
    return flat in _SECRET_NAMES or any(part in flat for part in _SECRET_PARTS)


def mask_url(url: str) -> str:
    """The URL with `user:password@` and secret-like query values masked."""
    url = _URL_USERINFO.sub(_masked_userinfo, url)
    try:
        parts = urlsplit(url)
    except ValueError:  # an unparseable URL (bad IPv6 literal): userinfo is masked already
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_secret_name(k) for k, _ in pairs):
            query = urlencode([(k, MASK if is_secret_name(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def host_of(url: str) -> str:
    """The Host header an HTTP client sends for `url`: the netloc without any `user:pass@`."""
    return urlsplit(_URL_USERINFO.sub(_masked_userinfo, url)).netloc.rsplit("@", 1)[-1]


def mask_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Headers with secret values replaced by the mask (and a Host with userinfo cleaned)."""
    out = []
    for name, value in headers:
        if is_secret_name(name):
            value = MASK
        elif name.lower() == "host" and "@" in value:
            value = value.rsplit("@", 1)[-1]
        elif name.lower() in _URL_HEADERS:
            value = mask_url(value)
        out.append((name, value))
    return out


# Response headers that carry a URL (a redirect's target may hold credentials or a token).
_URL_HEADERS = frozenset({"location", "content-location", "referer", "refresh"})

# "name": value   (value: a JSON string, or a bare token such as a number or literal)
_JSON_FIELD = re.compile(r'"((?:[^"\\]|\\.)*)"(\s*:\s*)("(?:[^"\\]|\\.)*"|[-\w.+]+)')
_JSON_NAME = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:\s*')
# name=value in a form body or a query string
_FORM_FIELD = re.compile(r"(?:(?<=^)|(?<=&))([^=&\s]+)=([^&]*)")
# scheme://USERINFO@host: the userinfo runs to the LAST "@" that is followed by a host (name, IPv4
# or [IPv6], optional port) and the end of the authority, so a password holding "/", "?", "#" or
# "@" is masked whole (urlsplit would end the authority at its first "/" or "#" and show the rest).
_URL_USERINFO = re.compile(
    r"(\b[a-zA-Z][\w+.-]*://)[^\s'\"<>]*@"
    r"(?=(?:[\w.~%-]+|\[[0-9A-Za-z:.%]+\])(?::\d*)?(?:[/?#\s'\"<>)\],;]|$))")


def mask_password(url: str) -> str:
    """The URL with only the password of its `user:password@` masked (the user name shown, as a
    database URI is described to an instructor); found by the same rule as mask_url."""
    def keep_user(match: re.Match) -> str:
        info = match.group(0)[len(match.group(1)):-1]
        user, colon, _ = info.partition(":")
        return f"{match.group(1)}{user}:{MASK}@" if colon else match.group(0)

    return _URL_USERINFO.sub(keep_user, url)


def userinfo_has_delimiters(url: str) -> bool:
    """True when the `user:password@` part of `url` holds a raw "/", "?" or "#": HTTP clients end
    the host part there, so the URL reaches another host (or none); percent-encode them."""
    match = _URL_USERINFO.match(url.strip())
    return bool(match) and any(c in match.group(0)[len(match.group(1)):] for c in "/?#")


def _masked_userinfo(match: re.Match) -> str:
    return f"{match.group(1)}{MASK}@"


def mask_body(text: str) -> str:
    """A request body for display: values of secret-like JSON fields (or form fields) masked.

    Works on the text itself (also on JSON that does not parse), so everything else, spacing and
    key order included, is shown exactly as sent.
    """
    def json_field(match: re.Match) -> str:
        name, colon, _ = match.groups()
        return f'"{name}"{colon}"{MASK}"' if is_secret_name(name) else match.group(0)

    masked = _JSON_FIELD.sub(json_field, _mask_json_containers(text))
    if masked == text and "=" in text and not text.lstrip().startswith(("{", "[")):
        masked = _FORM_FIELD.sub(
            lambda m: f"{m.group(1)}={MASK}" if is_secret_name(m.group(1)) else m.group(0), text)
    return mask_text(masked)


def _mask_json_containers(text: str) -> str:
    """A secret-named field whose value is a list or object (`"password_list": [...]`): the whole
    value masked. Found with the json module's own decoder, so nesting and escapes are read as
    JSON reads them; a value that does not decode is left to the field rule."""
    decoder = json.JSONDecoder()
    out, pos = [], 0
    for match in _JSON_NAME.finditer(text):
        start = match.end()
        if start < pos or start >= len(text) or text[start] not in "[{" \
                or not is_secret_name(match.group(1)):
            continue
        try:
            _, end = decoder.raw_decode(text, start)
        except ValueError:
            continue
        out += [text[pos:start], f'"{MASK}"']
        pos = end
    return "".join(out) + text[pos:]


def mask_text(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Free text (a log line, a command line, a message): URL credentials and the given secret
    values masked. Use it for anything that may quote a URL or a password it was given."""
    text = _URL_USERINFO.sub(_masked_userinfo, text)
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, MASK)
    return text


def mask_argv(argv: Iterable[str], secrets: Iterable[str | None] = ()) -> list[str]:
    """A command line for display: URL credentials, `--password=...`-style values masked."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append(MASK)
            hide_next = False
            continue
        flag, eq, value = arg.partition("=")
        if flag.startswith("-") and is_secret_name(flag.lstrip("-")):
            if eq:
                out.append(f"{flag}={MASK}")
            else:
                out.append(arg)
                hide_next = True
            continue
        out.append(mask_text(arg, secrets))
    return out


__all__ = ["MASK", "host_of", "is_secret_name", "mask_argv", "mask_body", "mask_headers",
           "mask_password", "mask_text", "mask_url", "userinfo_has_delimiters"]
