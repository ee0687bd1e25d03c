// Live figures and uploads through the JSON API, with the session cookie and the page's CSRF
// token. Pages work without this file; it only keeps them current and sends files.
"use strict";

const POLL_MS = 2000;
const LIVE_STATES = new Set(["submitting", "queued"]);
const csrf = () => document.querySelector('meta[name="csrf"]')?.content || "";

function rate(value) { return value ? value.toFixed(1) : "-"; }

function eta(seconds) {
  if (seconds === null || seconds === undefined) return "-";
  const s = Math.round(seconds);
  return `${Math.floor(s / 3600)}:${String(Math.floor(s / 60) % 60).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}

function show(element, status) {
  const text = { ...status, docs_per_s: rate(status.docs_per_s), eta_s: eta(status.eta_s) };
  for (const cell of element.querySelectorAll("[data-field]")) {
    const field = cell.dataset.field;
    if (field === "progress") {
      cell.max = status.total || 1;
      cell.value = status.done + status.failed;
    } else if (field in text) {
      cell.textContent = text[field];
    }
  }
  element.dataset.state = status.state;
}

async function follow(element) {
  const response = await fetch(`/api/v1/jobs/${encodeURIComponent(element.dataset.job)}`, { credentials: "same-origin" });
  if (!response.ok) return;
  const status = await response.json();
  show(element, status);
  if (LIVE_STATES.has(status.state)) {
    setTimeout(() => follow(element), POLL_MS);
  } else if (element.dataset.reload) {
    location.reload(); // the charts and tables are drawn by the server once it is done
  }
}

function formatOf(name) {
  const ext = name.toLowerCase().replace(/\.gz$/, "").split(".").pop();
  return ["jsonl", "csv", "txt"].includes(ext) ? ext : "";
}

async function submitFile(event) {
  event.preventDefault();
  const form = event.target;
  const file = form.querySelector("#file").files[0];
  const model = form.querySelector("#model").selectedOptions[0];
  const error = form.querySelector("#submit-error");
  const query = new URLSearchParams({
    model: model.value,
    task: model.dataset.task,
    text_field: form.querySelector("#text-field").value,
    id_field: form.querySelector("#id-field").value,
  });
  if (formatOf(file.name)) query.set("format", formatOf(file.name));
  const response = await fetch(`/api/v1/jobs?${query}`, {
    method: "POST", body: file, credentials: "same-origin", headers: { "X-CSRF-Token": csrf() },
  });
  const body = await response.json();
  if (response.status === 201) {
    location.href = `/jobs/${encodeURIComponent(body.id)}`;
  } else {
    error.textContent = body.detail || `error ${response.status}`;
    error.hidden = false;
  }
}

// The review page: one document of the job's sample at a time, a button (or number key) per label.
async function startReview(section) {
  const { job, mode, n } = section.dataset;
  const base = `/api/v1/jobs/${encodeURIComponent(job)}`;
  const error = section.querySelector("#review-error");
  const response = await fetch(`${base}/review-sample?mode=${mode}&n=${n}`, { credentials: "same-origin" });
  const sample = await response.json();
  if (!response.ok) return fail(error, sample);
  const todo = sample.documents.filter((doc) => doc.reviewed === null);
  let reviewed = sample.reviewed, busy = false;
  const total = sample.documents.length;
  const progress = () => {
    section.querySelector("#review-progress").textContent = `${reviewed} of ${total} reviewed`;
  };
  const showNext = () => {
    progress();
    const doc = todo[0];
    section.querySelector("#review-doc").hidden = !doc;
    section.querySelector("#review-done").hidden = Boolean(doc);
    if (!doc) return;
    section.querySelector("#review-id").textContent = doc.id;
    section.querySelector("#review-label").textContent = doc.label;
    section.querySelector("#review-score").textContent = doc.score.toFixed(3);
    section.querySelector("#review-text").textContent = doc.text;
  };
  const answer = async (label) => {
    if (busy || !todo.length || !section.dataset.canReview) return;
    busy = true;
    const sent = await fetch(`${base}/reviews?mode=${mode}`, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify([{ id: todo[0].id, label }]),
    });
    busy = false;
    if (!sent.ok) return fail(error, await sent.json());
    todo.shift();
    reviewed += 1;
    showNext();
  };
  for (const button of section.querySelectorAll("#review-buttons button")) {
    button.addEventListener("click", () => answer(button.dataset.label));
  }
  document.addEventListener("keydown", (event) => {
    const button = section.querySelector(`#review-buttons button[data-key="${event.key}"]`);
    if (button && !event.ctrlKey && !event.metaKey && !event.altKey) answer(button.dataset.label);
  });
  showNext();
}

function fail(element, body) {
  element.textContent = body.detail || "error";
  element.hidden = false;
}

document.addEventListener("DOMContentLoaded", () => {
  const review = document.querySelector("#review");
  if (review) startReview(review);
  for (const element of document.querySelectorAll("[data-job]")) {
    if (LIVE_STATES.has(element.dataset.state)) setTimeout(() => follow(element), POLL_MS);
  }
  document.querySelector("#submit-form")?.addEventListener("submit", submitFile);
});
