// "What this model knows": the deployed model's labels from GET /api/labels, searchable.
// Loaded (code and labels) only when the visitor opens the section, so the first load
// stays small.

import { modelLabels } from "./api.js";
import { matching } from "./words.js";

const $ = (id) => document.getElementById(id);
const count = (value) => value.toLocaleString("en-US");
const ui = { search: $("knows-search"), status: $("knows-status"), list: $("knows-list") };
let labels = null;

function render() {
  const query = ui.search.value.trim();
  const shown = query ? matching(labels, query) : labels;
  const items = shown.map((label) => {
    const item = document.createElement("li");
    item.textContent = label;
    return item;
  });
  ui.list.replaceChildren(...items);
  if (!query) ui.status.textContent = `It knows ${count(labels.length)} ${labels.length === 1 ? "label" : "labels"}; an answer lists up to five of them, most likely first.`;
  else if (!shown.length) ui.status.textContent = `No label matches “${query}”.`;
  else ui.status.textContent = `${count(shown.length)} of ${count(labels.length)} labels match “${query}”.`;
}

export async function showModelLabels(apiUrl, version) {
  if (labels) return;
  ui.status.textContent = "Loading the model’s labels…";
  try {
    labels = await modelLabels(apiUrl, version);
  } catch {
    ui.status.textContent = "The model’s labels could not be loaded. Close this and open it again to retry.";
    return;
  }
  ui.search.disabled = false;
  ui.search.addEventListener("input", render);
  render();
}
