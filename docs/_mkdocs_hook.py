"""mkdocs hooks: regenerate the reference pages, and serve the repository's plugins.md inside the site.

``plugins.md`` lives at the repository root (where plugin authors look first); its links are written relative to
the root (``docs/hooks.md``), so they are rewritten to be relative to the docs. ``serializers.md`` joins the
navigation when its package has written it. With ``MISEN_DOCS_CHECK_ONLY=1`` the reference pages are only
checked, never rewritten (the tests build the docs that way).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent


def on_config(config: Any) -> Any:
    if (DOCS / "serializers.md").exists():
        for section in config["nav"]:
            if isinstance(section, dict) and "Reference" in section:
                section["Reference"].append({"Serializers": "serializers.md"})
    return config


def on_pre_build(config: Any) -> None:
    sys.path.insert(0, str(DOCS))
    try:
        import gen_reference
    finally:
        sys.path.remove(str(DOCS))
    if os.environ.get("MISEN_DOCS_CHECK_ONLY"):
        stale = gen_reference.write_all(check=True)
        if stale:
            raise RuntimeError(f"generated pages out of date: {', '.join(stale)}; run `python docs/gen_reference.py`")
        return
    gen_reference.write_all()


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    text = (ROOT / "plugins.md").read_text()
    text = re.sub(r"\]\(docs/", "](", text)
    text = re.sub(r"\[([^\]]+)\]\((?!https?://|#)([^)\s]+)\)", _outside, text)
    files.append(File.generated(config, "plugins.md", content=text))
    return files


def _outside(link: re.Match[str]) -> str:
    # A link from plugins.md to a file outside docs/ (a package's README) has no page in the site: keep its
    # text and show the repository path instead of a broken link.
    label, target = link.group(1), link.group(2)
    if (DOCS / target.split("#")[0]).exists():
        return link.group(0)
    return f"{label} (`{target}` in the repository)"
