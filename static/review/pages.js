// The review pages: dataset (grid of elements), job (live progress, before/after, difference,
// trust, line profile, totals, resolution, downloads), model (training, benchmark, example) and
// the comparison of models and methods.
"use strict";
const xrfReview = (() => {
  const { getJSON, fmt, Settings, MapView, bindControls } = xrfMaps;
  const POLL_MS = 1000;
  const $ = (id) => document.getElementById(id);
  // Every string from the server (names from uploads, model.json) goes in as text: esc() for
  // HTML, pt() for Plotly's titles, ticks, legend and hover (one helper each, in app.js).
  const { esc, plotText: pt } = xrf;
  const query = (url, params) => `${url}${url.includes("?") ? "&" : "?"}${new URLSearchParams(params)}`;
  const PLOT = { responsive: true, displaylogo: false };
  const say = (id, text) => { const el = $(id); if (el) el.textContent = text; };

  function newTile(parent, cls = "map") {
    const div = document.createElement("div");
    div.className = cls;
    parent.appendChild(div);
    return div;
  }

  // --- dataset: one tile per chosen element ---------------------------------------------------
  function datasetPage(urls) {
    const settings = new Settings();
    bindControls($("controls"), settings);
    const scaler = $("scaler");
    async function load() {
      const chosen = [...document.querySelectorAll("#elements input:checked")].map((i) => i.value);
      settings.views = [];
      $("grid").innerHTML = "";
      if (!chosen.length) { say("map-status", "Choose at least one element."); return; }
      say("map-status", "Loading the maps…");
      const params = { scaler: scaler ? scaler.value : "" };
      const url = query(urls.maps, [["scaler", params.scaler], ...chosen.map((e) => ["elements", e])]);
      try {
        const data = await getJSON(url);
        for (const el of chosen) {
          const view = new MapView(newTile($("grid")), { title: el, units: data.units, settings,
            region: (box) => query(urls.region, { element: el, scaler: params.scaler, ...box }) });
          view.setData(data.maps[el]);
        }
        const [, h, w] = data.shape;
        say("map-status", `${chosen.length} of ${data.elements.length} elements · ${h} × ${w} pixels` +
          (data.pixel_nm ? ` of ${fmt(data.pixel_nm)} nm` : " (pixel size not stated: axes in pixels)") +
          (params.scaler ? ` · normalised by ${params.scaler}` : ""));
      } catch (err) { say("map-status", `The maps could not be shown: ${err.message}`); }
    }
    document.querySelectorAll("#elements input").forEach((i) => i.addEventListener("change", load));
    if (scaler) scaler.addEventListener("change", load);
    load();
  }

  // --- job: live progress, then the review ----------------------------------------------------
  function jobPage(urls) {
    const settings = new Settings();
    let views = {}, element = null, summary = null;

    function poll() {
      const tick = async () => {
        let job;
        try { job = await getJSON(urls.status); } catch (e) { setTimeout(tick, POLL_MS); return; }
        $("status").textContent = job.status;
        $("status").className = `status ${job.status}`;
        $("progress").value = job.progress;
        say("percent", `${Math.round(100 * job.progress)} %` + (job.queue_position ? ` · ${job.queue_position} in the queue` : ""));
        say("message", job.error || job.message);
        if (["queued", "running"].includes(job.status)) { setTimeout(tick, POLL_MS); return; }
        if ($("cancel")) $("cancel").remove();
        if (job.status === "succeeded" && job.kind === "enhance" && !started) loadReview();
      };
      tick();
    }

    let started = false;
    async function loadReview() {
      started = true;
      $("review").hidden = false;
      say("map-status", "Preparing the review (the first view of a job reads its maps)…");
      const prefetch = window.xrfPrefetch || {};
      window.xrfPrefetch = null;  // a prefetched response is read once
      try { summary = await getJSON(prefetch.review || urls.review); } catch (err) { say("map-status", `No review: ${err.message}`); return; }
      bindControls($("review"), settings);
      const pick = $("element");
      summary.elements.forEach((el) => pick.add(new Option(el, el)));
      pick.addEventListener("change", () => loadElement(pick.value));
      $("draw-line").addEventListener("click", () => {
        const on = !views.after.drawing;
        Object.values(views).forEach((v) => v.setDrawing(on));
        $("draw-line").textContent = on ? "Zoom instead" : "Draw a line profile";
      });
      $("downloads").innerHTML = Object.entries(summary.downloads).map(([f, u]) =>
        `<a class="button" href="${esc(u.page)}" download>${esc(f.toUpperCase())}</a>`).join(" ") || "No result files.";
      trustSummary(summary.trust);
      await loadElement(summary.elements[0], prefetch.maps);  // the maps first: what people look at
      numbers(summary);
    }

    async function loadElement(el, prefetched) {
      element = el;
      say("map-status", `Loading ${el}…`);
      let maps;
      try { maps = await getJSON(prefetched || query(urls.maps, { element: el })); } catch (err) { say("map-status", err.message); return; }
      if (el !== element) return;
      const units = summary.units;
      const region = (layer) => (box) => query(urls.region, { element: el, layer, ...box });
      const sync = [];
      const make = (id, title, layer, extra = {}) => {
        const view = new MapView($(id), { title, units, settings, region: region(layer), sync, onLine: profile, ...extra });
        sync.push(view);
        return view;
      };
      settings.views = [];
      const s = summary.scale, nm = summary.fine_pixel_nm;
      views = {
        before: make("before", `${el} before (input, ${summary.input_pixel_nm ? fmt(summary.input_pixel_nm) + " nm" : "scan"} step)`, "before"),
        after: make("after", `${el} after (× ${s}${nm ? `, ${fmt(nm)} nm pixel` : ""})`, "after"),
        difference: make("difference", `${el} enhanced − input interpolated`, "difference", { diverging: true }),
      };
      // Before and after share one colour range, so a colour means the same value in both.
      const lo = Math.min(maps.before.range[0], maps.after.range[0]), hi = Math.max(maps.before.range[1], maps.after.range[1]);
      views.before.setData(maps.before, [lo, hi]);
      await new Promise(requestAnimationFrame);  // let the first map show while the rest draw
      views.after.setData(maps.after, [lo, hi]);
      views.difference.setData(maps.difference);
      if (maps.chi2) {
        $("trust").innerHTML = "";
        views.chi2 = make("trust", `${el} consistency χ² (input grid)`, "chi2", { units: "χ²" });
        views.chi2.setData(maps.chi2, [0, Math.max(6, maps.chi2.range[1])]);
      }
      if (maps.uncertainty) {
        $("uncertainty").innerHTML = "";
        $("uncertainty").classList.add("map");  // a map-sized box only when there is a map
        views.uncertainty = make("uncertainty", `${el} uncertainty (σ of the ensemble)`, "uncertainty");
        views.uncertainty.setData(maps.uncertainty);
      }
      say("map-status", "");
    }

    async function profile(box, line, source) {
      Object.values(views).forEach((v) => { if (v !== source) v.showLine(line); });
      try {
        const p = await getJSON(query(urls.profile, { element, ...box }));
        const um = p.after.distance.um != null;
        const axis = um ? "um" : "px";
        if ($("profile-placeholder")) $("profile-placeholder").remove();
        $("profile").hidden = false;  // shown before drawing: Plotly sizes it from its box
        const trace = (side, name, style) => ({ x: p[side].distance[axis], y: p[side].values, name: pt(name), mode: "lines+markers", line: style });
        Plotly.react($("profile"), [trace("before", `before (input grid)`, { color: "#6b7280" }),
          trace("after", `after (enhanced)`, { color: "#dc2626" })], {
          margin: { t: 30, r: 10 }, title: { text: pt(`${p.element} along the line`) },
          xaxis: { title: { text: `distance (${um ? "µm" : "fine pixels"})` } },
          yaxis: { title: { text: pt(p.units || "value") } }, legend: { orientation: "h" } }, PLOT);
      } catch (err) { say("map-status", `Profile: ${err.message}`); }
    }

    function numbers(s) {
      const rows = s.elements.map((el) => {
        const t = s.totals[el], r = s.resolution[el] || {}, c = ((s.trust.consistency || {}).elements || {})[el] || {};
        const change = t.before ? 100 * (t.after / t.before - 1) : null;  // numbers: fmt() or toFixed() give text
        return `<tr><td>${esc(el)}</td><td>${fmt(t.before)}</td><td>${fmt(t.after)}</td><td>${change == null ? "–" : change.toFixed(2) + " %"}</td>
          <td>${fmt(r.before_nm)}</td><td>${fmt(r.after_nm)}</td><td class="verdict ${esc(c.verdict)}">${esc(c.verdict || "–")}</td></tr>`;
      });
      $("numbers").innerHTML = `<tr><th>Element</th><th>Mean before (${esc(s.units || "map units")})</th><th>Mean after</th>
        <th>Change</th><th>Resolution before (nm)</th><th>after (nm)</th><th>Consistency</th></tr>${rows.join("")}`;
      const els = s.elements, ticks = els.map(pt);
      Plotly.react($("totals-bars"), [
        { type: "bar", name: "before", x: ticks, y: els.map((e) => s.totals[e].before), marker: { color: "#9ca3af" } },
        { type: "bar", name: "after", x: ticks, y: els.map((e) => s.totals[e].after), marker: { color: "#2563eb" } }],
      { barmode: "group", title: { text: "Per-element totals (mean per pixel)" }, margin: { t: 30, r: 10 }, legend: { orientation: "h" } }, PLOT);
      const withRes = els.filter((e) => s.resolution[e]);
      Plotly.react($("resolution-bars"), [
        { type: "bar", name: "before", x: withRes.map(pt), y: withRes.map((e) => s.resolution[e].before_nm), marker: { color: "#9ca3af" } },
        { type: "bar", name: "after", x: withRes.map(pt), y: withRes.map((e) => s.resolution[e].after_nm), marker: { color: "#2563eb" } }],
      { barmode: "group", title: { text: "Effective resolution, single-image FRC (nm, lower is finer)" },
        margin: { t: 30, r: 10 }, legend: { orientation: "h" } }, PLOT);
      say("resolution-method", withRes.length ? `Resolution: ${s.resolution_method}.` : "No pixel size: no resolution in nm.");
    }

    function trustSummary(t) {
      if (!t.available) {
        $("trust-placeholder").querySelector("p").textContent = `Not available for this job: ${t.reason}.`;
        $("trust-summary").innerHTML = `<p class="placeholder">Trust report not available: ${esc(t.reason)}.</p>`;
        return;
      }
      const c = t.consistency;
      const rois = (t.rois || []).slice(0, 10).map((r) => `<tr><td>${esc(r.rank)}</td><td>${fmt(r.x_um)}</td><td>${fmt(r.y_um)}</td>
        <td>${fmt(r.width_um)} × ${fmt(r.height_um)}</td><td>${fmt(r.score)}</td><td>${esc(r.cluster)}</td></tr>`).join("");
      const unc = t.uncertainty ? Object.entries(t.uncertainty).map(([el, u]) =>
        `${esc(el)}: mean σ ${fmt(u.mean_sigma)} (${fmt(100 * (u.relative_to_mean || 0))} % of the mean)`).join("; ")
        : "no uncertainty map (run with an ensemble > 1 to get one)";
      $("trust-summary").innerHTML = `<p>Consistency verdict: <b class="verdict ${esc(c.verdict)}">${esc(c.verdict)}</b>
        (χ² threshold ${fmt(c.threshold)}, window ${esc(c.window_px)} px, gain from the ${esc(c.gain_source)}).</p>
        <p>Uncertainty: ${unc}.</p>
        ${rois ? `<h3>Suggested fine scans</h3><table><tr><th>Rank</th><th>x (µm)</th><th>y (µm)</th><th>Size (µm)</th><th>Score</th><th>Kind</th></tr>${rois}</table>` : ""}`;
    }

    poll();
    if (window.xrfPrefetch) loadReview();  // rendered finished: no need to wait for the first poll
  }

  // --- model ----------------------------------------------------------------------------------
  function modelPage(urls) {
    let shown = "";
    async function curves() {
      let c;
      try { c = await getJSON(urls.curves); } catch (err) { say("training-status", err.message); setTimeout(curves, 10 * POLL_MS); return; }
      const key = JSON.stringify([c.history, c.steps]);
      if (key !== shown) { shown = key; drawCurves(c); benchmark(c.benchmark); }
      setTimeout(curves, (c.training ? 2 : 10) * POLL_MS);  // live while the bundle may change
    }

    function drawCurves(c) {
      const h = c.history, st = c.steps.filter((p) => p.loss != null);
      if (!h.length && !st.length) {
        say("training-status", "No training history in this bundle (shipped or uploaded without one).");
        return;
      }
      $("training-plots").hidden = false;
      const traces = [];
      if (st.length) traces.push({ x: st.map((p) => p.step), y: st.map((p) => p.loss), name: "loss (each report)", mode: "lines", line: { color: "#9ca3af" } });
      if (h.length) traces.push({ x: h.map((p) => p.step), y: h.map((p) => p.loss), name: "loss (epoch)", mode: "lines+markers", line: { color: "#2563eb" } });
      Plotly.react($("loss"), traces, { title: { text: "Training loss" }, xaxis: { title: { text: "step" } },
        yaxis: { title: { text: "loss" }, type: "log" }, margin: { t: 30, r: 10 }, legend: { orientation: "h" } }, PLOT);
      const val = h.length ? h : c.steps.filter((p) => p.val_psnr != null);
      Plotly.react($("quality"), [
        { x: val.map((p) => p.step), y: val.map((p) => p.val_psnr), name: "validation PSNR (dB)", mode: "lines+markers" },
        { x: val.map((p) => p.step), y: val.map((p) => p.val_ssim), name: "validation SSIM", mode: "lines+markers", yaxis: "y2" }],
      { title: { text: "Validation" }, xaxis: { title: { text: "step" } }, yaxis: { title: { text: "PSNR (dB)" } },
        yaxis2: { title: { text: "SSIM" }, overlaying: "y", side: "right", tickformat: ".3f" }, margin: { t: 30, r: 50 }, legend: { orientation: "h" } }, PLOT);
      say("training-status", (h.length ? `${h.length} epochs recorded` : "No per-epoch history in this bundle") +
        (c.training ? " · training now: the curves follow it" : ""));
    }

    function benchmark(bench) {
      const rows = bench.rows, p = bench.protocol;
      if (!rows.length) {
        $("benchmark").innerHTML = `<p class="placeholder">No benchmark in this model's bundle yet (the table comes from
          <code>python -m enhancer bench</code>: input, Wiener, Richardson-Lucy and the network on the protocol's cases).</p>`;
        return;
      }
      const lines = rows.flatMap((r) => Object.entries(r.summary).map(([m, s]) => `<tr><td>${esc(r.case)}</td><td>${esc(r.set)}</td>
        <td>${esc(m)}</td><td>${fmt(s.psnr)}</td><td>${fmt(s.ssim)}</td><td>${fmt(s.frc_nm)}</td><td>${fmt(100 * s.totals_error)} %</td></tr>`));
      const protocol = p.pixel_nm ? ` (fine pixel ${fmt(p.pixel_nm)} nm, probe ${fmt(p.probe_fwhm_nm)} nm, step × ${esc(p.scale)},
        ${fmt(p.counts)} counts at the peak)` : "";
      $("benchmark").innerHTML = `<p>Protocol case ${esc(bench.case)}${protocol}. Wiener and Richardson-Lucy are tuned on the
        truth (the best they can do). ${bench.command ? `Made with <code>${esc(bench.command)}</code>` : ""}
        ${bench.machine ? `on ${esc(bench.machine)}` : ""}.</p>
        <table><tr><th>Case</th><th>Set</th><th>Method</th><th>PSNR (dB)</th><th>SSIM</th>
        <th>FRC (nm)</th><th>Max totals error</th></tr>${lines.join("")}</table>`;
      $("bench-metric-label").hidden = false;
      $("bench-bars").hidden = false;
      const draw = () => {
        const metric = $("bench-metric").value, labels = rows.map((r) => pt(`${r.case} ${r.set}`));
        const methods = [...new Set(rows.flatMap((r) => Object.keys(r.summary)))];
        Plotly.react($("bench-bars"), methods.map((m) => ({ type: "bar", name: pt(m), x: labels,
          y: rows.map((r) => (r.summary[m] || {})[metric]) })), { barmode: "group", margin: { t: 20, r: 10 },
          yaxis: { title: { text: $("bench-metric").selectedOptions[0].text } }, legend: { orientation: "h" } }, PLOT);
      };
      $("bench-metric").onchange = draw;
      draw();
    }

    async function example() {
      let ex;
      try { ex = await getJSON(urls.example); } catch (err) { say("example-status", `No example: ${err.message}`); return; }
      const settings = new Settings();
      bindControls(document.querySelector("#example-maps").previousElementSibling, settings);
      const sync = [];
      const titles = { truth: "truth", measured: "measured (the model's input)" };
      const all = [ex.maps.truth.range, ...Object.keys(ex.methods).map((m) => ex.maps[m].range)];
      const range = [Math.min(...all.map((r) => r[0])), Math.max(...all.map((r) => r[1]))];
      for (const [name, payload] of Object.entries(ex.maps)) {
        const m = ex.methods[name];
        const view = new MapView(newTile($("example-maps")), { settings, sync, units: "",
          title: titles[name] || `${name}: ${fmt(m.psnr)} dB, SSIM ${fmt(m.ssim)}` });  // MapView escapes it
        sync.push(view);
        view.setData(payload, name === "measured" ? payload.range : range);
      }
      Plotly.react($("frc"), [...Object.entries(ex.methods).map(([name, m]) => ({
        x: m.frc.per_um, y: m.frc.frc, name: pt(`${name} (${fmt(m.frc.resolution_nm)} nm)`), mode: "lines" })),
      { x: [0, Math.max(...ex.methods.network.frc.per_um)], y: [ex.methods.network.frc.threshold, ex.methods.network.frc.threshold],
        name: "1/7 threshold", mode: "lines", line: { dash: "dot", color: "#6b7280" } }], {
        title: { text: "FRC against the truth (resolution where each curve crosses 1/7)" },
        xaxis: { title: { text: "spatial frequency (1/µm)" } }, yaxis: { title: { text: "FRC" }, range: [-0.1, 1.05] },
        margin: { t: 30, r: 10, b: 90 }, legend: { orientation: "h", y: -0.3 } }, PLOT);
      say("example-status", ex.phantom);
    }

    curves();
    example();
  }

  // --- comparison -----------------------------------------------------------------------------
  async function comparePage(urls) {
    let c;
    try { c = await getJSON(urls.data); } catch (err) { say("compare-status", `Not compared: ${err.message}`); return; }
    const settings = new Settings();
    bindControls(document.querySelector("#compare-maps").previousElementSibling, settings);
    const sync = [], names = Object.keys(c.metrics);
    const ranges = Object.values(c.maps).map((m) => m.range);
    const range = [Math.min(...ranges.map((r) => r[0])), Math.max(...ranges.map((r) => r[1]))];
    for (const [name, payload] of Object.entries(c.maps)) {
      const m = c.metrics[name] || {};
      const title = name === "truth" ? "truth" : c.truth ? `${name}: ${fmt(m.psnr)} dB` : `${name}: ${fmt(m.single_image_frc_nm)} nm`;
      const view = new MapView(newTile($("compare-maps")), { settings, sync, title, units: "" });
      sync.push(view);
      view.setData(payload, range);
    }
    const cols = c.truth ? [["psnr", "PSNR (dB)"], ["ssim", "SSIM"], ["frc_nm", "FRC vs truth (nm)"], ["single_image_frc_nm", "single-image FRC (nm)"]]
      : [["single_image_frc_nm", "single-image FRC (nm)"], ["total_change", "total change"]];
    $("compare-table").innerHTML = `<tr><th>Method</th>${cols.map(([, t]) => `<th>${t}</th>`).join("")}</tr>` +
      names.map((n) => `<tr><td>${esc(n)}</td>${cols.map(([k]) => `<td>${fmt(c.metrics[n][k])}</td>`).join("")}</tr>`).join("") +
      Object.entries(c.skipped).map(([n, why]) => `<tr class="muted"><td>${esc(n)}</td><td colspan="${cols.length}">not run: ${esc(why)}</td></tr>`).join("");
    const [key, label] = cols[0];
    Plotly.react($("compare-bars"), [{ type: "bar", x: names.map(pt), y: names.map((n) => c.metrics[n][key]), marker: { color: "#2563eb" } }],
      { yaxis: { title: { text: label } }, margin: { t: 20, r: 10 } }, PLOT);
    say("compare-status", c.source);
  }

  return { datasetPage, jobPage, modelPage, comparePage };
})();
