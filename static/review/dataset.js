// The dataset page: a grid of elements that zoom together, an RGB overlay of three.
"use strict";
(() => {
  const { getJSON, fmt, Settings, MapView, bindControls } = xrfMaps;
  const { $, pt, query, PLOT, say, newTile } = xrfReview;

  function datasetPage(urls) {
    const settings = new Settings();
    bindControls($("controls"), settings);
    const scaler = $("scaler");
    let data = null;
    async function load() {
      const chosen = [...document.querySelectorAll("#elements input:checked")].map((i) => i.value);
      settings.views = [];
      $("grid").innerHTML = "";
      if (!chosen.length) { say("map-status", "Choose at least one element."); return; }
      say("map-status", "Loading the maps…");
      const params = { scaler: scaler ? scaler.value : "" };
      const url = query(urls.maps, [["scaler", params.scaler], ...chosen.map((e) => ["elements", e])]);
      try {
        data = await getJSON(url);
        const sync = [];  // every tile zooms with the others
        for (const el of chosen) {
          const view = new MapView(newTile($("grid")), { title: el, units: data.units, settings, sync,
            region: (box) => query(urls.region, { element: el, scaler: params.scaler, ...box }) });
          sync.push(view);
          view.setData(data.maps[el]);
        }
        const [, h, w] = data.shape;
        say("map-status", `${chosen.length} of ${data.elements.length} elements · ${h} × ${w} pixels` +
          (data.pixel_nm ? ` of ${fmt(data.pixel_nm)} nm` : " (pixel size not stated: axes in pixels)") +
          (params.scaler ? ` · normalised by ${params.scaler}` : ""));
      } catch (err) { say("map-status", `The maps could not be shown: ${err.message}`); }
    }

    // Three elements as red, green and blue, each stretched between its colour limits.
    async function rgb() {
      const chosen = [...document.querySelectorAll("[data-rgb]")].map((s) => s.value);
      const sc = scaler ? scaler.value : "";
      let got;
      try {
        got = await getJSON(query(urls.maps, [["scaler", sc], ...[...new Set(chosen)].map((e) => ["elements", e])]));
      } catch (err) { say("rgb-status", `No overlay: ${err.message}`); return; }
      const channels = chosen.map((el) => {
        const spec = got.maps[el], rows = xrfMaps.decode(spec.z);
        const [lo, hi] = settings.limits === "percentile" ? xrfMaps.percentiles(spec, Number(settings.pLow), Number(settings.pHigh))
          : settings.limits === "manual" && Number.isFinite(parseFloat(settings.vmin)) ? [parseFloat(settings.vmin), parseFloat(settings.vmax)]
            : xrfMaps.percentiles(spec, 1, 99);
        return rows.map((row) => Array.from(row, (v) => (Number.isFinite(v) ? Math.round(255 * Math.min(1, Math.max(0, (v - lo) / ((hi - lo) || 1)))) : 0)));
      });
      const spec = got.maps[chosen[0]], um = settings.units === "um" && spec.x_um;
      const x = xrfMaps.decode(spec[um ? "x_um" : "x_px"]), y = xrfMaps.decode(spec[um ? "y_um" : "y_px"]);
      const z = channels[0].map((row, r) => row.map((v, c) => [v, channels[1][r][c], channels[2][r][c]]));
      $("rgb").hidden = false;
      const unit = um ? "µm" : "pixels";
      await Plotly.react($("rgb"), [{ type: "image", z, x0: x[0], dx: x.length > 1 ? x[1] - x[0] : 1,
        y0: y[0], dy: y.length > 1 ? y[1] - y[0] : 1, hovertemplate: "x %{x:.4g}<br>y %{y:.4g}<br>RGB %{z}<extra></extra>" }], {
        title: { text: pt(`red ${chosen[0]} · green ${chosen[1]} · blue ${chosen[2]}`), font: { size: 14 }, x: 0.01, xanchor: "left" },
        xaxis: { title: { text: `x (${unit})` }, constrain: "domain" }, yaxis: { title: { text: `y (${unit})` }, scaleanchor: "x", constrain: "domain" },
        margin: { l: 55, r: 10, t: 30, b: 40 } }, PLOT);
      say("rgb-status", `Each colour stretched between ${settings.limits === "auto" ? "its 1st and 99th percentiles" : "the colour limits above"}${sc ? `, normalised by ${sc}` : ""}.`);
    }
    document.querySelectorAll("#elements input").forEach((i) => i.addEventListener("change", load));
    if (scaler) scaler.addEventListener("change", load);
    if ($("rgb-show")) $("rgb-show").addEventListener("click", rgb);
    load();
  }

  xrfReview.start("datasetPage", datasetPage);
})();
