"""reprolib.bookassets: offline check, MathJax vendoring (fake tarballs, no network), screenshots."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import pytest

from reprolib import bookassets as ba
from reprolib.errors import ReprolibError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def fake_tarball(path: Path, extra: dict[str, bytes] | None = None, symlink: str | None = None):
    """A small npm-style tarball: package/es5/{tex-mml-chtml.js, a font} + a file outside es5/."""
    files = {"package/package.json": b"{}",
             "package/es5/tex-mml-chtml.js": b"/* fake mathjax */",
             "package/es5/output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff": b"wOFF"}
    files.update(extra or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo("package/es5/link.js")
            info.type, info.linkname = tarfile.SYMTYPE, symlink
            tar.addfile(info)
    return path


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("test tried to use the network")
    monkeypatch.setattr(ba.urllib.request, "urlopen", refuse)


def leftovers(static: Path) -> list[str]:
    return sorted(p.name for p in static.iterdir()) if static.exists() else []


# ----------------------------------------------------------------------------- check_offline

def test_check_offline_reports_external_assets_only(tmp_path):
    write(tmp_path / "index.html", """<!doctype html><html><head>
      <script src="https://cdn.example.com/a.js"></script>
      <script src="_static/local.js"></script>
      <link rel="stylesheet" href="//fonts.example.com/f.css">
      <link rel="stylesheet" href="_static/local.css">
      <link rel="canonical" href="https://book.example.com/index.html">
      <style>@import url("https://imp.example.com/x.css"); .a {background: url(img/ok.png)}</style>
      </head><body>
      <a href="https://example.com/paper.pdf">paper</a> <a href="other.html">local</a>
      <img src="http://img.example.com/i.png"> <img src="_static/ok.png">
      <iframe src="https://frame.example.com/"></iframe>
      <div style="background: url('https://bg.example.com/b.png')"></div>
      </body></html>""")
    write(tmp_path / "sub" / "page.html", '<script src="HTTPS://up.example.com/u.js"></script>'
                                           '<a href="//example.com/x">x</a>')
    write(tmp_path / "_static" / "theme.css",
          "@import url('https://css.example.com/i.css');\n"
          "@font-face { src: url(https://font.example.com/f.woff2) }\n"
          ".x { background: url(data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg'/>)"
          " } .y { background: url(../images/y.png) }")
    write(tmp_path / "_static" / "app.js", 'el.style.background = "url(//js.example.com/p.png)";')
    write(tmp_path / "_static" / "notes.txt", "url(https://ignored.example.com/)")

    assert sorted(ba.check_offline(tmp_path)) == sorted([
        "index.html: https://cdn.example.com/a.js",
        "index.html: //fonts.example.com/f.css",
        "index.html: https://imp.example.com/x.css",
        "index.html: http://img.example.com/i.png",
        "index.html: https://frame.example.com/",
        "index.html: https://bg.example.com/b.png",
        "sub/page.html: HTTPS://up.example.com/u.js",
        "_static/theme.css: https://css.example.com/i.css",
        "_static/theme.css: https://font.example.com/f.woff2",
        "_static/app.js: //js.example.com/p.png",
    ])


def test_check_offline_clean_tree_and_cli(tmp_path, capsys):
    write(tmp_path / "index.html", '<script src="_static/mathjax/tex-mml-chtml.js"></script>'
                                   '<a href="https://example.com">ok</a>')
    write(tmp_path / "_static" / "s.css", ".a { background: url('img.png') }")
    assert ba.check_offline(tmp_path) == []
    assert ba.main(["check", str(tmp_path)]) == 0
    write(tmp_path / "bad.html", '<img src="https://example.com/x.png">')
    assert ba.main(["check", str(tmp_path)]) == 1
    assert "bad.html: https://example.com/x.png" in capsys.readouterr().out
    assert ba.main(["check", str(tmp_path / "missing")]) == 2


# ----------------------------------------------------------------------------- vendor_mathjax

def test_vendor_mathjax_hash_mismatch_leaves_nothing(tmp_path, no_network):
    cache, static = tmp_path / "cache", tmp_path / "static"
    fake_tarball(cache / f"mathjax-{ba.MATHJAX_VERSION}.tgz")  # real pinned hash: mismatch
    with pytest.raises(ba.BookAssetError, match="integrity mismatch") as err:
        ba.vendor_mathjax(static, cache)
    assert isinstance(err.value, ReprolibError)
    assert str(cache / f"mathjax-{ba.MATHJAX_VERSION}.tgz") in str(err.value)
    assert not (static / "mathjax").exists() and leftovers(static) == []


def test_vendor_mathjax_success_and_idempotent(tmp_path, monkeypatch, no_network):
    cache, static = tmp_path / "cache", tmp_path / "static"
    tgz = fake_tarball(cache / f"mathjax-{ba.MATHJAX_VERSION}.tgz")
    monkeypatch.setattr(ba, "MATHJAX_INTEGRITY", ba._sri(tgz))
    out = ba.vendor_mathjax(static, cache)
    assert out == static / "mathjax"
    assert (out / "tex-mml-chtml.js").read_bytes() == b"/* fake mathjax */"
    assert (out / "output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff").is_file()
    assert not (out / "package.json").exists() and not (out / "es5").exists()
    assert (out / ba.MARKER).read_text().strip() == ba.MATHJAX_VERSION
    assert leftovers(static) == ["mathjax"]

    def boom(*a):
        raise AssertionError("re-extracted although present")
    monkeypatch.setattr(ba, "_extract_es5", boom)
    assert ba.vendor_mathjax(static, cache) == out


def test_vendor_mathjax_replaces_copy_without_marker(tmp_path, monkeypatch, no_network):
    cache, static = tmp_path / "cache", tmp_path / "static"
    write(static / "mathjax" / "stale.js", "old")
    tgz = fake_tarball(cache / f"mathjax-{ba.MATHJAX_VERSION}.tgz")
    monkeypatch.setattr(ba, "MATHJAX_INTEGRITY", ba._sri(tgz))
    out = ba.vendor_mathjax(static, cache)
    assert (out / "tex-mml-chtml.js").is_file() and not (out / "stale.js").exists()
    assert leftovers(static) == ["mathjax"]


def test_vendor_mathjax_downloads_into_cache(tmp_path, monkeypatch):
    """The download path, through urllib with a file:// URL instead of the registry."""
    src = fake_tarball(tmp_path / "registry" / "mathjax.tgz")
    cache, static = tmp_path / "cache", tmp_path / "static"
    monkeypatch.setattr(ba, "MATHJAX_URL", src.as_uri())
    monkeypatch.setattr(ba, "MATHJAX_INTEGRITY", "sha512-" + "A" * 86 + "==")
    with pytest.raises(ba.BookAssetError, match="integrity mismatch") as err:
        ba.vendor_mathjax(static, cache)
    assert src.as_uri() in str(err.value)
    assert leftovers(cache) == [] and leftovers(static) == []

    monkeypatch.setattr(ba, "MATHJAX_INTEGRITY", ba._sri(src))
    assert (ba.vendor_mathjax(static, cache) / "tex-mml-chtml.js").is_file()
    assert leftovers(cache) == [f"mathjax-{ba.MATHJAX_VERSION}.tgz"]


def test_vendor_mathjax_download_failure_names_url(tmp_path, monkeypatch):
    missing = (tmp_path / "nowhere.tgz").as_uri()
    monkeypatch.setattr(ba, "MATHJAX_URL", missing)
    with pytest.raises(ba.BookAssetError, match="cannot download") as err:
        ba.vendor_mathjax(tmp_path / "static", tmp_path / "cache")
    assert missing in str(err.value)
    assert leftovers(tmp_path / "cache") == [] and leftovers(tmp_path / "static") == []


def test_vendor_mathjax_rejects_path_traversal(tmp_path, monkeypatch, no_network):
    cache, static = tmp_path / "cache", tmp_path / "static"
    tgz = fake_tarball(cache / f"mathjax-{ba.MATHJAX_VERSION}.tgz",
                       extra={"package/es5/../../../evil.js": b"pwned"})
    monkeypatch.setattr(ba, "MATHJAX_INTEGRITY", ba._sri(tgz))
    with pytest.raises(ba.BookAssetError, match="unsafe member"):
        ba.vendor_mathjax(static, cache)
    assert leftovers(static) == []
    assert not list(tmp_path.rglob("evil.js"))


def test_vendor_mathjax_skips_links(tmp_path, monkeypatch, no_network):
    cache, static = tmp_path / "cache", tmp_path / "static"
    tgz = fake_tarball(cache / f"mathjax-{ba.MATHJAX_VERSION}.tgz", symlink="/etc/passwd")
    monkeypatch.setattr(ba, "MATHJAX_INTEGRITY", ba._sri(tgz))
    out = ba.vendor_mathjax(static, cache)
    assert not (out / "link.js").exists() and not (out / "link.js").is_symlink()


# ----------------------------------------------------------------------------- screenshot

def test_screenshot_without_browser_is_clear(tmp_path, monkeypatch):
    page = write(tmp_path / "p.html", "<p>hi</p>")
    monkeypatch.setattr(ba.shutil, "which", lambda name: None)
    with pytest.raises(ba.BookAssetError, match="no headless browser"):
        ba.screenshot(page, tmp_path / "p.png")


@pytest.mark.skipif(not any(shutil.which(b) for b in ba.BROWSERS), reason="no Chromium on PATH")
def test_screenshot_renders_png(tmp_path):
    page = write(tmp_path / "p.html", '<p style="font-size:40px">hello</p>'
                                      '<img src="https://example.com/never.png">')
    out = ba.screenshot(page, tmp_path / "shots" / "p.png", width=400, height=300, timeout=60)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
