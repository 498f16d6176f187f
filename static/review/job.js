// The job page: live progress, then the review (before/after, difference, trust, line profile,
// totals, resolution, downloads).
"use strict";
(() => {
  const { getJSON, fmt, Settings, MapView, bindControls } = xrfMaps;
  const { $, esc, pt, csvLine, query, PLOT, say } = xrfReview;

  function jobPage(urls) {
    const settings = new Settings();
    let views = {}, element = null, summary = null, maps = null, profileData = null, roiData = null;
    const scaler = () => ($("scaler") ? $("scaler").value : "");
    const started = { review: false };

    function poll() {
      xrf.poll(urls.status, (job) => {
        $("status").textContent = job.status;
        $("status").className = `status ${job.status}`;
        $("progress").value = job.progress;
        say("percent", `${Math.round(100 * job.progress)} %` + (job.queue_position ? ` · ${job.queue_position} in the queue` : ""));
        say("message", job.error || job.message);
        if (["queued", "running"].includes(job.status)) return true;
        if ($("cancel")) $("cancel").remove();
        if (job.status === "succeeded" && job.kind === "enhance" && !started.review) loadReview();
        return false;
      }, $("poll-error"), xrf.jobKey);
    }

    // A validation on the worker: the page reloads once it has finished (its numbers are
    // rendered by the server, escaped by the template).
    function watchValidation() {
      if (!$("validation") || !$("validation").dataset.running) return;
      xrf.poll(urls.status, (job) => {
        if (job.validation_status === "running") return true;
        location.reload();
        return false;
      }, $("poll-error"));
    }
    watchValidation();

    async function loadReview() {
      started.review = true;
      $("review").hidden = false;
      say("map-status", "Preparing the review (the first view of a job reads its maps)…");
      const prefetch = window.xrfPrefetch || {};
      window.xrfPrefetch = null;  // a prefetched response is read once
      try { summary = await getJSON(prefetch.review || urls.review); } catch (err) { say("map-status", `No review: ${err.message}`); return; }
      bindControls($("review"), settings);
      settings.set = (key, value) => { settings[key] = value; redraw(); };
      const pick = $("element");
      summary.elements.forEach((el) => pick.add(new Option(el, el)));
      pick.addEventListener("change", () => loadElement(pick.value));
      if ($("scaler")) $("scaler").addEventListener("change", () => loadElement(element));
      document.querySelectorAll("input[name=tool]").forEach((r) => r.addEventListener("change", () => {
        Object.values(views).forEach((v) => v.setTool(r.value));
      }));
      $("blink").addEventListener("change", blink);
      $("profile-csv").addEventListener("click", () => download(`${element}-profile.csv`, profileCsv()));
      $("roi-csv").addEventListener("click", () => download("roi-totals.csv", roiCsv()));
      $("downloads").innerHTML = Object.entries(summary.downloads).map(([f, u]) =>
        `<a class="button" href="${esc(u.page)}" download>${esc(f.toUpperCase())}</a>`).join(" ") || "No result files.";
      trustSummary(summary.trust);
      await loadElement(summary.elements[0], prefetch.maps);  // the maps first: what people look at
      numbers(summary);
    }

    function redraw() {
      Object.values(views).forEach((v) => v.draw());
      histogram();
    }

    async function loadElement(el, prefetched) {
      element = el;
      say("map-status", `Loading ${el}…`);
      try {
        maps = await getJSON(prefetched && !scaler() ? prefetched : query(urls.maps, { element: el, scaler: scaler() }));
      } catch (err) { say("map-status", err.message); return; }
      if (el !== element) return;
      const units = maps.units ?? summary.units;
      const region = (layer) => (box) => query(urls.region, { element: el, layer, scaler: scaler(), ...box });
      const sync = [], group = [];
      const tool = document.querySelector("input[name=tool]:checked").value;
      // A validated job: the fine scan's overlap, on the fine grid (after, difference) and the input's.
      const v = summary.validation && summary.validation.box_px;
      const mark = (k) => v && { x0: v[1] / k - 0.5, x1: (v[1] + v[3]) / k - 0.5, y0: v[0] / k - 0.5, y1: (v[0] + v[2]) / k - 0.5, label: "fine scan" };
      const onFine = { before: false, chi2: false, after: true, difference: true };
      const make = (id, title, layer, extra = {}) => {
        const view = new MapView($(id), { title, units, settings, region: region(layer), sync, onLine: profile, onBox: roi,
          mark: layer in onFine ? mark(onFine[layer] ? 1 : summary.scale) : null, ...extra });
        view.tool = tool;
        sync.push(view);
        return view;
      };
      settings.views = [];
      const s = summary.scale, nm = summary.fine_pixel_nm;
      views = {
        before: make("before", `${el} before (input, ${summary.input_pixel_nm ? fmt(summary.input_pixel_nm) + " nm" : "scan"} step)`, "before", { group }),
        after: make("after", `${el} after (× ${s}${nm ? `, ${fmt(nm)} nm pixel` : ""})`, "after", { group }),
        difference: make("difference", `${el} enhanced − input interpolated`, "difference", { diverging: true }),
      };
      group.push(views.before, views.after);
      views.before.setData(maps.before);
      await new Promise(requestAnimationFrame);  // let the first map show while the rest draw
      views.after.setData(maps.after);
      views.difference.setData(maps.difference);
      if (maps.chi2) {
        $("trust").innerHTML = "";
        views.chi2 = make("trust", `${el} consistency χ² (input grid)`, "chi2", { units: "χ²", fixed: true });
        views.chi2.setData(maps.chi2, [0, Math.max(6, maps.chi2.range[1])]);
      }
      if (maps.uncertainty) {
        $("uncertainty").innerHTML = "";
        $("uncertainty").classList.add("map");  // a map-sized box only when there is a map
        views.uncertainty = make("uncertainty", `${el} uncertainty (σ of the ensemble)`, "uncertainty");
        views.uncertainty.setData(maps.uncertainty);
      }
      histogram();
      blink();
      say("map-status", scaler() ? `Normalised by ${scaler()} (${units}).` : "");
    }

    // Before and after in turn on the enhanced map's place, twice a second, at the same zoom.
    let blinkTimer = null;
    function blink() {
      clearInterval(blinkTimer);
      if (!views.after) return;
      views.after.showAlternate(null);
      if (!$("blink").checked) return;
      let before = false;
      blinkTimer = setInterval(() => {
        before = !before;
        views.after.showAlternate(before ? maps.before : null, `${element} before (blink)`);
      }, 600);
    }

    function histogram() {
      if (!maps || !views.after) return;
      const values = (payload) => {
        const out = [];
        for (const row of xrfMaps.decode(payload.z)) for (const v of row) if (Number.isFinite(v)) out.push(v);
        return out;
      };
      const [lo, hi] = views.after.colourRange();
      const limit = (x) => ({ type: "line", x0: x, x1: x, yref: "paper", y0: 0, y1: 1, line: { dash: "dot", color: "#111827" } });
      Plotly.react($("histogram"), [
        { type: "histogram", name: "before", x: values(maps.before), histnorm: "percent", opacity: 0.6, marker: { color: "#6b7280" } },
        { type: "histogram", name: "after", x: values(maps.after), histnorm: "percent", opacity: 0.6, marker: { color: "#2563eb" } }],
      { barmode: "overlay", title: { text: pt(`${element}: histogram of the values`) }, shapes: [limit(lo), limit(hi)],
        xaxis: { title: { text: pt(maps.units || summary.units || "value") }, type: settings.log ? "log" : "linear" },
        yaxis: { title: { text: "% of pixels" } }, margin: { t: 60, r: 10 }, legend: xrf.LEGEND_ABOVE }, PLOT);
    }

    async function profile(box, line, source) {
      Object.values(views).forEach((v) => { if (v !== source) v.showLine(line); });
      try {
        const p = await getJSON(query(urls.profile, { element, scaler: scaler(), ...box }));
        profileData = p;
        const um = p.after.distance.um != null;
        const axis = um ? "um" : "px";
        if ($("profile-placeholder")) $("profile-placeholder").remove();
        $("profile").hidden = false;  // shown before drawing: Plotly sizes it from its box
        $("profile-csv").hidden = false;
        const trace = (side, name, style) => ({ x: p[side].distance[axis], y: p[side].values, name: pt(name), mode: "lines+markers", line: style });
        Plotly.react($("profile"), [trace("before", `before (input grid)`, { color: "#6b7280" }),
          trace("after", `after (enhanced)`, { color: "#dc2626" })], {
          margin: { t: 60, r: 10 }, title: { text: pt(`${p.element} along the line`) },
          xaxis: { title: { text: `distance (${um ? "µm" : "fine pixels"})` } },
          yaxis: { title: { text: pt(p.units || "value") } }, legend: xrf.LEGEND_ABOVE }, PLOT);
      } catch (err) { say("map-status", `Profile: ${err.message}`); }
    }

    function profileCsv() {
      const p = profileData, lines = [csvLine(["map", "distance_px", "distance_um", `${p.element} (${p.units || "value"})`])];
      for (const side of ["before", "after"]) {
        const d = p[side].distance;
        p[side].values.forEach((v, k) => lines.push(csvLine([side, d.px[k], d.um ? d.um[k] : "", v])));
      }
      return lines.join("\n") + "\n";
    }

    async function roi(box, shape, source) {
      Object.values(views).forEach((v) => { if (v !== source) v.showLine(shape); });
      try {
        roiData = await getJSON(query(urls.roi, { scaler: scaler(), ...box }));
      } catch (err) { say("map-status", `Rectangle: ${err.message}`); return; }
      const r = roiData;
      if ($("roi-placeholder")) $("roi-placeholder").remove();
      $("roi").hidden = false;
      $("roi-csv").hidden = false;
      $("roi").innerHTML = `<caption>Input pixels: rows ${r.input_px.rows.join("–")}, columns ${r.input_px.cols.join("–")}
        ${r.area_um2 ? ` · ${fmt(r.area_um2)} µm²` : ""}${r.scaler ? ` · normalised by ${esc(r.scaler)}` : ""}</caption>
        <tr><th>Element</th><th>Total before (${esc(r.units || "map units")} × input pixels)</th><th>Total after</th>
        <th>Change</th><th>Mean before</th><th>Mean after</th></tr>` + r.elements.map((e) =>
        `<tr><td>${esc(e.element)}</td><td>${fmt(e.before_sum)}</td><td>${fmt(e.after_sum)}</td>
        <td>${e.before_sum ? (100 * (e.after_sum / e.before_sum - 1)).toFixed(2) + " %" : "–"}</td>
        <td>${fmt(e.before_mean)}</td><td>${fmt(e.after_mean)}</td></tr>`).join("");
    }

    function roiCsv() {
      const r = roiData, units = String(r.units || "map units").replace(/[\r\n]+/g, " ");
      const head = `# rows ${r.input_px.rows.join("-")}, columns ${r.input_px.cols.join("-")} of the input grid; units ${units}`;
      return [head, csvLine(["element", "total_before", "total_after", "mean_before", "mean_after"]),
        ...r.elements.map((e) => csvLine([e.element, e.before_sum, e.after_sum, e.before_mean, e.after_mean]))].join("\n") + "\n";
    }

    function download(name, text) {
      const a = document.createElement("a");
      a.href = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
      a.download = name;
      document.body.appendChild(a);
      a.click();
      setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
    }

    // Totals first. Single-image FRC goes in the table with its caveat, never as a headline:
    // it flatters enhanced maps (it cannot see invented detail). A fine scan's check, when the
    // job has one, is the number to trust.
    function numbers(s) {
      const validated = s.validation && s.validation.resolution_nm != null;
      const step = s.data_step;
      const rows = s.elements.map((el) => {
        const t = s.totals[el], r = s.resolution[el] || {}, c = ((s.trust.consistency || {}).elements || {})[el] || {};
        const change = t.before ? 100 * (t.after / t.before - 1) : null;
        const d = step ? step.elements[el] : null;
        return `<tr><td>${esc(el)}</td><td>${fmt(t.before)}</td><td>${fmt(t.after)}</td><td>${change == null ? "–" : change.toFixed(2) + " %"}</td>
          <td class="verdict ${esc(c.verdict)}">${esc(c.verdict || "–")}</td>
          ${step ? `<td class="data-step">${d ? `${esc(d.iterations)} iteration${d.iterations === 1 ? "" : "s"}, χ² ${fmt(d.chi2_before)} → ${fmt(d.chi2_after)}` : "–"}</td>` : ""}
          <td class="muted">${fmt(r.before_nm)} / ${fmt(r.after_nm)}</td></tr>`;
      });
      // The universal model fits its output to the data after the network (enhancer/refine.py).
      const stepHead = step ? `<th title="${esc(step.method)}">Data step (fit to the scan)</th>` : "";
      $("numbers").innerHTML = `<tr><th>Element</th><th>Mean before (${esc(s.units || "map units")})</th><th>Mean after</th>
        <th>Change</th><th>Consistency</th>${stepHead}<th class="muted" title="${esc(s.resolution_method)}">Single-image FRC, input / enhanced (nm)*</th></tr>${rows.join("")}`;
      const els = s.elements, ticks = els.map(pt);
      Plotly.react($("totals-bars"), [
        { type: "bar", name: "before", x: ticks, y: els.map((e) => s.totals[e].before), marker: { color: "#9ca3af" } },
        { type: "bar", name: "after", x: ticks, y: els.map((e) => s.totals[e].after), marker: { color: "#2563eb" } }],
      { barmode: "group", title: { text: "Per-element totals (mean per pixel)" }, margin: { t: 60, r: 10 }, legend: xrf.LEGEND_ABOVE }, PLOT);
      say("resolution-method", (validated ? `A fine scan of this sample puts the enhanced map's resolution at ${fmt(s.validation.resolution_nm)} nm. ` : "") +
        (Object.keys(s.resolution).length ? `* Single-image FRC is not a measure of the enhancement: ${s.resolution_method}.`
          : "No pixel size: no resolution in nm."));
    }

    // Fine-scan suggestions: boxes that cover most of the map suggest nothing, so they are left
    // out (and the page says how many).
    function trustSummary(t) {
      if (!t.available) {
        $("trust-placeholder").querySelector("p").textContent = `Not available for this job: ${t.reason}.`;
        $("trust-summary").innerHTML = `<p class="placeholder">Trust report not available: ${esc(t.reason)}.</p>`;
        return;
      }
      const c = t.consistency;
      const extent = (axis, n) => {
        const a = summary.fine[`${axis}_um`];
        if (a && a.length > 1) return Math.abs(a[a.length - 1] - a[0]) * a.length / (a.length - 1);
        return summary.fine_pixel_nm ? n * summary.fine_pixel_nm / 1000 : n;
      };
      const mapArea = extent("x", summary.fine.shape[1]) * extent("y", summary.fine.shape[0]);
      const all = t.rois || [], kept = all.filter((r) => r.width_um * r.height_um <= MOST_OF_THE_MAP * mapArea);
      const dropped = all.length - kept.length;
      const rois = kept.slice(0, 10).map((r, k) => `<tr><td>${k + 1}</td><td>${fmt(r.x_um)}, ${fmt(r.y_um)}</td>
        <td>${fmt(r.width_um)} × ${fmt(r.height_um)}</td><td>${fmt(r.score)}</td><td>group ${esc(r.cluster + 1)}</td></tr>`).join("");
      const unc = t.uncertainty ? Object.entries(t.uncertainty).map(([el, u]) =>
        `${esc(el)}: mean σ ${fmt(u.mean_sigma)} (${fmt(100 * (u.relative_to_mean || 0))} % of the mean)`).join("; ")
        : "no uncertainty map (run with an ensemble > 1 to get one)";
      const note = dropped ? `<p class="muted" id="rois-dropped">${dropped} suggestion${dropped > 1 ? "s" : ""} covering more than
        ${100 * MOST_OF_THE_MAP} % of the map left out: a fine scan of most of the map is not a target.</p>` : "";
      $("trust-summary").innerHTML = `<p>Consistency verdict: <b class="verdict ${esc(c.verdict)}">${esc(c.verdict)}</b>
        (χ² threshold ${fmt(c.threshold)}, window ${esc(c.window_px)} px, gain from the ${esc(c.gain_source)}).</p>
        <p>Uncertainty: ${unc}.</p>
        <h3>Suggested fine scans</h3>${rois ? `<table id="rois"><tr><th>Rank</th><th>Centre x, y (µm)</th><th>Width × height (µm)</th>
        <th title="${esc(SCORE_HELP)}">Score (0–1) ⓘ</th><th title="Regions grouped by their element content: each group is one kind of feature.">Kind of feature</th></tr>${rois}</table>`
        : `<p class="muted">None.</p>`}${note}`;
    }

    poll();
    if (window.xrfPrefetch) loadReview();  // rendered finished: no need to wait for the first poll
  }
  const MOST_OF_THE_MAP = 0.5;
  const SCORE_HELP = "Half brightness (the region's mean signal over the brightest region's), half rarity " +
    "(1 − the share of regions of its kind): strong signals and rare kinds first.";

  xrfReview.start("jobPage", jobPage);
})();
