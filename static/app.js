// xrfweb's pages: uploads with a progress bar, and live status by polling JSON once a second.
"use strict";
const xrf = (() => {
  const POLL_MS = 1000;
  const csrf = () => document.querySelector("[name=csrfmiddlewaretoken]")?.value || "";
  // Text into HTML (innerHTML templates): every value from the server goes through it.
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  // Text into Plotly (titles, ticks, legend and hover): Plotly reads a little HTML there (links,
  // styles), so names from uploads and model bundles go in escaped. The one helper for plots.
  const plotText = (s) => String(s ?? "").replace(/[&<>]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" })[c]);

  // Streams the file with XHR so the browser reports upload progress.
  function uploadForm(id) {
    const form = document.getElementById(id);
    if (!form) return;
    const bar = form.querySelector("progress"), status = form.querySelector("[role=status]");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const file = form.querySelector("input[type=file]").files[0];
      if (!file) return;
      if (file.size > Number(form.dataset.maxBytes)) {
        status.textContent = `Refused: ${file.name} is larger than the upload limit.`;
        return;
      }
      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.getAttribute("action"));
      xhr.setRequestHeader("X-CSRFToken", csrf());
      xhr.upload.onprogress = (e) => {
        if (!e.lengthComputable) return;
        bar.hidden = false;
        bar.value = e.loaded / e.total;
        status.textContent = `${Math.round(100 * e.loaded / e.total)} % of ${(e.total / 1e6).toFixed(1)} MB`;
      };
      xhr.onload = () => {
        let body = {};
        try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
        if (xhr.status === 201) {
          status.textContent = `Uploaded ${body.name}; reading it…`;
          location.reload();
        } else {
          status.textContent = `Refused: ${body.error || xhr.statusText}`;
        }
      };
      xhr.onerror = () => { status.textContent = "The upload was interrupted (network or size limit)."; };
      xhr.send(new FormData(form));
    });
  }

  function poll(url, onData) {
    const tick = async () => {
      try {
        const response = await fetch(url, { headers: { Accept: "application/json" } });
        if (response.ok && onData(await response.json()) === false) return;
      } catch (e) { /* offline for a moment: try again */ }
      setTimeout(tick, POLL_MS);
    };
    tick();
  }

  // Reload the project page when a dataset changes state (parsed or rejected).
  function pollDatasets(id) {
    const table = document.getElementById(id);
    if (!table) return;
    const shown = {};
    table.querySelectorAll("tr[data-id]").forEach((tr) => {
      shown[tr.dataset.id] = tr.querySelector(".status").classList[1];
    });
    poll(table.dataset.url, (data) => {
      const changed = data.datasets.some((d) => shown[d.id] !== d.status);
      if (changed) { location.reload(); return false; }
      return data.datasets.some((d) => d.status === "uploaded" || d.status === "parsing");
    });
  }

  function downloads(job, urlFor) {
    return (job.results || []).map((f) => `<a href="${esc(urlFor(job.id, f))}">${esc(f.toUpperCase())}</a>`).join(" ");
  }

  function liveJobs(id) {
    const table = document.getElementById(id);
    const resultUrl = (jobId, fmt) => `/jobs/${jobId}/result.${fmt}`;
    poll(table.dataset.url, (data) => {
      table.querySelector("tbody").innerHTML = data.jobs.map((j) => `
        <tr data-id="${esc(j.id)}">
          <td><a href="/jobs/${esc(j.id)}/">#${esc(j.id)}</a></td><td>${esc(j.kind)}</td>
          <td class="status ${esc(j.status)}">${esc(j.status)}</td>
          <td><progress max="1" value="${esc(j.progress)}"></progress> ${Math.round(100 * j.progress)} %</td>
          <td>${esc(j.queue_position)}</td><td>${esc(j.worker)}</td>
          <td>${j.started ? new Date(j.started).toLocaleString() : ""}</td>
          <td>${j.duration_s != null ? Math.round(j.duration_s) + " s" : ""}</td>
          <td>${esc(j.error || j.message)}</td><td>${downloads(j, resultUrl)}</td>
          <td>${["queued", "running"].includes(j.status) && !j.cancel_requested
            ? `<button data-cancel="${esc(j.id)}">Cancel</button>` : ""}</td>
        </tr>`).join("") || `<tr><td colspan="11">No jobs yet.</td></tr>`;
    });
    table.addEventListener("click", async (event) => {
      const id = event.target.dataset.cancel;
      if (!id) return;
      event.target.disabled = true;
      await fetch(`/jobs/${id}/cancel/`, { method: "POST", headers: { "X-CSRFToken": csrf(), Accept: "application/json" } });
    });
  }

  function showJob(job) {
    document.getElementById("status").textContent = job.status;
    document.getElementById("progress").value = job.progress;
    document.getElementById("message").textContent = job.error || job.message;
  }

  function liveJob(statusUrl, resultUrl) {
    poll(statusUrl, (job) => {
      showJob(job);
      document.getElementById("downloads").innerHTML = downloads(job, (id, f) => resultUrl.replace("FMT", f));
      return ["queued", "running"].includes(job.status);
    });
  }

  // Curves: {label: [{step, loss, val_psnr}, ...]} -> loss and validation PSNR against step.
  function plotCurves(id, curves) {
    const traces = [];
    for (const [label, points] of Object.entries(curves)) {
      const steps = points.map((p) => p.step);
      traces.push({ x: steps, y: points.map((p) => p.loss), name: plotText(`${label} loss`), mode: "lines" });
      const val = points.filter((p) => p.val_psnr != null);
      traces.push({ x: val.map((p) => p.step), y: val.map((p) => p.val_psnr), name: plotText(`${label} validation PSNR (dB)`),
                    mode: "lines+markers", yaxis: "y2" });
    }
    Plotly.react(id, traces, {
      xaxis: { title: { text: "step" } }, yaxis: { title: { text: "loss" }, type: "log" },
      yaxis2: { title: { text: "PSNR (dB)" }, overlaying: "y", side: "right" },
      margin: { t: 20 }, legend: { orientation: "h" },
    }, { responsive: true });
  }

  function liveTraining(statusUrl, plotId) {
    poll(statusUrl, (job) => {
      showJob(job);
      plotCurves(plotId, { [job.params.name || `job ${job.id}`]: job.curves || [] });
      return ["queued", "running"].includes(job.status);
    });
  }

  return { esc, plotText, uploadForm, pollDatasets, liveJobs, liveJob, liveTraining, plotCurves };
})();

// Each page starts here, from data attributes on <body> (data-page and its URLs): the
// Content-Security-Policy runs no inline script and no inline handler.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form.controls").forEach((f) => f.addEventListener("submit", (e) => e.preventDefault()));
  const d = { ...document.body.dataset };
  const start = {
    jobs: () => xrf.liveJobs("jobs"),
    project: () => { xrf.uploadForm("upload"); xrf.pollDatasets("datasets"); },
    "model-curves": () => xrf.plotCurves("curves", JSON.parse(document.getElementById("curves-data").textContent)),
    training: () => xrf.liveTraining(d.status, "curves"),
    dataset: () => xrfReview.datasetPage(d),
    job: () => xrfReview.jobPage(d),
    model: () => xrfReview.modelPage(d),
    compare: () => xrfReview.comparePage(d),
  }[d.page];
  if (start) start();
});
