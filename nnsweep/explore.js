// The report's explorer: an SVG heatmap of the sweep's cells drawn from the page's inline
// JSON (#explore-data); pointing at a cell previews its learning curve and numbers, a click
// (or Enter) pins it; with held-out rows, a dashed line is the cell's curve on them. An error
// is drawn on log scales, light where low; a score (data.higher: accuracy) on a linear one,
// light where high: light is the better on both. No network and no markup built from strings:
// every text from the data goes in as textContent, and the SVG namespace is taken from the
// page's own <svg> elements.
(function () {
  "use strict";
  var source = document.getElementById("explore-data");
  var heat = document.getElementById("explore-heatmap");
  var curves = document.getElementById("explore-curves");
  var numbers = document.getElementById("explore-numbers");
  var caption = document.getElementById("explore-cell");
  if (!source || !heat || !curves || !numbers) { return; }
  var data = JSON.parse(source.textContent);
  var NS = heat.namespaceURI;
  // viridis reversed, as the final-error figure: the better light (a low error, a high score)
  var RAMP = ["#fde725", "#b5de2b", "#6ece58", "#35b779", "#1f9e89", "#26828e", "#31688e",
              "#3e4989", "#482878", "#440154"];
  var DIVERGED = "#9e9e9e", NONE = "#404040", MARK = "\u00d7";

  function node(parent, name, attributes, text) {
    var element = document.createElementNS(NS, name);
    Object.keys(attributes).forEach(function (key) { element.setAttribute(key, attributes[key]); });
    if (text !== undefined) { element.textContent = text; }
    parent.appendChild(element);
    return element;
  }
  function clear(element) { while (element.firstChild) { element.removeChild(element.firstChild); } }
  function hex(c) { return [1, 3, 5].map(function (i) { return parseInt(c.slice(i, i + 2), 16); }); }
  function colour(t) {
    var s = Math.min(Math.max(t, 0), 1) * (RAMP.length - 1), i = Math.min(Math.floor(s), RAMP.length - 2);
    var a = hex(RAMP[i]), b = hex(RAMP[i + 1]), f = s - i;
    return "rgb(" + a.map(function (v, k) { return Math.round(v + (b[k] - v) * f); }).join(",") + ")";
  }
  function number(v) {
    if (v === null || v === undefined) { return "\u2014"; }
    if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e6)) { return v.toExponential(2); }
    return String(Number(v.toPrecision(4)));
  }

  var higher = Boolean(data.higher);
  // A value on the drawn scale: log10 of an error, a score as it is.
  function scale(v) { return higher ? v : Math.log10(v); }
  function unscale(s) { return higher ? s : Math.pow(10, s); }
  function shown(v) { return v !== null && v !== undefined && (higher || v > 0); }
  var finite = data.cells.map(function (c) { return c.final; }).filter(shown);
  var low = finite.length ? scale(Math.min.apply(null, finite)) : 0;
  var high = finite.length ? scale(Math.max.apply(null, finite)) : 1;
  if (high - low < 1e-9) { low -= higher ? 0.05 : 0.5; high += higher ? 0.05 : 0.5; }
  // Where a value sits on the colour ramp: 0 the best end (light), 1 the worst (dark).
  function shade(v) {
    var t = (scale(v) - low) / (high - low);
    return higher ? 1 - t : t;
  }
  function fill(cell) {
    if (cell.diverged) { return DIVERGED; }
    if (!shown(cell.final)) { return NONE; }
    return colour(shade(cell.final));
  }

  // --- the heatmap: one panel per facet, x across, y down (largest at the top) -------------
  var nx = data.x.labels.length, ny = data.y ? data.y.labels.length : 1;
  var cw = Math.max(18, Math.min(64, Math.floor(560 / nx))), ch = Math.max(16, Math.min(36, cw));
  var rotate = data.x.labels.some(function (l) { return l.length * 7 > cw; });
  var left = 12 + 7.5 * Math.max.apply(null, (data.y ? data.y.labels : [""]).map(function (l) {
    return l.length; }).concat([2])) + (data.y ? 20 : 0);
  var bottom = rotate ? 14 + 6 * Math.max.apply(null, data.x.labels.map(function (l) {
    return l.length; })) : 22;
  var panelHeight = 22 + ny * ch + bottom + 24;
  var panelWidth = left + nx * cw + 28;
  // Panels side by side while they fit in about 720 px, then in rows.
  var columns = Math.max(1, Math.min(data.panels.length, Math.floor(720 / panelWidth)));
  var panelRows = Math.ceil(data.panels.length / columns);
  function origin(p) {
    return {x: (p % columns) * panelWidth, y: Math.floor(p / columns) * panelHeight + 20};
  }
  var rects = [];
  data.panels.forEach(function (title, p) {
    var top = origin(p).y, ox = origin(p).x;
    node(heat, "text", {x: ox + left, y: top - 6, "class": "panel-title"}, title);
    for (var j = 0; j < ny; j++) {
      node(heat, "text", {x: ox + left - 6, y: top + (ny - 1 - j) * ch + ch / 2 + 4,
                          "text-anchor": "end"}, data.y ? data.y.labels[j] : "");
    }
    data.x.labels.forEach(function (label, i) {
      var x = ox + left + i * cw + cw / 2, y = top + ny * ch + 14;
      node(heat, "text", rotate ? {x: x, y: y, "text-anchor": "end",
                                   transform: "rotate(-45 " + x + " " + y + ")"}
                                : {x: x, y: y, "text-anchor": "middle"}, label);
    });
    node(heat, "text", {x: ox + left + nx * cw / 2, y: top + ny * ch + bottom + 10,
                        "text-anchor": "middle", "class": "axis-title"}, data.x.title);
    if (data.y) {
      var cy = top + ny * ch / 2;
      var yTitle = data.y.title.length * 7 <= ny * ch ? data.y.title : data.y.name;
      node(heat, "text", {x: ox + 12, y: cy, "text-anchor": "middle", "class": "axis-title",
                          transform: "rotate(-90 " + (ox + 12) + " " + cy + ")"}, yTitle);
    }
  });
  data.cells.forEach(function (cell, index) {
    var at = origin(cell.panel);
    var x = at.x + left + cell.i * cw, y = at.y + (ny - 1 - cell.j) * ch;
    var group = node(heat, "g", {"class": "cell", tabindex: "0", role: "button",
                                 "data-cell": String(index),
                                 "aria-label": cell.params.map(function (p) {
                                   return p[0] + " = " + p[1]; }).join(", ")});
    node(group, "rect", {x: x, y: y, width: cw - 1, height: ch - 1, fill: fill(cell)});
    if (!cell.diverged && shown(cell.final) && cw >= 40) {
      node(group, "text", {x: x + cw / 2, y: y + ch / 2 + 4, "text-anchor": "middle",
                           fill: shade(cell.final) > 0.55 ? "#fff" : "#000", "class": "value"},
           Number(cell.final.toPrecision(higher ? 3 : 2)).toString());
    }
    if (cell.diverged || cell.final === null) {
      node(group, "text", {x: x + cw / 2, y: y + ch / 2 + 5, "text-anchor": "middle",
                           fill: cell.diverged ? "#000" : "#fff", "class": "mark"}, MARK);
    }
    node(group, "title", {}, cell.params.map(function (p) { return p[0] + " = " + p[1]; })
      .join(", ") + ": " + (cell.diverged ? "diverged" : data.metric + " " + number(cell.final)));
    rects.push(group);
    group.addEventListener("mouseenter", function () { show(index, false); });
    group.addEventListener("focus", function () { show(index, false); });
    group.addEventListener("click", function () { show(index, true); });
    group.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); show(index, true); }
    });
  });
  // The colour scale, under the panels.
  var scaleTop = panelRows * panelHeight + 8;
  for (var k = 0; k < 40; k++) {
    node(heat, "rect", {x: left + k * 5, y: scaleTop, width: 5, height: 10, fill: colour(k / 39)});
  }
  // The ramp runs from the best end, light, to the worst: a high score's or a low error's.
  node(heat, "text", {x: left, y: scaleTop + 24}, number(unscale(higher ? high : low)));
  node(heat, "text", {x: left + 200, y: scaleTop + 24, "text-anchor": "end"},
       number(unscale(higher ? low : high)));
  node(heat, "text", {x: left + 210, y: scaleTop + 9},
       "final " + data.metric + (higher ? " (linear scale; higher is better)" : " (log scale)")
       + "; grey " + MARK + ": diverged");
  heat.setAttribute("width", Math.max(columns * panelWidth, left + 440));
  heat.setAttribute("height", scaleTop + 34);
  heat.addEventListener("mouseleave", function () { if (pinned !== null) { show(pinned, false); } });

  // --- one cell: its curve (median over seeds, band from min to max) and its numbers -------
  var W = 460, H = 300, M = {left: 58, right: 14, top: 14, bottom: 42};
  curves.setAttribute("width", W);
  curves.setAttribute("height", H);
  function powers(a, b) {
    var out = [];
    for (var e = Math.floor(a); e <= Math.ceil(b); e++) { if (e >= a - 1e-9 && e <= b + 1e-9) { out.push(e); } }
    return out;
  }
  function drawn(c) {
    var points = [];
    for (var i = 0; i < c.e.length; i++) {
      if (shown(c.m[i])) { points.push(i); }
    }
    return points;
  }
  // About five round steps between a and b, for a linear axis.
  function steps(a, b) {
    var raw = (b - a) / 5, unit = Math.pow(10, Math.floor(Math.log10(raw))), out = [];
    var step = [1, 2, 5, 10].map(function (k) { return k * unit; })
      .filter(function (s) { return s >= raw; })[0];
    for (var v = Math.ceil(a / step) * step; v <= b + 1e-9; v += step) {
      out.push(Number(v.toPrecision(6)));
    }
    return out;
  }
  // `reference`: the pinned cell, drawn grey behind the cell pointed at, to compare the two.
  function drawCurve(cell, reference) {
    clear(curves);
    var c = cell.curve, points = drawn(c);
    var r = reference ? reference.curve : null, rPoints = r ? drawn(r) : [];
    var v = cell.held || null, vPoints = v ? drawn(v) : [];
    if (!points.length) {
      node(curves, "text", {x: W / 2, y: H / 2, "text-anchor": "middle"}, "no finite errors recorded");
      return;
    }
    var ys = [];
    points.forEach(function (i) {
      [c.m[i], c.lo[i], c.hi[i]].forEach(function (value) { if (shown(value)) { ys.push(scale(value)); } });
    });
    rPoints.forEach(function (i) { ys.push(scale(r.m[i])); });
    vPoints.forEach(function (i) { ys.push(scale(v.m[i])); });
    // the line a trial converges at: an error's tolerance, a score's 1 - tolerance
    var goal = higher ? 1 - data.tolerance : data.tolerance;
    if (data.tolerance > 0) { ys.push(scale(goal)); }
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    var least = higher ? 0.05 : 0.3;
    if (y1 - y0 < least) { y0 -= least / 2; y1 += least / 2; }
    var last = Math.max(c.e[c.e.length - 1], r && r.e.length ? r.e[r.e.length - 1] : 0);
    var x0 = 0, x1 = Math.max(1, Math.log10(last + 1));
    function px(epoch) { return M.left + (Math.log10(epoch + 1) - x0) / (x1 - x0) * (W - M.left - M.right); }
    function py(value) { return H - M.bottom - (scale(value) - y0) / (y1 - y0) * (H - M.top - M.bottom); }
    node(curves, "rect", {x: M.left, y: M.top, width: W - M.left - M.right,
                          height: H - M.top - M.bottom, fill: "#fff", stroke: "#bbb"});
    (higher ? steps(y0, y1) : powers(y0, y1)).forEach(function (e) {
      var y = py(unscale(e));
      node(curves, "line", {x1: M.left, x2: W - M.right, y1: y, y2: y, stroke: "#e4e4e4"});
      node(curves, "text", {x: M.left - 5, y: y + 4, "text-anchor": "end"}, number(unscale(e)));
    });
    [0].concat(powers(0, x1).filter(function (e) { return e > 0; }).map(function (e) {
      return Math.pow(10, e); })).forEach(function (epoch) {
      var x = px(epoch);
      node(curves, "line", {x1: x, x2: x, y1: M.top, y2: H - M.bottom, stroke: "#e4e4e4"});
      node(curves, "text", {x: x, y: H - M.bottom + 15, "text-anchor": "middle"}, number(epoch));
    });
    node(curves, "text", {x: (W + M.left) / 2, y: H - 6, "text-anchor": "middle",
                          "class": "axis-title"}, "epoch (log scale)");
    node(curves, "text", {x: 12, y: (H - M.bottom) / 2, "text-anchor": "middle", "class": "axis-title",
                          transform: "rotate(-90 12 " + (H - M.bottom) / 2 + ")"},
         data.metric + (higher ? " (higher is better)" : " (log scale)"));
    if (data.tolerance > 0) {
      var ty = py(goal);
      node(curves, "line", {x1: M.left, x2: W - M.right, y1: ty, y2: ty, stroke: "#1a9850",
                            "stroke-dasharray": "4 3", "class": "tolerance"});
    }
    if (rPoints.length) {
      node(curves, "polyline", {points: rPoints.map(function (i) {
        return px(r.e[i]).toFixed(1) + "," + py(r.m[i]).toFixed(1); }).join(" "),
        fill: "none", stroke: "#999", "stroke-width": "1.5", "stroke-dasharray": "5 3",
        "class": "reference"});
    }
    if (cell.seeds > 1) {
      var upper = [], lower = [];
      points.forEach(function (i) {
        if (c.lo[i] !== null && c.hi[i] !== null && shown(c.lo[i])) {
          upper.push(px(c.e[i]).toFixed(1) + "," + py(c.hi[i]).toFixed(1));
          lower.unshift(px(c.e[i]).toFixed(1) + "," + py(c.lo[i]).toFixed(1));
        }
      });
      if (upper.length) {
        node(curves, "polygon", {points: upper.concat(lower).join(" "), fill: "#3e4989",
                                 "fill-opacity": "0.2", "class": "band"});
      }
    }
    node(curves, "polyline", {points: points.map(function (i) {
      return px(c.e[i]).toFixed(1) + "," + py(c.m[i]).toFixed(1); }).join(" "),
      fill: "none", stroke: "#3e4989", "stroke-width": "2", "class": "median"});
    if (vPoints.length) {
      node(curves, "polyline", {points: vPoints.map(function (i) {
        return px(v.e[i]).toFixed(1) + "," + py(v.m[i]).toFixed(1); }).join(" "),
        fill: "none", stroke: "#3e4989", "stroke-width": "2", "stroke-dasharray": "6 3",
        "class": "validation"});
      node(curves, "text", {x: W - M.right - 6, y: M.top + 14, "text-anchor": "end"},
           "solid: training rows; dashed: held-out rows");
    }
  }
  function drawNumbers(cell) {
    clear(numbers);
    var rows = cell.params.map(function (p) { return [p[0], p[1]]; });
    rows.push(["seeds", String(cell.seeds)]);
    rows.push(["statuses", Object.keys(cell.statuses).map(function (s) {
      return s + " " + cell.statuses[s]; }).join(", ")]);
    rows.push(["outcome", cell.outcome]);
    var how = cell.seeds > 1 ? "median " : "";
    rows.push([how + "final " + data.metric, cell.diverged ? "diverged" : number(cell.final)]);
    rows.push([how + "best " + data.metric, number(cell.best)]);
    if (data.validation) {
      rows.push([how + "final validation " + data.metric,
                 cell.diverged ? "diverged" : number(cell.validation)]);
      rows.push([how + "gap (validation \u2212 training" +
                 (higher ? "; negative: worse held out)" : ")"),
                 cell.gap === null ? "\u2014" : (cell.gap > 0 ? "+" : "") + number(cell.gap)]);
    }
    rows.push(["converged share", Math.round(cell.share * 100) + "%"]);
    rows.push([how + "epoch converged", number(cell.epoch)]);
    rows.push([how + "direction changes", number(cell.changes)]);
    rows.forEach(function (row) {
      var tr = document.createElement("tr");
      var th = document.createElement("th"), td = document.createElement("td");
      th.textContent = row[0];
      td.textContent = row[1];
      tr.appendChild(th);
      tr.appendChild(td);
      numbers.appendChild(tr);
    });
  }
  var pinned = null;
  function show(index, pin) {
    var cell = data.cells[index];
    if (pin) {
      if (pinned !== null) { rects[pinned].classList.remove("pinned"); }
      pinned = index;
      rects[index].classList.add("pinned");
    }
    rects.forEach(function (r) { r.classList.remove("shown"); });
    rects[index].classList.add("shown");
    if (caption) {
      caption.textContent = cell.params.map(function (p) { return p[0] + " = " + p[1]; }).join(", ")
        + (pin || index === pinned ? " (pinned: click another cell to change)"
           : " (click to pin; dashed grey: the pinned cell)");
    }
    drawCurve(cell, pinned !== null && pinned !== index ? data.cells[pinned] : null);
    drawNumbers(cell);
  }
  if (data.cells.length) { show(data.start, true); }
}());
