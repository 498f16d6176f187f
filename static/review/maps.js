// Map plots for the review pages: typed-array payloads, linear/log colour, colour maps,
// axes in um or pixels, scale bar, colour bar, hover with units, synchronised zoom, and the
// full-resolution window fetched when someone zooms in. Every plot is Plotly.
"use strict";
const xrfMaps = (() => {
  const COLOUR_MAPS = ["Viridis", "Cividis", "Hot", "Blackbody", "Electric", "Greys", "Jet"];

  // {"dtype": "f4"|"f8", "bdata": base64, "shape": "H, W"} -> typed array (rows for 2-D).
  // Decoded once per payload and kept on it: zooms and redraws reuse it.
  function decode(spec) {
    if (spec.decoded) return spec.decoded;
    const text = atob(spec.bdata), bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    const flat = spec.dtype === "f8" ? new Float64Array(bytes.buffer) : new Float32Array(bytes.buffer);
    let out = flat;
    if (spec.shape) {
      const [h, w] = spec.shape.split(",").map(Number);
      out = Array.from({ length: h }, (_, r) => flat.subarray(r * w, (r + 1) * w));
    }
    Object.defineProperty(spec, "decoded", { value: out, enumerable: false });
    return out;
  }

  // url, or a fetch already under way (a page's prefetch) -> its JSON; errors as Error(message).
  // 429 with retry_after_s: the server is computing other views (heavy work is bounded per
  // user and site-wide): ask again after that wait, for up to 10 minutes.
  async function getJSON(url, tries = 200) {
    const response = await (typeof url === "string" ? fetch(url, { headers: { Accept: "application/json" } }) : url);
    let body = {};
    try { body = await response.json(); } catch (e) { /* not JSON: an error page */ }
    if (response.status === 429 && body.retry_after_s && tries > 0 && typeof url === "string") {
      await new Promise((done) => setTimeout(done, 1000 * body.retry_after_s));
      return getJSON(url, tries - 1);
    }
    if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
    return body;
  }

  // A round length (1, 2 or 5 x 10^k) near a fifth of the span.
  function niceLength(span) {
    if (!(span > 0)) return 0;
    const k = Math.floor(Math.log10(span / 5));
    for (const m of [5, 2, 1]) if (m * 10 ** k <= span / 5) return m * 10 ** k;
    return 10 ** k;
  }

  // Plotly reads a little HTML in titles and hover text: names from uploaded files go in as text.
  const text = xrf.plotText;
  const fmt = (v) => (v == null || !isFinite(v) ? "–" : Math.abs(v) >= 1e4 || Math.abs(v) < 1e-2 ? v.toExponential(3) : v.toPrecision(4));

  // Settings shared by every map on a page; controls change them and redraw.
  class Settings {
    constructor() {
      this.log = false; this.colours = "Viridis"; this.units = "um"; this.views = [];
      // Colour limits: the whole range, percentiles of each map, or numbers typed in.
      this.limits = "auto"; this.pLow = 1; this.pHigh = 99; this.vmin = ""; this.vmax = "";
      this.independent = false;  // before and after each on their own range
    }
    set(key, value) { this[key] = value; this.views.forEach((v) => v.draw()); }
  }

  // The values at percentiles lo and hi (0-100) of a payload's finite values, kept on it.
  function percentiles(spec, lo, hi) {
    const key = `${lo},${hi}`;
    spec.pct = spec.pct || {};
    if (spec.pct[key]) return spec.pct[key];
    const rows = decode(spec.z), values = [];
    for (const row of rows) for (const v of row) if (Number.isFinite(v)) values.push(v);
    if (!values.length) return spec.range;
    const sorted = Float64Array.from(values).sort();
    const at = (p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.round((p / 100) * (sorted.length - 1))))];
    Object.defineProperty(spec, "pct", { value: spec.pct, enumerable: false, writable: true });
    spec.pct[key] = [at(Math.min(lo, hi)), at(Math.max(lo, hi))];
    return spec.pct[key];
  }

  // One heatmap. opts: {title, units (of the values), settings, region: (box) -> url or null,
  // diverging (difference map: zero in the middle), fixed (its own colour range, whatever the
  // limits say: chi²), group: [MapView] sharing one colour range unless settings.independent,
  // sync: [MapView] sharing the zoom, onLine / onBox: a line or rectangle drawn}.
  class MapView {
    constructor(div, opts) {
      this.div = typeof div === "string" ? document.getElementById(div) : div;
      if (this.div.classList.contains("js-plotly-plot")) Plotly.purge(this.div);  // drop an old view's events
      this.opts = opts;
      this.settings = opts.settings;
      this.settings.views.push(this);
      this.overview = null;   // the whole map, downsampled
      this.shown = null;      // what is drawn now: the overview or a zoomed window
      this.range = null;      // [min, max] fixed for colours, so a zoom keeps their meaning
      this.shapes = [];
      this.seq = 0;
      this.syncing = false;
    }

    hasUm(payload = this.overview) { return Boolean(payload && payload.x_um); }
    units() { return this.settings.units === "um" && this.hasUm() ? "um" : "px"; }

    setData(payload, range) {
      this.overview = payload;
      this.shown = payload;
      this.alt = null;
      this.range = range || payload.range;
      this.draw(true);
      // The group's shared colour range may have grown: the others draw with it too.
      for (const v of this.opts.group || []) if (v !== this && v.overview) v.draw();
    }

    // Blink: show another map (same axes) in place of this one, or this one again (null).
    showAlternate(payload, title) {
      this.alt = payload ? { payload, title } : null;
      this.draw();
    }

    // The colour limits of this map alone, as the settings ask.
    ownRange() {
      const s = this.settings;
      if (this.opts.fixed || !this.overview) return this.range;
      if (s.limits === "manual") {
        const lo = parseFloat(s.vmin), hi = parseFloat(s.vmax);
        if (Number.isFinite(lo) && Number.isFinite(hi) && hi > lo) return [lo, hi];
      }
      if (s.limits === "percentile") return percentiles(this.overview, Number(s.pLow), Number(s.pHigh));
      return this.range;
    }

    // What the colours span: the group's union (a colour means one value in before and after)
    // unless they are scaled apart.
    colourRange() {
      const group = (this.opts.group || []).filter((v) => v.overview);
      if (!group.length || this.settings.independent || this.opts.fixed) return this.ownRange();
      const ranges = group.map((v) => v.ownRange());
      return [Math.min(...ranges.map((r) => r[0])), Math.max(...ranges.map((r) => r[1]))];
    }

    // px <-> the axis units now shown, from the overview's pixel centres (a straight line:
    // scans are regular rasters; a request window has a pixel of margin anyway).
    toPx(value, axis) {
      if (this.units() === "px") return value;
      const p = this.overview[`${axis}_px`], u = this.overview[`${axis}_um`];
      const P = decode(p), U = decode(u), n = P.length - 1;
      if (n < 1) return P[0];
      return P[0] + (value - U[0]) * (P[n] - P[0]) / (U[n] - U[0]);
    }
    fromPx(value, axis) {  // toPx's inverse: a pixel of this map's grid in the axes' units
      if (this.units() === "px") return value;
      const P = decode(this.overview[`${axis}_px`]), U = decode(this.overview[`${axis}_um`]), n = P.length - 1;
      if (n < 1) return U[0];
      return U[0] + (value - P[0]) * (U[n] - U[0]) / (P[n] - P[0]);
    }
    // opts.mark {x0, y0, x1, y1 (pixel edges of this map's grid), label}: a fixed dashed box.
    markShape() {
      const m = this.opts.mark;
      if (!m || !this.overview) return [];
      return [{ type: "rect", name: "mark", xref: "x", yref: "y", editable: false,
        x0: this.fromPx(m.x0, "x"), x1: this.fromPx(m.x1, "x"), y0: this.fromPx(m.y0, "y"), y1: this.fromPx(m.y1, "y"),
        line: { color: "#f59e0b", width: 2, dash: "dash" }, label: { text: text(m.label), font: { color: "#f59e0b", size: 11 }, textposition: "top left" } }];
    }
    umPerPx() {
      const P = decode(this.overview.x_px), U = decode(this.overview.x_um), n = P.length - 1;
      return n < 1 ? null : Math.abs((U[n] - U[0]) / (P[n] - P[0]));
    }

    trace() {
      const s = this.settings, shown = this.alt ? this.alt.payload : this.shown;
      const z = decode(shown.z), u = this.units();
      const units = text(this.opts.units || "");
      const axisUnits = u === "um" ? "µm" : "px";
      const trace = {
        type: "heatmap", x: decode(shown[`x_${u}`]), y: decode(shown[`y_${u}`]),
        zsmooth: false, hoverongaps: false,
        colorbar: { title: { text: units, side: "top" }, thickness: 12, len: 0.9, exponentformat: "e" },
      };
      const hover = `x %{x:.4g} ${axisUnits}<br>y %{y:.4g} ${axisUnits}<br>`;
      let [lo, hi] = this.colourRange();
      if (this.opts.diverging) {
        const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
        Object.assign(trace, { z, zmin: -m, zmax: m, colorscale: "RdBu",
          hovertemplate: `${hover}%{z:.4g} ${units}<extra></extra>` });
      } else if (s.log) {
        // Plotly has no log colour axis: colour log10(value), hover the value itself.
        const floor = Math.max(hi * 1e-4, Number.MIN_VALUE);
        const logz = z.map((row) => Float32Array.from(row, (v) => (v > 0 ? Math.log10(Math.max(v, floor)) : NaN)));
        const lmin = Math.log10(Math.max(lo, floor)), lmax = Math.log10(Math.max(hi, floor * 10));
        const ticks = [];
        for (let k = Math.ceil(lmin); k <= Math.floor(lmax); k++) ticks.push(k);
        Object.assign(trace, { z: logz, customdata: z, zmin: lmin, zmax: lmax, colorscale: s.colours,
          hovertemplate: `${hover}%{customdata:.4g} ${units}<extra></extra>` });
        trace.colorbar.tickvals = ticks;
        trace.colorbar.ticktext = ticks.map((k) => `1e${k}`);
      } else {
        Object.assign(trace, { z, zmin: lo, zmax: hi === lo ? lo + 1 : hi, colorscale: s.colours,
          hovertemplate: `${hover}%{z:.4g} ${units}<extra></extra>` });
      }
      return trace;
    }

    // The scale bar: a line and its length, a fifth of the view wide, in the bottom-left corner.
    scaleBar(layout) {
      if (!this.hasUm()) return [[], []];
      const xr = this.currentRange("x"), perUnit = this.units() === "um" ? 1 : this.umPerPx();
      if (!xr || !perUnit) return [[], []];
      const spanUm = Math.abs(xr[1] - xr[0]) * perUnit, len = niceLength(spanUm);
      const x0 = Math.min(xr[0], xr[1]) + 0.05 * Math.abs(xr[1] - xr[0]), x1 = x0 + len / perUnit;
      const label = len >= 1 ? `${len} µm` : `${Math.round(len * 1000)} nm`;
      return [[{ type: "line", xref: "x", yref: "y domain", x0, x1, y0: 0.06, y1: 0.06,
        line: { color: "white", width: 4 }, editable: false, name: "scale bar" }],
      [{ xref: "x", yref: "y domain", x: (x0 + x1) / 2, y: 0.08, text: label, showarrow: false,
        font: { color: "white", size: 12 }, yanchor: "bottom", bgcolor: "rgba(0,0,0,0.35)" }]];
    }

    currentRange(axis) {
      const a = this.div._fullLayout && this.div._fullLayout[`${axis}axis`];
      if (a && a.range && !this.justSwitched) return a.range.slice();
      const v = decode(this.overview[`${axis}_${this.units()}`]);
      return [v[0], v[v.length - 1]];
    }

    layout() {
      const u = this.units() === "um" ? "µm" : "pixels";
      const layout = {
        // Left-aligned: the mode bar sits top right.
        title: { text: text(this.alt ? this.alt.title : this.opts.title), font: { size: 14 }, x: 0.01, xanchor: "left" },
        margin: { l: 55, r: 10, t: 30, b: 40 },
        xaxis: { title: { text: `x (${u})` }, constrain: "domain" },
        yaxis: { title: { text: `y (${u})` }, autorange: "reversed", scaleanchor: "x", constrain: "domain" },
        dragmode: this.dragmode(),
        newshape: { line: { color: "#ff2d55", width: 3 } },
        uirevision: this.settings.units,  // zoom survives redraws, not a change of units
      };
      if (this.keepRange) {
        layout.xaxis.range = this.keepRange.x; layout.yaxis.range = this.keepRange.y;
        layout.xaxis.autorange = false; layout.yaxis.autorange = false;
      }
      const [barShapes, barNotes] = this.scaleBar(layout);
      layout.shapes = [...this.shapes, ...this.markShape(), ...barShapes];
      layout.annotations = barNotes;
      return layout;
    }

    draw(fresh) {
      if (!this.overview) return;
      if (this.lastUnits && this.lastUnits !== this.units()) {  // units changed: back to the whole map
        this.shown = this.overview; this.keepRange = null; this.justSwitched = true;
      }
      this.lastUnits = this.units();
      const config = { responsive: true, displaylogo: false, scrollZoom: false,
        modeBarButtonsToAdd: ["drawline", "drawrect", "eraseshape"],
        toImageButtonOptions: { format: "png", filename: (this.opts.title || "map").replace(/\W+/g, "-") } };
      // Listen once per view: a view made on a div that held another (an element or scaler
      // switch) starts from a purged plot with no handlers.
      const first = !this.listening;
      this.listening = true;
      Plotly.react(this.div, [this.trace()], this.layout(), config).then(() => {
        this.justSwitched = false;
        if (first) this.listen();
        if (fresh) {
          // The page-speed measure (scripts/measure_pages.py) reads this mark: the first map drawn.
          if (!performance.getEntriesByName("xrf-first-map").length) performance.mark("xrf-first-map");
          this.div.dispatchEvent(new CustomEvent("map-drawn", { bubbles: true }));
        }
      });
    }

    listen() {
      this.div.on("plotly_relayout", (e) => this.relayout(e));
    }

    relayout(e) {
      if ("shapes" in e || Object.keys(e).some((k) => k.startsWith("shapes["))) {
        return this.shapesChanged();
      }
      const zoomed = "xaxis.range[0]" in e || "xaxis.range" in e;
      const reset = e["xaxis.autorange"] || e.autosize;
      if (!zoomed && !reset) return;
      if (!this.syncing && this.opts.sync) {
        for (const other of this.opts.sync) if (other !== this) other.follow(this);
      }
      if (zoomed) this.fetchWindow();
      else if (this.shown !== this.overview) { this.shown = this.overview; this.keepRange = null; this.draw(); }
      else this.draw();  // the scale bar follows the view
    }

    // Take another view's zoom (the views share their axes' units).
    follow(leader) {
      if (!this.overview) return;
      const x = leader.div._fullLayout.xaxis, y = leader.div._fullLayout.yaxis;
      this.syncing = true;
      const update = x.autorange && y.autorange
        ? { "xaxis.autorange": true, "yaxis.autorange": "reversed" }
        : { "xaxis.range": x.range.slice(), "yaxis.range": y.range.slice() };
      Plotly.relayout(this.div, update).finally(() => { this.syncing = false; });
    }

    // Zoomed in: ask for the window at full resolution (or as fine as REGION_PX allows).
    fetchWindow() {
      const x = this.div._fullLayout.xaxis.range, y = this.div._fullLayout.yaxis.range;
      this.keepRange = { x: x.slice(), y: y.slice() };
      if (!this.opts.region || this.overview.factor === 1) { this.draw(); return; }
      const box = { x0: this.toPx(x[0], "x"), x1: this.toPx(x[1], "x"), y0: this.toPx(y[0], "y"), y1: this.toPx(y[1], "y") };
      const seq = ++this.seq;
      clearTimeout(this.timer);
      this.timer = setTimeout(async () => {
        try {
          const region = await getJSON(this.opts.region(box));
          if (seq !== this.seq) return;  // a newer zoom won
          this.shown = region;
          this.draw();
        } catch (err) { console.warn("region:", err.message); }
      }, 120);
    }

    // A line (Plotly's drawline) or rectangle (drawrect) drawn: tell the page, in px of this
    // map's grid. One shape at a time: the older ones go, once Plotly is done.
    shapesChanged() {
      const fixed = (s) => s.name === "scale bar" || s.name === "mark";
      const shapes = (this.div.layout.shapes || []).filter((s) => ["line", "rect"].includes(s.type) && !fixed(s));
      const shape = shapes[shapes.length - 1];
      this.shapes = shape ? [shape] : [];
      if (shapes.length > 1 || (shape && shape.editable)) {
        // Fixed once drawn: an editable shape would catch the next drag instead of letting
        // the user draw another.
        const keep = (this.div.layout.shapes || []).filter(fixed)
          .concat(shape ? [{ ...shape, editable: false }] : []);
        setTimeout(() => Plotly.relayout(this.div, { shapes: keep }), 0);
      }
      const key = shape && [shape.type, shape.x0, shape.y0, shape.x1, shape.y1].join();
      const tell = shape && (shape.type === "rect" ? this.opts.onBox : this.opts.onLine);
      if (!tell || key === this.lineKey) return;  // that shape has its answer
      this.lineKey = key;
      tell({ x0: this.toPx(shape.x0, "x"), y0: this.toPx(shape.y0, "y"),
        x1: this.toPx(shape.x1, "x"), y1: this.toPx(shape.y1, "y") }, shape, this);
    }

    dragmode() { return { line: "drawline", box: "drawrect" }[this.tool] || "zoom"; }

    // zoom | line | box: what a drag on the map does.
    setTool(tool) {
      this.tool = tool;
      if (this.div.layout) Plotly.relayout(this.div, { dragmode: this.dragmode() });
    }
    get drawing() { return this.tool === "line"; }
    setDrawing(on) { this.setTool(on ? "line" : "zoom"); }

    showLine(shape) {  // a shape drawn elsewhere, shown here too (not editable)
      this.shapes = [{ type: shape.type || "line", x0: shape.x0, y0: shape.y0, x1: shape.x1, y1: shape.y1, xref: "x", yref: "y",
        line: { color: "#ff2d55", width: 3 }, editable: false }];
      this.draw();
    }
  }

  // Wires <select>/<input> controls with data-setting="log|colours|units" to a Settings.
  function bindControls(root, settings) {
    root.querySelectorAll("[data-setting]").forEach((el) => {
      if (el.dataset.setting === "colours" && !el.options.length) {
        COLOUR_MAPS.forEach((c) => el.add(new Option(c, c)));
      }
      const read = () => (el.type === "checkbox" ? el.checked : el.value);
      const value = () => (el.dataset.setting === "log" ? read() === true || read() === "log" : read());
      settings[el.dataset.setting] = value();
      el.addEventListener("change", () => { settings.set(el.dataset.setting, value()); showLimits(); });
    });
    // The percentile or manual inputs show only with their choice of limits.
    const showLimits = () => root.querySelectorAll("[data-limits]").forEach((el) => {
      el.hidden = el.dataset.limits !== settings.limits;
    });
    showLimits();
  }

  return { decode, getJSON, fmt, niceLength, percentiles, Settings, MapView, bindControls, COLOUR_MAPS };
})();
