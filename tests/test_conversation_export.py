"""``modelgrid export CONTENT_ID``: a stored conversation as Markdown with AIGC front matter."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelgrid.cli import main
from modelgrid.conversation_export import front_matter, render_markdown
from modelgrid.labels import Labels
from modelgrid.storage.contents import ContentStore, StoredContent
from modelgrid.storage.database import Database

LABEL = "本内容由人工智能生成"
ID = "chatcmpl-0123456789abcdef0123456789abcdef"
PRODUCER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0"  # 27 characters, as a provider code

CHAT = StoredContent(
    content_id=ID,
    created_at=datetime(2026, 12, 2, 10, 0, tzinfo=UTC),
    org_id="org1",
    key_id="k" * 32,
    model="smollm2-135m-instruct",
    messages=[
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "Name "}, {"type": "text", "text": "a colour."}],
        },
        {"role": "assistant", "content": None},
        {"role": "tool", "content": "42", "name": "lookup"},
    ],
    prompt=None,
    choices=(f"Blue.\n\n{LABEL}",),
    aigc=Labels(PRODUCER).metadata(ID),
    label=LABEL,
)

EXPECTED = f"""---
AIGC:
  Label: "1"
  ContentProducer: "{PRODUCER}"
  ProduceID: "{ID}"
  ReservedCode1: ""
  ContentPropagator: "{PRODUCER}"
  PropagateID: "{ID}"
  ReservedCode2: ""
content_id: "{ID}"
model: "smollm2-135m-instruct"
created_at: "2026-12-02T10:00:00+00:00"
---

# {ID}

## System

Be brief.

## User

Name a colour.

## Assistant

(empty)

## Tool (lookup)

42

## Assistant

Blue.

{LABEL}
"""


def test_a_chat_renders_with_front_matter_roles_and_the_label_as_served() -> None:
    assert render_markdown(CHAT) == EXPECTED


def test_completions_and_several_choices() -> None:
    text = replace(CHAT, content_id="cmpl-1", messages=None, prompt="Once upon", choices=("a", "b"))
    out = render_markdown(text)
    assert "## Prompt\n\nOnce upon\n" in out
    assert "## Completion (choice 0)\n\na\n" in out and "## Completion (choice 1)\n\nb\n" in out
    tokens = render_markdown(replace(text, prompt=[[1, 2], [3]]))
    assert "## Prompt\n\n```json\n[[1,2],[3]]\n```\n" in tokens


def test_no_value_can_break_the_front_matter() -> None:
    nasty = replace(CHAT, aigc={"Label": '1"\n---\nx: y', "odd key": "\\"}, model="m\n---")
    head = front_matter(nasty)
    assert head.count("\n---") == 1 and head.startswith("---\n")
    assert '  Label: "1\\"\\n---\\nx: y"' in head and '  "odd key": "\\\\"' in head


def store(url: str, data_dir: Path, content: StoredContent) -> None:
    async def run() -> None:
        db = Database(url)
        await db.migrate()
        contents = ContentStore(db, data_dir / "journal")
        await contents.start()
        contents.append(content)
        await contents.close()
        await db.close()

    asyncio.run(run())


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {"MODELGRID_DATA_DIR": str(tmp_path), "MODELGRID_DATABASE_URL": database_url}


def test_export_writes_a_stored_conversation(env: dict[str, str], tmp_path: Path) -> None:
    store(env["MODELGRID_DATABASE_URL"], tmp_path, CHAT)
    runner = CliRunner()
    result = runner.invoke(main, ["export", ID], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout == EXPECTED
    out = tmp_path / "conversation.md"
    result = runner.invoke(main, ["export", ID, "--output", str(out)], env=env)
    assert result.exit_code == 0 and out.read_text(encoding="utf-8") == EXPECTED


def test_export_says_what_is_wrong(env: dict[str, str]) -> None:
    runner = CliRunner()
    unknown = runner.invoke(main, ["export", "chatcmpl-nope"], env=env)
    assert unknown.exit_code == 1 and "no stored conversation 'chatcmpl-nope'" in unknown.stderr
    neither = runner.invoke(main, ["export"], env=env)
    assert neither.exit_code == 2 and "CONTENT_ID" in neither.stderr and "--org" in neither.stderr
    both = runner.invoke(main, ["export", ID, "--org", "acme", "--format", "json"], env=env)
    assert both.exit_code == 2 and "--org, --format" in both.stderr
    usage = runner.invoke(main, ["export", "--org", "nobody"], env=env)
    assert usage.exit_code == 1 and "no organisation 'nobody'" in usage.stderr
