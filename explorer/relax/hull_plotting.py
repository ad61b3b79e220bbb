"""Interactive hull plots (HoloViews/Bokeh) of a :class:`~explorer.relax.HullAnalysis`, and standalone HTML
files of them. HoloViews and Bokeh are imported when a plot is made."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from types import SimpleNamespace

_HOVER = [("label", "@label"), ("formula", "@formula"), ("E_f (eV/atom)", "@formation_energy{0.000}"),
          ("E above hull (eV/atom)", "@e_above_hull{0.000}")]


def _records(rows, x_of, y_of=None):
    records = []
    for row in rows:
        record = {"x": x_of(row), "label": row.label, "formula": row.formula,
                  "formation_energy": row.formation_energy_per_atom, "e_above_hull": row.e_above_hull}
        if y_of is not None:
            record["y"] = y_of(row)
        records.append(record)
    return records


def _points(hv, rows, x_of, y_of, name, style):
    vdims = ["label", "formula", "formation_energy", "e_above_hull"]
    if y_of is None:
        data = _records(rows, x_of)
        element = hv.Scatter(data, kdims=["x"], vdims=["formation_energy", *vdims[:2], "e_above_hull"], label=name)
    else:
        data = _records(rows, x_of, y_of)
        element = hv.Points(data, kdims=["x", "y"], vdims=vdims, label=name)
    from bokeh.models import HoverTool

    return element.opts(tools=[HoverTool(tooltips=_HOVER)], **style)


def hull_figure(analysis):
    """HoloViews overlay of a :class:`~explorer.relax.HullAnalysis`: binary = formation energy (eV/atom) vs
    composition fraction with the hull line; ternary = composition triangle with the hull tie lines; other
    systems = formation energy vs energy above hull (eV/atom)."""
    import holoviews as hv

    hv.extension("bokeh", logo=False)
    elements = analysis.chemsys
    stable = [r for r in analysis.references if r.stable]
    unstable = [r for r in analysis.references if not r.stable]
    styles = {
        "stable": {"color": "black", "size": 9, "marker": "circle"},
        "unstable": {"color": "gray", "size": 6, "marker": "circle", "alpha": 0.6},
        "candidate": {"color": "crimson", "size": 11, "marker": "diamond"},
    }
    source = {"mp": "MP", "ml": "ML-relaxed MP/WBM"}.get(analysis.reference, "elements")
    title = f"{'-'.join(elements)} hull ({source} references)"
    if len(elements) == 2:
        x_of = lambda row: row.fractions[elements[1]]  # noqa: E731
        line = sorted((x_of(r), r.formation_energy_per_atom) for r in stable)
        overlay = hv.Curve(line, kdims=["x"], vdims=["formation_energy"], label="hull").opts(color="black")
        for rows, name, key in ((unstable, f"{source} above hull", "unstable"), (stable, f"{source} on hull", "stable"),
                                (analysis.candidates, "candidates", "candidate")):
            if rows:
                overlay = overlay * _points(hv, rows, x_of, None, name, styles[key])
        return overlay.opts(title=title, xlabel=f"x in {elements[0]}(1-x) {elements[1]}(x)",
                            ylabel="formation energy (eV/atom)", width=720, height=480, legend_position="bottom_right",
                            show_grid=True)
    if len(elements) == 3:
        def xy(row):
            b, c = row.fractions[elements[1]], row.fractions[elements[2]]
            return b + c / 2, c * math.sqrt(3) / 2

        triangle = [(0, 0), (1, 0), (0.5, math.sqrt(3) / 2), (0, 0)]
        overlay = hv.Path([triangle]).opts(color="black", line_width=1.5)
        overlay = overlay * hv.Path(_tie_lines(analysis, xy), label="hull tie lines").opts(color="steelblue",
                                                                                          alpha=0.7)
        corners = hv.Labels([(0, -0.04, elements[0]), (1, -0.04, elements[1]),
                             (0.5, math.sqrt(3) / 2 + 0.04, elements[2])], kdims=["x", "y"], vdims=["text"])
        overlay = overlay * corners.opts(text_font_size="13pt")
        for rows, name, key in ((unstable, f"{source} above hull", "unstable"), (stable, f"{source} on hull", "stable"),
                                (analysis.candidates, "candidates", "candidate")):
            if rows:
                overlay = overlay * _points(hv, rows, lambda r: xy(r)[0], lambda r: xy(r)[1], name, styles[key])
        return overlay.opts(title=title, width=720, height=660, xaxis=None, yaxis=None,
                            legend_position="top_right", padding=0.08, data_aspect=1)
    rows = analysis.references + analysis.candidates
    overlay = _points(hv, rows, lambda r: r.formation_energy_per_atom, lambda r: r.e_above_hull, "entries",
                      styles["unstable"])
    if analysis.candidates:
        overlay = overlay * _points(hv, analysis.candidates, lambda r: r.formation_energy_per_atom,
                                    lambda r: r.e_above_hull, "candidates", styles["candidate"])
    return overlay.opts(title=title, xlabel="formation energy (eV/atom)", ylabel="energy above hull (eV/atom)",
                        width=720, height=480)


def _tie_lines(analysis, xy) -> list:
    """Edges of the hull facets, projected on the triangle."""
    phase_diagram = analysis.phase_diagram
    entries = phase_diagram.qhull_entries
    edges = set()
    for facet in phase_diagram.facets:
        for i in range(len(facet)):
            for j in range(i + 1, len(facet)):
                edges.add(tuple(sorted((facet[i], facet[j]))))
    points = {}
    for index in {k for edge in edges for k in edge}:
        composition = entries[index].composition
        points[index] = SimpleNamespace(fractions={s: composition.get_atomic_fraction(s) for s in analysis.chemsys})
    return [[xy(points[i]), xy(points[j])] for i, j in sorted(edges)]


def save_plot(plot, path: str | os.PathLike, title: str = "Convex hull") -> Path:
    """Save a HoloViews object as a standalone interactive HTML file: Bokeh's own page with its JavaScript inline,
    so it opens offline (no CDN stylesheet, font or icon: not Panel's page template)."""
    import holoviews as hv
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    from ..fileio import atomic_write_text

    if "bokeh" not in hv.Store.loaded_backends():
        hv.extension("bokeh", logo=False)
    state = hv.renderer("bokeh").get_plot_state(plot)
    html = file_html(state, INLINE, title=title)
    # Panel (loaded by HoloViews' Bokeh backend) adds the scripts and stylesheets of every Panel model imported in
    # this process (e.g. the Tabulator's CSS), server-relative or on a CDN: a file on disk cannot reach either and
    # the plot needs none of them, since Bokeh's own JavaScript is inline
    html = re.sub(r'<script[^>]*\ssrc="[^"]*"[^>]*>\s*</script>\s*', "", html)
    html = re.sub(r'<link[^>]*\shref="[^"]*"[^>]*/?>\s*', "", html)
    return atomic_write_text(path, html)


def save_hull(analysis, out: str | os.PathLike, csv_name: str = "hull.csv", html_name: str = "hull.html") -> dict:
    """Write the candidate table (CSV) and the interactive plot (HTML) of a
    :class:`~explorer.relax.HullAnalysis` into ``out``; returns their paths (``csv``, ``html``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    analysis.write_csv(out / csv_name)
    save_plot(hull_figure(analysis), out / html_name)
    return {"csv": str(out / csv_name), "html": str(out / html_name)}


__all__ = ["hull_figure", "save_hull", "save_plot"]
