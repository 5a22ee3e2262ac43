"""The report's item map as inline SVG: one circle per item with its id and side information on hover, cold-start
items outlined, and a search box that highlights matching items. Plain SVG, CSS and a few lines of script in the
page itself, so it works from a file with no network (a PNG cannot be searched or hovered)."""

from __future__ import annotations

import html

import numpy as np

#: matplotlib's tab10, so the map's colours match the other plots'.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
OTHER = "#d0d0d0"
WIDTH, HEIGHT, PAD = 1000, 640, 12

STYLE = """#item-map{width:100%;height:auto;border:1px solid #eee;background:#fff}
#item-map circle{stroke:none}#item-map circle.cold{stroke:#000;stroke-width:1.2}
#item-map.searching circle{opacity:.12}#item-map.searching circle.hit{opacity:1;stroke:#000;stroke-width:2}
.legend span{display:inline-block;margin-right:1em;font-size:90%}.legend i{display:inline-block;width:.8em;
height:.8em;border-radius:50%;margin-right:.3em;vertical-align:middle}#map-search{width:28em;padding:3px}"""

#: Whole values only: ``brand17`` finds brand17, not brand170; ``item 123`` finds item 123, not item 1234; a query
#: of several words (``category: cat3``) matches them in a row. Spaces around the query do not matter.
MATCHES = """function matches(s,q){q=q.trim().toLowerCase().replace(/\\s+/g,' ');
return q.length>0&&(' '+s+' ').includes(' '+q+' ');}"""

SCRIPT = MATCHES + """(function(){const box=document.getElementById('map-search'),map=document.getElementById('item-map'),
count=document.getElementById('map-count'),dots=[...map.querySelectorAll('circle')];
function find(){const q=box.value.trim();let n=0;map.classList.toggle('searching',q.length>0);
for(const d of dots){const hit=matches(d.dataset.s,q);d.classList.toggle('hit',hit);if(hit)n++;}
count.textContent=q?n+' matching item'+(n===1?'':'s'):'';}
box.addEventListener('input',find);const m=location.hash.match(/search=([^&]*)/);
if(m){box.value=decodeURIComponent(m[1]);}find();})();"""


def searchable(tooltip: str) -> str:
    """The text a point is searched by: its tooltip in lower case, runs of whitespace as one space (as the query)."""
    return " ".join(tooltip.lower().split())


def _scale(values: np.ndarray, size: int) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    span = hi - lo or 1.0
    return PAD + (values - lo) / span * (size - 2 * PAD)


def item_map_svg(points: np.ndarray, labels: np.ndarray, tooltips: list[str], cold: np.ndarray,
                 top: int = 10) -> str:
    """HTML for the map: a search box, the SVG (one circle per row of ``points``) and a colour legend.

    ``labels`` colour the points (the ``top`` most common; the rest grey); ``tooltips`` are shown on hover and
    searched; ``cold`` marks cold-start items, drawn outlined and on top.
    """
    values, counts = np.unique(labels, return_counts=True)
    common = list(values[np.argsort(-counts, kind="stable")][:top])
    colour = {v: PALETTE[i % len(PALETTE)] for i, v in enumerate(common)}
    x = _scale(points[:, 0], WIDTH)
    y = HEIGHT - _scale(points[:, 1], HEIGHT)
    layer = np.where(cold, 2, np.isin(labels, common).astype(int))  # grey below, coloured, cold items on top
    circles = []
    for i in np.argsort(layer, kind="stable"):
        tip = html.escape(tooltips[i])
        cls = ' class="cold"' if cold[i] else ""
        radius = 4 if cold[i] else 2.5
        circles.append(f'<circle cx="{x[i]:.1f}" cy="{y[i]:.1f}" r="{radius}" fill="{colour.get(labels[i], OTHER)}"'
                       f'{cls} data-s="{html.escape(searchable(tooltips[i]))}"><title>{tip}</title></circle>')
    legend = "".join(f'<span><i style="background:{c}"></i>{html.escape(str(v))}</span>' for v, c in colour.items())
    legend += f'<span><i style="background:{OTHER}"></i>other</span>'
    if cold.any():
        legend += '<span><i style="background:#fff;border:1.5px solid #000"></i>cold start (outlined)</span>'
    return (f'<style>{STYLE}</style><p><input id="map-search" type="search" placeholder="search: item id, category, '
            f'brand, ..."> <span id="map-count"></span></p>'
            f'<svg id="item-map" viewBox="0 0 {WIDTH} {HEIGHT}" role="img">'
            + "".join(circles) + f'</svg><p class="legend">{legend}</p><script>{SCRIPT}</script>')
