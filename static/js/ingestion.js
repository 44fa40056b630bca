// Live ingestion progress on the requester's job page: poll the API while the job processes.
(function () {
  const section = document.getElementById("job-videos");
  if (!section || section.dataset.jobStatus !== "processing") return;
  const url = section.dataset.progressUrl;
  async function poll() {
    let data;
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) return;
      data = await response.json();
    } catch (e) {
      setTimeout(poll, 3000);
      return;
    }
    document.getElementById("ingestion-progress").textContent =
      `${data.status} — ${data.progress}% (${data.videos_ready} ready, ${data.videos_failed} failed of ${data.videos_total})`;
    for (const v of data.videos) {
      const row = document.getElementById(`video-${v.id}`);
      if (!row) continue;
      row.querySelector(".v-status").textContent = v.status + (v.failure_reason ? ` — ${v.failure_reason}` : "");
      row.querySelector(".v-stage").textContent = v.stage;
      row.querySelector(".v-progress").value = v.progress;
      row.querySelector(".v-percent").textContent = `${Math.round(v.progress)}%`;
    }
    if (data.status === "processing") setTimeout(poll, 2000);
    else window.location.reload();
  }
  poll();
})();
