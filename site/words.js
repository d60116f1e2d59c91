// Matching what a visitor types against a model's labels: "cat" finds "tiger cat" and
// "Persian cat", "cats" finds them too, "tabbby" finds "tabby". Used by the feedback
// picker (the nearest labels to a word that is not one) and by "What this model knows"
// (which tells matches from close spellings).

const fold = (text) => text.toLowerCase().normalize("NFKD").replace(/[\u0300-\u036f]/g, "").trim();
const words = (text) => fold(text).split(/[^a-z0-9]+/).filter(Boolean);

/** "cats" -> "cat", "boxes" -> "box", "puppies" -> "puppy"; short words stay as they are. */
function singular(word) {
  if (word.length > 4 && word.endsWith("ies")) return `${word.slice(0, -3)}y`;
  if (word.length > 4 && /(s|x|z|ch|sh)es$/.test(word)) return word.slice(0, -2);
  if (word.length > 3 && word.endsWith("s") && !word.endsWith("ss")) return word.slice(0, -1);
  return word;
}

/** Levenshtein distance, stopping early once it exceeds `limit`. */
function distance(a, b, limit) {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i += 1) {
    const row = [i];
    let best = i;
    for (let j = 1; j <= b.length; j += 1) {
      row[j] = Math.min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      best = Math.min(best, row[j]);
    }
    if (best > limit) return limit + 1;
    previous = row;
  }
  return previous[b.length];
}

/** Ranks below this are matches (the label has the words or the text); from it on, close
 * spellings. */
const CLOSE_SPELLING = 4;

/** How well `label` matches `query` (lower is better), or Infinity for no match. */
function rank(label, query) {
  const wanted = fold(query);
  const whole = fold(label);
  if (!wanted) return Infinity;
  if (whole === wanted) return 0;
  const terms = words(query).map(singular);
  const own = words(label).map(singular);
  if (terms.length && terms.every((term) => own.includes(term))) return 1 + own.length / 100;
  if (terms.length && terms.every((term) => own.some((word) => word.startsWith(term)))) return 2;
  if (whole.includes(wanted)) return 3;
  // A typo: one edit in a short word, two in a longer one.
  const limit = wanted.length < 5 ? 1 : 2;
  const closest = Math.min(distance(whole, wanted, limit), ...own.map((word) => distance(word, wanted, limit)));
  return closest <= limit ? CLOSE_SPELLING + closest : Infinity;
}

function ranked(labels, query) {
  return labels
    .map((label, index) => ({ label, index, score: rank(label, query) }))
    .filter((entry) => entry.score !== Infinity)
    .sort((a, b) => a.score - b.score || a.index - b.index);
}

/** The labels matching `query`, close spellings too, best first (ties keep the model's order). */
export function matching(labels, query, limit = Infinity) {
  return ranked(labels, query)
    .slice(0, limit)
    .map((entry) => entry.label);
}

/** The labels that have `query`'s words or text (`matches`), and, only when there are
 * fewer than `few` and none is `query` itself, up to `few` close spellings that do not
 * (`suggestions`). */
export function search(labels, query, few = 3) {
  const found = ranked(labels, query);
  const matches = found.filter((entry) => entry.score < CLOSE_SPELLING).map((entry) => entry.label);
  const close = found.filter((entry) => entry.score >= CLOSE_SPELLING).map((entry) => entry.label);
  const suggest = matches.length < few && found[0]?.score !== 0;
  return { matches, suggestions: suggest ? close.slice(0, few) : [] };
}

/** The model's own spelling of `typed`, if it is one of its labels (any case). */
export function exactLabel(labels, typed) {
  const wanted = typed.trim();
  return labels.find((label) => label === wanted) || labels.find((label) => fold(label) === fold(wanted)) || "";
}
