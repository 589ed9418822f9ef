"""HTML pieces of the self-contained report: page, tables, a small Markdown renderer.

The page inlines the Vega, Vega-Lite and Vega-Embed JavaScript bundled by
``vl-convert-python`` (no CDN), and each chart's spec as a JSON script element,
so the file renders with no network access. Everything user-derived is escaped.
"""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Sequence
from typing import Any

import polars as pl

_EMBED_OPTIONS = {
    "renderer": "svg",
    # Export buttons only: "open in editor" would need the network.
    "actions": {"export": True, "source": False, "compiled": False, "editor": False},
}


@functools.lru_cache(maxsize=1)
def vega_javascript() -> str:
    """Vega + Vega-Lite + Vega-Embed as one offline script (cached; ~0.9 MB, ~3 s once)."""
    import vl_convert as vlc

    # vl-convert's own default snippet, spelled out: it exposes the three libraries globally
    return vlc.javascript_bundle("window.vegaEmbed=vegaEmbed; window.vega=vega; window.vegaLite=vegaLite;")


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _script_json(obj: Any) -> str:
    """JSON safe inside a <script> element (no premature ``</script>``)."""
    text = json.dumps(obj, allow_nan=False, separators=(",", ":"))
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


# ---- tables --------------------------------------------------------------------


def _cell(value: Any, fmt: str | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if fmt == "pct":
            return f"{100 * value:.1f}%"
        return f"{value:,.4g}"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "–"
    return str(value)


def table_html(
    frame: pl.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    percent: Sequence[str] = (),
    css_class: str = "data",
    max_rows: int = 500,
) -> str:
    """A plain HTML table of a frame (escaped), rates shown as percentages."""
    cols = [c for c in (columns or frame.columns) if c in frame.columns]
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    body = []
    for row in frame.select(cols).head(max_rows).iter_rows(named=True):
        cells = "".join(f"<td>{esc(_cell(row[c], 'pct' if c in percent else None))}</td>" for c in cols)
        body.append(f"<tr>{cells}</tr>")
    more = (
        (
            f'<p class="note">Showing {max_rows} of {frame.height} rows; the CSV beside this file '
            f"has all of them.</p>"
        )
        if frame.height > max_rows
        else ""
    )
    return (
        f'<div class="tablewrap"><table class="{esc(css_class)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>{more}"
    )


# ---- Markdown (the subset our docs use) ------------------------------------------


def _inline(text: str) -> str:
    out = esc(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])", r"<em>\1</em>", out)
    out = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', out)
    return out


def _table(lines: list[str]) -> str:
    rows = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines]
    head, body = rows[0], [r for r in rows[2:]]
    th = "".join(f"<th>{_inline(c)}</th>" for c in head)
    trs = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body)
    return f'<table class="md"><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>'


def markdown_html(text: str) -> str:
    """Render headings, paragraphs, lists, fenced code, tables, inline code/bold/links.

    Not a full CommonMark implementation: enough to show ``docs/metrics.md``
    faithfully. Unknown constructs fall through as escaped paragraph text, so
    nothing is lost or interpreted as HTML.
    """
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith("```"):
                j += 1
            out.append("<pre><code>" + esc("\n".join(lines[i + 1 : j])) + "</code></pre>")
            i = j + 1
        elif m := re.match(r"^(#{1,6})\s+(.*)$", stripped):
            level = min(len(m.group(1)) + 2, 6)  # the report's own h1/h2 stay above
            out.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
            i += 1
        elif (
            stripped.startswith("|") and i + 1 < len(lines) and re.match(r"^\|?\s*:?-+", lines[i + 1].strip())
        ):
            j = i
            while j < len(lines) and lines[j].strip().startswith("|"):
                j += 1
            out.append(_table(lines[i:j]))
            i = j
        elif re.match(r"^([-*+]|\d+\.)\s+", stripped):
            tag = "ol" if re.match(r"^\d+\.", stripped) else "ul"
            items: list[str] = []
            while i < len(lines) and lines[i].strip():
                cur = lines[i].strip()
                if re.match(r"^([-*+]|\d+\.)\s+", cur):
                    items.append(re.sub(r"^([-*+]|\d+\.)\s+", "", cur))
                elif items:
                    items[-1] += " " + cur
                i += 1
            out.append(f"<{tag}>" + "".join(f"<li>{_inline(t)}</li>" for t in items) + f"</{tag}>")
        elif not stripped:
            i += 1
        else:
            para = []
            while (
                i < len(lines)
                and lines[i].strip()
                and not re.match(r"^(#{1,6}\s|```|\||([-*+]|\d+\.)\s)", lines[i].strip())
            ):
                para.append(lines[i].strip())
                i += 1
            out.append(f"<p>{_inline(' '.join(para))}</p>")
    return "\n".join(out)


# ---- the page ----------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1200px;
padding:1.5rem;color:#222;line-height:1.45}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2.2rem}
.simulated{background:#fff3cd;border:1px solid #e0b400;padding:.6rem 1rem;border-radius:4px}
table{border-collapse:collapse;font-size:.85rem;margin:.6rem 0}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}.tablewrap{overflow-x:auto;max-width:100%}.note{color:#555;font-size:.85rem}
figure{margin:1.2rem 0 2rem 0;overflow-x:auto}figcaption{color:#444;font-size:.9rem;margin-bottom:.4rem}
.vega-error{color:#b00020;white-space:pre-wrap}code{background:#f4f4f4;padding:0 .2rem}
nav ul{columns:2;font-size:.9rem}dl.version dt{font-weight:600}dl.version dd{margin:0 0 .4rem 1rem}
"""

_BOOT = """
(function(){
  var opts = %s;
  document.querySelectorAll("script.chart-spec").forEach(function(node){
    var target = document.getElementById(node.dataset.target);
    var spec;
    try { spec = JSON.parse(node.textContent); }
    catch (err) { target.innerHTML = '<pre class="vega-error">' + String(err) + '</pre>'; return; }
    vegaEmbed(target, spec, opts).then(function(){ target.dataset.rendered = "true"; })
      .catch(function(err){
        var pre = document.createElement("pre"); pre.className = "vega-error";
        pre.textContent = "Chart failed to render: " + String(err); target.appendChild(pre);
      });
  });
})();
"""


def chart_figure(slug: str, caption: str, spec: dict) -> str:
    return (
        f'<figure id="fig-{esc(slug)}"><figcaption>{esc(caption)}</figcaption>'
        f'<div class="chart" id="chart-{esc(slug)}"></div>'
        f'<script type="application/json" class="chart-spec" data-target="chart-{esc(slug)}">'
        f"{_script_json(spec)}</script></figure>"
    )


def page(title: str, body: str) -> str:
    """The complete HTML document: inline JS bundle, styles, body, chart boot script."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_CSS}</style>"
        f"<script>{vega_javascript()}</script></head><body>{body}"
        f"<script>{_BOOT % json.dumps(_EMBED_OPTIONS)}</script></body></html>\n"
    )
