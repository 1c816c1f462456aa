"""A stored conversation as Markdown, its implicit label in YAML front matter (pure).

GB 45438-2025 asks exports to keep both labels: the implicit one (Appendix E's fields) as
metadata, here front matter under ``AIGC:``, and the explicit one inside the content, which it
already is (the stored response is the text as served, label included).

Every front-matter value is a double-quoted YAML scalar written as a JSON string (YAML's
double-quoted escapes are a superset of JSON's), so no value, whatever it holds, can end the
front matter or change its structure.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from .storage.contents import StoredContent

_PLAIN_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_ROLES = {
    "system": "System",
    "developer": "Developer",
    "user": "User",
    "assistant": "Assistant",
    "tool": "Tool",
}


def _scalar(value: Any) -> str:
    return orjson.dumps(value if isinstance(value, str) else str(value)).decode()


def _key(name: str) -> str:
    return name if _PLAIN_KEY.match(name) else _scalar(name)


def front_matter(content: StoredContent) -> str:
    lines = ["---", "AIGC:"]
    lines += [f"  {_key(str(k))}: {_scalar(v)}" for k, v in content.aigc.items()]
    lines += [
        f"content_id: {_scalar(content.content_id)}",
        f"model: {_scalar(content.model)}",
        f"created_at: {_scalar(content.created_at.isoformat())}",
        "---",
    ]
    return "\n".join(lines) + "\n"


def message_text(message: dict[str, Any]) -> str:
    """A message's content: text, or a list of parts whose text parts are joined."""
    content = message.get("content")
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def _role(message: dict[str, Any]) -> str:
    role = str(message.get("role", "message"))
    heading = _ROLES.get(role, role.capitalize())
    name = message.get("name")
    return f"{heading} ({name})" if name else heading


def _prompt_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
        return "\n\n".join(prompt)
    # Token ids: kept as sent, since the text they stand for is the model's to decode.
    return f"```json\n{orjson.dumps(prompt).decode()}\n```"


def _section(heading: str, body: str) -> str:
    return f"## {heading}\n\n{body.strip(chr(10)) or '(empty)'}\n"


def render_markdown(content: StoredContent) -> str:
    """The conversation: front matter, then each message under its role, then the response
    (one section per choice when there are several)."""
    sections = [front_matter(content), f"# {content.content_id}\n"]
    if content.messages is not None:
        sections += [_section(_role(m), message_text(m)) for m in content.messages]
        answer = "Assistant"
    else:
        sections.append(_section("Prompt", _prompt_text(content.prompt)))
        answer = "Completion"
    several = len(content.choices) > 1
    for number, text in enumerate(content.choices):
        sections.append(_section(f"{answer} (choice {number})" if several else answer, text))
    return "\n".join(sections)
