"""Read a curl command line into the requests it sends, as bash and curl would.

Why our own reader: the command lines people paste use bash quoting (`'...'`, `"..."`, `$'...'`
from Chromium, backslash-newline continuations, cmd's `^`) and curl's own option rules (`-d`
implies POST and a form Content-Type, `-H 'Name:'` removes a header, `-G` moves data to the query
string). `shlex` knows neither `$'...'` nor where a word started, and a parse error must point at
the exact token, so the words are read here (`words()`), then curl's options applied
(`parse_curl()`). tests/test_check.py holds it against the real curl binary.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

from helpers.errors import InputError
from helpers.request_input import HttpRequest

# ------------------------------------------------------------------------------ shell words


@dataclass(frozen=True)
class Word:
    """One shell word after quote removal, with the offset where it starts in the input."""

    text: str
    start: int
    #: True for a command separator (unquoted newline, `;`, `&&`, `||`, `|`).
    separator: bool = False


_ANSI_C = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
           "e": "\x1b", "E": "\x1b", "\\": "\\", "'": "'", '"': '"', "?": "?"}


def _ansi_c(text: str, i: int, source: str) -> tuple[str, int]:
    """bash's $'...' (ANSI-C quoting) from just after the opening quote: (value, index after)."""
    out: list[str] = []
    n = len(text)
    while i < n:
        c = text[i]
        if c == "'":
            return "".join(out), i + 1
        if c != "\\" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        e = text[i + 1]
        if e in _ANSI_C:
            out.append(_ANSI_C[e])
            i += 2
        elif e in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[e]
            digits = re.match(f"[0-9a-fA-F]{{1,{width}}}", text[i + 2:])
            if not digits:
                out.append("\\" + e)
                i += 2
                continue
            code = int(digits.group(0), 16)
            out.append(_byte(code) if e == "x" else chr(code))
            i += 2 + len(digits.group(0))
        elif e in "01234567":
            digits = re.match(r"[0-7]{1,3}", text[i + 1:])
            assert digits is not None
            out.append(_byte(int(digits.group(0), 8) & 0xFF))
            i += 1 + len(digits.group(0))
        elif e == "c" and i + 2 < n:
            out.append(chr(ord(text[i + 2]) & 0x1F))
            i += 3
        else:
            out.append("\\" + e)
            i += 2
    raise _error(source, i - 1, "a $'...' quote is never closed")


def _byte(code: int) -> str:
    """bash's \\xHH and \\NNN are bytes, not characters: kept as surrogate escapes, so
    `.encode("utf-8", "surrogateescape")` gives the bytes bash would pass."""
    return chr(code) if code < 0x80 else chr(0xDC00 + code)


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def words(text: str) -> list[Word]:
    """Split a POSIX-shell command line into words, as bash would, keeping where each starts.

    Knows '...', "...", $'...', backslash escapes and backslash-newline continuations; unquoted
    newlines, `;`, `&&`, `||` and `|` become separator words. A `^` at the end of a line (the
    Windows cmd continuation) is read as a continuation too.
    """
    out: list[Word] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r":
            i += 1
            continue
        if c in "\\^" and text[i + 1:i + 2] == "\n":  # \ (POSIX) or ^ (Windows cmd) line end
            i += 2
            continue
        if c == "#":  # a comment runs to the end of the line
            while i < n and text[i] != "\n":
                i += 1
            continue
        if c in "\n;|&":
            op = text[i:i + 2] if text[i:i + 2] in ("&&", "||") else c
            if op == "&":
                raise _error(text, i, "a lone '&' (background job) is not part of a request")
            out.append(Word(op, i, separator=True))
            i += len(op)
            continue
        start, buf = i, []
        while i < n and text[i] not in " \t\r\n;|&":
            c = text[i]
            if c == "\\":
                if text[i + 1:i + 2] == "\n":  # continuation inside a word: nothing
                    i += 2
                elif i + 1 < n:
                    buf.append(text[i + 1])
                    i += 2
                else:
                    i += 1
            elif c == "^" and text[i + 1:i + 2] in ("\n", "\r") and start != i:
                i += 1  # a cmd continuation right after a word: the word ends here
                break
            elif c == "'":
                end = text.find("'", i + 1)
                if end < 0:
                    raise _error(text, i, "a single quote is never closed")
                buf.append(text[i + 1:end])
                i = end + 1
            elif c == "$" and text[i + 1:i + 2] == "'":
                value, i = _ansi_c(text, i + 2, text)
                buf.append(value)
            elif c == '"':
                i += 1
                while True:
                    if i >= n:
                        raise _error(text, start, "a double quote is never closed")
                    c = text[i]
                    if c == '"':
                        i += 1
                        break
                    if c == "\\" and text[i + 1:i + 2] in ('"', "\\", "$", "`", "\n"):
                        if text[i + 1] != "\n":
                            buf.append(text[i + 1])
                        i += 2
                        continue
                    if c in "`" or (c == "$" and re.match(r"\$[({\w]", text[i:i + 2])):
                        raise _error(text, i, "a shell expansion ($VAR, $(...), `...`) inside "
                                     "double quotes: paste the command with the values filled in")
                    buf.append(c)
                    i += 1
            elif c == "$" and re.match(r"\$[({\w]", text[i:i + 2]):
                raise _error(text, i, "a shell expansion ($VAR, $(...)): paste the command with "
                             "the values filled in")
            else:
                buf.append(c)
                i += 1
        out.append(Word("".join(buf), start))
    return out


def _error(text: str, offset: int, what: str) -> InputError:
    """An InputError that shows the line of `text` with a caret under `offset`."""
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    line = text[line_start:line_end if line_end >= 0 else len(text)]
    line_no = text.count("\n", 0, offset) + 1
    column = offset - line_start
    shown, caret = line, column
    if len(line) > 100:  # show 100 characters around the token
        left = max(0, column - 40)
        shown, caret = ("..." if left else "") + line[left:left + 100], column - left + (3 if left else 0)
    return InputError(f"Cannot read the input: {what} (line {line_no}, column {column + 1}).\n"
                      f"  {shown}\n  {' ' * caret}^")


# -------------------------------------------------------------------------------------- curl

# curl options that take a value, by every spelling people paste (long and short).
_VALUE_OPTIONS = {
    "-X": "request", "--request": "request", "-H": "header", "--header": "header",
    "-d": "data", "--data": "data", "--data-ascii": "data", "--data-raw": "data-raw",
    "--data-binary": "data-binary", "--data-urlencode": "data-urlencode", "--json": "json",
    "-u": "user", "--user": "user", "--url": "url", "-A": "user-agent", "--user-agent": "user-agent",
    "-e": "referer", "--referer": "referer", "-b": "cookie", "--cookie": "cookie",
    "--oauth2-bearer": "bearer", "-T": "upload", "--upload-file": "upload", "-F": "form",
    "--form": "form", "--form-string": "form", "-K": "config", "--config": "config",
    "--request-target": "request-target",
}
# Options that take a value and do not change the request itself.
_IGNORED_WITH_VALUE = {
    "-o", "--output", "-w", "--write-out", "-m", "--max-time", "--connect-timeout", "--retry",
    "--retry-delay", "--retry-max-time", "-x", "--proxy", "--cacert", "--capath", "--cert", "-E",
    "--key", "--cert-type", "--key-type", "-c", "--cookie-jar", "--resolve", "--connect-to",
    "--noproxy", "--limit-rate", "--max-redirs", "-D", "--dump-header", "--trace",
    "--trace-ascii", "--stderr", "--interface", "--dns-servers", "--netrc-file", "-U",
    "--proxy-user", "--ciphers", "--tls-max", "--proto", "--proto-redir", "-y", "--speed-time",
    "-Y", "--speed-limit", "--keepalive-time", "--expect100-timeout", "--happy-eyeballs-timeout-ms",
    "--max-filesize", "--pinnedpubkey", "--proxy-header", "--unix-socket", "--abstract-unix-socket",
    "--variable", "--aws-sigv4", "--trace-config", "--output-dir", "--local-port",
}
# Flags (no value) that do not change the request curl sends to an MLflow server.
_IGNORED_FLAGS = {
    "-s", "--silent", "-S", "--show-error", "-L", "--location", "--location-trusted", "-k",
    "--insecure", "-i", "--include", "-v", "--verbose", "--compressed", "-f", "--fail",
    "--fail-with-body", "-g", "--globoff", "-N", "--no-buffer", "-#", "--progress-bar",
    "--no-progress-meter", "-n", "--netrc", "--raw", "--path-as-is", "--http1.1", "--http1.0",
    "--http2", "--http2-prior-knowledge", "--http3", "--no-keepalive", "--tcp-nodelay",
    "--ssl-no-revoke", "--tr-encoding", "--anyauth", "--basic", "--digest", "--ntlm",
    "--negotiate", "-0", "-1", "-2", "-3", "-4", "-6", "-j", "--junk-session-cookies", "-l",
    "-O", "--remote-name", "-R", "--remote-time", "-q", "--disable", "-Z", "--parallel",
    "--no-alpn", "--no-npn", "--no-sessionid", "--tlsv1", "--tlsv1.0", "--tlsv1.1", "--tlsv1.2",
    "--tlsv1.3", "--ssl", "--ssl-reqd", "--create-dirs", "-J", "--remote-header-name",
    "--suppress-connect-headers", "--styled-output", "--no-styled-output", "--fail-early",
    "--proxy-insecure", "--ipv4", "--ipv6", "--max-redirs",
}
_SELF_FLAGS = {"-G": "get", "--get": "get", "-I": "head", "--head": "head"}
_SHORT_WITH_VALUE = {"X", "H", "d", "u", "A", "e", "b", "T", "F", "K", "o", "w", "m", "x", "E",
                     "c", "D", "U", "y", "Y"}


def parse_curl(text: str, *, cwd: str | Path | None = None, stdin: bytes | None = None) -> list[HttpRequest]:
    """The requests a curl command line sends (one per curl command in `text`).

    Reads what the exporters write: Chromium's and Firefox's "Copy as cURL (bash)", Postman,
    Bruno, Insomnia, MLflow's docs and the kit's own `to_curl()` (also its base64 form for a
    body that is not text). `@file` bodies are read relative to `cwd`; `@-` reads `stdin`.
    """
    text = text.replace("\r\n", "\n").lstrip("\ufeff")
    text, heredoc = _kit_heredoc(text)
    if heredoc is not None:
        stdin = heredoc
    all_words = words(text)
    commands: list[list[Word]] = [[]]
    for w in all_words:
        if w.separator:
            commands.append([])
        else:
            commands[-1].append(w)
    found: list[HttpRequest] = []
    for cmd in commands:
        while cmd and cmd[0].text in ("$", ">", "%"):  # a pasted prompt
            cmd = cmd[1:]
        if not cmd:
            continue
        name = cmd[0].text.rsplit("/", 1)[-1].lower()
        if name in ("curl", "curl.exe"):
            found.append(_curl_request(text, cmd[1:], Path(cwd or "."), stdin))
        elif name in ("base64", "jq", "echo", "cat", "python", "python3", "export"):
            continue  # the other half of a pipe, or setup around the command
        elif not found:
            raise _error(text, cmd[0].start, f"expected a curl command, found {cmd[0].text!r}")
    if not found:
        raise InputError("Cannot read the input: no curl command in it. Paste the command that "
                         "starts with curl.")
    return found


def _kit_heredoc(text: str) -> tuple[str, bytes | None]:
    """to_curl()'s form for a body that is not text: `base64 -d <<'BODY' | curl ... @-`."""
    found = re.match(r"\s*base64 -d <<'(\w+)' \| (curl [^\n]*)\n(.*?)\n?\1\s*$", text, re.S)
    if not found:
        return text, None
    try:
        return found.group(2), base64.b64decode(found.group(3))
    except ValueError:
        raise InputError("Cannot read the input: the base64 body after the curl command does "
                         "not decode.") from None


@dataclass
class _Curl:
    method: str | None = None
    url: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    removed: set[str] = field(default_factory=set)
    data: list[bytes] = field(default_factory=list)
    json_data: bool = False
    get: bool = False
    head: bool = False
    upload: bytes | None = None
    notes: list[str] = field(default_factory=list)


def _curl_request(text: str, args: list[Word], cwd: Path, stdin: bytes | None) -> HttpRequest:
    st = _Curl()
    i = 0
    while i < len(args):
        w = args[i]
        arg = w.text
        option, value = arg, None
        if arg.startswith("--") and "=" in arg and arg.split("=", 1)[0] in _VALUE_OPTIONS:
            option, value = arg.split("=", 1)  # not curl's syntax, but unambiguous
        elif arg.startswith("-") and not arg.startswith("--") and len(arg) > 2:
            if arg[1] in _SHORT_WITH_VALUE:  # -XPOST, -H'Accept: x'
                option, value = arg[:2], arg[2:]
            elif all(f"-{c}" in _IGNORED_FLAGS or f"-{c}" in _SELF_FLAGS for c in arg[1:]):
                for c in arg[1:]:  # -sSL
                    _flag(st, f"-{c}")
                i += 1
                continue
            elif all(f"-{c}" in _IGNORED_FLAGS or f"-{c}" in _SELF_FLAGS for c in arg[1:-1]) \
                    and arg[-1] in _SHORT_WITH_VALUE:  # -sX POST
                for c in arg[1:-1]:
                    _flag(st, f"-{c}")
                option = f"-{arg[-1]}"
        if option in _VALUE_OPTIONS or option in _IGNORED_WITH_VALUE:
            if value is None:
                if i + 1 >= len(args):
                    raise _error(text, w.start, f"{option} needs a value after it")
                i += 1
                value = args[i].text
            if option in _VALUE_OPTIONS:
                _apply(st, _VALUE_OPTIONS[option], value, text, args[i], cwd, stdin)
        elif option in _IGNORED_FLAGS or option in _SELF_FLAGS:
            _flag(st, option)
        elif arg.startswith("-") and arg != "-":
            raise _error(text, w.start, f"the curl option {arg!r} is not one the kit knows; "
                         "remove it if it does not change the request")
        elif st.url is None:
            st.url = arg
        else:
            raise _error(text, w.start, f"a second URL {arg!r}: check one request at a time")
        i += 1
    return _finish(st, text, args)


def _flag(st: _Curl, option: str) -> None:
    kind = _SELF_FLAGS.get(option)
    if kind == "get":
        st.get = True
    elif kind == "head":
        st.head = True  # every other flag here changes nothing the server sees


def _read_at(value: str, cwd: Path, stdin: bytes | None, word: Word, text: str) -> bytes:
    name = value[1:]
    if name == "-":
        if stdin is None:
            raise _error(text, word.start, "the body is read from stdin (@-), which is not given "
                         "here: put the body in the command or in a file")
        return stdin
    path = Path(name).expanduser()
    path = path if path.is_absolute() else cwd / path
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _error(text, word.start, f"cannot read the body file {name!r} "
                     f"({exc.strerror or exc})") from None


def _apply(st: _Curl, kind: str, value: str, text: str, word: Word, cwd: Path,
           stdin: bytes | None) -> None:
    if kind == "request":
        st.method = value
    elif kind == "url":
        if st.url is not None:
            raise _error(text, word.start, "a second URL: check one request at a time")
        st.url = value
    elif kind == "header":
        name, sep, rest = value.partition(":")
        if not sep:
            if value.endswith(";"):  # curl: "Name;" sends the header with an empty value
                st.headers.append((value[:-1].strip(), ""))
                return
            raise _error(text, word.start, f"the header {value!r} has no ':' between name and value")
        if rest.strip() == "":  # curl: "Name:" removes the header (also one curl adds itself)
            st.headers = [(k, v) for k, v in st.headers if k.lower() != name.strip().lower()]
            st.removed.add(name.strip().lower())
            return
        st.headers.append((name.strip(), rest.strip()))
    elif kind in ("data", "data-binary", "data-raw", "json"):
        if kind != "data-raw" and value.startswith("@"):
            data = _read_at(value, cwd, stdin, word, text)
            if kind == "data":  # -d @file drops carriage returns and newlines, as curl does
                data = data.replace(b"\r", b"").replace(b"\n", b"")
        else:
            data = _bytes(value)
        st.json_data = st.json_data or kind == "json"
        st.data.append(data)
    elif kind == "data-urlencode":
        name, eq, content = value.partition("=")
        if "@" in name and not eq:
            n, _, file = value.partition("@")
            data = _read_at("@" + file, cwd, stdin, word, text)
            st.data.append((n + "=" if n else "").encode() + quote(data, safe="").encode())
        elif eq:
            st.data.append((name + "=" if name else "").encode() + quote(content, safe="").encode())
        else:
            st.data.append(quote(value, safe="").encode())
    elif kind == "user":
        user, _, password = value.partition(":")
        pair = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        st.headers.append(("Authorization", f"Basic {pair}"))
        if ":" not in value:
            st.notes.append("-u without a password: curl would ask for one; an empty one is assumed")
    elif kind == "bearer":
        st.headers.append(("Authorization", f"Bearer {value}"))
    elif kind == "user-agent":
        st.headers.append(("User-Agent", value))
    elif kind == "referer":
        st.headers.append(("Referer", value))
    elif kind == "cookie":
        if "=" in value:
            st.headers.append(("Cookie", value))
        else:
            st.notes.append("-b with a file name: cookies from a file are not read")
    elif kind == "upload":
        st.upload = _read_at("@" + value, cwd, stdin, word, text)
    elif kind == "form":
        raise _error(text, word.start, "-F sends a multipart form, which no MLflow REST "
                     "endpoint reads: send JSON with -H 'Content-Type: application/json' -d '{...}'")
    elif kind == "config":
        raise _error(text, word.start, "-K reads options from a file: paste them into the command")
    elif kind == "request-target":
        st.notes.append("--request-target: the path is taken from the URL")


def _finish(st: _Curl, text: str, args: list[Word]) -> HttpRequest:
    if st.url is None:
        where = args[-1].start + len(args[-1].text) if args else len(text)
        raise _error(text, min(where, max(len(text) - 1, 0)), "the curl command has no URL")
    url = st.url if "://" in st.url else "http://" + st.url  # curl's default scheme
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        raise InputError(f"Cannot read the input: {st.url!r} is not an http(s) URL.")
    body = b""
    if st.json_data:
        body = b"".join(st.data)  # curl joins --json parts with nothing between them
    elif st.data:
        body = b"&".join(st.data)
    method = "GET"
    if st.upload is not None:
        method, body = "PUT", st.upload
    elif st.head:
        method = "HEAD"
    elif st.data and st.get:
        url += ("&" if urlsplit(url).query else "?") + body.decode("utf-8", errors="replace")
        body = b""
    elif st.data:
        method = "POST"
    if st.method:
        method = st.method.upper()
    headers = list(st.headers)
    names = {k.lower() for k, _ in headers}
    defaults = [("Accept", "application/json" if st.json_data else "*/*")]
    if st.json_data and st.data:
        defaults.append(("Content-Type", "application/json"))
    elif st.data and not st.get:
        defaults.append(("Content-Type", "application/x-www-form-urlencoded"))
    for name, value in defaults:  # what curl adds itself, unless given or removed with "Name:"
        if name.lower() not in names and name.lower() not in st.removed:
            headers.append((name, value))
            if value == "application/x-www-form-urlencoded":
                st.notes.append("curl -d sends Content-Type: application/x-www-form-urlencoded "
                                "when the command gives no Content-Type header")
    return HttpRequest(method, url, tuple(headers), body, "curl", tuple(dict.fromkeys(st.notes)))


__all__ = ["Word", "parse_curl", "words"]
