"""A ClickHouse HTTP interface (the port 8123 protocol) in front of chdb, ClickHouse's engine in-process.

Tests point clickhouse-connect and dbt-clickhouse (`driver: http`) at it to run real ClickHouse SQL where
no ClickHouse server can be installed. What it implements, and what was never checked against a real
server, is in docs/clickhouse-local.md.

    with ChdbHttpServer(tmp_path / "ch") as server:
        client = clickhouse_connect.get_client(host="127.0.0.1", port=server.port)

chdb runs one engine per process, on one data directory: only servers on the same directory can run
at once in a process, and nothing else in it may open chdb on another directory meanwhile.
"""
from __future__ import annotations

import gzip
import json
import re
import threading
import time
import uuid
import zlib
from base64 import b64decode
from binascii import Error as Base64Error
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator, Mapping
from urllib.parse import parse_qsl, urlsplit

from chdb.state.sqlitelike import Connection

# Settings whose chdb default differs from a ClickHouse server's; applied to every query so that SQL
# that fails on a server fails here too (e.g. `implicit_select` lets chdb run a bare `1 + 1`).
SERVER_DEFAULTS: dict[str, str] = {
    "implicit_select": "0",
    "allow_introspection_functions": "0",
    "mutations_sync": "0",
    "date_time_input_format": "basic",
}

# URL parameters that are not settings (ClickHouse HTTPHandler's reserved names, plus its own).
_RESERVED_PARAMS = frozenset({
    "compress", "decompress", "user", "password", "quota_key", "query_id", "stacktrace", "buffer_size",
    "wait_end_of_query", "session_id", "session_timeout", "session_check", "client_protocol_version",
    "close_session", "role", "query", "database", "default_format",
})
# chdb's Python-side pseudo formats: they return Python objects, not bytes.
_CHDB_ONLY_FORMATS = frozenset({"dataframe", "arrowtable", "debug"})
_RESULT_STATEMENTS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN", "CHECK"})
_MAX_SESSION_TIMEOUT_S = 3600
_ERROR_RE = re.compile(r"Code: (\d+)\. ")
_SETTING_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# exceptionCodeToHTTPStatus (src/Server/HTTP/exceptionCodeToHTTPStatus.cpp), by error name.
_STATUS_BY_ERROR_NAME: dict[str, int] = {
    "REQUIRED_PASSWORD": 401,
    **dict.fromkeys(("UNKNOWN_USER", "WRONG_PASSWORD", "AUTHENTICATION_FAILED", "SET_NON_GRANTED_ROLE",
                     "ACCESS_DENIED"), 403),
    **dict.fromkeys((
        "BAD_ARGUMENTS", "CANNOT_COMPILE_REGEXP", "CANNOT_PARSE_TEXT", "CANNOT_PARSE_ESCAPE_SEQUENCE",
        "CANNOT_PARSE_QUOTED_STRING", "CANNOT_PARSE_DATE", "CANNOT_PARSE_DATETIME", "CANNOT_PARSE_NUMBER",
        "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING", "CANNOT_PARSE_IPV4", "CANNOT_PARSE_IPV6",
        "CANNOT_PARSE_INPUT_ASSERTION_FAILED", "CANNOT_PARSE_UUID", "DUPLICATE_COLUMN", "ILLEGAL_COLUMN",
        "UNKNOWN_ELEMENT_IN_AST", "UNKNOWN_TYPE_OF_AST_NODE", "THERE_IS_NO_COLUMN", "TOO_DEEP_AST",
        "TOO_BIG_AST", "UNEXPECTED_AST_STRUCTURE", "SYNTAX_ERROR", "INCORRECT_DATA", "TYPE_MISMATCH",
        "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE"), 400),
    **dict.fromkeys((
        "UNKNOWN_TABLE", "UNKNOWN_FUNCTION", "UNKNOWN_IDENTIFIER", "UNKNOWN_TYPE", "UNKNOWN_STORAGE",
        "UNKNOWN_DATABASE", "UNKNOWN_SETTING", "UNKNOWN_DIRECTION_OF_SORTING", "UNKNOWN_AGGREGATE_FUNCTION",
        "UNKNOWN_FORMAT", "UNKNOWN_DATABASE_ENGINE", "UNKNOWN_TYPE_OF_QUERY", "UNKNOWN_ROLE"), 404),
    "QUERY_IS_TOO_LARGE": 413,
    "NOT_IMPLEMENTED": 501,
    **dict.fromkeys(("SOCKET_TIMEOUT", "CANNOT_OPEN_FILE", "CANNOT_SCHEDULE_TASK"), 503),
    "HTTP_LENGTH_REQUIRED": 411,
    "TIMEOUT_EXCEEDED": 408,
    "UNSUPPORTED_MEDIA_TYPE": 415,
}

# chdb opens one engine per process: the data directory of the servers running now, and how many.
_engine_guard = threading.Lock()
_engine_users: dict[str, int] = {}


class ClickHouseError(Exception):
    """An error to answer the way ClickHouse does: `Code: N. DB::Exception: ... (NAME)`."""

    def __init__(self, code: int, name: str, message: str):
        super().__init__(message)
        self.code, self.name = code, name

    @classmethod
    def from_chdb(cls, exc: Exception) -> "ClickHouseError":
        text = str(exc)
        match = _ERROR_RE.search(text)
        if match is None:
            return cls(1001, "STD_EXCEPTION", f"Code: 1001. DB::Exception: {text}. (STD_EXCEPTION)")
        name = re.findall(r"\(([A-Z][A-Z0-9_]+)\)", text)
        return cls(int(match.group(1)), name[-1] if name else "", text[match.start():])

    @classmethod
    def new(cls, code: int, name: str, message: str) -> "ClickHouseError":
        return cls(code, name, f"Code: {code}. DB::Exception: {message}. ({name})")


# --- SQL scanning: just enough lexing to find statement kind, FORMAT clauses and INSERT data ----------

_WS = b" \t\n\r\f\v"
_WORD_START = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_") | frozenset(range(0x80, 0x100))
_WORD_CHARS = _WORD_START | frozenset(b"0123456789$")
_NUMBER_CHARS = frozenset(b"0123456789abcdefxABCDEFX._+-")


@dataclass(frozen=True)
class _Token:
    kind: str  # word, quoted, string, number, punct
    start: int
    end: int


def _tokens(text: bytes, pos: int = 0) -> Iterator[_Token]:
    """ClickHouse tokens of `text` from `pos`, comments and whitespace skipped (bytes, so binary
    INSERT data after the statement is never decoded: callers stop before it)."""
    n = len(text)
    while pos < n:
        c = text[pos]
        if c in _WS:
            pos += 1
        elif text.startswith(b"--", pos):
            end = text.find(b"\n", pos)
            pos = n if end < 0 else end + 1
        elif text.startswith(b"/*", pos):
            pos = _comment_end(text, pos)
        elif c in b"'\"`":
            end = _quote_end(text, pos)
            yield _Token("string" if c == ord("'") else "quoted", pos, end)
            pos = end
        elif c in _WORD_START:
            end = pos + 1
            while end < n and text[end] in _WORD_CHARS:
                end += 1
            yield _Token("word", pos, end)
            pos = end
        elif 0x30 <= c <= 0x39:
            end = pos + 1
            while end < n and (text[end] in _NUMBER_CHARS and not (text[end] in b"+-" and text[end - 1] not in b"eE")):
                end += 1
            yield _Token("number", pos, end)
            pos = end
        else:
            yield _Token("punct", pos, pos + 1)
            pos += 1


def _comment_end(text: bytes, pos: int) -> int:
    depth, pos = 1, pos + 2  # ClickHouse block comments nest
    while depth and pos < len(text):
        if text.startswith(b"/*", pos):
            depth, pos = depth + 1, pos + 2
        elif text.startswith(b"*/", pos):
            depth, pos = depth - 1, pos + 2
        else:
            pos += 1
    return pos


def _quote_end(text: bytes, pos: int) -> int:
    quote, pos = text[pos], pos + 1
    while pos < len(text):
        c = text[pos]
        if c == 0x5C:  # backslash escape
            pos += 2
        elif c == quote:
            if pos + 1 < len(text) and text[pos + 1] == quote:  # doubled quote
                pos += 2
            else:
                return pos + 1
        else:
            pos += 1
    return len(text)


@dataclass
class _Statement:
    kind: str                       # first keyword, upper case ("" if none)
    sql: str                        # what chdb runs; for an INSERT with data, the part before FORMAT
    output_format: str | None = None
    insert_format: str | None = None
    data: bytes | None = None       # INSERT data following the statement


def _word(text: bytes, token: _Token) -> str:
    return text[token.start:token.end].decode("ascii", "replace").upper() if token.kind == "word" else ""


def _parse(text: bytes) -> _Statement:
    tokens = _tokens(text)
    first = next((t for t in tokens if not (t.kind == "punct" and text[t.start] == ord("("))), None)
    kind = _word(text, first) if first else ""
    if kind == "INSERT":
        statement = _parse_insert(text, tokens)
        if statement is not None:
            return statement
    sql = text.decode("utf-8", "replace")
    return _Statement(kind, sql, output_format=_output_format(text, kind))


def _parse_insert(text: bytes, tokens: Iterator[_Token]) -> _Statement | None:
    """Split `INSERT ... FORMAT f <data>` / `INSERT ... VALUES <data>` into statement and data
    (ClickHouse's rule: data starts after the newline following the format name, if there is one)."""
    depth = 0
    for token in tokens:
        c = text[token.start]
        if token.kind == "punct":
            depth += (c in b"([") - (c in b")]")
            continue
        word = _word(text, token) if depth == 0 else ""
        if word in ("SELECT", "WITH", "INFILE"):
            return None
        if word == "VALUES":
            data = text[token.end:].strip(_WS)
            if data.endswith(b";"):
                data = data[:-1]
            return _Statement("INSERT", text[:token.start].decode("utf-8", "replace"), insert_format="Values",
                              data=data)
        if word == "FORMAT":
            name = next(tokens, None)
            if name is None or name.kind not in ("word", "quoted"):
                return None
            pos = name.end
            while pos < len(text) and text[pos] in _WS:
                pos += 1
                if text[pos - 1] == ord("\n"):
                    break
            fmt = text[name.start:name.end].decode("utf-8", "replace").strip('"`')
            return _Statement("INSERT", text[:token.start].decode("utf-8", "replace"), insert_format=fmt,
                              data=text[pos:])
    return None


def _output_format(text: bytes, kind: str) -> str | None:
    """The FORMAT clause of a statement, and refuse multi-statements as a server does."""
    tokens = list(_tokens(text))
    depth, fmt = 0, None
    for i, token in enumerate(tokens):
        c = text[token.start]
        if token.kind == "punct":
            depth += (c in b"([") - (c in b")]")
            if c == ord(";") and depth == 0:
                rest = [t for t in tokens[i + 1:] if not (t.kind == "punct" and text[t.start] == ord(";"))]
                if rest:
                    raise ClickHouseError.new(62, "SYNTAX_ERROR", "Syntax error (Multi-statements are not allowed): "
                                              f"failed at position {rest[0].start + 1}")
                break
        elif depth == 0 and _word(text, token) == "FORMAT" and kind != "INSERT" and i + 1 < len(tokens):
            after = tokens[i + 2] if i + 2 < len(tokens) else None
            if tokens[i + 1].kind in ("word", "quoted") and (
                    after is None or _word(text, after) == "SETTINGS" or text[after.start] == ord(";")):
                fmt = text[tokens[i + 1].start:tokens[i + 1].end].decode("utf-8", "replace").strip('"`')
    return fmt


# --- the engine: one chdb data directory, HTTP sessions as chdb connections ---------------------------

def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _set_statement(settings: Mapping[str, str]) -> str:
    return "SET " + ", ".join(f"{name} = {_quote(value)}" for name, value in settings.items())


@dataclass
class _Session:
    conn: Connection
    timeout_s: float
    last_used: float = field(default_factory=time.monotonic)
    busy: bool = False


@dataclass
class _Reply:
    status: int
    body: bytes
    headers: dict[str, str]


class _Engine:
    """Runs requests on chdb. Every chdb call holds one lock: requests run one at a time."""

    def __init__(self, data_dir: Path, server_defaults: Mapping[str, str], user: str, password: str):
        self.conn_str = str(data_dir)
        self.server_defaults = dict(server_defaults)
        self.user, self.password = user, password
        self.lock = threading.RLock()
        self.sessions: dict[str, _Session] = {}
        self.sessions_lock = threading.Lock()
        self.main = Connection(self.conn_str)  # keeps the engine up between requests
        version, timezone, host = self.main.query("SELECT version(), timezone(), hostName()", "TabSeparated") \
            .bytes().decode().rstrip("\n").split("\t")
        self.version, self.timezone, self.display_name = version, timezone, host
        names = self.main.query("SELECT number, errorCodeToName(number) FROM numbers(2000) "
                                "WHERE errorCodeToName(number) != ''", "TabSeparated").bytes().decode()
        self.error_names = {int(code): name for code, name in (line.split("\t") for line in names.splitlines())}

    def close(self) -> None:
        with self.lock:
            with self.sessions_lock:
                sessions, self.sessions = list(self.sessions.values()), {}
            for session in sessions:
                if session.conn is not None:
                    session.conn.close()
            self.main.close()

    # The request ------------------------------------------------------------------------------------

    def handle(self, method: str, params: list[tuple[str, str]], headers: Mapping[str, str],
               body: bytes) -> _Reply:
        query_id = _last(params, "query_id") or headers.get("X-ClickHouse-Query-Id") or str(uuid.uuid4())
        reply_headers = {"X-ClickHouse-Server-Display-Name": self.display_name, "X-ClickHouse-Query-Id": query_id}
        try:
            self._authenticate(params, headers)
            body = _decode_body(body, headers.get("Content-Encoding", ""))
            params, text = _request_text(params, headers.get("Content-Type", ""), body)
            if not text.strip(_WS):
                raise ClickHouseError.new(62, "SYNTAX_ERROR", "Empty query")
            statement = _parse(text)
            return self._run(method, params, headers, statement, reply_headers)
        except ClickHouseError as exc:
            status = _STATUS_BY_ERROR_NAME.get(exc.name or self.error_names.get(exc.code, ""), 500)
            text = f"{exc} (version {self.version} (official build))\n"
            return _Reply(status, text.encode(), {**reply_headers, "X-ClickHouse-Exception-Code": str(exc.code),
                                                   "Content-Type": "text/plain; charset=UTF-8"})

    def _authenticate(self, params: list[tuple[str, str]], headers: Mapping[str, str]) -> None:
        user, password = headers.get("X-ClickHouse-User"), headers.get("X-ClickHouse-Key")
        auth = headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                user, _, password = b64decode(auth[6:]).decode().partition(":")
            except (Base64Error, UnicodeDecodeError):
                raise ClickHouseError.new(516, "AUTHENTICATION_FAILED", "Invalid Authorization header") from None
        elif auth:
            raise ClickHouseError.new(516, "AUTHENTICATION_FAILED", "Unsupported authorization scheme")
        user = user or _last(params, "user") or "default"
        password = password or _last(params, "password") or ""
        if user != self.user or password != self.password:
            raise ClickHouseError.new(516, "AUTHENTICATION_FAILED",
                                      f"{user}: Authentication failed: password is incorrect, or there is no user "
                                      "with such name")

    def _run(self, method: str, params: list[tuple[str, str]], headers: Mapping[str, str],
             statement: _Statement, reply_headers: dict[str, str]) -> _Reply:
        for name in ("compress", "decompress"):
            if _last(params, name) in ("1", "true"):
                raise ClickHouseError.new(48, "NOT_IMPLEMENTED", f"'{name}=1' (ClickHouse's internal compression) "
                                          "is not implemented by this chdb front")
        settings = {k: v for k, v in params if k and k not in _RESERVED_PARAMS and not k.startswith("param_")}
        for name in settings:
            if not _SETTING_NAME_RE.fullmatch(name):  # names go into SQL unquoted
                raise ClickHouseError.new(115, "UNKNOWN_SETTING", f"Unknown setting '{name}'")
        query_params = {k[6:]: v for k, v in params if k.startswith("param_")}
        database = headers.get("X-ClickHouse-Database") or _last(params, "database")
        fmt = headers.get("X-ClickHouse-Format") or _last(params, "default_format") or "TabSeparated"
        if fmt.lower() in _CHDB_ONLY_FORMATS or (statement.output_format or "").lower() in _CHDB_ONLY_FORMATS:
            raise ClickHouseError.new(73, "UNKNOWN_FORMAT", f"Unknown format {statement.output_format or fmt}")
        session_id = _last(params, "session_id")
        if not session_id and method == "GET" and "readonly" not in settings:
            settings["readonly"] = "2"  # as a server: GET runs read-only queries only
        started = time.perf_counter()
        if session_id:
            session = self._acquire_session(session_id, params)
            try:
                with self.lock:
                    result = self._in_session(session.conn, settings, database, statement, fmt, query_params)
            finally:
                self._release_session(session_id, session, _last(params, "close_session") in ("1", "true"))
        else:
            with self.lock:
                conn = Connection(self.conn_str)
                try:
                    if database:
                        _query(conn, f"USE {_identifier(database)}")
                    _query(conn, _set_statement({**self.server_defaults, **settings}))
                    result = _execute(conn, statement, fmt, query_params)
                finally:
                    conn.close()
        output, counters = result
        elapsed_ns = int((time.perf_counter() - started) * 1e9)
        summary = {**{k: str(v) for k, v in counters.items()}, "total_rows_to_read": "0",
                   "result_bytes": str(len(output)), "elapsed_ns": str(elapsed_ns)}
        headers_out = {**reply_headers, "X-ClickHouse-Summary": json.dumps(summary, separators=(",", ":"))}
        if statement.kind in _RESULT_STATEMENTS or statement.output_format or output:
            out_fmt = statement.output_format or fmt
            headers_out.update({"X-ClickHouse-Format": out_fmt, "Content-Type": _content_type(out_fmt),
                                "X-ClickHouse-Timezone": settings.get("session_timezone") or self.timezone})
        else:
            headers_out["Content-Type"] = "text/plain; charset=UTF-8"
        return _Reply(200, output, headers_out)

    def _in_session(self, conn: Connection, settings: dict[str, str], database: str | None,
                    statement: _Statement, fmt: str, query_params: dict[str, str]) -> tuple[bytes, dict]:
        """URL settings and `database` hold for this query only; SET and USE in the session persist."""
        previous: dict[str, tuple[str, bool]] = {}
        if settings:
            names = ", ".join(_quote(name) for name in settings)
            rows = _query(conn, f"SELECT name, value, changed FROM system.settings WHERE name IN ({names})")
            for line in rows.decode().splitlines():
                name, value, changed = line.split("\t")
                previous[name] = (_unescape_tsv(value), changed == "1")
        previous_db = _query(conn, "SELECT currentDatabase()").decode().rstrip("\n") if database else None
        try:
            if database:
                _query(conn, f"USE {_identifier(database)}")
            if settings:
                _query(conn, _set_statement(settings))
            return _execute(conn, statement, fmt, query_params)
        finally:
            keep = set()
            if statement.kind == "SET" and previous:  # the statement's own SETs stay
                rows = _query(conn, "SELECT name, value FROM system.settings WHERE name IN ("
                              + ", ".join(_quote(n) for n in previous) + ")").decode()
                now = dict(line.split("\t") for line in rows.splitlines())
                keep = {n for n in previous if _unescape_tsv(now.get(n, "")) != settings.get(n)}
            restore = [f"{name} = {_quote(value) if changed else 'DEFAULT'}"
                       for name, (value, changed) in previous.items() if name not in keep]
            if restore:
                _query(conn, "SET " + ", ".join(restore))
            if previous_db is not None and statement.kind != "USE":
                try:
                    _query(conn, f"USE {_identifier(previous_db)}")
                except ClickHouseError:  # the statement dropped it
                    _query(conn, "USE default")

    def _acquire_session(self, session_id: str, params: list[tuple[str, str]]) -> _Session:
        raw_timeout = _last(params, "session_timeout")
        timeout_s = 60.0
        if raw_timeout is not None:
            if not raw_timeout.isdigit() or int(raw_timeout) > _MAX_SESSION_TIMEOUT_S:
                raise ClickHouseError.new(374, "INVALID_SESSION_TIMEOUT", f"Invalid session timeout: '{raw_timeout}'")
            timeout_s = float(raw_timeout)
        expired: list[_Session] = []
        with self.sessions_lock:
            now = time.monotonic()
            for sid, s in list(self.sessions.items()):
                if not s.busy and now - s.last_used > s.timeout_s:
                    expired.append(self.sessions.pop(sid))
            session = self.sessions.get(session_id)
            if session is None:
                if _last(params, "session_check") in ("1", "true"):
                    raise ClickHouseError.new(372, "SESSION_NOT_FOUND", f"Session {session_id} not found")
                session = self.sessions[session_id] = _Session(None, timeout_s)  # type: ignore[arg-type]
                session.busy = True
                fresh = True
            elif session.busy:
                raise ClickHouseError.new(373, "SESSION_IS_LOCKED",
                                          f"Session {session_id} is locked by a concurrent client")
            else:
                session.busy, session.timeout_s, fresh = True, timeout_s, False
        with self.lock:
            for s in expired:
                s.conn.close()
            if fresh:
                try:
                    session.conn = Connection(self.conn_str)
                    _query(session.conn, _set_statement(self.server_defaults))
                except BaseException:
                    with self.sessions_lock:
                        self.sessions.pop(session_id, None)
                    raise
        return session

    def _release_session(self, session_id: str, session: _Session, close: bool) -> None:
        with self.sessions_lock:
            session.busy, session.last_used = False, time.monotonic()
            if close:
                self.sessions.pop(session_id, None)
        if close:
            with self.lock:
                session.conn.close()


def _execute(conn: Connection, statement: _Statement, fmt: str, query_params: dict[str, str]) -> tuple[bytes, dict]:
    try:
        if statement.data is None:
            result = conn.query(statement.sql, fmt, params=query_params or None)
            return result.bytes(), {"read_rows": result.rows_read(), "read_bytes": result.bytes_read(),
                                    "written_rows": result.rows_written(), "written_bytes": result.bytes_written()}
        if query_params:  # send_insert takes none; a server would bind them in the INSERT statement
            raise ClickHouseError.new(48, "NOT_IMPLEMENTED", "Query parameters in an INSERT with data")
        inserter = conn.send_insert(statement.sql, statement.insert_format)
        try:
            if statement.data:
                inserter.append(statement.data)
            done = inserter.finish()
        except BaseException:
            inserter.close()
            raise
        return b"", {"read_rows": done.rows_written, "read_bytes": done.bytes_written,
                     "written_rows": done.rows_written, "written_bytes": done.bytes_written}
    except ClickHouseError:
        raise
    except Exception as exc:  # chdb raises RuntimeError subclasses carrying ClickHouse's message
        raise ClickHouseError.from_chdb(exc) from None


def _query(conn: Connection, sql: str) -> bytes:
    try:
        return conn.query(sql, "TabSeparated").bytes()
    except Exception as exc:
        raise ClickHouseError.from_chdb(exc) from None


def _identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _unescape_tsv(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"t": "\t", "n": "\n", "0": "\0"}.get(m.group(1), m.group(1)), value)


def _last(params: list[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in reversed(params) if k == name), None)


def _content_type(fmt: str) -> str:
    f = fmt.lower()
    if f.startswith(("tabseparated", "tsv")):
        return "text/tab-separated-values; charset=UTF-8"
    if f.startswith("csv"):
        return "text/csv; charset=UTF-8; header=absent"
    if f.startswith("json"):
        return "application/json; charset=UTF-8"
    if f in ("native", "arrow", "arrowstream", "parquet", "orc", "avro", "msgpack") or f.startswith("rowbinary"):
        return "application/octet-stream"
    return "text/plain; charset=UTF-8"


def _decode_body(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    try:
        if encoding in ("", "identity"):
            return body
        if encoding == "lz4":  # clickhouse-connect sends a frame per block
            import lz4.frame
            parts = []
            while body:
                decompressor = lz4.frame.LZ4FrameDecompressor()
                parts.append(decompressor.decompress(body))
                if not decompressor.eof:
                    raise ValueError("truncated LZ4 frame")
                body = decompressor.unused_data
            return b"".join(parts)
        if encoding == "zstd":
            from backports import zstd
            return zstd.decompress(body)
        if encoding in ("gzip", "x-gzip"):
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body)
        if encoding == "br":
            import brotli
            return brotli.decompress(body)
    except ImportError as exc:
        raise ClickHouseError.new(48, "NOT_IMPLEMENTED", f"Content-Encoding {encoding}: {exc}") from None
    except Exception as exc:
        raise ClickHouseError.new(271, "CANNOT_DECOMPRESS", f"Cannot decompress {encoding} body: {exc}") from None
    raise ClickHouseError.new(48, "NOT_IMPLEMENTED", f"Unknown Content-Encoding: {encoding}")


def _request_text(params: list[tuple[str, str]], content_type: str,
                  body: bytes) -> tuple[list[tuple[str, str]], bytes]:
    """The query text: the `query` parameter, a line break, then the body; or multipart form fields."""
    if content_type.startswith("multipart/form-data"):
        message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        query, fields = _last(params, "query") or "", []
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if part.get_filename():
                raise ClickHouseError.new(48, "NOT_IMPLEMENTED", "External data (multipart file fields) is not "
                                          "implemented by this chdb front")
            value = part.get_payload(decode=True).decode()
            if name == "query":
                query += value
            else:
                fields.append((name, value))
        return [*params, *fields], query.encode()
    query = _last(params, "query")
    if query:
        return params, query.encode() + b"\n" + body
    return params, body


# --- HTTP -----------------------------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave in separate writes
    timeout = 60  # an idle keep-alive connection closes after this
    server: "_HttpServer"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        body = self._body()
        if parts.path in ("/ping", "/replicas_status") and method == "GET":
            self._send(_Reply(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"}))
        elif parts.path in ("/", ""):
            params = parse_qsl(parts.query, keep_blank_values=True)
            try:
                reply = self.server.engine.handle(method, params, self.headers, body)
            except Exception as exc:  # a bug here must reach the client as an error, not a hang
                reply = _Reply(500, f"Code: 1001. DB::Exception: {type(exc).__name__}: {exc}. (STD_EXCEPTION)\n"
                               .encode(), {"X-ClickHouse-Exception-Code": "1001"})
            self._send(reply)
        else:
            self._send(_Reply(404, b"There is no handle " + parts.path.encode() + b"\n", {}))

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, reply: _Reply) -> None:
        self.send_response(reply.status)
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("Keep-Alive", f"timeout={self.timeout}")
        self.end_headers()
        self.wfile.write(reply.body)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    engine: _Engine


class ChdbHttpServer:
    """The ClickHouse HTTP interface over chdb on `data_dir`; `port=0` picks a free port."""

    def __init__(self, data_dir: Path, host: str = "127.0.0.1", port: int = 0, *, user: str = "default",
                 password: str = "", server_defaults: Mapping[str, str] = SERVER_DEFAULTS):
        self.data_dir = Path(data_dir)
        self.host, self._requested_port = host, port
        self.user, self.password = user, password
        self.server_defaults = dict(server_defaults)
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._engine: _Engine | None = None

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def version(self) -> str:
        assert self._engine is not None, "server not started"
        return self._engine.version

    def start(self) -> "ChdbHttpServer":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = str(self.data_dir.resolve())
        with _engine_guard:
            other = next((path for path in _engine_users if path != key), None)
            if other is not None:
                raise RuntimeError(f"chdb already runs on {other} in this process; it allows one data directory "
                                   "per process: stop that server first")
            _engine_users[key] = _engine_users.get(key, 0) + 1
        try:
            self._engine = _Engine(self.data_dir, self.server_defaults, self.user, self.password)
            self._httpd = _HttpServer((self.host, self._requested_port), _Handler)
            self._httpd.engine = self._engine
        except BaseException:
            self._release(key)
            raise
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True,
                                        name=f"chdb-http-{self.port}")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd = None
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        self._release(str(self.data_dir.resolve()))

    @staticmethod
    def _release(key: str) -> None:
        with _engine_guard:
            _engine_users[key] -= 1
            if not _engine_users[key]:
                del _engine_users[key]

    def __enter__(self) -> "ChdbHttpServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
