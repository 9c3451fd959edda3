// Progressive enhancement only: every page works without this file.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

// "Load more": fetch the next page's tiles and append them, keeping the URL shareable.
function setUpLoadMore() {
  const button = document.getElementById("load-more");
  const grid = document.getElementById("grid");
  if (!button || !grid) return;
  button.addEventListener("click", async (event) => {
    event.preventDefault();
    button.setAttribute("aria-busy", "true");
    const url = new URL(button.href, location.href);
    url.searchParams.set("fragment", "1");
    const response = await fetch(url, { headers: { Accept: "text/html" } });
    if (!response.ok) { location.href = button.href; return; }
    const holder = document.createElement("ul");
    holder.innerHTML = await response.text();
    const first = holder.querySelector("li.tile a");
    const next = holder.querySelector("li.next-page");
    holder.querySelectorAll("li.tile").forEach((tile) => grid.appendChild(tile));
    if (first) grid.querySelector(`a[href="${first.getAttribute("href")}"]`).focus();
    if (next) { button.href = next.dataset.more; button.removeAttribute("aria-busy"); }
    else button.parentElement.remove();
  });
}

// Upload: many files, one request each, a progress bar and an answer per file.
function setUpUpload() {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const input = document.getElementById("files");
  const zone = document.getElementById("dropzone");
  const list = document.getElementById("progress");
  const next = document.getElementById("upload-next");
  const detailsLink = document.getElementById("details-link");
  const submit = document.getElementById("upload-submit");
  const filesLeft = document.getElementById("files-left");
  const saved = [];
  submit.hidden = true;

  const uploadOne = (file) => new Promise((resolve) => {
    const item = document.createElement("li");
    const label = document.createElement("span");
    label.className = "file-name";
    label.textContent = file.name;
    const bar = document.createElement("progress");
    bar.max = 100; bar.value = 0;
    bar.setAttribute("aria-label", `Uploading ${file.name}`);
    const status = document.createElement("span");
    status.className = "file-status";
    status.textContent = "waiting";
    item.append(label, bar, status);
    list.appendChild(item);
    const body = new FormData();
    body.append("files", file);
    const audience = document.getElementById("audience");  // none on an upload link's page
    if (audience) body.append("audience", audience.value);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) bar.value = Math.round((e.loaded / e.total) * 100);
      status.textContent = "uploading";
    });
    xhr.addEventListener("load", () => {
      bar.value = 100;
      let answer = {};
      try { answer = JSON.parse(xhr.responseText); } catch (err) { answer = {}; }
      if (answer.left && filesLeft) filesLeft.textContent = answer.left;
      if (xhr.status === 200 && answer.state === "stored") {
        item.className = "result result-stored";
        status.textContent = "saved";
        saved.push(answer.image_id);
        if (answer.duplicate_of) {
          const link = document.createElement("a");
          link.href = answer.duplicate_of.url;
          link.textContent = "looks like an image already in the library";
          status.append(" · ", link);
        }
      } else if (xhr.status === 200 && answer.state !== "failed") {
        item.className = "result result-queued";
        status.textContent = `still being saved: ${answer.reason || "it will be retried"}`;
        saved.push(answer.image_id);
      } else {
        item.className = "result result-failed";
        status.textContent = `not saved: ${answer.reason || answer.error || `the server answered ${xhr.status}`}`;
      }
      resolve();
    });
    xhr.addEventListener("error", () => {
      item.className = "result result-failed";
      status.textContent = "not saved: the connection failed, try again";
      resolve();
    });
    xhr.send(body);
  });

  const uploadAll = async (files) => {
    const queue = Array.from(files);
    const workers = Array.from({ length: Math.min(3, queue.length) }, async () => {
      while (queue.length) await uploadOne(queue.shift());
    });
    await Promise.all(workers);
    if (saved.length && detailsLink) {
      detailsLink.href = `/upload/details?ids=${saved.join(",")}`;
      next.hidden = false;
      detailsLink.focus();
    }
  };

  input.addEventListener("change", () => { if (input.files.length) uploadAll(input.files); });
  form.addEventListener("submit", (event) => { event.preventDefault(); if (input.files.length) uploadAll(input.files); });
  ["dragenter", "dragover"].forEach((name) => zone.addEventListener(name, (e) => {
    e.preventDefault(); zone.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((name) => zone.addEventListener(name, (e) => {
    e.preventDefault(); zone.classList.remove("over");
  }));
  zone.addEventListener("drop", (e) => { if (e.dataTransfer.files.length) uploadAll(e.dataTransfer.files); });
}

// Tag suggestions: the tags already in the library (that this person may see) for the one
// being typed after the last comma.
function setUpTagSuggestions() {
  const input = document.querySelector("input[data-suggest]");
  const list = document.getElementById("tag-suggestions");
  if (!input || !list) return;
  let timer = 0;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const parts = input.value.split(",");
      const typed = parts.pop().trim();
      if (!typed) return;
      const url = new URL(input.dataset.suggest, location.href);
      url.searchParams.set("q", typed);
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const { tags } = await response.json();
      const before = parts.map((p) => p.trim()).filter(Boolean);
      list.replaceChildren(...tags.map((tag) => {
        const option = document.createElement("option");
        option.value = [...before, tag].join(", ");
        return option;
      }));
    }, 150);
  });
}

// A "Copy" button next to a read-only field (the new upload link, shown once).
function setUpCopy() {
  document.querySelectorAll("button[data-copy]").forEach((button) => {
    button.addEventListener("click", async () => {
      const field = document.getElementById(button.dataset.copy);
      field.select();
      try { await navigator.clipboard.writeText(field.value); button.textContent = "Copied"; }
      catch (err) { button.textContent = "Select and copy"; }
    });
  });
}

function setUpConfirm() {
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setUpLoadMore();
  setUpUpload();
  setUpConfirm();
  setUpCopy();
  setUpTagSuggestions();
});
