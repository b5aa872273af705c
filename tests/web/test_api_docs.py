"""docs/api.md is kept in step with the OpenAPI document: its endpoint table lists exactly the
operations /api/openapi.json has, each with its summary. After adding or changing an endpoint run

    WIREWAN_WRITE_API_DOC=1 .venv/bin/python -m pytest tests/web/test_api_docs.py

which rewrites the table between the markers (the prose around it is written by hand)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
START, END = "<!-- endpoints:start (generated from /api/openapi.json) -->", "<!-- endpoints:end -->"
METHODS = ("get", "post", "put", "patch", "delete")


def table(spec: dict[str, Any]) -> str:
    by_tag: dict[str, list[str]] = {}
    for path, item in spec["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            query = [p["name"] for p in op.get("parameters", []) if p.get("in") == "query"]
            args = f" `{', '.join(query)}`" if query else ""
            codes = ", ".join(c for c in op["responses"] if c.startswith("2"))
            row = f"| {method.upper()} | `{path}`{args} | {op['summary']} | {codes} |"
            by_tag.setdefault(op.get("tags", ["Other"])[0], []).append(row)
    out = []
    for tag in sorted(by_tag):
        out += [f"### {tag}", "", "| method | path (query) | what | success |", "|---|---|---|---|", *by_tag[tag], ""]
    return "\n".join(out).rstrip() + "\n"


def test_docs_api_md_lists_every_operation_of_the_openapi_document(client: Any) -> None:
    spec = client.get("/api/openapi.json").get_json()
    text = DOC.read_text()
    assert START in text and END in text, "docs/api.md lost its generated-table markers"
    head, rest = text.split(START, 1)
    current, tail = rest.split(END, 1)
    wanted = "\n" + table(spec)
    if os.environ.get("WIREWAN_WRITE_API_DOC") == "1" and current != wanted:
        DOC.write_text(head + START + wanted + END + tail)
        current = wanted
    assert current == wanted, "docs/api.md is out of step with the OpenAPI document: see this test's docstring"
    # And the prose never points newcomers outside the repository.
    assert "../shared" not in text and "shared/API.md" not in text


def test_readme_and_the_api_docs_point_into_the_repository(client: Any) -> None:
    readme = (DOC.parents[1] / "README.md").read_text()
    assert "docs/api.md" in readme and "docs/concepts.md" in readme and "../shared" not in readme
    assert re.search(r"registration is closed in demo mode", readme, re.I)
    spec = client.get("/api/openapi.json").get_json()
    assert "docs/api.md" in spec["info"]["description"] and "shared/API.md" not in spec["info"]["description"]


def test_concepts_md_explains_every_topic_a_newcomer_meets_with_pictures_from_the_repo() -> None:
    concepts = (DOC.parent / "concepts.md").read_text()
    headings = re.findall(r"^## (.+)$", concepts, re.M)
    assert headings == [
        "WANs",
        "Peer kinds",
        "HOSTS vs REACHES",
        "CGNAT and relays",
        "Auto-NAT",
        "Published services",
        "Staleness",
        "How a deploy stays safe",
    ]
    # The words the pages use, each defined once.
    for word in ("**applied**", "**not applied**", "**stale**", "**in sync**", "**changes pending**", "**queued**"):
        assert word in concepts, word
    # Illustrated with the topology drawing itself, every picture a file in the repository.
    pictures = re.findall(r"!\[[^\]]+\]\((img/[^)]+\.svg)\)", concepts)
    assert len(pictures) >= 3 and all((DOC.parent / p).is_file() for p in pictures)
