/**
 * The edit distance between two strings: the fewest single-character insertions, deletions,
 * substitutions and swaps of two neighbours that turn `a` into `b` (optimal string alignment).
 *
 * @param a - a string
 * @param b - another
 * @returns the distance, 0 when equal
 * @internal
 */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array(rows * cols).fill(0);
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(
        (d[(i - 1) * cols + j] as number) + 1,
        (d[i * cols + j - 1] as number) + 1,
        (d[(i - 1) * cols + j - 1] as number) + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, (d[(i - 2) * cols + j - 2] as number) + 1);
      }
      d[i * cols + j] = best;
    }
  }
  return d[rows * cols - 1] as number;
}

/**
 * The candidate closest to a mistyped word, for "did you mean ...?": within an edit distance
 * of 1 for words of up to 4 characters, 2 up to 8, and 3 beyond; a prefix of a candidate of
 * at least 3 characters counts too (`mig` for `migrate`). Ties go to the earlier candidate.
 *
 * @param word - what was typed
 * @param candidates - the valid words
 * @returns the closest candidate, or undefined when none is close
 * @internal
 */
export function closestMatch(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  const limit = lower.length <= 4 ? 1 : lower.length <= 8 ? 2 : 3;
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const distance =
      lower.length >= 3 && candidate.startsWith(lower) ? 1 : editDistance(lower, candidate);
    if (distance <= limit && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}
