"""A small real MCP server (stdio) for the MCP guard's tests.

Tools: `read_file(path)` and `run_sql(sql)` on a SQLite database. Each call
that arrives appends one JSON line to the calls log, before it runs, with
the tool, its arguments and the action token found in the request's
`_meta` (or null), so tests can prove what the guard forwarded, and what it
did not.

    python mcp_demo_server.py --db accounts.db --calls-log calls.jsonl

`--db` and `--calls-log` default to `$MCP_DEMO_DB` and `$MCP_DEMO_CALLS_LOG`.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import Context, MCPServer

#: Where the guard puts a high-risk call's action token.
TOKEN_META_KEY = "agent-ledger/token"


def build_server(db: Path, calls_log: Path) -> MCPServer:
    """The server, over `db`, logging calls to `calls_log`."""
    server = MCPServer("agent-ledger-demo", log_level="WARNING")

    def record(ctx: Context, tool: str, **arguments: Any) -> None:
        meta = ctx.request_context.meta or {}
        line = {"tool": tool, "arguments": arguments, "token": meta.get(TOKEN_META_KEY)}
        with open(calls_log, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")

    @server.tool()
    def read_file(path: str, ctx: Context) -> str:
        """Reads a text file."""
        record(ctx, "read_file", path=path)
        return Path(path).read_text(encoding="utf-8")

    @server.tool()
    def transfer(target: str, amount: int, ctx: Context) -> str:
        """Pays `amount` to `target` (a tool whose class needs a human)."""
        record(ctx, "transfer", target=target, amount=amount)
        return f"paid {amount} to {target}"

    @server.tool()
    def run_sql(sql: str, ctx: Context) -> str:
        """Runs one SQL statement on the database; answers its rows as JSON."""
        record(ctx, "run_sql", sql=sql)
        with sqlite3.connect(db) as conn:
            return json.dumps(conn.execute(sql).fetchall())

    return server


def main() -> None:
    """Serves over stdio until stdin closes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=os.environ.get("MCP_DEMO_DB"))
    parser.add_argument("--calls-log", default=os.environ.get("MCP_DEMO_CALLS_LOG"))
    args = parser.parse_args()
    if not args.db or not args.calls_log:
        parser.error("give --db and --calls-log (or $MCP_DEMO_DB and $MCP_DEMO_CALLS_LOG)")
    build_server(Path(args.db), Path(args.calls_log)).run("stdio")


if __name__ == "__main__":
    main()
