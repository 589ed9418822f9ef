"""Reading Vega-Lite specs in chart tests: titles, units, tooltips and the data rows drawn."""

from __future__ import annotations


def subtitle_text(spec: dict) -> str:
    """A chart's subtitle as one string (long subtitles are wrapped into a list of lines)."""
    sub = spec["title"]["subtitle"]
    return " ".join(sub) if isinstance(sub, list) else sub


def units(spec: dict) -> list[dict]:
    """Every unit (single-mark) spec inside a layered / faceted / concatenated spec."""
    out = []
    if "mark" in spec:
        out.append(spec)
    for key in ("layer", "hconcat", "vconcat", "concat"):
        for sub in spec.get(key, []):
            out += units(sub)
    if "spec" in spec:
        out += units(spec["spec"])
    return out


def data_rows(spec: dict, datasets: dict | None = None) -> list[dict]:
    """The first data found, top-down (the chart's main data); named datasets resolved."""
    datasets = {**(datasets or {}), **spec.get("datasets", {})}
    data = spec.get("data", {})
    if "values" in data:
        return data["values"]
    if "name" in data:
        return datasets[data["name"]]
    for key in ("layer", "hconcat", "vconcat", "concat"):
        for sub in spec.get(key, []):
            try:
                return data_rows(sub, datasets)
            except AssertionError:
                pass
    if "spec" in spec:
        return data_rows(spec["spec"], datasets)
    raise AssertionError("no data in spec")


def title_text(spec: dict) -> str:
    t = spec.get("title") or spec.get("hconcat", [{}])[0].get("title")
    return t["text"] if isinstance(t, dict) else t


def tooltip_fields(spec: dict) -> set[str]:
    fields = set()
    for u in units(spec):
        tt = u.get("encoding", {}).get("tooltip", [])
        for t in tt if isinstance(tt, list) else [tt]:
            fields.add(t["field"])
    return fields
