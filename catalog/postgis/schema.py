"""The schema of published feature tables: `taza_features`, its `layers` table, and the SQL
functions named by the CQL2 translator's PostgreSQL dialect (catalog.core.cql2.POSTGRESQL).

The functions give the same answers as the GeoPackage store's SQLite functions:

- `instant(text)`: a time value as timestamptz, read in UTC whatever the session's time zone
  (so no session state is needed, as behind pgbouncer), NULL when the text is no time (as
  SQLite's julianday());
- `lower_text(text)`: Unicode lower case;
- `unaccent_text(text)`: combining marks removed, exactly the characters Python's
  `unicodedata.combining` names (catalog.core.cql2.unaccent), listed when the schema is made.
"""

from __future__ import annotations

import sys
import unicodedata

import psycopg
from psycopg import sql

SCHEMA = "taza_features"
LAYERS_TABLE = "layers"


def ensure_schema(conn: psycopg.Connection) -> None:
    """Create the schema, `layers` and the functions where missing (idempotent; run inside the
    caller's transaction, serialised by an advisory lock)."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('taza_features schema'))")
    schema = sql.Identifier(SCHEMA)
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
    conn.execute(sql.SQL(
        "CREATE TABLE IF NOT EXISTS {}.{} ("
        " dataset_id text NOT NULL, version integer NOT NULL, table_name text NOT NULL UNIQUE,"
        " pk text NOT NULL, geometry text NOT NULL, columns jsonb NOT NULL,"
        " total bigint NOT NULL, loaded_at timestamptz NOT NULL DEFAULT now(),"
        " PRIMARY KEY (dataset_id, version))").format(schema, sql.Identifier(LAYERS_TABLE)))
    conn.execute(sql.SQL(
        "CREATE OR REPLACE FUNCTION {}.instant(value text) RETURNS timestamptz "
        # PARALLEL UNSAFE: the EXCEPTION block opens a subtransaction, which PostgreSQL refuses
        # anywhere in parallel mode, the leader included ("cannot start subtransactions during
        # a parallel operation"), once a table is large enough for a parallel plan.
        "LANGUAGE plpgsql IMMUTABLE PARALLEL UNSAFE SET timezone = 'UTC' AS $$ "
        "BEGIN RETURN value::timestamptz; "
        "EXCEPTION WHEN others THEN RETURN NULL; END $$").format(schema))
    conn.execute(sql.SQL(
        "CREATE OR REPLACE FUNCTION {}.lower_text(value text) RETURNS text "
        "LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN lower(value COLLATE {})"
    ).format(schema, sql.Identifier(_lower_collation(conn))))
    conn.execute(sql.SQL(
        "CREATE OR REPLACE FUNCTION {}.unaccent_text(value text) RETURNS text "
        "LANGUAGE sql IMMUTABLE PARALLEL SAFE "
        "RETURN normalize(regexp_replace(normalize(value, NFD), {}, '', 'g'), NFC)"
    ).format(schema, sql.Literal(combining_marks_class())))


def _lower_collation(conn: psycopg.Connection) -> str:
    """A collation whose lower() folds every script: ICU's root locale where the server has
    ICU, else the database's default (C.UTF-8 folds Unicode too, plain "C" only ASCII)."""
    row = conn.execute("SELECT collname FROM pg_collation WHERE collname = 'und-x-icu'").fetchone()
    return row[0] if row else "default"


def combining_marks_class() -> str:
    """A regular-expression class of every character with a non-zero combining class."""
    ranges: list[list[int]] = []
    for code in range(sys.maxunicode + 1):
        if unicodedata.combining(chr(code)):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])
    parts = [chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in ranges]
    return "[" + "".join(parts) + "]"
