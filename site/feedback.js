// "Is this right?" under an answer: Yes or No, and after No an optional "What is it?" picker
// of the model's own labels (fetched when first needed), sent to POST /api/feedback for the
// answer's request_id. A word that is not a label gets the model's nearest labels to pick
// from, and "Something else" says the image is none of them. Each answer keeps its own feedback, so going back to one in the
// history shows what was said about it. A failed call is said here, and the answer above
// stays as it is.

import { modelLabels, sendFeedback } from "./api.js";
import { describeFeedback } from "./messages.js";
import { exactLabel, matching } from "./words.js";

// The label that means "none of the model's labels" (proxy/feedback.py SOMETHING_ELSE).
export const SOMETHING_ELSE = "(something else)";
const SUGGESTIONS = 6;

const $ = (id) => document.getElementById(id);
const count = (value) => value.toLocaleString("en-US");

export function createFeedback(apiUrl, announce) {
  const ui = {
    root: $("feedback"),
    ask: $("feedback-ask"),
    yes: $("feedback-yes"),
    no: $("feedback-no"),
    form: $("feedback-form"),
    input: $("feedback-label"),
    options: $("feedback-labels"),
    hint: $("feedback-hint"),
    check: $("feedback-check"),
    invalid: $("feedback-invalid"),
    suggestions: $("feedback-suggestions"),
    other: $("feedback-other"),
    skip: $("feedback-skip"),
    status: $("feedback-status"),
    retry: $("feedback-retry"),
  };
  let shown = null; // the entry on screen
  let listed = ""; // the model version whose labels fill the datalist

  // entry.feedback: {step: "ask" | "label" | "sending" | "thanks" | "failed", verdict,
  // label, problem, chain (the calls in order), last (the last document sent)}
  const state = (entry) => {
    entry.feedback ||= { step: "ask", chain: Promise.resolve() };
    return entry.feedback;
  };

  function thanks(feedback) {
    if (feedback.verdict === "correct") return "Thanks! Glad it got this one right.";
    if (feedback.label === SOMETHING_ELSE) return "Thanks! Noted: it is something the model does not know.";
    if (feedback.label) return `Thanks! Noted: it is “${feedback.label}”.`;
    return "Thanks! Noted that this answer is wrong.";
  }

  function render() {
    if (!shown) return;
    const feedback = state(shown);
    const { step } = feedback;
    ui.root.hidden = false;
    ui.ask.hidden = step !== "ask";
    ui.form.hidden = step !== "label";
    ui.status.hidden = !["sending", "thanks", "failed"].includes(step);
    ui.status.classList.toggle("is-error", step === "failed");
    if (step === "sending") ui.status.textContent = "Sending your feedback…";
    if (step === "thanks") ui.status.textContent = thanks(feedback);
    const failure = step === "failed" ? describeFeedback(feedback.problem) : null;
    if (failure) ui.status.textContent = failure.message;
    ui.retry.hidden = !(failure && failure.retry);
    if (step === "label") fillLabels(shown);
  }

  /** Move focus to what replaced the control the visitor used, and say it. */
  function settle(entry, focus) {
    if (entry !== shown) return;
    render();
    const { step } = state(entry);
    if (step === "label") {
      if (focus) ui.input.focus();
      return;
    }
    if (step === "failed" && !ui.retry.hidden) {
      if (focus) ui.retry.focus();
    } else if (focus) {
      ui.status.focus();
    }
    announce(ui.status.textContent);
  }

  /** Send `document` after any call still going for this answer (so the last one wins). */
  function post(entry, document) {
    const feedback = state(entry);
    feedback.last = document;
    const sent = feedback.chain.then(() => sendFeedback(apiUrl, document));
    feedback.chain = sent.catch(() => {});
    return sent;
  }

  async function submit(entry, document, { background = false } = {}) {
    const feedback = state(entry);
    if (!background) {
      feedback.step = "sending";
      settle(entry, true);
    }
    try {
      await post(entry, document);
      if (feedback.last !== document) return; // a later call decides
      feedback.verdict = document.verdict;
      feedback.label = document.label || "";
      if (!background) feedback.step = "thanks";
    } catch (problem) {
      if (feedback.last !== document) return;
      const { status, requestId, serverMessage } = problem.facts || {};
      console.error(`feedback failed: ${problem.code || "error"} (HTTP ${status ?? "-"}, request id ${requestId || "-"}): ${serverMessage || problem}`);
      feedback.problem = problem;
      feedback.step = "failed";
    }
    if (!background || feedback.step === "failed") settle(entry, entry === shown);
  }

  function requestId(entry) {
    return entry.result.body.request_id;
  }

  async function fillLabels(entry) {
    const version = entry.result.body.model?.version || "";
    if (listed === version) return;
    listed = version;
    ui.options.replaceChildren();
    ui.hint.textContent = "Loading the model’s labels…";
    try {
      const labels = await modelLabels(apiUrl, version);
      entry.labels = labels;
      if (listed !== version) return;
      const options = labels.map((label) => {
        const option = document.createElement("option");
        option.value = label;
        return option;
      });
      ui.options.replaceChildren(...options);
      ui.hint.textContent = `Type to search the model’s ${count(labels.length)} labels, or skip.`;
    } catch {
      if (listed === version) {
        listed = "";
        ui.hint.textContent = "The model’s labels could not be loaded. Your “No” is noted; skip this step, or choose “Something else”.";
      }
    }
  }

  /** Say why the word was not sent, above the field (a phone's keyboard covers what is
   * below it), offer the nearest labels, and speak it through the page's live region. */
  function invalid(text, nearest = []) {
    ui.invalid.textContent = text;
    ui.check.hidden = !text;
    const buttons = nearest.map((label) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "button button-small suggestion";
      button.textContent = label;
      button.addEventListener("click", () => sendLabel(label));
      const item = document.createElement("li");
      item.append(button);
      return item;
    });
    ui.suggestions.replaceChildren(...buttons);
    ui.suggestions.hidden = !buttons.length;
    if (text) {
      ui.input.setAttribute("aria-invalid", "true");
      ui.check.scrollIntoView({ block: "nearest" });
      const list = nearest.length ? ` Nearest labels: ${nearest.join(", ")}.` : "";
      announce(`${text}${list}`);
    } else {
      ui.input.removeAttribute("aria-invalid");
    }
  }

  function sendLabel(label) {
    if (!shown) return;
    invalid("");
    submit(shown, { request_id: requestId(shown), verdict: "wrong", label });
  }

  function finishWithout(entry) {
    // The 👎 went (or is going) out already; only the thank-you is left, once it is in.
    const feedback = state(entry);
    const wrong = feedback.last;
    feedback.step = "sending";
    settle(entry, true);
    feedback.chain.then(() => {
      if (feedback.last !== wrong || feedback.step === "failed") return;
      feedback.step = "thanks";
      feedback.verdict = "wrong";
      settle(entry, entry === shown);
    });
  }

  ui.yes.addEventListener("click", () => {
    if (shown) submit(shown, { request_id: requestId(shown), verdict: "correct" });
  });
  ui.no.addEventListener("click", () => {
    if (!shown) return;
    const entry = shown;
    state(entry).step = "label";
    ui.input.value = "";
    invalid("");
    settle(entry, true);
    // The verdict counts even if no label follows.
    submit(entry, { request_id: requestId(entry), verdict: "wrong" }, { background: true });
  });
  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!shown) return;
    const entry = shown;
    const typed = ui.input.value.trim();
    if (!typed) {
      finishWithout(entry);
      return;
    }
    const labels = entry.labels || [];
    const label = exactLabel(labels, typed);
    if (!label) {
      if (!labels.length) {
        invalid("The labels are not loaded, so none can be sent. Skip this step, or choose “Something else”.");
      } else {
        const nearest = matching(labels, typed, SUGGESTIONS);
        invalid(
          nearest.length
            ? `“${typed}” is not one of the model’s labels. Is it one of these, or something else?`
            : `“${typed}” is not one of the model’s labels, and none is close. Is it something else?`,
          nearest,
        );
      }
      ui.input.focus();
      return;
    }
    sendLabel(label);
  });
  ui.input.addEventListener("input", () => {
    if (!ui.check.hidden) invalid("");
  });
  ui.other.addEventListener("click", () => sendLabel(SOMETHING_ELSE));
  ui.skip.addEventListener("click", () => {
    if (shown) finishWithout(shown);
  });
  ui.retry.addEventListener("click", () => {
    if (shown && state(shown).last) submit(shown, state(shown).last);
  });

  return {
    /** Show the feedback of `entry` (an answered image), or nothing for null. */
    show(entry) {
      shown = entry;
      if (!entry) {
        ui.root.hidden = true;
        return;
      }
      invalid("");
      ui.input.value = "";
      render();
    },
  };
}
