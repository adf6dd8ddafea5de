// The threshold rule apps apply to one item's scores: a port of edgemod/runtime/decision.py decide().
// Single-label: the firing non-benign class with the highest score, else `benign`; multi-label: every firing label.
export function decide(scores, labels, thresholds) {
  const cut = (label) => thresholds.per_class[label]?.threshold ?? Infinity;
  if (thresholds.multi_label) return labels.filter((label, i) => scores[i] >= cut(label));
  const argmax = (values) => values.reduce((best, v, i) => (v > values[best] ? i : best), 0);
  if (thresholds.policy === "argmax" || Object.keys(thresholds.per_class).length === 0) return labels[argmax(scores)];
  const firing = scores.map((score, i) => (score >= cut(labels[i]) ? score : -Infinity));
  return firing.some(Number.isFinite) ? labels[argmax(firing)] : thresholds.benign;
}
