// The model page (training curves, benchmark, example) and the comparison of models and methods
// on one map.
"use strict";
(() => {
  const { getJSON, fmt, Settings, MapView, bindControls } = xrfMaps;
  const { $, esc, pt, PLOT, say, newTile } = xrfReview;
  const POLL_MS = 1000;

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
      // Steps are whole numbers (no tick at 0.5); legends sit above the plot, clear of the axis title.
      const last = Math.max(1, ...h.map((p) => p.step), ...st.map((p) => p.step));
      const steps = { title: { text: "step" }, ...xrf.stepTicks(last) };
      Plotly.react($("loss"), traces, { title: { text: "Training loss", y: 0.98, yanchor: "top" }, xaxis: steps,
        yaxis: { title: { text: "loss" }, type: "log" }, margin: { t: 70, r: 10 }, legend: xrf.LEGEND_ABOVE }, PLOT);
      const val = h.length ? h : c.steps.filter((p) => p.val_psnr != null);
      const ssims = val.map((p) => p.val_ssim).filter(Number.isFinite);
      Plotly.react($("quality"), [
        { x: val.map((p) => p.step), y: val.map((p) => p.val_psnr), name: "validation PSNR (dB)", mode: "lines+markers" },
        { x: val.map((p) => p.step), y: val.map((p) => p.val_ssim), name: "validation SSIM", mode: "lines+markers", yaxis: "y2" }],
      { title: { text: "Validation", y: 0.98, yanchor: "top" }, xaxis: steps, yaxis: { title: { text: "PSNR (dB)" } },
        // SSIM is at most 1: the axis never reads past it.
        yaxis2: { title: { text: "SSIM" }, overlaying: "y", side: "right", tickformat: ".2f", automargin: true,
          range: [Math.min(0, ...ssims), 1] },
        margin: { t: 70, r: 60 }, legend: xrf.LEGEND_ABOVE }, PLOT);
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
          y: rows.map((r) => (r.summary[m] || {})[metric]) })), { barmode: "group", margin: { t: 40, r: 10 },
          yaxis: { title: { text: $("bench-metric").selectedOptions[0].text } }, legend: xrf.LEGEND_ABOVE }, PLOT);
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
          title: titles[name] || `${name}: ${fmt(m.psnr)} dB, SSIM ${fmt(m.ssim)}` });
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

  xrfReview.start("modelPage", modelPage);
  xrfReview.start("comparePage", comparePage);
})();
