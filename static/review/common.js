// What every review page shares: the helpers below, and start(), which runs the page that
// #review-page names (as JSON, no inline script: a strict CSP). Each page's own code is in its
// own file, loaded after this one and maps.js by the templates that show it: dataset.js,
// job.js, models.js (a model and the comparison of models and methods).
"use strict";
const xrfReview = (() => {
  const $ = (id) => document.getElementById(id);
  // Every string from the server (names from uploads, model.json) goes in as text: esc() for
  // HTML, pt() for Plotly's titles, ticks, legend and hover (one helper each, in app.js).
  const { esc, plotText: pt, csvLine } = xrf;
  const query = (url, params) => `${url}${url.includes("?") ? "&" : "?"}${new URLSearchParams(params)}`;
  const PLOT = { responsive: true, displaylogo: false };
  const say = (id, text) => { const el = $(id); if (el) el.textContent = text; };

  function newTile(parent, cls = "map") {
    const div = document.createElement("div");
    div.className = cls;
    parent.appendChild(div);
    return div;
  }

  function start(name, run) {
    const data = document.getElementById("review-page");
    const page = data && JSON.parse(data.textContent);
    if (page && page.page === name) run(page.urls);
  }

  return { $, esc, pt, csvLine, query, PLOT, say, newTile, start };
})();
