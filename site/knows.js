// "What this model knows": the deployed model's labels from GET /api/labels, searchable.
// Loaded (code and labels) only when the visitor opens the section, so the first load
// stays small.

import { modelLabels } from "./api.js";
import { search } from "./words.js";

const $ = (id) => document.getElementById(id);
const count = (value) => value.toLocaleString("en-US");
const ui = { search: $("knows-search"), status: $("knows-status"), list: $("knows-list") };
let labels = null;

const quoted = (names) => names.map((name) => `“${name}”`).join(", ").replace(/, ([^,]*)$/, " or $1");

function render() {
  const query = ui.search.value.trim();
  const { matches, suggestions } = query ? search(labels, query) : { matches: labels, suggestions: [] };
  const items = matches.map((label) => {
    const item = document.createElement("li");
    item.textContent = label;
    return item;
  });
  ui.list.replaceChildren(...items);
  let status;
  if (!query) status = `It knows ${count(labels.length)} ${labels.length === 1 ? "label" : "labels"}; an answer lists up to five of them, most likely first.`;
  else if (!matches.length) status = `No label matches “${query}”.`;
  else status = `${count(matches.length)} of ${count(labels.length)} labels ${matches.length === 1 ? "matches" : "match"} “${query}”.`;
  // Close spellings are offered, never counted as matches: "cat" is not "cab".
  if (suggestions.length) status += ` Did you mean ${quoted(suggestions)}?`;
  ui.status.textContent = status;
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
