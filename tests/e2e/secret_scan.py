"""Look for credentials where they must never be: Airflow's metadata DB, every log, the emulator's data.

What counts as a leak:

* the connection's private key: any line of its base64 body (a PEM split over lines, JSON-escaped or not,
  still shows its lines);
* any JWT (``eyJ...``): the Maskinporten token, the Altinn token, the platform access token and the client's
  own grant assertions are all JWTs, and nothing in this stack has a reason to store one. A match is
  described by its header and issuer (``kid``, ``iss``), never printed whole;
* the header segment of a token the emulator signs (identical for every token signed with the same key),
  in case a token is stored cut at its dots.

The connection table is skipped (the connection comes from the environment here anyway); encrypted cells
(Fernet, ``gAAAAA...``: trigger kwargs, variables) are decrypted with the home's key and scanned too.
"""

from __future__ import annotations

import base64
import configparser
import contextlib
import gzip
import json
import re
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JWT = re.compile(rb"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
FERNET = re.compile(rb"gAAAAA[A-Za-z0-9_=-]{40,}")


@dataclass
class Needles:
    """What to look for.

    :param key_lines: the base64 body lines of the private key.
    :param token_headers: header segments of tokens the emulator signed (and of the client's assertions).
    :param known_kids: key ids whose JWTs are ours (the emulator's keys, the client's key).
    """

    key_lines: list[bytes] = field(default_factory=list)
    token_headers: list[bytes] = field(default_factory=list)
    known_kids: set[str] = field(default_factory=set)

    @classmethod
    def build(cls, private_key_pem: str, tokens: Iterable[str], kids: Iterable[str]) -> Needles:
        lines = [
            line.strip().encode()
            for line in private_key_pem.strip().splitlines()
            if line.strip() and not line.startswith("-----")
        ]
        headers = {token.split(".", 1)[0].encode() for token in tokens}
        return cls(
            key_lines=[line for line in lines if len(line) >= 32],
            token_headers=sorted(headers),
            known_kids=set(kids),
        )


def _b64json(segment: bytes) -> dict[str, Any]:
    try:
        value = json.loads(base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4)))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def describe_jwt(token: bytes, needles: Needles) -> str:
    """Who signed a JWT and who issued it, without the token itself."""
    header_segment, payload_segment, _ = token.split(b".", 2)
    header, payload = _b64json(header_segment), _b64json(payload_segment)
    kid = str(header.get("kid"))
    owner = "ours" if kid in needles.known_kids else "foreign"
    return f"JWT ({owner}: kid={kid} iss={payload.get('iss')} scope={payload.get('scope')})"


def scan(where: str, data: bytes, needles: Needles, fernet: Any = None) -> list[str]:
    """Every leak in ``data`` as ``"<where>: <what>"`` (nothing secret in the text)."""
    found = []
    for number, line in enumerate(needles.key_lines):
        if line in data:
            found.append(f"{where}: private key (base64 line {number + 1})")
            break
    for header in needles.token_headers:
        if header in data:
            found.append(f"{where}: header of an emulator-signed token ({header[:12].decode()}...)")
    found += [f"{where}: {describe_jwt(match.group(0), needles)}" for match in JWT.finditer(data)]
    if fernet is not None:
        for match in FERNET.finditer(data):
            try:
                plain = fernet.decrypt(match.group(0))
            except Exception:  # not a Fernet token of this key: nothing to look into
                continue
            found += scan(f"{where} (decrypted)", plain, needles)
    return found


def home_files(home: Path, skip: Iterable[str] = ("airflow.db",)) -> Iterator[tuple[str, bytes]]:
    """Every file under ``home`` (gzip files also decompressed), except the metadata DB itself."""
    skipped = tuple(skip)
    for path in sorted(home.rglob("*")):
        if not path.is_file() or path.name.startswith(skipped):
            continue
        data = path.read_bytes()
        yield str(path.relative_to(home)), data
        if path.suffix == ".gz":
            with contextlib.suppress(OSError):
                yield f"{path.relative_to(home)} (gunzipped)", gzip.decompress(data)


def fernet_of(home: Path) -> Any:
    """The home's Fernet (from ``airflow.cfg``), or ``None`` when encryption is off."""
    from cryptography.fernet import Fernet

    config = configparser.ConfigParser(interpolation=None)
    config.read(home / "airflow.cfg")
    key = config.get("core", "fernet_key", fallback="").strip()
    return Fernet(key.encode()) if key else None


def db_cells(db: Path, skip_tables: Iterable[str] = ("connection",)) -> Iterator[tuple[str, bytes]]:
    """Every non-empty cell of every table (as bytes), except the skipped tables."""
    skipped = set(skip_tables)
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            if table in skipped:
                continue
            cursor = connection.execute(f'SELECT * FROM "{table}"')
            columns = [description[0] for description in cursor.description]
            for number, row in enumerate(cursor):
                for column, value in zip(columns, row, strict=False):
                    if value is None or isinstance(value, (int, float)):
                        continue
                    data = value if isinstance(value, bytes) else str(value).encode()
                    yield f"airflow.db {table}.{column} row {number}", data
    finally:
        connection.close()
