// A finished job: fetch its review while plotly.js (4.8 MB) is being parsed, so the maps come
// sooner. The URLs come from this tag's data attributes (the CSP runs no inline script).
"use strict";
(() => {
  const d = document.currentScript.dataset;
  window.xrfPrefetch = { review: fetch(d.review), maps: fetch(d.maps) };
})();
