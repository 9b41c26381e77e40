"""Static HTML snapshots of ipywidgets, for exported pages that must show the widgets without a network.

An executed notebook keeps its widgets' last state in its metadata (``widgets`` ->
``application/vnd.jupyter.widget-state+json``), and nbconvert's HTML page draws them with
``@jupyter-widgets/html-manager``, which it loads from a CDN (unpkg.com): offline, every widget is blank.  The
pip packages do not ship that manager's ``embed-amd.js``, so instead of bundling it ``snapshot_notebook`` draws
each widget output once, from that saved state, as plain HTML (boxes, labels, the chosen value of each
control, progress bars, buttons, the outputs of ``Output`` widgets with their images) and puts it in place of the
widget view; the saved state is dropped, so the page loads no widget manager at all.  The snapshot shows the
panel as it was when the notebook finished; its controls do nothing (there is no kernel behind a page anyway).
"""
from __future__ import annotations

import html
import re

STATE_MIME = "application/vnd.jupyter.widget-state+json"
VIEW_MIME = "application/vnd.jupyter.widget-view+json"
NOTE = "widgets: their state when the notebook ran (a static snapshot; the page needs no widget manager)"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _ref(value) -> str | None:
    return value[len("IPY_MODEL_"):] if isinstance(value, str) and value.startswith("IPY_MODEL_") else None


class _Renderer:
    def __init__(self, models: dict):
        self.models = models

    def state(self, model_id: str) -> tuple[str, dict]:
        model = self.models.get(model_id) or {}
        return model.get("model_name", ""), model.get("state", {})

    def style(self, state: dict, key: str, default: str = "") -> str:
        ref = _ref(state.get("style"))
        return str(self.state(ref)[1].get(key, default) or default) if ref else default

    def described(self, state: dict, inner: str) -> str:
        """A control with its description beside it, as wide as the widget's style asks."""
        text = state.get("description", "")
        if not text:
            return f'<div style="margin:2px 0">{inner}</div>'
        width = self.style(state, "description_width")
        size = f"width:{html.escape(width)};" if width and width != "initial" else "margin-right:6px;"
        return (f'<div style="display:flex;align-items:center;margin:2px 0"><span style="{size}'
                f'display:inline-block;text-align:right;padding-right:6px;flex:none">{html.escape(str(text))}'
                f"</span>{inner}</div>")

    def render(self, model_id: str, depth: int = 0) -> str:
        name, s = self.state(model_id)
        if depth > 50 or not name:
            return ""
        kind = name.removesuffix("Model")
        children = [self.render(ref, depth + 1) for ref in map(_ref, s.get("children", [])) if ref]
        if kind in ("HBox", "VBox", "Box", "GridBox"):
            flow = "row" if kind == "HBox" else "column"
            wrap = "flex-wrap:wrap;" if kind in ("HBox", "GridBox") else ""
            return (f'<div style="display:flex;flex-direction:{flow};{wrap}gap:4px 12px;align-items:flex-start">'
                    + "".join(children) + "</div>")
        if kind in ("Accordion", "Tab", "Stack"):
            titles = list(s.get("titles", [])) + [""] * len(children)
            return "".join(f'<div><div style="font-weight:bold">{html.escape(str(t or ""))}</div>{c}</div>'
                           for t, c in zip(titles, children))
        if kind in ("HTML", "HTMLMath"):  # the notebook's own HTML, as the live widget would show it
            return self.described(s, f'<div>{s.get("value", "")}</div>')
        if kind == "Label":
            return self.described(s, f'<span>{html.escape(str(s.get("value", "")))}</span>')
        if kind in ("Text", "Textarea", "Password", "IntText", "FloatText", "BoundedIntText", "BoundedFloatText",
                    "Combobox"):
            value = s.get("value", 0 if kind.startswith(("Int", "Float", "Bounded")) else "")
            value = "•" * len(str(value)) if kind == "Password" else value
            return self.described(s, f'<input type="text" disabled value="{html.escape(str(value))}" '
                                     f'style="width:12em">')
        if kind in ("Dropdown", "Select", "RadioButtons", "ToggleButtons", "SelectionSlider"):
            labels, index = s.get("_options_labels", []), s.get("index", 0)
            chosen = labels[index] if isinstance(index, int) and 0 <= index < len(labels) else ""
            return self.described(s, f'<select disabled><option selected>{html.escape(str(chosen))}'
                                     f"</option></select>")
        if kind in ("SelectMultiple",):
            labels, chosen = s.get("_options_labels", []), set(s.get("index", []) or [])
            rows = s.get("rows", 5) or 5
            options = "".join(f'<option{" selected" if i in chosen else ""}>{html.escape(str(label))}</option>'
                              for i, label in enumerate(labels))
            return self.described(s, f'<select multiple disabled size="{rows}">{options}</select>')
        if kind in ("Checkbox", "ToggleButton", "Valid"):
            mark = "☑" if s.get("value") else "☐"
            return self.described(s, f"<span>{mark}</span>")
        if kind in ("IntSlider", "FloatSlider", "FloatLogSlider", "IntRangeSlider", "FloatRangeSlider", "Play"):
            value = s.get("value", 0)
            text = "–".join(map(str, value)) if isinstance(value, list) else str(value)
            return self.described(s, f'<input type="range" disabled min="{s.get("min", 0)}" max="{s.get("max", 100)}"'
                                     f' value="{value[0] if isinstance(value, list) else value}">'
                                     f'<span style="padding-left:6px">{html.escape(text)}</span>')
        if kind in ("IntProgress", "FloatProgress"):
            lo, hi, value = s.get("min", 0), s.get("max", 100), s.get("value", 0)
            colour = {"success": "#4caf50", "danger": "#f44336", "warning": "#ff9800", "info": "#00bcd4"}.get(
                s.get("bar_style", ""), "#2196f3")
            share = 0 if hi == lo else max(0.0, min(1.0, (value - lo) / (hi - lo)))
            bar = (f'<span style="display:inline-block;width:12em;height:1em;background:#eee;vertical-align:middle">'
                   f'<span style="display:block;height:100%;width:{100 * share:.1f}%;background:{colour}"></span>'
                   f'</span><span style="padding-left:6px">{value} / {hi}</span>')
            return self.described(s, bar)
        if kind == "Button":
            return (f'<button disabled style="margin:2px 0">{html.escape(str(s.get("description", "")))}'
                    f"</button>")
        if kind == "Output":
            return "<div>" + "".join(self.output(o, depth) for o in s.get("outputs", [])) + "</div>"
        described = s.get("description") or kind
        return f'<span style="color:#777">[{html.escape(str(described))}]</span>'

    def output(self, output: dict, depth: int = 0) -> str:
        """One output of an Output widget, drawn the way the page would draw it."""
        if output.get("output_type") == "stream":
            return f'<pre style="margin:0">{html.escape(_ANSI.sub("", _text(output.get("text", ""))))}</pre>'
        if output.get("output_type") == "error":
            lines = _ANSI.sub("", "\n".join(output.get("traceback", [])))
            return f'<pre style="margin:0;color:#b00020">{html.escape(lines)}</pre>'
        data = output.get("data", {})
        ref = (data.get(VIEW_MIME) or {}).get("model_id")
        if ref:
            return self.render(ref, depth + 1)
        for mime in ("image/png", "image/jpeg"):
            if mime in data:
                return f'<img src="data:{mime};base64,{_text(data[mime]).strip()}">'
        if "image/svg+xml" in data:
            return _text(data["image/svg+xml"])
        if "text/html" in data:
            return _text(data["text/html"])
        if "text/plain" in data:
            return f'<pre style="margin:0">{html.escape(_text(data["text/plain"]))}</pre>'
        return ""


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def snapshot_html(model_id: str, models: dict) -> str:
    """The widget ``model_id`` (and everything it holds) as static HTML, from a widget-state ``models`` dict."""
    body = _Renderer(models).render(model_id)
    return (f'<div class="widget-snapshot" title="{html.escape(NOTE)}" '
            f'style="border-left:3px solid #ddd;padding-left:8px">{body}</div>')


def snapshot_notebook(nb) -> int:
    """Replace every widget view in ``nb`` (an nbformat notebook, changed in place) by its static snapshot and
    drop the saved widget state, so that nbconvert's page loads no widget manager; returns how many were drawn.

    Views whose model is not in the saved state (a widget closed before the notebook finished) keep their
    text/plain representation."""
    widgets = nb.metadata.get("widgets", {})
    models = (widgets.get(STATE_MIME) or {}).get("state", {})
    drawn = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            view = data.get(VIEW_MIME)
            if not view:
                continue
            del data[VIEW_MIME]
            if view.get("model_id") in models:
                data["text/html"] = snapshot_html(view["model_id"], models)
                drawn += 1
    nb.metadata.pop("widgets", None)
    return drawn
