"""Offline assets for the book: a vendored MathJax, an external-asset check and a screenshot tool.

    python -m reprolib.bookassets mathjax book/_static [--cache-dir DIR]
    python -m reprolib.bookassets check book/_build/html          # exit 1 and list offenders
    python -m reprolib.bookassets screenshot PAGE.html OUT.png [--width W --height H]

MathJax comes from the npm registry tarball (no npm needed), is checked against a pinned sha512,
cached, and only ``package/es5/`` is unpacked — into a temporary folder renamed into place, so
``static_dir/mathjax`` is either complete or absent. Sphinx then needs
``mathjax_path: "mathjax/tex-mml-chtml.js"`` (relative to ``_static``) and ``html_static_path``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath

from reprolib.errors import ReprolibError

MATHJAX_VERSION = "3.2.2"
MATHJAX_URL = f"https://registry.npmjs.org/mathjax/-/mathjax-{MATHJAX_VERSION}.tgz"
# dist.integrity of https://registry.npmjs.org/mathjax/3.2.2
MATHJAX_INTEGRITY = ("sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/"
                     "FEsPsjKPZGJvtRZM1vO+geW0OhGw==")
MATHJAX_ENTRY = "tex-mml-chtml.js"
MARKER = ".reprolib-mathjax-version"
DEFAULT_CACHE = Path("~/.cache/reprolib")
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class BookAssetError(ReprolibError):
    """A book asset could not be downloaded, verified, unpacked, checked or rendered."""


# --------------------------------------------------------------------------------------- MathJax

def _sri(path: Path) -> str:
    """The subresource-integrity string (``sha512-<base64>``) of a file."""
    digest = hashlib.sha512()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return "sha512-" + base64.b64encode(digest.digest()).decode()


def _download(url: str, dest: Path, integrity: str) -> None:
    """Download ``url`` to ``dest`` via a temporary file; ``dest`` appears only once verified."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=60) as resp:
                    shutil.copyfileobj(resp, out)
            except (urllib.error.URLError, OSError) as e:
                raise BookAssetError(f"cannot download {url}: {e}") from e
        got = _sri(Path(tmp))
        if not hmac.compare_digest(got, integrity):
            raise BookAssetError(f"{url}: integrity mismatch, expected {integrity}, got {got}")
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _extract_es5(tarball: Path, dest: Path) -> None:
    """Unpack the regular files under ``package/es5/`` of ``tarball`` into ``dest``.

    Member names are checked by hand (no absolute paths, no ``..``); links and devices are
    skipped, and contents are written with ``open`` rather than ``tarfile.extract``."""
    prefix = ("package", "es5")
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            for member in tar:
                parts = PurePosixPath(member.name).parts
                if parts[:2] != prefix or len(parts) < 3:
                    continue
                rel = parts[2:]
                if member.name.startswith("/") or any(p in ("..", "") for p in rel):
                    raise BookAssetError(f"{tarball}: unsafe member name {member.name!r}")
                target = dest.joinpath(*rel)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                elif member.isfile():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with tar.extractfile(member) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise BookAssetError(f"{tarball}: cannot unpack: {e}") from e


def _mathjax_ok(target: Path) -> bool:
    """Whether ``target`` is a complete vendored MathJax of the pinned version."""
    marker = target / MARKER
    return (marker.is_file() and marker.read_text().strip() == MATHJAX_VERSION
            and (target / MATHJAX_ENTRY).is_file())


def vendor_mathjax(static_dir: Path, cache_dir: Path | None = None) -> Path:
    """Ensure MathJax's ES5 build is at ``static_dir/mathjax`` (with ``tex-mml-chtml.js`` and the
    ``output/chtml/fonts/woff-v2`` fonts); return that folder. Idempotent.

    The tarball is cached in ``cache_dir`` (default ``~/.cache/reprolib``) and checked against
    ``MATHJAX_INTEGRITY`` whether downloaded or cached. Raises ``BookAssetError`` naming the URL
    or file when download, verification or unpacking fails; ``static_dir/mathjax`` is then left
    as it was (never half-written)."""
    static_dir = Path(static_dir)
    target = static_dir / "mathjax"
    if _mathjax_ok(target):
        return target
    cache_dir = Path(cache_dir if cache_dir is not None else DEFAULT_CACHE).expanduser()
    tarball = cache_dir / f"mathjax-{MATHJAX_VERSION}.tgz"
    if not tarball.is_file():
        _download(MATHJAX_URL, tarball, MATHJAX_INTEGRITY)
    got = _sri(tarball)
    if not hmac.compare_digest(got, MATHJAX_INTEGRITY):
        raise BookAssetError(f"{tarball}: integrity mismatch (expected {MATHJAX_INTEGRITY}, "
                             f"got {got}); delete it to download {MATHJAX_URL} again")

    static_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=static_dir, prefix=".mathjax-"))
    tmp.chmod(0o755)  # mkdtemp makes it 0700; the book may be served by another user
    old = None
    try:
        _extract_es5(tarball, tmp)
        if not (tmp / MATHJAX_ENTRY).is_file():
            raise BookAssetError(f"{tarball}: no package/es5/{MATHJAX_ENTRY} inside")
        (tmp / MARKER).write_text(MATHJAX_VERSION + "\n")
        if target.exists() or target.is_symlink():  # an older or foreign copy: swap it out
            old = Path(tempfile.mkdtemp(dir=static_dir, prefix=".mathjax-old-"))
            os.replace(target, old / "mathjax")
        os.replace(tmp, target)
    except BaseException:
        if old is not None and not target.exists():
            os.replace(old / "mathjax", target)  # put the previous copy back
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return target


# ---------------------------------------------------------------------------------- offline check

EXTERNAL = re.compile(r"^\s*(?:https?:)?//", re.IGNORECASE)
CSS_URL = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])\s*((?:https?:)?//[^'")\s]+)""",
                     re.IGNORECASE)
ASSET_ATTRS = {"script": ("src",), "img": ("src", "srcset"), "iframe": ("src",),
               "source": ("src", "srcset"), "video": ("src", "poster"), "audio": ("src",),
               "embed": ("src",), "object": ("data",), "link": ("href",)}
# <link rel=...> values that name a page rather than load anything
NON_LOADING_RELS = {"canonical", "alternate", "author", "license", "help", "bookmark", "me",
                    "next", "prev", "search", "index"}


class _AssetScanner(HTMLParser):
    """Collects external URLs from asset attributes, ``style=`` attributes and ``<style>``."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        if tag == "style":
            self._in_style = True
        if "style" in attrs:
            self.found += CSS_URL.findall(attrs["style"])
        if tag == "link" and set(attrs.get("rel", "").lower().split()) <= NON_LOADING_RELS \
                and attrs.get("rel"):
            return
        for name in ASSET_ATTRS.get(tag, ()):
            value = attrs.get(name, "")
            urls = [u.split()[0] for u in value.split(",") if u.strip()] if name == "srcset" \
                else [value]
            self.found += [u.strip() for u in urls if EXTERNAL.match(u)]

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.found += CSS_URL.findall(data)


def check_offline(html_dir: Path) -> list[str]:
    """List ``"file: url"`` for every external asset (``http://``, ``https://`` or ``//``) the
    book would load: script/link/img/iframe sources and CSS ``url()``/``@import`` in the .html
    files under ``html_dir``, and CSS ``url()``/``@import`` in the .css/.js files under
    ``html_dir/_static``. Plain ``<a href>`` links are not assets and are not reported."""
    html_dir = Path(html_dir)
    if not html_dir.is_dir():
        raise BookAssetError(f"{html_dir}: no such folder")
    found: list[str] = []

    def add(path: Path, urls: list[str]) -> None:
        rel = path.relative_to(html_dir).as_posix()
        found.extend(f"{rel}: {u}" for u in dict.fromkeys(urls))

    for path in sorted(html_dir.rglob("*.html")):
        scanner = _AssetScanner()
        scanner.feed(path.read_text(encoding="utf-8", errors="replace"))
        scanner.close()
        add(path, scanner.found)
    static = html_dir / "_static"
    if static.is_dir():
        for path in sorted(p for p in static.rglob("*") if p.suffix in (".css", ".js")):
            add(path, CSS_URL.findall(path.read_text(encoding="utf-8", errors="replace")))
    return found


# ------------------------------------------------------------------------------------ screenshot

def find_browser() -> str:
    """The path of a Chromium-family browser on PATH; ``BookAssetError`` if there is none."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    raise BookAssetError(f"no headless browser found: none of {', '.join(BROWSERS)} is on PATH "
                         "(Debian: apt-get install chromium)")


def screenshot(html_file: Path, out_png: Path, width: int = 1400, height: int = 2400,
               timeout: float = 120) -> Path:
    """Render ``html_file`` (a ``file://`` URL) with headless Chromium into ``out_png``; return it.

    Name resolution and proxying are pointed at nothing so no external asset can load; the
    page gets 15 s of virtual time for scripts (MathJax) to finish. Raises ``BookAssetError``
    when no browser is found, it times out, or no PNG was written."""
    html_file, out_png = Path(html_file).resolve(), Path(out_png).resolve()
    if not html_file.is_file():
        raise BookAssetError(f"{html_file}: no such file")
    out_png.parent.mkdir(parents=True, exist_ok=True)
    out_png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="reprolib-chromium-") as profile:
        cmd = [find_browser(), "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-dev-shm-usage", "--hide-scrollbars", "--no-first-run",
               "--no-default-browser-check", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--disable-extensions",
               "--host-resolver-rules=MAP * ~NOTFOUND",
               "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
               f"--user-data-dir={profile}", f"--screenshot={out_png}",
               f"--window-size={width},{height}", "--virtual-time-budget=15000",
               html_file.as_uri()]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            log, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise BookAssetError(f"{cmd[0]} did not finish {html_file} within {timeout} s")
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    ok = out_png.is_file() and out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if not ok:
        tail = log.decode(errors="replace")[-2000:]
        raise BookAssetError(f"{cmd[0]} wrote no PNG {out_png} for {html_file} "
                             f"(exit {proc.returncode}):\n{tail}")
    return out_png


# ------------------------------------------------------------------------------------------ CLI

def main(argv: list[str] | None = None) -> int:
    """Command line: ``mathjax``, ``check`` and ``screenshot`` (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m reprolib.bookassets", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("mathjax", help="vendor MathJax into STATIC_DIR/mathjax")
    p.add_argument("static_dir", type=Path)
    p.add_argument("--cache-dir", type=Path)
    p = sub.add_parser("check", help="list external assets of a built book; exit 1 if any")
    p.add_argument("html_dir", type=Path)
    p = sub.add_parser("screenshot", help="render a page to PNG with headless Chromium")
    p.add_argument("html_file", type=Path)
    p.add_argument("out_png", type=Path)
    p.add_argument("--width", type=int, default=1400)
    p.add_argument("--height", type=int, default=2400)
    p.add_argument("--timeout", type=float, default=120)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "mathjax":
            print(vendor_mathjax(args.static_dir, args.cache_dir))
        elif args.cmd == "check":
            offenders = check_offline(args.html_dir)
            for line in offenders:
                print(line)
            if offenders:
                print(f"{len(offenders)} external asset reference(s) in {args.html_dir}",
                      file=sys.stderr)
                return 1
            print(f"{args.html_dir}: no external assets")
        else:
            print(screenshot(args.html_file, args.out_png, args.width, args.height, args.timeout))
    except ReprolibError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
