// Runs in <head>, before plotly.js (4.8 MB) is parsed: a finished job's review and first map are
// fetched meanwhile, so the maps come sooner. The page's data travels as JSON (no inline script).
"use strict";
(() => {
  const data = document.getElementById("review-page");
  const page = data ? JSON.parse(data.textContent) : null;
  if (page && page.prefetch) {
    window.xrfPrefetch = { review: fetch(page.prefetch.review), maps: fetch(page.prefetch.maps) };
  }
})();
