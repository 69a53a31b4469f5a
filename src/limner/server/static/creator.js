// Limner Image Creator: live job progress (server-sent events), mask painting for edits, copy prompt,
// confirm before deleting. Pages work without it (reload to see a job end); edits need it for the mask.
"use strict";

function followJob(section) {
  const id = section.dataset.job;
  if (!["queued", "running"].includes(section.dataset.status)) return;
  const status = document.getElementById("status");
  const bar = document.getElementById("progress");
  const results = document.getElementById("results");
  const source = new EventSource(`/jobs/${id}/events`);
  source.onmessage = (event) => {
    const s = JSON.parse(event.data);
    section.dataset.status = s.status;
    if (s.total) { bar.max = s.total; bar.value = s.step; }
    if (s.status === "running") {  // after the last step come upscaling, exact text and storing
      status.textContent = s.step < s.total ? `Step ${s.step} of ${s.total}` : "Finishing…";
    }
    if (s.previews && s.previews.length && s.status === "running") {
      results.querySelectorAll("img").forEach((img, i) => { if (s.previews[i]) img.src = s.previews[i]; });
    }
    if (["done", "failed", "cancelled", "blocked"].includes(s.status)) {
      source.close();
      window.location.reload();  // the server renders the finished job with links to each image
    }
  };
}

// The mask is painted in white on a see-through canvas over the image (outlined by the stylesheet so
// it shows on any picture) and sent as the server wants it: white = repaint, on black.
function maskPainter() {
  const toggle = document.getElementById("edit-toggle");
  const form = document.getElementById("edit-form");
  const canvas = document.getElementById("mask");
  if (!toggle || !form || !canvas) return;
  const ctx = canvas.getContext("2d");
  const radius = canvas.width / 16;
  let painted = false, last = null;
  toggle.addEventListener("click", () => {
    const open = form.hidden;
    form.hidden = !open; canvas.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
  });
  const point = (e) => {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height];
  };
  const paint = (e) => {  // a round dab, joined to the last one so that fast strokes leave no gaps
    const [x, y] = point(e);
    ctx.fillStyle = ctx.strokeStyle = "#fff";
    ctx.beginPath(); ctx.arc(x, y, radius, 0, 2 * Math.PI); ctx.fill();
    if (last) {
      ctx.lineWidth = 2 * radius; ctx.lineCap = "round";
      ctx.beginPath(); ctx.moveTo(last[0], last[1]); ctx.lineTo(x, y); ctx.stroke();
    }
    last = [x, y]; painted = true;
  };
  canvas.addEventListener("pointerdown", (e) => { last = null; canvas.setPointerCapture(e.pointerId); paint(e); });
  canvas.addEventListener("pointermove", (e) => { if (canvas.hasPointerCapture(e.pointerId)) paint(e); });
  canvas.addEventListener("pointerup", () => { last = null; });
  canvas.addEventListener("pointercancel", () => { last = null; });
  document.getElementById("clear-mask").addEventListener("click", () => {
    ctx.clearRect(0, 0, canvas.width, canvas.height); painted = false;
  });
  const maskBlob = (callback) => {
    const out = document.createElement("canvas");
    out.width = canvas.width; out.height = canvas.height;
    const o = out.getContext("2d");
    o.fillStyle = "#000"; o.fillRect(0, 0, out.width, out.height);
    o.drawImage(canvas, 0, 0);
    out.toBlob(callback, "image/png");
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!painted) { alert("Paint the area to change first."); return; }
    const submit = document.getElementById("edit-submit");
    submit.disabled = true;
    maskBlob((blob) => {
      const data = new FormData(form);
      data.append("mask", blob, "mask.png");
      fetch(form.action, { method: "POST", body: data, credentials: "same-origin" })
        .then(async (r) => {
          if (r.ok && r.redirected) { window.location.href = r.url; return; }  // the new job's page
          showError(form, await messageOf(r));
          submit.disabled = false;
        })
        .catch(() => { showError(form, "Could not reach the server; try again."); submit.disabled = false; });
    });
  });
}

// Why a script-sent form failed: the error envelope's message, or the alert on the page sent back.
async function messageOf(response) {
  const type = response.headers.get("content-type") || "";
  try {
    if (type.includes("json")) return (await response.json()).error.message;
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const alert = page.querySelector("main [role=alert]");
    if (alert) return alert.textContent.trim().replace(/\s+/g, " ");
  } catch { /* fall through */ }
  return `Something went wrong (HTTP ${response.status}); reload the page and try again.`;
}

function showError(form, message) {
  let p = form.querySelector(".error");
  if (!p) {
    p = document.createElement("p");
    p.className = "error";
    p.setAttribute("role", "alert");
    form.prepend(p);
  }
  p.textContent = message;
}

function confirmDelete() {
  const form = document.getElementById("delete-form");
  if (!form) return;
  form.addEventListener("submit", (e) => {
    if (!confirm("Delete this image? This cannot be undone.")) e.preventDefault();
  });
}

function copyPrompt() {
  const button = document.getElementById("copy-prompt");
  if (!button) return;
  button.addEventListener("click", async () => {
    try { await navigator.clipboard.writeText(button.dataset.prompt); button.textContent = "Copied"; }
    catch { window.prompt("Copy the prompt:", button.dataset.prompt); }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const job = document.getElementById("job");
  if (job) followJob(job);
  maskPainter();
  copyPrompt();
  confirmDelete();
});
