"""The wall page's front-end files: vendored libraries match MANIFEST.json and the npm lock, and the page
loads nothing from outside (the wall runs on closed networks, and a CDN is a privacy and uptime risk)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "src" / "citywall" / "web" / "static"
VENDOR = STATIC / "vendor"
FRONTEND = ROOT / "frontend"
FONT_CSS = VENDOR / "noto-sans-kr" / "index.css"

EXTERNAL = re.compile(r"https?://|//fonts\.", re.IGNORECASE)
# XML namespace names (e.g. the SVG namespace in createElementNS or a data: SVG) are identifiers, never fetched.
NAMESPACES = re.compile(r"https?://www\.w3\.org/[\w./-]*")
DATA_URI = re.compile(r"""url\(\s*(["']?)data:.*?\1\s*\)""", re.IGNORECASE | re.DOTALL)


def manifest() -> dict:
    return json.loads((VENDOR / "MANIFEST.json").read_text(encoding="utf-8"))


# -- vendored libraries ------------------------------------------------------------------------

def test_vendor_files_match_the_manifest():
    """Every shipped file has the sha256 build.mjs recorded, so a hand-edited or stale copy is caught."""
    wrong = []
    for pkg, entry in manifest().items():
        for rel, digest in entry["files"].items():
            path = VENDOR / entry["folder"] / rel
            if not path.is_file():
                wrong.append(f"{pkg}: {path.relative_to(VENDOR)} is missing")
            elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
                wrong.append(f"{pkg}: {path.relative_to(VENDOR)} does not match its sha256")
    assert not wrong, "\n".join(wrong)


def test_every_vendor_file_is_in_the_manifest():
    """Nothing is shipped that the build did not put there (and whose licence and version we do not know)."""
    listed = {f"{e['folder']}/{rel}" for e in manifest().values() for rel in e["files"]}
    present = {p.relative_to(VENDOR).as_posix() for p in VENDOR.rglob("*") if p.is_file()} - {"MANIFEST.json"}
    assert sorted(present - listed) == []
    assert len({e["folder"] for e in manifest().values()}) == len(manifest())  # one folder per package


def test_manifest_versions_match_the_npm_lock_and_package_json():
    """The shipped copy is the version package.json pins and package-lock.json resolved."""
    lock = json.loads((FRONTEND / "package-lock.json").read_text(encoding="utf-8"))["packages"]
    deps = json.loads((FRONTEND / "package.json").read_text(encoding="utf-8"))["dependencies"]
    m = manifest()
    assert set(m) == set(deps)
    for pkg, entry in m.items():
        assert lock[f"node_modules/{pkg}"]["version"] == entry["version"], pkg
        assert deps[pkg] == entry["version"], f"{pkg}: package.json should pin the exact version"


# -- no external loads -------------------------------------------------------------------------

def own_files() -> list[Path]:
    return [STATIC / "index.html", *sorted((STATIC / "css").glob("*.css")), *sorted((STATIC / "js").glob("*.js")), FONT_CSS]


def without_comments(path: Path) -> str:
    """The file's text with comments and data: URIs blanked (line numbers kept)."""
    text = path.read_text(encoding="utf-8")
    blank = lambda m: re.sub(r"[^\n]", " ", m.group(0))  # noqa: E731
    text = re.sub(r"/\*.*?\*/", blank, text, flags=re.DOTALL)
    if path.suffix == ".html":
        text = re.sub(r"<!--.*?-->", blank, text, flags=re.DOTALL)
    if path.suffix == ".js":
        text = re.sub(r"(?m)(?:^|(?<=[\s;{}(),]))//.*$", blank, text)  # not the // of "https://"
    return DATA_URI.sub(blank, NAMESPACES.sub(blank, text))


def test_scanner_finds_external_loads():
    """The check below would see a CDN link (guards against a scanner that matches nothing)."""
    samples = ['<link href="https://cdn.jsdelivr.net/x.css">', "@import url(//fonts.googleapis.com/css2);",
               'import x from "http://unpkg.com/x";']
    assert all(EXTERNAL.search(s) for s in samples)
    assert not EXTERNAL.search(DATA_URI.sub("", NAMESPACES.sub("", "url(\"data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg'/>\")")))


@pytest.mark.parametrize("path", own_files(), ids=lambda p: p.relative_to(STATIC).as_posix())
def test_page_loads_nothing_external(path):
    """No http(s):// or protocol-relative font URL in our page, styles, modules or the font CSS."""
    text = without_comments(path)
    hits = [f"{path.name}:{text.count(chr(10), 0, m.start()) + 1}: {text[m.start():m.start() + 60].splitlines()[0]}"
            for m in EXTERNAL.finditer(text)]
    assert not hits, "external URL(s):\n" + "\n".join(hits)


def test_font_css_urls_name_shipped_files():
    """Each @font-face src in the vendored font CSS points at a font file that is there."""
    urls = re.findall(r"""url\(\s*["']?([^"')]+)["']?\s*\)""", FONT_CSS.read_text(encoding="utf-8"))
    assert len(urls) > 100  # one per unicode-range slice of Korean
    missing = [u for u in urls if not (FONT_CSS.parent / u).resolve().is_file()]
    assert not missing, missing


def test_page_references_resolve_to_shipped_files():
    """The stylesheets, scripts and module imports of the page name files that exist under /static/."""
    def resolve(ref: str, base: Path) -> Path:
        return STATIC / ref.removeprefix("/static/") if ref.startswith("/static/") else (base.parent / ref).resolve()

    html = STATIC / "index.html"
    refs = [(r, html) for r in re.findall(r"""(?:href|src)=["'](/static/[^"']+)["']""", html.read_text(encoding="utf-8"))]
    assert len(refs) >= 4  # font, maplibre and wall CSS, main.js
    for js in sorted((STATIC / "js").glob("*.js")):
        refs += [(r, js) for r in re.findall(r"""^\s*import\b[^;]*?\bfrom\s+["']([^"']+)["']""",
                                              js.read_text(encoding="utf-8"), flags=re.MULTILINE)]
    missing = [f"{base.name}: {ref}" for ref, base in refs if not resolve(ref, base).is_file()]
    assert not missing, missing
