/* infersight report charts: drawn with the inlined uPlot from the JSON in #chart-data. */
(function () {
  "use strict";
  var el = document.getElementById("chart-data");
  if (!el || typeof uPlot === "undefined") { return; }
  var D = JSON.parse(el.textContent);
  var drawn = 0;

  function width(box) { return Math.max(480, Math.min(box.clientWidth || 960, 1120)); }
  function fmt(v, unit) {
    if (v == null || isNaN(v)) { return "—"; }
    return (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3)) + " " + unit;
  }
  function ink(u, box) {  // painted pixels: the screenshot test reads data-ink from the DOM
    try {
      var c = u.ctx.canvas, px = u.ctx.getImageData(0, 0, c.width, c.height).data, n = 0;
      for (var i = 3; i < px.length; i += 16) { if (px[i] > 0) { n++; } }
      box.setAttribute("data-ink", String(n));
    } catch (e) { box.setAttribute("data-ink", "error"); }
  }

  /* Stacked bars: the series are drawn as cumulative sums, the largest first, so each shows its own part. */
  function stacked(id, spec) {
    var box = document.getElementById(id);
    if (!box || !spec || !spec.labels || !spec.labels.length) { return; }
    var n = spec.labels.length, xs = [], cum = [], data, series, k, i;
    for (i = 0; i < n; i++) { xs.push(i); }
    var acc = xs.map(function () { return 0; });
    spec.series.forEach(function (s) {
      acc = acc.map(function (a, j) { return a + (s.values[j] || 0); });
      cum.push(acc.slice());
    });
    data = [xs];
    series = [{ label: spec.axis || "", value: function (u, v) { return v == null ? "—" : spec.labels[v]; } }];
    for (k = spec.series.length - 1; k >= 0; k--) {
      (function (s) {
        var label = s.label + (s.counts ? " (gaps)" : "");
        series.push({
          label: label,
          fill: s.color,
          stroke: s.color,
          width: 0,
          paths: uPlot.paths.bars({ size: [0.6, 90] }),
          points: { show: false },
          value: function (u, v, si, idx) {
            if (idx == null) { return "—"; }
            var text = fmt(s.values[idx], spec.unit);
            return s.counts ? text + " in " + s.counts[idx] : text;
          }
        });
      })(spec.series[k]);
      data.push(cum[k]);
    }
    var opts = {
      width: width(box),
      height: 260,
      scales: { x: { time: false, range: [-0.5, n - 0.5] }, y: { range: function (u, lo, hi) { return [0, hi * 1.05 || 1]; } } },
      axes: [
        { splits: function () { return xs; }, values: function (u, sp) { return sp.map(function (v) { return spec.labels[v] || ""; }); }, grid: { show: false }, size: 40 },
        { label: spec.unit, size: 60 }
      ],
      cursor: { drag: { x: false, y: false }, points: { show: false } },
      series: series,
      hooks: { draw: [function (u) { ink(u, box); }] }
    };
    var u = new uPlot(opts, data, box);
    var legend = u.root.querySelector(".u-legend");
    if (legend) { legend.style.pointerEvents = "none"; }  // hiding one stacked series would break the stack
    var rows = u.root.querySelectorAll(".u-legend .u-series");  // legend in stacking order, bottom first
    for (i = rows.length - 1; i > 0; i--) { rows[i].parentNode.appendChild(rows[i]); }
    drawn++;
  }

  /* Zoomable timeline: one row per device; kernel bars by category (upper lane), idle gaps (lower lane). */
  function timeline(id, tracks) {
    var box = document.getElementById(id);
    if (!box || !tracks || !tracks.length) { return; }
    var n = tracks.length, xmax = 0, used = {};
    tracks.forEach(function (t) {
      xmax = Math.max(xmax, t.window_us[1] / 1000);
      for (var i = 2; i < t.bars.length; i += 3) { used[t.bars[i]] = true; }
    });
    function row(v) { return n - 1 - Math.floor(v); }
    function draw(u) {
      var ctx = u.ctx, b = u.bbox, x0 = u.scales.x.min, x1 = u.scales.x.max, one = Math.max(1, devicePixelRatio || 1);
      ctx.save();
      ctx.beginPath(); ctx.rect(b.left, b.top, b.width, b.height); ctx.clip();
      tracks.forEach(function (t, r) {
        var top = u.valToPos(n - r, "y", true), bottom = u.valToPos(n - r - 1, "y", true), h = bottom - top;
        var i, s, e, px, pw;
        for (i = 0; i + 2 < t.bars.length; i += 3) {
          s = t.bars[i] / 1000; e = s + t.bars[i + 1] / 1000;
          if (e < x0 || s > x1) { continue; }
          px = u.valToPos(s, "x", true); pw = Math.max(u.valToPos(e, "x", true) - px, one);
          ctx.fillStyle = D.categoryColors[t.bars[i + 2]] || "#999";
          ctx.fillRect(px, top + h * 0.12, pw, h * 0.5);
        }
        ctx.fillStyle = "rgba(40,40,40,0.8)";
        for (i = 0; i + 1 < t.gaps.length; i += 2) {
          s = t.gaps[i] / 1000; e = s + t.gaps[i + 1] / 1000;
          if (e < x0 || s > x1) { continue; }
          px = u.valToPos(s, "x", true); pw = Math.max(u.valToPos(e, "x", true) - px, one);
          ctx.fillRect(px, top + h * 0.68, pw, h * 0.2);
        }
      });
      ctx.restore();
      ink(u, box);
    }
    var opts = {
      width: width(box),
      height: 80 + n * 64,
      scales: { x: { time: false, range: function (u, lo, hi) { return [lo, hi]; } }, y: { range: [0, n] } },
      axes: [
        { label: "ms since the trace start (drag to zoom, double-click to reset)" },
        {
          size: 170,
          splits: function () { return tracks.map(function (t, i) { return i + 0.5; }); },
          values: function (u, sp) { return sp.map(function (v) { var t = tracks[row(v)]; return t ? t.label + (t.busy != null ? " (" + (t.busy * 100).toFixed(1) + "% busy)" : "") : ""; }); },
          grid: { show: false }
        }
      ],
      cursor: { drag: { x: true, y: false, setScale: true }, points: { show: false } },
      series: [{ label: "t", value: function (u, v) { return v == null ? "—" : v.toFixed(3) + " ms"; } }, { label: "", show: false }],
      legend: { show: true, live: true },
      hooks: { draw: [draw], setCursor: [hover] }
    };
    var info = document.createElement("div");
    info.className = "note tl-hover";
    info.textContent = "hover a bar for its category and time";
    function find(list, stride, t) {  // last entry starting at or before t (entries sorted by start)
      var lo = 0, hi = Math.floor(list.length / stride) - 1, mid, best = -1;
      while (lo <= hi) { mid = (lo + hi) >> 1; if (list[mid * stride] / 1000 <= t) { best = mid; lo = mid + 1; } else { hi = mid - 1; } }
      return best;
    }
    function hover(u) {
      var left = u.cursor.left, top = u.cursor.top;
      if (left == null || left < 0 || top == null || top < 0) { return; }
      var t = u.posToVal(left, "x"), r = row(u.posToVal(top, "y")), track = tracks[r];
      if (!track) { return; }
      var slack = (u.scales.x.max - u.scales.x.min) / Math.max(u.bbox.width, 1) * 2;
      var text = track.label + " at +" + t.toFixed(3) + " ms: ";
      var b = find(track.bars, 3, t + slack), g = find(track.gaps, 2, t + slack);
      if (b >= 0 && (track.bars[b * 3] + track.bars[b * 3 + 1]) / 1000 >= t - slack) {
        text += D.categories[track.bars[b * 3 + 2]] + " for " + (track.bars[b * 3 + 1] / 1000).toFixed(3) + " ms from +" + (track.bars[b * 3] / 1000).toFixed(3) + " ms";
      } else if (g >= 0 && (track.gaps[g * 2] + track.gaps[g * 2 + 1]) / 1000 >= t - slack) {
        text += "idle gap of " + (track.gaps[g * 2 + 1] / 1000).toFixed(3) + " ms";
      } else {
        text += "no bar here";
      }
      info.textContent = text;
    }
    new uPlot(opts, [[0, xmax], [null, null]], box);
    box.appendChild(info);
    var legend = document.createElement("div");
    legend.className = "cat-legend";
    D.categories.forEach(function (c, i) {
      if (!used[i]) { return; }
      var item = document.createElement("span");
      item.innerHTML = '<i style="background:' + D.categoryColors[i] + '"></i>';
      item.appendChild(document.createTextNode(c));
      legend.appendChild(item);
    });
    var gap = document.createElement("span");
    gap.innerHTML = '<i style="background:rgba(40,40,40,0.8)"></i>';
    gap.appendChild(document.createTextNode("idle gap (lower lane)"));
    legend.appendChild(gap);
    box.appendChild(legend);
    drawn++;
  }

  var attr = D.attribution || {};
  stacked("chart-attr-devices", attr.devices);
  stacked("chart-attr-phases", attr.phases);
  stacked("chart-phases", D.phases);
  stacked("chart-gaps", D.gaps);
  timeline("chart-timeline", D.tracks);
  document.documentElement.setAttribute("data-charts", String(drawn));
})();
