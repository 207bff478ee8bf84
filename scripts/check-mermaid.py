#!/usr/bin/env python3
"""Renders every Mermaid block of the given Markdown files in a real browser (headless
Chromium) with the real `mermaid` package, as GitHub does, and fails naming the file and line
of any block that does not render: a syntax error, an error diagram, or an empty chart.

Usage: check-mermaid.py MERMAID_MIN_JS CHROMIUM FILE.md... (scripts/check-mermaid.sh installs
both and calls this). Only the standard library: the browser does the work.
"""

import json
import pathlib
import re
import subprocess
import sys
import tempfile

FENCE = re.compile(r"^```mermaid[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"></head><body>
<script src="MERMAID_URL"></script>
<script>
const blocks = BLOCKS_JSON;
(async () => {
  const out = [];
  try {
    mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });
  } catch (e) {
    out.push({ index: -1, ok: false, error: "mermaid did not load: " + e });
  }
  for (let i = 0; i < blocks.length; i++) {
    try {
      await mermaid.parse(blocks[i]);
      const { svg } = await mermaid.render("m" + i, blocks[i]);
      const doc = new DOMParser().parseFromString(svg, "image/svg+xml");
      // An error diagram says so in its role; every diagram's stylesheet names `.error-icon`.
      const role = doc.documentElement.getAttribute("aria-roledescription") || "";
      const errorDiagram = role === "error" || svg.includes("Syntax error in text");
      const marks = doc.querySelectorAll("path, rect, line, circle, polyline").length;
      const texts = Array.from(doc.querySelectorAll("text")).map((t) => t.textContent);
      out.push({ index: i, ok: !errorDiagram && marks > 0, marks, bytes: svg.length, role,
                 texts: texts.slice(0, 400) });
    } catch (e) {
      out.push({ index: i, ok: false, error: String((e && e.message) || e) });
    }
  }
  const pre = document.createElement("pre");
  // Split so that the script's own text, also in the dumped page, never matches.
  pre.textContent = "RES" + "ULT<<" + JSON.stringify(out) + ">>" + "END";
  document.body.appendChild(pre);
})();
</script>
</body></html>
"""


def blocks_of(path):
    text = path.read_text(encoding="utf-8")
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        yield line, m.group(1)


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    mermaid_js, chromium = pathlib.Path(sys.argv[1]).resolve(), sys.argv[2]
    where, blocks = [], []
    for name in sys.argv[3:]:
        for line, block in blocks_of(pathlib.Path(name)):
            where.append(f"{name}:{line}")
            blocks.append(block)
    if not blocks:
        sys.exit(f"no Mermaid block in {' '.join(sys.argv[3:])}: nothing was checked")
    with tempfile.TemporaryDirectory() as tmp:
        page = pathlib.Path(tmp) / "check.html"
        html = PAGE.replace("MERMAID_URL", mermaid_js.as_uri())
        page.write_text(html.replace("BLOCKS_JSON", json.dumps(blocks)), encoding="utf-8")
        run = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--allow-file-access-from-files",
             "--virtual-time-budget=60000", "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=300,
        )
    found = re.search(r"RESULT&lt;&lt;(.*?)&gt;&gt;END|RESULT<<(.*?)>>END", run.stdout, re.S)
    if not found:
        sys.exit(f"the browser gave no result (exit {run.returncode}):\n{run.stderr[-3000:]}")
    raw = found.group(1) or found.group(2)
    raw = raw.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&")
    results = json.loads(raw)
    failed = 0
    for r in results:
        at = where[r["index"]] if r["index"] >= 0 else "mermaid"
        if r["ok"]:
            print(f"ok   {at}: {r['role']}, {r['marks']} marks, {r['bytes']} bytes of SVG")
        else:
            failed += 1
            why = r.get("error") or f"an error diagram or an empty chart ({r.get('marks', 0)} marks)"
            print(f"FAIL {at}: {why}")
    if len(results) < len(blocks):
        failed += 1
        print(f"FAIL only {len(results)} of {len(blocks)} blocks were rendered")
    print(f"{len(blocks) - failed} of {len(blocks)} Mermaid blocks render")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
