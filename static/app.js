// xrfweb's pages: uploads with a progress bar, live status by polling JSON, confirmations.
// No inline scripts anywhere (a strict CSP): each page marks its elements with ids and data-*
// attributes, and the bottom of this file wires whatever the page holds.
"use strict";
const xrf = (() => {
  const POLL_MS = 1000, MAX_POLL_MS = 10000;
  const $ = (id) => document.getElementById(id);
  const csrf = () => document.querySelector("[name=csrfmiddlewaretoken]")?.value || "";
  // Text into HTML (innerHTML templates): every value from the server goes through it.
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  // Text into Plotly (titles, ticks, legend and hover): Plotly reads a little HTML there (links,
  // styles), so names from uploads and model bundles go in escaped. The one helper for plots.
  const plotText = (s) => String(s ?? "").replace(/[&<>]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" })[c]);
  // One CSV line, by the rule of the server's exports (enhancer/formats/export.py csv_writer):
  // a cell with a comma, quote or line break quoted, and text a spreadsheet would run as a formula
  // (= + - @ | %, tab, CR) led by ' (OWASP's CSV injection advice). Numbers go in as they are.
  const csvLine = (cells) => cells.map((c) => {
    if (typeof c === "number") return String(c);
    let s = String(c ?? "");
    if (/^[=+\-@|%\t\r]/.test(s) && !/^-?[0-9.,]+$/.test(s)) s = `'${s}`;
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  }).join(",");
  // One date format on every page, the server's included: 2026-12-01 15:13 UTC.
  const when = (iso) => (iso ? `${new Date(iso).toISOString().slice(0, 16).replace("T", " ")} UTC` : "");
  const live = (status) => ["queued", "running"].includes(status);

  // Streams the file with XHR so the browser reports upload progress.
  function uploadForm(form) {
    const bar = form.querySelector("progress"), status = form.querySelector("[role=status]");
    const refuse = (text) => {
      status.textContent = `Refused: ${text}`;
      status.className = "flash error";
      bar.hidden = true;
      bar.value = 0;
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const file = form.querySelector("input[type=file]").files[0];
      if (!file) return;
      status.className = "";
      if (file.size > Number(form.dataset.maxBytes)) { refuse(`${file.name} is larger than the upload limit.`); return; }
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
          refuse(body.error || xhr.statusText);
        }
      };
      xhr.onerror = () => refuse("the upload was interrupted (network or size limit).");
      xhr.send(new FormData(form));
    });
  }

  // Fetch url now and again while onData(json) returns true. The wait grows (x1.5, up to 10 s)
  // while nothing changes (as key(json) sees it: a running job's duration always does) and is
  // back to 1 s when something does. Errors show in `note`: a failed request is retried, more
  // slowly; a failure of the page's own code stops the polling.
  function poll(url, onData, note, key = (data) => JSON.stringify(data)) {
    let wait = POLL_MS, last = null;
    const show = (text) => { if (note) { note.textContent = text; note.hidden = !text; } };
    const tick = async () => {
      let data;
      try {
        const response = await fetch(url, { headers: { Accept: "application/json" } });
        if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
        data = await response.json();
      } catch (e) {
        show(`Could not refresh (${e.message}); trying again.`);
        wait = Math.min(MAX_POLL_MS, wait * 2);
        setTimeout(tick, wait);
        return;
      }
      show("");
      const now = key(data);
      wait = now === last ? Math.min(MAX_POLL_MS, wait * 1.5) : POLL_MS;
      last = now;
      let again;
      try { again = onData(data); } catch (e) {
        show(`This page could not show the update: ${e.message}. Reload to try again.`);
        return;
      }
      if (again) setTimeout(tick, wait);
    };
    tick();
  }
  // What counts as a change in a job: not its duration, which grows every second.
  const jobKey = (j) => [j.id, j.status, j.progress, j.message, j.error, j.queue_position, (j.curves || []).length].join("|");

  // Reload the project page when a dataset changes state (parsed or rejected).
  function pollDatasets(table) {
    const shown = {};
    table.querySelectorAll("tr[data-id]").forEach((tr) => { shown[tr.dataset.id] = tr.dataset.status; });
    poll(table.dataset.url, (data) => {
      if (data.datasets.some((d) => shown[d.id] !== d.status)) { location.reload(); return false; }
      return data.datasets.some((d) => d.status === "uploaded" || d.status === "parsing");
    }, $("poll-error"));
  }

  function downloads(job) {
    return (job.results || []).map((f) => `<a href="/jobs/${job.id}/result.${f}">${f.toUpperCase()}</a>`).join(" ");
  }

  // The jobs list: live while a job is queued or running, still once none is.
  function liveJobs(table) {
    const link = (url, name) => (name ? (url ? `<a href="${url}">${esc(name)}</a>` : esc(name)) : "");
    const draw = (data) => {
      table.querySelector("tbody").innerHTML = data.jobs.map((j) => `
        <tr data-id="${esc(j.id)}">
          <td><a href="/jobs/${esc(j.id)}/">#${esc(j.id)}</a></td><td>${esc(j.kind)}</td>
          <td>${link(j.dataset && `/datasets/${j.dataset}/`, j.dataset_name)}</td>
          <td class="nowrap">${link(j.model && `/models/${j.model}/`, j.model_name)}${j.model_status === "retired" ? " <span class=\"status retired\">(retired)</span>" : ""}</td>
          <td>${link(j.project && `/projects/${j.project}/`, j.project_name)}</td>
          <td class="status ${esc(j.status)}">${esc(j.status)}</td>
          <td><progress max="1" value="${j.progress}"></progress> ${Math.round(100 * j.progress)} %</td>
          <td>${j.queue_position ?? ""}</td><td>${esc(j.worker)}</td>
          <td class="nowrap">${when(j.started)}</td>
          <td>${j.duration_s != null ? Math.round(j.duration_s) + " s" : ""}</td>
          <td>${esc(j.error || j.message)}</td><td>${downloads(j)}</td>
          <td>${live(j.status) && !j.cancel_requested ? `<button data-cancel="${esc(j.id)}">Cancel</button>` : ""}</td>
        </tr>`).join("") || `<tr><td colspan="14">No jobs yet.</td></tr>`;
      return data.jobs.some((j) => live(j.status));
    };
    poll(table.dataset.url, draw, $("poll-error"), (data) => data.jobs.map(jobKey).join());
    table.addEventListener("click", async (event) => {
      const id = event.target.dataset.cancel;
      if (!id) return;
      event.target.disabled = true;
      await fetch(`/jobs/${id}/cancel/`, { method: "POST", headers: { "X-CSRFToken": csrf(), Accept: "application/json" } });
      liveJobs(table);  // the list moves again (it may have stopped polling)
    });
  }

  function showJob(job) {
    $("status").textContent = job.status;
    $("status").className = `status ${job.status}`;
    $("progress").value = job.progress;
    $("message").textContent = job.error || job.message;
  }

  // Curves: {label: [{step, loss, val_psnr}, ...]} -> loss and validation PSNR against step.
  function plotCurves(div, curves) {
    const traces = [];
    let last = 1;
    for (const [label, points] of Object.entries(curves)) {
      const steps = points.map((p) => p.step);
      last = Math.max(last, ...steps);
      traces.push({ x: steps, y: points.map((p) => p.loss), name: plotText(`${label} loss`), mode: "lines" });
      const val = points.filter((p) => p.val_psnr != null);
      traces.push({ x: val.map((p) => p.step), y: val.map((p) => p.val_psnr), name: plotText(`${label} validation PSNR (dB)`),
                    mode: "lines+markers", yaxis: "y2" });
    }
    Plotly.react(div, traces, {
      xaxis: { title: { text: "step" }, ...stepTicks(last) }, yaxis: { title: { text: "loss" }, type: "log" },
      yaxis2: { title: { text: "PSNR (dB)" }, overlaying: "y", side: "right", automargin: true, nticks: 6 },
      margin: { t: 40, r: 60 }, legend: LEGEND_ABOVE,
    }, { responsive: true, displaylogo: false });
  }
  // Steps are whole numbers: ticks every 1, 2, 5 x 10^k, never at 0.5.
  function stepTicks(last) {
    const span = Math.max(1, last), k = Math.floor(Math.log10(span / 5));
    let dtick = 10 ** Math.max(0, k);
    for (const m of [1, 2, 5, 10]) if (m * 10 ** Math.max(0, k) >= span / 8) { dtick = m * 10 ** Math.max(0, k); break; }
    return { tick0: 0, dtick: Math.max(1, dtick), tickformat: "d" };
  }
  // Above the plot, clear of the axis titles below it.
  const LEGEND_ABOVE = { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" };

  // A training job's page: status and curves while it runs; the new model's link once it has.
  function liveTraining(box) {
    poll(box.dataset.url, (job) => {
      showJob(job);
      plotCurves($("curves"), { [box.dataset.name || `job ${job.id}`]: job.curves || [] });
      if (!live(job.status)) {
        $("cancel")?.remove();
        if (job.status === "succeeded" && job.model) {
          $("new-model").innerHTML = `The new model: <a href="/models/${job.model}/">${esc(job.model_name || `model ${job.model}`)}</a> (a draft until staff approve it).`;
          $("new-model").hidden = false;
        }
      }
      return live(job.status);
    }, $("poll-error"), jobKey);
  }

  // <form data-confirm="question"> (or a button with it) asks before it is sent.
  document.addEventListener("submit", (event) => {
    const button = event.submitter, question = (button && button.dataset.confirm) || event.target.dataset.confirm;
    if (question && !confirm(question)) event.preventDefault();
  });
  document.querySelectorAll("form[data-no-submit]").forEach((f) => f.addEventListener("submit", (e) => e.preventDefault()));
  if ($("upload")) uploadForm($("upload"));
  if ($("datasets")) pollDatasets($("datasets"));
  if ($("jobs")) liveJobs($("jobs"));
  if ($("training")) liveTraining($("training"));
  // The approval benchmark runs on a worker: the model page reloads once it is done.
  const bench = $("approval-benchmark");
  if (bench && ["queued", "running"].includes(bench.dataset.status)) {
    poll(bench.dataset.url, (data) => {
      if (["queued", "running"].includes(data.benchmark.status)) return true;
      location.reload();
      return false;
    }, $("poll-error"));
  }
  // The blind probe estimate runs on a worker: the dataset page reloads once it is done; "Use it"
  // puts it in the physics form and saves it (the form keeps the stated step).
  const estimate = $("probe-estimate");
  if (estimate && estimate.dataset.status === "running") {
    poll(estimate.dataset.url, (data) => {
      if ((data.probe_estimate || {}).status === "running") return true;
      location.reload();
      return false;
    }, $("poll-error"));
  }
  if ($("use-probe")) $("use-probe").addEventListener("click", () => {
    $("id_probe_fwhm_nm").value = $("use-probe").dataset.probe;
    $("physics-form").requestSubmit();
  });
  if ($("curves-data")) plotCurves($("curves"), JSON.parse($("curves-data").textContent));

  return { esc, plotText, csvLine, poll, jobKey, plotCurves, stepTicks, when, LEGEND_ABOVE };
})();
