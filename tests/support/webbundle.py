"""JavaScript bundles for browser tests, built with esbuild from the packages pinned in tests/js.

The packages come from `npm ci` (`tests.support.jscore.install`, the one install of tests/js);
esbuild, pinned there too, bundles an entry module and everything it imports into one script
for a `<script>` tag, exposing the entry's exports as one global.  Bundles are built into the
caller's directory at test time and never checked in.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support import jscore

ESBUILD = jscore.JS_DIR / "node_modules" / ".bin" / "esbuild"


def bundle(entry: str, global_name: str, out_dir: Path) -> Path:
    """Bundle `tests/js/<entry>` as an IIFE assigning its exports to `window.<global_name>`."""
    jscore.install()
    out = out_dir / entry
    options = ["--bundle", "--format=iife", f"--global-name={global_name}", "--target=es2020"]
    done = subprocess.run(
        [str(ESBUILD), entry, *options, "--log-level=warning", f"--outfile={out}"],
        cwd=jscore.JS_DIR,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"esbuild could not bundle {entry}: {done.stderr[-2000:]}")
    return out
